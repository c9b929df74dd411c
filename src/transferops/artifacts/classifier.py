"""What every loaded model answers, whatever runs it: the :class:`Classifier` protocol.

``transferops.load`` returns a fine-tuned PyTorch model, an ONNX export, an ensemble, the TF-IDF
baseline, a probe or a stack; ``predict``, ``evaluate``, ``serve`` and monitoring only use the
surface below, so they never ask which one they hold.

:class:`ClassifierBase` implements the part that is the same for all of them (manifest, labels,
probabilities from logits, the stored decision rule, the saved splits) and needs nothing heavy; a
kind adds how it computes ``logits`` and embeddings (:meth:`infer`) and where its tokenizer is.
``torch_model`` is not part of the protocol: kinds that hold a PyTorch module override it, the
others raise an :class:`~transferops.errors.ArtifactError` that says what the folder is
(``no_torch_reason``, one line of data instead of a subclass refusing half of its parent).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from transferops.artifacts.manifest import Manifest, read_manifest
from transferops.constants import DATA_DIR
from transferops.errors import ArtifactError
from transferops.modality.text import check_texts  # re-exported: the text modality's input check

if TYPE_CHECKING:
    import pandas as pd


@runtime_checkable
class Classifier(Protocol):
    """A loaded model, any kind (see :mod:`transferops.artifacts.kinds`)."""

    path: Path
    manifest: Manifest
    labels: list[str]
    task: str
    max_length: int
    #: ``pytorch``, ``onnx`` or ``sklearn``: what computes the logits (reported by the server).
    runtime: str

    @property
    def multilabel(self) -> bool: ...

    @property
    def name(self) -> str: ...

    @property
    def temperature(self) -> float:
        """Calibration temperature applied by :meth:`proba_from_logits` (1.0 when uncalibrated)."""
        ...

    @property
    def tokenizer(self) -> Any: ...

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Logits and embeddings (row-aligned with ``texts``) from one pass."""
        ...

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray: ...

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray: ...

    def proba_from_logits(self, logits: np.ndarray, *, calibrated: bool = True) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64, calibrated: bool = True
                      ) -> np.ndarray: ...

    @property
    def decision_rule(self) -> Any:
        """The stored :class:`~transferops.decision.DecisionRule` (labels and the one confidence)."""
        ...

    def decide(self, proba: np.ndarray) -> list[Any]: ...

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Any]: ...

    def split(self, name: str = "test") -> pd.DataFrame: ...


class TorchBacked:
    """For a kind that holds a PyTorch module: ``torch_model`` and ``tokenizer`` load lazily through the
    kind's ``_load`` (put it first in the bases, before :class:`ClassifierBase`)."""

    _model: Any = None
    _tok: Any = None

    def _load(self) -> None:
        raise NotImplementedError

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


class ClassifierBase:
    """The kind-independent half of :class:`Classifier` (subclass it for a new kind)."""

    runtime: ClassVar[str] = "pytorch"
    #: Set on kinds that hold no PyTorch module: the message for ``model.torch_model``.
    no_torch_reason: ClassVar[str | None] = None
    #: Set on kinds the server cannot run as one model: the message ``serve`` gives.
    not_served_reason: ClassVar[str | None] = None
    #: Set on kinds that cannot become one ONNX graph: the rest of ``model: <folder> ...`` that
    #: ``export`` answers.
    not_exported_reason: ClassVar[str | None] = None

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path).validate()
        self.labels: list[str] = self.manifest.labels
        self.task: str = self.manifest.task
        self.max_length: int = self.manifest.max_length
        self._device = device
        self._threads = threads
        self._tok: Any = None

    @property
    def torch_model(self) -> Any:
        """The PyTorch module behind the logits. Not part of :class:`Classifier`: only kinds that hold
        one override this; the others raise an :class:`ArtifactError` saying what the folder is."""
        reason = self.no_torch_reason or "{path} ({kind}) holds no PyTorch model"
        raise ArtifactError(reason.format(path=self.path, kind=self.manifest.kind, self=self))

    def _load_torch(self, build: Any) -> Any:
        """Tokenizer of ``model/`` into ``self._tok``; ``build(model_dir)`` → the torch module, on the
        requested device, in eval mode (shared by every kind that runs PyTorch)."""
        import torch

        from transferops.constants import MODEL_DIR
        from transferops.modeling import load_tokenizer, quiet_transformers, set_threads

        set_threads(self._threads)
        mdir = self.path / MODEL_DIR
        if not mdir.exists():
            raise ArtifactError(f"{self.path}: folder '{MODEL_DIR}/' is missing; the artifact is incomplete")
        self._tok = load_tokenizer(mdir)
        with quiet_transformers():
            module = build(mdir)
        module.to(self._device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
        return module

    # ------------------------------------------------------------- properties
    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @property
    def temperature(self) -> float:
        return self.manifest.temperature

    @property
    def thresholds(self) -> np.ndarray | None:
        th = self.manifest.get("thresholds")
        if not th:
            return None
        return np.asarray([float(th.get(lbl, 0.5)) for lbl in self.labels]) if isinstance(th, dict) else None

    @property
    def name(self) -> str:
        return self.manifest.name or self.path.name

    @property
    def serve_info(self) -> dict[str, Any]:
        """Extra fields the server reports for this model (``/models``)."""
        return {}

    @property
    def tokenizer(self) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------- predict
    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return self.infer(texts, batch_size=batch_size)[0]

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return self.infer(texts, batch_size=batch_size)[1]

    def proba_from_logits(self, logits: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        from transferops.modeling import sigmoid, softmax

        t = self.temperature if calibrated else 1.0
        return sigmoid(logits / t) if self.multilabel else softmax(logits / t)

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64, calibrated: bool = True
                      ) -> np.ndarray:
        """Class probabilities (temperature-scaled when the model was calibrated)."""
        return self.proba_from_logits(self.logits(texts, batch_size=batch_size), calibrated=calibrated)

    @property
    def decision_rule(self) -> Any:
        """The stored :class:`~transferops.decision.DecisionRule` (read from the manifest each time:
        ``calibrate`` may change it)."""
        from transferops.decision import DecisionRule

        return DecisionRule.from_manifest(self.manifest, labels=self.labels, multilabel=self.multilabel)

    def decide(self, proba: np.ndarray) -> list[Any]:
        """Labels from probabilities with the stored decision rule (:mod:`transferops.decision`):
        argmax, tuned multi-class logit offsets, a binary threshold, or per-label thresholds."""
        rule = self.decision_rule
        return rule.names(rule.decide(proba))  # type: ignore[no-any-return]

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Any]:
        return self.decide(self.predict_proba(texts, batch_size=batch_size))

    # ------------------------------------------------------------- splits
    def split(self, name: str = "test") -> pd.DataFrame:
        import pandas as pd

        f = self.path / DATA_DIR / f"{name}.parquet"
        if not f.exists():
            raise ArtifactError(f"{self.path}: split '{name}' not found at {f}")
        return pd.read_parquet(f)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)})"


__all__ = ["Classifier", "ClassifierBase", "TorchBacked", "check_texts"]
