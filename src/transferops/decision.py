"""The decision rule: probabilities in, class indices out — ONE function that every path uses.

:class:`DecisionRule` — built from the manifest — is used by ``TransferOpsModel.decide`` (so
``load().predict``, batch ``predict``, the server's runners, ONNX exports), ``evaluate``'s
``predictions``, review routing, the monitoring reference profile and offline prediction records,
so a rule stored in the manifest is applied identically everywhere, and "confidence" has one
definition (:meth:`DecisionRule.confidence`).

Rules, read from the manifest:

* multi-label: per-label thresholds (``manifest["thresholds"]``, default 0.5);
* binary: a decision threshold on the positive class (``manifest["decision_threshold"]``);
* multi-class: per-class **logit offsets** (``manifest["decision"]``) tuned on validation for the
  target metric (macro-F1 by default), or argmax when none are stored. The offsets are added to the
  *uncalibrated* log-probabilities (``T · log p`` undoes a temperature ``T`` fitted later, up to a
  per-row constant), so calibrating a model never changes its decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferops.errors import ConfigError

#: Offsets are searched on this grid (log-probability units), by coordinate ascent.
OFFSET_GRID = np.round(np.arange(-3.0, 3.01, 0.25), 2)
#: Offsets are kept only when they improve the validation metric by more than this (noise guard).
MIN_GAIN = 0.005
#: ... and only tuned when every class has at least this many validation examples: offsets fitted
#: on one or two examples per class fit noise (measured: BBC 8/class, 1 validation row per class).
MIN_PER_CLASS = 5


@dataclass(frozen=True)
class DecisionRule:
    """A model's decision rule: probabilities in, decided labels and their confidence out.

    Built from the manifest (:meth:`from_manifest`); every path that turns probabilities into
    labels or a confidence — ``TransferOpsModel.decide``, batch ``predict``, the server's runners,
    ``evaluate``, review routing, the monitoring reference profile and offline prediction records —
    goes through one instance of this class, so the number a server logs as ``confidence`` is the
    number the reference profile was built from.

    **Confidence** (the one definition): the probability of the decided label — with a binary
    decision threshold or multi-class logit offsets that is not always the largest probability;
    multi-label: the least certain per-label decision, ``min_j max(p_j, 1 − p_j)``.

    >>> rule = DecisionRule(labels=("ham", "spam"), threshold=0.3)
    >>> p = np.array([[0.6, 0.4], [0.9, 0.1]])
    >>> rule.decide(p).tolist(), rule.confidence(p).round(2).tolist()
    ([1, 0], [0.4, 0.9])
    """

    labels: tuple[str, ...]
    multilabel: bool = False
    #: binary: decide ``labels[positive_index]`` when its probability is >= this
    threshold: float | None = None
    positive_index: int = 1
    #: multi-label: one threshold per label (``None``: 0.5 for every label)
    thresholds: tuple[float, ...] | None = None
    #: multi-class: logit offsets added to ``T · log p`` before the argmax (``None``: plain argmax)
    offsets: tuple[float, ...] | None = None
    #: calibration temperature ``T`` (only the offsets rule needs it: see the module docstring)
    temperature: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        k = len(self.labels)
        for name in ("thresholds", "offsets"):
            v = getattr(self, name)
            if v is not None:
                v = tuple(float(x) for x in v)
                object.__setattr__(self, name, v)
                if len(v) != k:
                    raise ConfigError(f"decision rule: {name} has {len(v)} values for {k} labels; give one "
                                      "per label")
        if self.threshold is not None:
            object.__setattr__(self, "threshold", float(self.threshold))
            if not np.isfinite(self.threshold):
                raise ConfigError(f"decision_threshold: {self.threshold!r} must be a finite probability")
        if self.positive_index not in (0, 1):
            raise ConfigError(f"positive_index: {self.positive_index!r} must be 0 or 1 (the binary positive "
                              "class)")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ConfigError(f"calibration.temperature: {self.temperature!r} must be a positive number")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], *, labels: Sequence[str] | None = None,
                      multilabel: bool | None = None) -> DecisionRule:
        """The rule stored in a manifest (``thresholds``, ``decision_threshold``/``positive_index``,
        ``decision`` offsets, ``calibration.temperature``); ``labels``/``multilabel`` override the
        manifest's ``labels``/``task`` (for a partial manifest)."""
        names = [str(x) for x in (labels if labels is not None else manifest.get("labels") or ())]
        ml = bool(manifest.get("task") == "multilabel") if multilabel is None else bool(multilabel)
        th = manifest.get("thresholds")
        thresholds = tuple(float(th.get(lbl, 0.5)) for lbl in names) if ml and isinstance(th, dict) else None
        d = manifest.get("decision") or {}
        off = d.get("offsets") if isinstance(d, Mapping) and d.get("rule") == "logit_offsets" else None
        offsets = tuple(float(off.get(lbl, 0.0)) for lbl in names) if off else None
        dt = manifest.get("decision_threshold")
        cal = manifest.get("calibration") or {}
        return cls(labels=tuple(names), multilabel=ml, threshold=None if dt is None else float(dt),
                   positive_index=int(manifest.get("positive_index", 1)), thresholds=thresholds,
                   offsets=offsets, temperature=float(cal.get("temperature", 1.0)))

    @classmethod
    def argmax(cls, labels: Sequence[str] | int, *, multilabel: bool = False) -> DecisionRule:
        """The plain rule: argmax (multi-label: 0.5 per label); ``labels`` may be a count."""
        names = [str(i) for i in range(labels)] if isinstance(labels, int) else list(labels)
        return cls(labels=tuple(names), multilabel=multilabel)

    # ------------------------------------------------------------------ applying
    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Hard predictions as class indices (multi-label: a 0-1 matrix)."""
        proba = np.asarray(proba, dtype=np.float64)
        if self.multilabel:
            t = np.asarray(self.thresholds) if self.thresholds is not None else 0.5
            return (proba >= t).astype(np.int64)
        if proba.size == 0:
            return np.zeros(len(proba), dtype=np.int64)
        if self.threshold is not None and proba.shape[1] == 2:
            pos = self.positive_index
            return np.where(proba[:, pos] >= self.threshold, pos, 1 - pos).astype(np.int64)
        if self.offsets is not None and proba.shape[1] > 2:
            scores = self.temperature * np.log(np.clip(proba, 1e-300, 1.0)) + np.asarray(self.offsets)
            return scores.argmax(axis=1).astype(np.int64)
        return proba.argmax(axis=1).astype(np.int64)

    def confidence(self, proba: np.ndarray, decided: np.ndarray | None = None) -> np.ndarray:
        """THE confidence: probability of the decided label (multi-label: ``min_j max(p_j, 1 − p_j)``).

        ``decided`` (from :meth:`decide`) saves deciding twice."""
        proba = np.asarray(proba, dtype=np.float64)
        if proba.size == 0:
            return np.zeros(len(proba), dtype=np.float64)
        if self.multilabel:
            return np.asarray(np.maximum(proba, 1.0 - proba).min(axis=1), dtype=np.float64)
        idx = self.decide(proba) if decided is None else np.asarray(decided, dtype=np.int64)
        return np.asarray(proba[np.arange(len(proba)), idx], dtype=np.float64)

    def names(self, decided: np.ndarray) -> list[Any]:
        """Indices (or a 0-1 matrix) from :meth:`decide` as label names (multi-label: lists)."""
        if self.multilabel:
            return [[self.labels[j] for j in np.flatnonzero(row)] for row in decided]
        return [self.labels[i] for i in decided]

    def apply(self, proba: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """Decided label names and their confidence, from one decision."""
        idx = self.decide(proba)
        return self.names(idx), self.confidence(proba, idx)


def offsets_vector(manifest: dict[str, Any], labels: list[str]) -> np.ndarray | None:
    """The manifest's multi-class logit offsets in ``labels`` order (``None`` when it stores none)."""
    off = DecisionRule.from_manifest(manifest, labels=labels, multilabel=False).offsets
    return None if off is None else np.asarray(off, dtype=np.float64)


def decide_indices(proba: np.ndarray, manifest: dict[str, Any], labels: list[str], multilabel: bool
                   ) -> np.ndarray:
    """Hard predictions with the model's stored decision rule, as indices / a 0-1 matrix
    (:meth:`DecisionRule.decide` of the manifest's rule)."""
    return DecisionRule.from_manifest(manifest, labels=labels, multilabel=multilabel).decide(proba)


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


__all__ = ["MIN_GAIN", "MIN_PER_CLASS", "OFFSET_GRID", "DecisionRule", "decide_indices", "offsets_vector",
           "tune_offsets"]
