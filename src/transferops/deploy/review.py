"""Human-review routing: confidence below a threshold goes to a person.

Confidence is :meth:`transferops.decision.DecisionRule.confidence` (the probability of the decided
label), the same number the server logs and the monitoring profile is built from.

The threshold is either given, or derived from a labelled split so that the predictions left to the
model ("auto") reach a target accuracy with the smallest share sent to review (the source text's
marketplace routed max-probability < 0.7 to review: 15% of traffic, 98% end-to-end accuracy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from transferops.decision import DecisionRule
from transferops.errors import ConfigError


@dataclass
class ReviewPolicy:
    """``route = "review" if confidence < threshold else "auto"``."""

    threshold: float | None
    source: str  # "fixed" | "derived" | "none"
    target_auto_accuracy: float | None = None
    review_rate: float | None = None  # on the split it was derived from
    auto_accuracy: float | None = None
    overall_accuracy: float | None = None
    reached: bool | None = None
    n: int | None = None

    def route(self, confidence: float) -> str:
        return "review" if self.threshold is not None and confidence < self.threshold else "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confidence_of(proba: np.ndarray, multilabel: bool, rule: DecisionRule | None = None) -> np.ndarray:
    """:meth:`DecisionRule.confidence <transferops.decision.DecisionRule.confidence>` of ``rule``
    (default: the plain argmax rule, where it is the max probability); multi-label: the least
    certain per-label decision."""
    proba = np.asarray(proba, dtype=np.float64)
    if rule is None:
        rule = DecisionRule.argmax(proba.shape[1] if proba.ndim == 2 else 0, multilabel=multilabel)
    return rule.confidence(proba)


def derive_review_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> ReviewPolicy:
    """Smallest review rate whose auto-routed predictions reach ``target`` accuracy.

    Only cuts between distinct confidence values are considered (ties route together). When even
    the most confident prediction alone misses the target, everything goes to review and
    ``reached`` is False.

    >>> p = derive_review_threshold(np.array([.9, .8, .6, .5]), np.array([1, 1, 0, 1]), 0.99)
    >>> p.threshold, p.review_rate
    (0.8, 0.5)
    """
    if not 0 < target <= 1:
        raise ConfigError(f"target_auto_accuracy: {target!r} must be in (0, 1]")
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    n = len(conf)
    if n == 0:
        raise ConfigError("target_auto_accuracy: the validation split is empty; set --review-threshold "
                          "instead")
    order = np.argsort(-conf, kind="stable")
    c, k = conf[order], ok[order]
    acc = np.cumsum(k) / np.arange(1, n + 1)
    boundary = np.ones(n, dtype=bool)
    boundary[:-1] = c[:-1] > c[1:]  # cut after i only where the next confidence is strictly lower
    good = np.flatnonzero(boundary & (acc >= target - 1e-12))
    overall = float(ok.mean())
    if len(good) == 0:
        # Above any probability (JSON has no infinity): everything is reviewed.
        return ReviewPolicy(threshold=math.nextafter(1.0, 2.0), source="derived", target_auto_accuracy=target,
                            review_rate=1.0, auto_accuracy=None, overall_accuracy=overall, reached=False, n=n)
    i = int(good.max())
    threshold = 0.0 if i == n - 1 else float(c[i])
    return ReviewPolicy(threshold=threshold, source="derived", target_auto_accuracy=target,
                        review_rate=float((n - (i + 1)) / n), auto_accuracy=float(acc[i]),
                        overall_accuracy=overall, reached=True, n=n)
