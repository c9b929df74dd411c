"""Load a trained artifact and predict.

Layout of an artifact folder (names in :mod:`transferops.constants`)::

    transferops.json        manifest: base checkpoint + sha256, labels, task, config, data
                            fingerprints, split sizes, leakage, metrics, baseline, versions
    model/                  HF model (full/freeze/head: AutoModelForSequenceClassification-loadable)
                            or PEFT adapter folder (lora / ia3 / prompt_tuning: adapter_config.json +
                            adapter_model.safetensors)
                            plus the checkpoint's own tokenizer files
    data/{train,validation,test}.parquet   the exact splits (test written once, read-only)
    training_state/         resumable state (removed after a successful run unless kept)

Only safetensors and JSON are read back.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops.artifacts.classifier import Classifier, ClassifierBase, TorchBacked
from transferops.artifacts.kinds import load_folder, register_kind
from transferops.artifacts.manifest import Manifest, read_manifest, update_manifest, write_manifest
from transferops.constants import DATA_DIR, TEST_SPLIT, VALIDATION_SPLIT
from transferops.errors import ArtifactError
from transferops.modality.text import check_texts

log = logging.getLogger(__name__)

#: Older name of :func:`~transferops.artifacts.classifier.check_texts` (kept for callers).
_check_texts = check_texts


class TransferOpsModel(TorchBacked, ClassifierBase):
    """A trained classifier on PyTorch: ``predict``, ``predict_proba``, ``embed`` (kind ``model``).

    >>> model = transferops.load("runs/news")                        # doctest: +SKIP
    >>> model.predict(["Shares rose sharply"])                       # doctest: +SKIP
    ['business']
    >>> model.predict_proba(["Shares rose sharply"]).shape           # doctest: +SKIP
    (1, 5)
    """

    # ------------------------------------------------------------- loading
    def _load(self) -> None:
        self._model = self._load_torch(self._from_pretrained)

    def _from_pretrained(self, mdir: Path) -> Any:
        """The torch module in ``model/`` (the one thing kinds load differently)."""
        return load_torch_classifier(self.manifest, mdir)

    # ------------------------------------------------------------- predict
    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Logits and mean-pooled embeddings from ONE forward pass (what the server's runner calls)."""
        from transferops.inference import forward

        return forward(self.torch_model, self.tokenizer, check_texts(texts), max_length=self.max_length,
                       batch_size=batch_size, output="both", desc=None)

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        from transferops.inference import forward

        return forward(self.torch_model, self.tokenizer, check_texts(texts), max_length=self.max_length,
                       batch_size=batch_size, output="logits")[0]

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Mean-pooled embeddings from the fine-tuned backbone."""
        from transferops.inference import forward

        return forward(self.torch_model, self.tokenizer, check_texts(texts), max_length=self.max_length,
                       batch_size=batch_size, output="both", desc="embed")[1]

    def __repr__(self) -> str:
        return (f"TransferOpsModel(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)}, "
                f"strategy={self.manifest.strategy_name!r})")


# --------------------------------------------------------------------------- the one model loader


def resolve_base(manifest: Manifest) -> Any:
    """The base checkpoint of ``manifest`` (by name, else by path); warns when its sha256 differs from
    the one the model was trained on."""
    from transferops.checkpoints import resolve_checkpoint

    base = manifest.base
    if base is None:
        raise ArtifactError(f"{manifest.path}: manifest field 'base' is missing; an adapter needs its base "
                            "checkpoint")
    try:
        ck = resolve_checkpoint(base.name)
    except FileNotFoundError:
        ck = resolve_checkpoint(base.path)
    if base.sha256 and ck.sha256() != base.sha256:
        warnings.warn(f"base checkpoint {base.name} differs from the one this adapter was trained on "
                      "(sha256 mismatch); predictions may differ", stacklevel=3)
    return ck


#: PEFT methods whose learned part is extra input (virtual tokens, key/value prefixes) rather than a
#: change to existing weights: nothing to fold into the base, so no merged copy and no ONNX export.
PROMPT_LEARNING = frozenset({"PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING"})


def merge_refusal(manifest: Manifest) -> str | None:
    """Why the adapter of ``manifest`` cannot be merged into plain weights (``None`` when it can)."""
    kind = manifest.peft_type
    if kind not in PROMPT_LEARNING:
        return None
    return (f"is a {kind.lower()} adapter (strategy {manifest.strategy_name!r}): its learned virtual tokens "
            "are extra inputs prepended at every forward pass, not a change to the base weights, so PEFT "
            "cannot merge it into one plain model (and the ONNX graph would need PEFT's prompt encoder); "
            "serve the PyTorch artifact instead (transferops serve --model NAME=PATH, or --adapters), or "
            "retrain with --strategy ia3 or lora, which merge and export")


def load_adapter(manifest: Manifest, mdir: Path, *, adapter_name: str = "default") -> Any:
    """A PEFT adapter (LoRA, IA3, prompt tuning ...) in ``mdir`` over a freshly built classifier on its
    base checkpoint (frozen)."""
    from peft import PeftModel

    from transferops.modeling import build_classifier

    ck = resolve_base(manifest)
    model = build_classifier(ck.path, manifest.labels, manifest.task)
    return PeftModel.from_pretrained(model, str(mdir), adapter_name=adapter_name, is_trainable=False)


def merge_adapter_weights(model: Any) -> Any:
    """A PEFT model folded into plain transformers weights. The trained head copies (``modules_to_save``:
    pooler, classifier) are put in place first, so methods whose merge handles only their own layers
    (PEFT's IA3 cannot unload a wrapped BERT pooler) merge like LoRA."""
    from peft.utils import ModulesToSaveWrapper

    inner = model.get_base_model()
    for name, mod in list(inner.named_modules()):
        if isinstance(mod, ModulesToSaveWrapper):
            parent_name, _, child = name.rpartition(".")
            parent = inner.get_submodule(parent_name) if parent_name else inner
            setattr(parent, child, mod.modules_to_save[mod.active_adapters[0]])
    return model.merge_and_unload()


#: Older name of :func:`load_adapter` (LoRA was the first PEFT method).
load_lora = load_adapter


def load_torch_classifier(manifest: Manifest, mdir: Path, *, merge_adapter: bool = False,
                          attn_implementation: str | None = None) -> Any:
    """THE loader of a fine-tuned artifact's torch classifier: a full model from ``mdir``, or a PEFT
    adapter over its base (``merge_adapter=True`` folds it into plain weights, e.g. for export; an
    adapter that cannot be merged, see :func:`merge_refusal`, raises :class:`ArtifactError`)."""
    if manifest.is_adapter:
        reason = merge_refusal(manifest) if merge_adapter else None
        if reason:
            raise ArtifactError(f"{manifest.path or 'model'} {reason}")
        model = load_adapter(manifest, mdir)
        return merge_adapter_weights(model) if merge_adapter else model
    from transformers import AutoModelForSequenceClassification

    kw: dict[str, Any] = {"attn_implementation": attn_implementation} if attn_implementation else {}
    return AutoModelForSequenceClassification.from_pretrained(str(mdir), local_files_only=True,
                                                              use_safetensors=True, **kw)


def _load_lora(manifest: dict[str, Any], mdir: Path) -> Any:
    """Older name of :func:`load_adapter`."""
    return load_adapter(manifest if isinstance(manifest, Manifest) else Manifest.from_dict(manifest), mdir)


# --------------------------------------------------------------------------- load


def load(path: str | Path, **kw: Any) -> Classifier:
    """Load a saved folder — any registered kind (fine-tuned model, baseline, probe, stack, ensemble,
    ONNX export; see :mod:`transferops.artifacts.kinds`).

    >>> m = transferops.load("runs/news"); m.predict(["Shares rose"])   # doctest: +SKIP
    """
    return load_folder(path, **kw)  # type: ignore[no-any-return]


def split_paths(path: str | Path) -> dict[str, Path]:
    d = Path(path) / DATA_DIR
    return {"validation": d / VALIDATION_SPLIT, "test": d / TEST_SPLIT}


register_kind("model", TransferOpsModel)

__all__ = ["PROMPT_LEARNING", "Manifest", "TransferOpsModel", "load", "load_adapter", "load_lora",
           "load_torch_classifier", "merge_adapter_weights", "merge_refusal", "read_manifest", "resolve_base",
           "update_manifest", "write_manifest"]
