"""Load a trained artifact and predict.

Layout of an artifact folder (names in :mod:`transferops.constants`)::

    transferops.json        manifest: base checkpoint + sha256, labels, task, config, data
                            fingerprints, split sizes, leakage, metrics, baseline, versions
    model/                  HF model (full/freeze/head: AutoModelForSequenceClassification-loadable)
                            or PEFT adapter folder (lora: adapter_config.json + adapter_model.safetensors)
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
import pandas as pd

from transferops._util import read_json, write_json
from transferops.constants import (
    DATA_DIR,
    EXPORT_MANIFEST,
    MANIFEST_NAME,
    MODEL_DIR,
    TEST_SPLIT,
    VALIDATION_SPLIT,
)
from transferops.errors import ArtifactError
from transferops.modality.text import check_texts
from transferops.modeling import batched_forward, quiet_transformers, sigmoid, softmax

log = logging.getLogger(__name__)


def read_manifest(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    mf = p / MANIFEST_NAME
    if not mf.exists():
        raise ArtifactError(f"{p} is not a transferops model folder: {MANIFEST_NAME} is missing "
                            "(train one with `transferops train ... --out DIR`)")
    return read_json(mf)  # type: ignore[no-any-return]


def update_manifest(path: str | Path, **changes: Any) -> dict[str, Any]:
    """Merge top-level keys into a saved manifest (atomic write)."""
    m = read_manifest(path)
    m.update(changes)
    write_json(Path(path) / MANIFEST_NAME, m)
    return m


class TransferOpsModel:
    """A trained classifier: ``predict``, ``predict_proba``, ``embed``.

    >>> model = transferops.load("runs/news")                        # doctest: +SKIP
    >>> model.predict(["Shares rose sharply"])                       # doctest: +SKIP
    ['business']
    >>> model.predict_proba(["Shares rose sharply"]).shape           # doctest: +SKIP
    (1, 5)
    """

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.labels: list[str] = list(self.manifest["labels"])
        self.task: str = self.manifest["task"]
        self.max_length: int = int(self.manifest["config"]["max_length"])
        self._device = device
        self._threads = threads
        self._model: Any = None
        self._tok: Any = None

    # ------------------------------------------------------------- properties
    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @property
    def temperature(self) -> float:
        return float(self.manifest.get("calibration", {}).get("temperature", 1.0))

    @property
    def thresholds(self) -> np.ndarray | None:
        th = self.manifest.get("thresholds")
        if not th:
            return None
        return np.asarray([float(th.get(lbl, 0.5)) for lbl in self.labels]) if isinstance(th, dict) else None

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    # ------------------------------------------------------------- loading
    def _load(self) -> None:
        import torch

        from transferops.modeling import load_tokenizer, set_threads

        set_threads(self._threads)
        mdir = self.path / MODEL_DIR
        if not mdir.exists():
            raise ArtifactError(f"{self.path}: folder '{MODEL_DIR}/' is missing; the artifact is incomplete")
        self._tok = load_tokenizer(mdir)
        with quiet_transformers():
            self._model = self._from_pretrained(mdir)
        dev = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(dev).eval()

    def _from_pretrained(self, mdir: Path) -> Any:
        """The torch module in ``model/`` (the one thing kinds load differently)."""
        if self.manifest["strategy"]["name"] == "lora":
            return _load_lora(self.manifest, mdir)
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(str(mdir), local_files_only=True,
                                                                  use_safetensors=True)

    @property
    def torch_model(self) -> Any:
        if self._model is None:
            self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            self._load()
        return self._tok

    # ------------------------------------------------------------- predict
    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        texts = check_texts(texts)
        return batched_forward(self.torch_model, self.tokenizer, texts, max_length=self.max_length,
                               batch_size=batch_size)

    def proba_from_logits(self, logits: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        t = self.temperature if calibrated else 1.0
        return sigmoid(logits / t) if self.multilabel else softmax(logits / t)

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64, calibrated: bool = True
                      ) -> np.ndarray:
        """Class probabilities (temperature-scaled when the model was calibrated)."""
        return self.proba_from_logits(self.logits(texts, batch_size=batch_size), calibrated=calibrated)

    def decide(self, proba: np.ndarray) -> list[Any]:
        """Labels from probabilities with the stored decision rule (:mod:`transferops.decision`):
        argmax, tuned multi-class logit offsets, a binary threshold, or per-label thresholds."""
        from transferops.decision import decide_indices

        idx = decide_indices(proba, self.manifest, self.labels, self.multilabel)
        if self.multilabel:
            return [[self.labels[j] for j in np.flatnonzero(row)] for row in idx]
        return [self.labels[i] for i in idx]

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Any]:
        return self.decide(self.predict_proba(texts, batch_size=batch_size))

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Mean-pooled embeddings from the fine-tuned backbone."""
        base = self.torch_model.base_model
        if hasattr(base, "model") and hasattr(base.model, "base_model"):  # PEFT wrapper
            base = base.model.base_model
        return batched_forward(base, self.tokenizer, check_texts(texts), max_length=self.max_length,
                               batch_size=batch_size, desc="embed", output="embedding")

    # ------------------------------------------------------------- splits
    def split(self, name: str = "test") -> pd.DataFrame:
        f = self.path / DATA_DIR / f"{name}.parquet"
        if not f.exists():
            raise ArtifactError(f"{self.path}: split '{name}' not found at {f}")
        return pd.read_parquet(f)

    def __repr__(self) -> str:
        return (f"TransferOpsModel(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)}, "
                f"strategy={self.manifest['strategy']['name']!r})")


def _load_lora(manifest: dict[str, Any], mdir: Path) -> Any:
    from peft import PeftModel

    from transferops.checkpoints import resolve_checkpoint
    from transferops.modeling import build_classifier

    base = manifest["base"]
    try:
        ck = resolve_checkpoint(base["name"])
    except FileNotFoundError:
        ck = resolve_checkpoint(base["path"])
    if base.get("sha256") and ck.sha256() != base["sha256"]:
        warnings.warn(f"base checkpoint {base['name']} differs from the one this adapter was trained on "
                      "(sha256 mismatch); predictions may differ", stacklevel=3)
    model = build_classifier(ck.path, manifest["labels"], manifest["task"])
    return PeftModel.from_pretrained(model, str(mdir), is_trainable=False)


def load(path: str | Path, **kw: Any) -> Any:
    """Load a saved model folder (single model or ensemble).

    >>> m = transferops.load("runs/news"); m.predict(["Shares rose"])   # doctest: +SKIP
    """
    if (Path(path) / EXPORT_MANIFEST).exists():  # an ONNX export (transferops export)
        from transferops.deploy.onnx_runtime import OnnxModel

        return OnnxModel(path, **kw)
    manifest = read_manifest(path)
    if manifest.get("kind") == "ensemble":
        from transferops.adapt.ensemble import EnsembleModel  # type: ignore[import-not-found]

        return EnsembleModel(path, **kw)
    if manifest.get("kind") in ("baseline", "probe", "stack"):
        from transferops.artifacts.linear import BaselineModel, ProbeModel, StackModel

        return {"baseline": BaselineModel, "probe": ProbeModel, "stack": StackModel}[manifest["kind"]](path, **kw)
    return TransferOpsModel(path, **kw)


def split_paths(path: str | Path) -> dict[str, Path]:
    d = Path(path) / DATA_DIR
    return {"validation": d / VALIDATION_SPLIT, "test": d / TEST_SPLIT}
