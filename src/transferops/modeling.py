"""Model construction shared by training, prediction and selection (the forward pass itself lives in
:mod:`transferops.inference`; ``batched_forward`` is re-exported here for callers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._hf import quiet_transformers
from transferops.inference import batched_forward


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def load_tokenizer(path: str | Path) -> Any:
    """The checkpoint's own tokenizer (the text modality's preprocessor)."""
    from transferops.modality.text import TEXT

    return TEXT.load_preprocessor(path)


def load_encoder(path: str | Path, *, safetensors_only: bool = False, attn_implementation: str | None = None
                 ) -> Any:
    """THE loader of a bare encoder (``AutoModel``, eval mode): a checkpoint for selection, leakage and
    drift sketches, a probe's frozen encoder, the graph an export traces (``attn_implementation="eager"``).
    ``safetensors_only`` for a folder we wrote (a user's artifact is never read back through pickle)."""
    from transformers import AutoModel

    kw: dict[str, Any] = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if safetensors_only:
        kw["use_safetensors"] = True
    with quiet_transformers():
        return AutoModel.from_pretrained(str(path), local_files_only=True, **kw).eval()


def build_classifier(path: str | Path, labels: list[str], task: str) -> torch.nn.Module:
    """A sequence classifier on top of a pretrained backbone, with our label map."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    with quiet_transformers():
        cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
        cfg.num_labels = len(labels)
        cfg.id2label = dict(enumerate(labels))
        cfg.label2id = {lbl: i for i, lbl in enumerate(labels)}
        cfg.problem_type = ("multi_label_classification" if task == "multilabel"
                            else "single_label_classification")
        return AutoModelForSequenceClassification.from_pretrained(str(path), config=cfg, local_files_only=True)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class FrozenEncoder:
    """Mean-pooled sentence embeddings from a frozen backbone (selection, leakage, drift sketches).

    >>> enc = FrozenEncoder("minilm-l6")            # doctest: +SKIP
    >>> enc.embed(["a short text"]).shape           # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, checkpoint: str | Path, *, max_length: int = 128, batch_size: int = 32,
                 precision: str = "fp32") -> None:
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision: {precision!r} is not one of 'fp32', 'bf16'")
        self.checkpoint = str(checkpoint)
        self.max_length = max_length
        self.batch_size = batch_size
        #: ``bf16``: Linear weights cast to bf16 once at load, the pass under CPU bf16 autocast (LayerNorm,
        #: softmax and the pooled embedding stay fp32); frozen-engine checkpoints ignore it
        self.precision = precision
        self._model: Any = None
        self._tok: Any = None
        self._frozen: Any = None

    def _load(self) -> None:

        from transferops.checkpoints import resolve_checkpoint

        ck = resolve_checkpoint(self.checkpoint)
        if ck.frozen is not None:  # a frozen-encoder checkpoint embeds with its own engine
            self._frozen = ck.frozen.load()
            self._model, self._tok = self._frozen, self._frozen.tokenizer
            return
        with quiet_transformers():
            self._tok = load_tokenizer(ck.path)
            self._model = load_encoder(ck.path)
        if self.precision == "bf16":  # what autocast would cast on every call, cast once (same values)
            for mod in self._model.modules():
                if isinstance(mod, torch.nn.Linear):
                    mod.weight.data = mod.weight.data.to(torch.bfloat16)
                    if mod.bias is not None:
                        mod.bias.data = mod.bias.data.to(torch.bfloat16)

    def load(self) -> FrozenEncoder:
        """Load the backbone now rather than on the first ``embed`` (to time loading on its own)."""
        if self._model is None:
            self._load()
        return self

    def embed(self, texts: Sequence[str], desc: str = "embed") -> np.ndarray:
        if self._model is None:
            self._load()
        if self._frozen is not None:
            return np.asarray(self._frozen.embed(list(texts)), dtype=np.float32)
        if self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return batched_forward(self._model, self._tok, texts, max_length=self.max_length,
                                       batch_size=self.batch_size, desc=desc, output="embedding")
        return batched_forward(self._model, self._tok, texts, max_length=self.max_length,
                               batch_size=self.batch_size, desc=desc, output="embedding")


__all__ = ["FrozenEncoder", "batched_forward", "build_classifier", "load_encoder", "load_tokenizer",
           "quiet_transformers", "set_threads", "sigmoid", "softmax"]
