"""Calibration: expected calibration error, reliability-diagram data and temperature scaling.

Pure functions on arrays first (``ece``, ``reliability``, ``fit_temperature``), then the artifact
step (``calibrate_artifact``) and the training hook (``post_train``) that stores the fitted
temperature in the manifest, where :meth:`TransferOpsModel.predict_proba` applies it.

>>> T = fit_temperature(val_logits, y_val)                        # doctest: +SKIP
>>> ece(softmax(test_logits / T), y_test)                         # doctest: +SKIP
0.031
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transferops.errors import DataError
from transferops.hooks import register_post_train

if TYPE_CHECKING:
    from transferops.finetune.config import TrainConfig

#: Equal-width bins used for ECE and reliability diagrams everywhere (the issue's 15).
N_BINS = 15
#: Temperatures are searched in [1/20, 20]: wider than any sane model, narrow enough to stay finite.
T_MIN, T_MAX = 0.05, 20.0


def _confidence_outcome(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) pairs: top-label for single-label, every (row, label) for multi-label."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if proba.ndim != 2:
        raise DataError(f"proba: expected a 2-D array (rows × classes), got shape {proba.shape}")
    if y.ndim == 2:  # multi-label 0/1 matrix: each label is its own binary forecast
        if y.shape != proba.shape:
            raise DataError(f"y: multi-label shape {y.shape} does not match proba {proba.shape}")
        return proba.ravel(), y.ravel().astype(np.float64)
    if len(y) != len(proba):
        raise DataError(f"y: {len(y)} labels for {len(proba)} probability rows")
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    return conf, correct


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> dict[str, list[float]]:
    """Reliability-diagram data: per equal-width confidence bin, mean confidence, accuracy, count.

    Empty bins have ``confidence``/``accuracy`` of ``nan`` and count 0.
    """
    if n_bins < 1:
        raise DataError(f"n_bins: must be >= 1, got {n_bins}")
    conf, correct = _confidence_outcome(proba, y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins (0, 1/15], ..., with 0 in the first: a confidence of exactly 1 is in the last bin.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    s_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    s_corr = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, s_conf / np.maximum(count, 1), np.nan)
        acc = np.where(count > 0, s_corr / np.maximum(count, 1), np.nan)
    return {"edges": edges.tolist(), "confidence": mean_conf.tolist(), "accuracy": acc.tolist(),
            "count": count.astype(int).tolist()}


def ece(proba: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error: sum over bins of (bin share) × |accuracy − mean confidence|.

    Single-label: top-label confidence vs. correctness. Multi-label (``y`` a 0/1 matrix): every
    (row, label) probability vs. whether the label is present.
    """
    r = reliability(proba, y, n_bins)
    count = np.asarray(r["count"], dtype=np.float64)
    if count.sum() == 0:
        return float("nan")
    gap = np.abs(np.nan_to_num(np.asarray(r["accuracy"])) - np.nan_to_num(np.asarray(r["confidence"])))
    return float((count / count.sum() * gap).sum())


def _nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    z = logits / t
    if y.ndim == 2:  # multi-label: mean binary cross-entropy, computed stably
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising validation NLL of ``softmax(logits / T)`` (sigmoid for multi-label).

    ``y`` holds integer classes, or a 0/1 matrix for multi-label. T > 1 softens an overconfident model.
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    if logits.ndim != 2 or len(logits) == 0:
        raise DataError(f"logits: expected a non-empty 2-D array, got shape {logits.shape}")
    if y.ndim == 1:
        y = y.astype(np.int64)
    # Search log T: the loss is smooth and unimodal in practice, and the bounds keep T positive.
    res = minimize_scalar(lambda lt: _nll(logits, y, float(np.exp(lt))),
                          bounds=(np.log(T_MIN), np.log(T_MAX)), method="bounded",
                          options={"xatol": 1e-5})
    return float(np.exp(res.x))


def scale(logits: np.ndarray, temperature: float, *, multilabel: bool = False) -> np.ndarray:
    """Probabilities from logits at a temperature."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if multilabel:
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class CalibrationResult:
    """A fitted temperature and the ECE it gives on the data it was fitted on."""

    temperature: float
    ece_before: float
    ece_after: float
    bins: int = N_BINS
    n: int = 0
    split: str = "validation"
    reliability_before: dict[str, list[float]] = field(default_factory=dict, repr=False)
    reliability_after: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def manifest_entry(self) -> dict[str, Any]:
        return {"temperature": round(self.temperature, 6), "ece_before": round(self.ece_before, 6),
                "ece_after": round(self.ece_after, 6), "bins": self.bins, "n": self.n,
                "fitted_on": self.split}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate_logits(logits: np.ndarray, y: np.ndarray, *, multilabel: bool = False,
                     n_bins: int = N_BINS, split: str = "validation") -> CalibrationResult:
    """Fit a temperature on (logits, y) and measure ECE before/after on the same rows."""
    t = fit_temperature(logits, y)
    before, after = scale(logits, 1.0, multilabel=multilabel), scale(logits, t, multilabel=multilabel)
    return CalibrationResult(temperature=t, ece_before=ece(before, y, n_bins),
                             ece_after=ece(after, y, n_bins), bins=n_bins, n=len(y), split=split,
                             reliability_before=reliability(before, y, n_bins),
                             reliability_after=reliability(after, y, n_bins))


def split_logits(model: Any, split: str = "validation") -> tuple[np.ndarray, np.ndarray]:
    """(logits, encoded labels) of one of an artifact's saved splits."""
    from transferops.evaluate.data import encode_frame_labels

    df = model.split(split)
    y = encode_frame_labels(df, model.labels, model.task == "multilabel", ignore_unknown=False)[0]
    return model.logits(df["text"].tolist()), y


def calibrate_artifact(path: str | Path, *, n_bins: int = N_BINS, save: bool = True) -> CalibrationResult:
    """Fit temperature scaling on an artifact's validation split and store it in its manifest.

    >>> calibrate_artifact("runs/news").temperature                   # doctest: +SKIP
    1.83
    """
    from transferops.artifacts import load, update_manifest

    model = load(path)
    logits, y = split_logits(model, "validation")
    res = calibrate_logits(logits, y, multilabel=model.task == "multilabel", n_bins=n_bins)
    if save:
        update_manifest(path, calibration=res.manifest_entry())
    return res


@register_post_train("calibration", order=10)
def post_train(artifact_dir: Path, config: TrainConfig) -> dict[str, Any] | None:
    """Training hook: with ``calibrate=True``, fit and store the temperature on the validation split."""
    if not getattr(config, "calibrate", False):
        return None
    from transferops._progress import say

    res = calibrate_artifact(artifact_dir)
    say(f"calibrated: temperature {res.temperature:.3f}, validation ECE {res.ece_before:.3f} → "
        f"{res.ece_after:.3f}")
    return {"calibration": res.manifest_entry()}


__all__ = ["N_BINS", "CalibrationResult", "calibrate_artifact", "calibrate_logits", "ece", "fit_temperature",
           "post_train", "reliability", "scale"]
