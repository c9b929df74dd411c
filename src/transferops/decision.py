"""The decision rule: probabilities in, class indices out — ONE function that every path uses.

``TransferOpsModel.decide`` (so ``load().predict``, batch ``predict``, the server's runners, ONNX
exports and the monitoring reference profile) and ``evaluate``'s ``predictions`` all call
:func:`decide_indices`, so a rule stored in the manifest is applied identically everywhere.

Rules, read from the manifest:

* multi-label: per-label thresholds (``manifest["thresholds"]``, default 0.5);
* binary: a decision threshold on the positive class (``manifest["decision_threshold"]``);
* multi-class: per-class **logit offsets** (``manifest["decision"]``) tuned on validation for the
  target metric (macro-F1 by default), or argmax when none are stored. The offsets are added to the
  *uncalibrated* log-probabilities (``T · log p`` undoes a temperature ``T`` fitted later, up to a
  per-row constant), so calibrating a model never changes its decisions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Offsets are searched on this grid (log-probability units), by coordinate ascent.
OFFSET_GRID = np.round(np.arange(-3.0, 3.01, 0.25), 2)
#: Offsets are kept only when they improve the validation metric by more than this (noise guard).
MIN_GAIN = 0.005
#: ... and only tuned when every class has at least this many validation examples: offsets fitted
#: on one or two examples per class fit noise (measured: BBC 8/class, 1 validation row per class).
MIN_PER_CLASS = 5


def offsets_vector(manifest: dict[str, Any], labels: list[str]) -> np.ndarray | None:
    d = manifest.get("decision") or {}
    off = d.get("offsets") if d.get("rule") == "logit_offsets" else None
    if not off:
        return None
    return np.asarray([float(off.get(lbl, 0.0)) for lbl in labels], dtype=np.float64)


def decide_indices(proba: np.ndarray, manifest: dict[str, Any], labels: list[str], multilabel: bool
                   ) -> np.ndarray:
    """Hard predictions with the model's stored decision rule, as indices / a 0-1 matrix."""
    proba = np.asarray(proba, dtype=np.float64)
    if multilabel:
        th = manifest.get("thresholds")
        t = np.asarray([float(th.get(lbl, 0.5)) for lbl in labels]) if isinstance(th, dict) else 0.5
        return (proba >= t).astype(np.int64)
    if proba.size == 0:
        return np.zeros(len(proba), dtype=np.int64)
    th = manifest.get("decision_threshold")
    if th is not None and proba.shape[1] == 2:
        pos = int(manifest.get("positive_index", 1))
        return np.where(proba[:, pos] >= float(th), pos, 1 - pos).astype(np.int64)
    off = offsets_vector(manifest, labels)
    if off is not None and proba.shape[1] > 2:
        temperature = float(manifest.get("calibration", {}).get("temperature", 1.0))
        scores = temperature * np.log(np.clip(proba, 1e-300, 1.0)) + off
        return scores.argmax(axis=1).astype(np.int64)
    return proba.argmax(axis=1).astype(np.int64)


def _score(y: np.ndarray, pred: np.ndarray, k: int, metric: str, floors: dict[int, float] | None) -> float:
    from sklearn import metrics as skm

    if floors:
        rec = skm.recall_score(y, pred, labels=list(range(k)), average=None, zero_division=0)
        if any(rec[c] < f for c, f in floors.items()):
            # below a floor: worse than any feasible rule, ordered by how close the floors are
            return -2.0 + float(np.mean([min(rec[c] / f, 1.0) for c, f in floors.items()]))
    if metric == "accuracy":
        return float((pred == y).mean())
    if metric == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y, pred))
    return float(skm.f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0))


def tune_offsets(log_proba: np.ndarray, y: np.ndarray, labels: list[str], *, metric: str = "macro_f1",
                 recall_floors: dict[str, float] | None = None, rounds: int = 3) -> dict[str, Any] | None:
    """Per-class logit offsets maximising ``metric`` on validation (coordinate ascent on a grid).

    Returns the manifest entry (``rule``, ``offsets``, scores before/after), or ``None`` when the
    task is not multi-class, a class has fewer than :data:`MIN_PER_CLASS` validation examples, or
    the offsets do not pay (gain ≤ :data:`MIN_GAIN`) — then the model
    decides by argmax. ``recall_floors`` ({label: minimum recall}) is a constraint met first.
    """
    k = log_proba.shape[1]
    if k <= 2 or len(y) == 0 or np.bincount(y, minlength=k).min() < MIN_PER_CLASS:
        return None
    metric = metric if metric in ("macro_f1", "accuracy", "balanced_accuracy") else "macro_f1"
    floors = {labels.index(lbl): float(v) for lbl, v in (recall_floors or {}).items()}
    off = np.zeros(k)
    before = best = _score(y, (log_proba + off).argmax(1), k, metric, floors)
    for _ in range(rounds):
        changed = False
        for c in range(k):
            for v in OFFSET_GRID:
                trial = off.copy()
                trial[c] = v
                s = _score(y, (log_proba + trial).argmax(1), k, metric, floors)
                # strictly better, or as good with a smaller total shift (prefer the plain argmax)
                if s > best + 1e-12 or (abs(s - best) <= 1e-12 and np.abs(trial).sum() < np.abs(off).sum()):
                    best, off, changed = s, trial, True
        if not changed:
            break
    off = off - off.mean()  # only differences matter; centred for readability
    if best - before <= MIN_GAIN and not floors:
        return None
    return {"rule": "logit_offsets", "metric": metric, "offsets": {lbl: float(round(o, 4))
                                                                   for lbl, o in zip(labels, off, strict=True)},
            "validation_before": round(before, 4), "validation_after": round(best, 4),
            "recall_floors": recall_floors or None,
            "note": "argmax(T·log p + offset); tuned on the validation split only"}


__all__ = ["MIN_GAIN", "MIN_PER_CLASS", "OFFSET_GRID", "decide_indices", "offsets_vector", "tune_offsets"]
