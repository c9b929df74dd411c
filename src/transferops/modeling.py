"""Model construction and batched inference shared by training, prediction and selection."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._progress import bar
from transferops.modality import TEXT, Modality, get_modality


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence 'newly initialized weights' chatter: a new classifier head is expected here."""
    from transformers.utils import logging as hf_logging

    from transferops._progress import is_quiet

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bars_were_on = hf_logging.is_progress_bar_enabled()
    if is_quiet():
        hf_logging.disable_progress_bar()
    # No HF_HUB_OFFLINE here: that would switch the whole process offline from a library call. Every
    # load passes ``local_files_only=True``; the CLI entry point sets the offline variables for its run.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
        if bars_were_on:
            hf_logging.enable_progress_bar()


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


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


def _order_by_length(texts: Sequence[Any], modality: Modality = TEXT) -> np.ndarray:
    return np.argsort([-modality.size(t) for t in texts], kind="stable")


def batched_forward(model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], *, max_length: int,
                    batch_size: int = 64, desc: str = "predict", output: str = "logits",
                    modality: str | Modality = "text") -> np.ndarray:
    """Run ``model`` over ``texts`` in length-sorted batches; returns logits or mean-pooled embeddings
    in the original order. Sizing and preprocessing (tokenize + truncate) are the modality's."""
    if len(texts) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    mod = get_modality(modality)
    device = next(model.parameters()).device
    order = _order_by_length(texts, mod)
    chunks: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), bar(desc=desc, total=len(texts), unit="text") as pb:
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            enc = mod.encode(tokenizer, [texts[i] for i in idx], max_length=max_length)
            enc = {k: v.to(device) for k, v in enc.items()}
            if output == "logits":
                out = model(**enc).logits
            else:
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            chunks.append(out.float().cpu().numpy())
            pb.update(len(idx))
    if was_training:
        model.train()
    res = np.concatenate(chunks, axis=0)
    unsorted = np.empty_like(res)
    unsorted[order] = res
    return unsorted


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

    def __init__(self, checkpoint: str | Path, *, max_length: int = 128, batch_size: int = 32) -> None:
        self.checkpoint = str(checkpoint)
        self.max_length = max_length
        self.batch_size = batch_size
        self._model: Any = None
        self._tok: Any = None

    def _load(self) -> None:
        from transformers import AutoModel

        from transferops.checkpoints import resolve_checkpoint

        ck = resolve_checkpoint(self.checkpoint)
        with quiet_transformers():
            self._tok = load_tokenizer(ck.path)
            self._model = AutoModel.from_pretrained(str(ck.path), local_files_only=True).eval()

    def load(self) -> FrozenEncoder:
        """Load the backbone now rather than on the first ``embed`` (to time loading on its own)."""
        if self._model is None:
            self._load()
        return self

    def embed(self, texts: Sequence[str], desc: str = "embed") -> np.ndarray:
        if self._model is None:
            self._load()
        return batched_forward(self._model, self._tok, texts, max_length=self.max_length,
                               batch_size=self.batch_size, desc=desc, output="embedding")
