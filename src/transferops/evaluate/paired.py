"""Two models scored on the same rows: the difference of their accuracies with a paired interval.

One statistic, shared by the int8 export gate (:func:`transferops.deploy.quantize.paired_drop`: fp32 vs
int8) and the model search at few labels (is a candidate's lead over the few-shot prior real?).

``difference = (b - c) / n`` with ``b`` rows "A right, B wrong" and ``c`` the other way. Its interval is
Newcombe's hybrid score interval for a difference of paired proportions (Newcombe 1998, method 10: Wilson
intervals of both accuracies combined with the pairs' correlation): it stays inside [-1, 1], needs no
resampling and behaves at 0 or 1 discordant rows. The exact McNemar p-value (a binomial test on the
``b + c`` discordant rows) is given beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def paired_accuracy_difference(a_correct: Sequence[bool] | np.ndarray, b_correct: Sequence[bool] | np.ndarray, *,
                               confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Accuracy of A minus accuracy of B on the same rows, with its paired interval.

    >>> d = paired_accuracy_difference([True] * 5, [True] * 4 + [False])
    >>> round(d["difference"], 2), d["ci_low"] < 0, d["discordant"], d["exact_mcnemar_p"]
    (0.2, True, 1, 1.0)
    """
    from scipy.stats import binomtest, norm

    r = np.asarray(a_correct, dtype=bool)
    q = np.asarray(b_correct, dtype=bool)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError(f"paired_accuracy_difference: both inputs must be 1-d of the same length, got {r.shape} "
                         f"and {q.shape}")
    n = int(r.size)
    a = int((r & q).sum())
    b = int((r & ~q).sum())   # A right, B wrong
    c = int((~r & q).sum())   # A wrong, B right
    d = n - a - b - c
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p1, p2 = (a + b) / n if n else 0.0, (a + c) / n if n else 0.0
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    den = float(np.sqrt(float(a + b) * (c + d) * (a + c) * (b + d)))
    phi = (a * d - b * c) / den if den > 0 else 0.0
    diff = p1 - p2
    lo = diff - float(np.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)))
    hi = diff + float(np.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)))
    m = b + c
    return {"n": n, "accuracy_a": p1, "accuracy_b": p2, "difference": diff,
            "ci_low": max(-1.0, lo), "ci_high": min(1.0, hi), "confidence": confidence,
            "a_right_b_wrong": b, "a_wrong_b_right": c, "discordant": m,
            "exact_mcnemar_p": float(binomtest(b, m, 0.5).pvalue) if m else 1.0,
            "method": "Newcombe hybrid score interval for paired proportions (method 10)"}


__all__ = ["CONFIDENCE", "paired_accuracy_difference"]
