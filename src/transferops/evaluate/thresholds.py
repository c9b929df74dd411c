"""Decision thresholds chosen on the validation split for a stated target.

Binary: one threshold on the positive class's probability for ``recall>=0.95``,
``precision>=0.9`` or ``max-f1``. Multi-label: one threshold per label by grid search (max F1, or
the same target per label). Thresholds are chosen on *calibrated* probabilities, because those are
what ``predict_proba`` returns and ``decide`` compares against.

>>> t = parse_target("recall>=0.95")
>>> t.kind, t.value
('recall', 0.95)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from transferops.errors import ConfigError, DataError

TargetKind = Literal["recall", "precision", "max_f1"]
_TARGET = re.compile(r"^\s*(recall|precision|sensitivity)\s*>=?\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$", re.I)
#: Multi-label grid (the source text's per-label grid search).
GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


@dataclass(frozen=True)
class ThresholdTarget:
    """What the threshold should achieve on validation."""

    kind: TargetKind = "max_f1"
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("recall", "precision", "max_f1"):
            raise ConfigError(f"target: {self.kind!r} is not one of recall>=X, precision>=X, max-f1")
        if self.kind != "max_f1" and (self.value is None or not 0 < self.value <= 1):
            raise ConfigError(f"target: {self.kind} needs a value in (0, 1], got {self.value!r}")

    def __str__(self) -> str:
        return "max-f1" if self.kind == "max_f1" else f"{self.kind}>={self.value:g}"


def parse_target(text: str | ThresholdTarget | None) -> ThresholdTarget:
    """``"recall>=0.95"``, ``"precision>=90%"``, ``"max-f1"`` → :class:`ThresholdTarget`."""
    if text is None:
        return ThresholdTarget()
    if isinstance(text, ThresholdTarget):
        return text
    s = text.strip().lower()
    if s in ("max-f1", "max_f1", "maxf1", "f1"):
        return ThresholdTarget("max_f1")
    m = _TARGET.match(s)
    if not m:
        raise ConfigError(f"target: cannot read {text!r}; use recall>=0.95, precision>=0.9 or max-f1")
    kind = "recall" if m.group(1) in ("recall", "sensitivity") else "precision"
    v = float(m.group(2)) / (100 if m.group(3) else 1)
    return ThresholdTarget(kind, v)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OperatingPoint:
    """Counts and rates at one threshold."""

    threshold: float
    precision: float
    recall: float
    f1: float
    specificity: float
    tp: int
    fp: int
    fn: int
    tn: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: How far below the validation score a chosen threshold sits (float32 probabilities are exact to ~6e-8).
THRESHOLD_MARGIN = 1e-6


def operating_point(p: np.ndarray, y: np.ndarray, threshold: float) -> OperatingPoint:
    """Precision/recall/F1/specificity of ``p >= threshold`` against 0/1 truth ``y``."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y).astype(bool)
    pred = p >= threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return OperatingPoint(float(threshold), prec, rec, f1, spec, tp, fp, fn, tn)


def curve(p: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Precision, recall and F1 at every distinct score (ascending thresholds), for plots and search."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y).astype(bool)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    # Cumulative counts when predicting positive for the top-i scores; keep the last index of each score.
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]
    tp, fp, th = tp[last], fp[last], ps[last]
    pos = max(int(ys.sum()), 1)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / pos
    f1 = 2 * tp / np.maximum(tp + fp + pos, 1)
    rev = slice(None, None, -1)
    return {"threshold": th[rev].tolist(), "precision": precision[rev].tolist(),
            "recall": recall[rev].tolist(), "f1": f1[rev].tolist()}


def choose_threshold(p: np.ndarray, y: np.ndarray, target: ThresholdTarget | str = "max-f1"
                     ) -> OperatingPoint:
    """The threshold on ``p`` (positive-class probability) that meets ``target`` on (p, y).

    recall>=X: the *highest* threshold whose recall is still >= X (best precision at that recall).
    precision>=X: the *lowest* threshold whose precision is >= X (best recall at that precision);
    if no threshold reaches X, the one with the highest precision, and the result says so.
    max-f1: the threshold maximising F1 (ties: the higher threshold).
    """
    t = parse_target(target) if not isinstance(target, ThresholdTarget) else target
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y).astype(bool)
    if len(p) != len(y) or len(p) == 0:
        raise DataError(f"threshold search needs matching, non-empty scores and labels "
                        f"({len(p)} vs {len(y)})")
    if not y.any():
        raise DataError("threshold search: the validation rows have no positive examples")
    c = curve(p, y)
    th, prec, rec, f1 = (np.asarray(c[k]) for k in ("threshold", "precision", "recall", "f1"))
    if t.kind == "recall":
        assert t.value is not None
        ok = np.flatnonzero(rec >= t.value - 1e-12)
        i = int(ok.max())  # thresholds ascend; recall falls as the threshold rises
    elif t.kind == "precision":
        assert t.value is not None
        ok = np.flatnonzero(prec >= t.value - 1e-12)
        i = int(ok.min()) if len(ok) else int(np.argmax(prec))
    else:
        i = int(len(f1) - 1 - np.argmax(f1[::-1]))
    # Just below the chosen score (never past the next lower one): the same split on validation, but the
    # example at the boundary keeps its decision when predict or ONNX recomputes it in float32 (1 ulp lower).
    lower = th[i - 1] if i > 0 else 0.0
    threshold = max(float(th[i]) - THRESHOLD_MARGIN, (float(th[i]) + float(lower)) / 2.0)
    return operating_point(p, y, threshold)


def choose_label_thresholds(proba: np.ndarray, y: np.ndarray, labels: list[str],
                            target: ThresholdTarget | str = "max-f1", grid: np.ndarray = GRID
                            ) -> dict[str, float]:
    """Per-label thresholds by grid search on validation (labels with no positives keep 0.5)."""
    t = parse_target(target) if not isinstance(target, ThresholdTarget) else target
    out: dict[str, float] = {}
    for j, lbl in enumerate(labels):
        pj, yj = proba[:, j], y[:, j].astype(bool)
        if not yj.any():
            out[lbl] = 0.5
            continue
        pts = [operating_point(pj, yj, float(g)) for g in grid]
        if t.kind == "max_f1":
            best = max(pts, key=lambda o: (o.f1, o.threshold))
        elif t.kind == "recall":
            ok = [o for o in pts if o.recall >= (t.value or 0) - 1e-12]
            best = max(ok, key=lambda o: o.threshold) if ok else pts[0]
        else:
            ok = [o for o in pts if o.precision >= (t.value or 0) - 1e-12]
            best = min(ok, key=lambda o: o.threshold) if ok else max(pts, key=lambda o: o.precision)
        out[lbl] = float(best.threshold)
    return out


__all__ = ["OperatingPoint", "ThresholdTarget", "choose_label_thresholds", "choose_threshold", "curve",
           "operating_point", "parse_target"]
