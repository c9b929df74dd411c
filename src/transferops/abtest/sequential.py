"""Always-valid inference for a difference in means: the mixture SPRT (mSPRT).

Beyond the source text. A fixed-horizon p-value is only valid if you look once, at the planned
sample size; checking a dashboard every day and stopping at the first p < 0.05 inflates the false
positive rate several-fold. The mSPRT of Johari, Pekelis & Walsh ("Always Valid Inference", 2017;
"Peeking at A/B Tests", KDD 2017) gives a p-value that may be monitored continuously: under the null
the chance that it *ever* drops below α is at most α.

With a normal mixing distribution N(θ₀, τ²) on the true difference and the estimated difference
``d`` having variance ``s² = σ₁²/n₁ + σ₂²/n₂``, the mixture likelihood ratio is::

    Λ = sqrt(s² / (s² + τ²)) · exp( τ² (d − θ₀)² / (2 s² (s² + τ²)) )

and the always-valid p-value after each look is ``p_t = min(p_{t−1}, 1 / Λ_t)``.
``τ`` says how large an effect you expect; it only changes power, never validity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from transferops.errors import ConfigError


def msprt_lambda(d: float | np.ndarray, s2: float | np.ndarray, tau2: float,
                 theta0: float = 0.0) -> np.ndarray:
    """Mixture likelihood ratio Λ for an observed difference ``d`` with variance ``s2`` (vectorised)."""
    d = np.asarray(d, dtype=float)
    s2 = np.asarray(s2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_l = 0.5 * np.log(s2 / (s2 + tau2)) + tau2 * (d - theta0) ** 2 / (2 * s2 * (s2 + tau2))
    return np.exp(np.where(np.isfinite(log_l), log_l, 0.0))


@dataclass(frozen=True)
class SequentialResult:
    """Always-valid p-value and confidence interval after the last look (labelled as such)."""

    method: str
    p_value: float
    ci_low: float
    ci_high: float
    tau: float
    looks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _running_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.arange(1, len(x) + 1, dtype=float)
    c1 = np.cumsum(x)
    c2 = np.cumsum(x * x)
    mean = c1 / n
    var = np.where(n > 1, (c2 - n * mean**2) / np.maximum(n - 1, 1), np.nan)
    return n, mean, np.maximum(var, 0.0)


def msprt(values: Sequence[float] | np.ndarray, is_treatment: Sequence[bool] | np.ndarray, *,
          tau: float | None = None, alpha: float = 0.05, looks: int = 100,
          min_per_arm: int = 10) -> SequentialResult:
    """Always-valid p-value for ``mean(treatment) − mean(control)``, with the data in arrival order.

    The sequence is examined at up to ``looks`` evenly spaced points (each a "peek"); the p-value is
    the running minimum of ``1/Λ`` and the interval the running intersection of ``{θ : Λ(θ) < 1/α}``.
    ``tau`` defaults to 0.1 × the pooled standard deviation (a prior over small standardised effects).

    >>> rng = np.random.default_rng(0)
    >>> arm = rng.random(4000) < 0.5
    >>> y = rng.normal(loc=np.where(arm, 0.3, 0.0))
    >>> msprt(y, arm).p_value < 0.05
    True
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha: {alpha!r} must be strictly between 0 and 1")
    x = np.asarray(values, dtype=float)
    t = np.asarray(is_treatment, dtype=bool)
    if x.shape != t.shape:
        raise ConfigError("values and is_treatment must have the same length")
    if tau is None:
        sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
        tau = 0.1 * sd if sd > 0 else 1e-3
    if tau <= 0:
        raise ConfigError(f"tau: {tau!r} must be > 0 (the expected size of the effect)")
    tau2 = tau * tau

    # Per-arm running moments, read off at each look.
    idx_t, idx_c = np.flatnonzero(t), np.flatnonzero(~t)
    nt_all, mt_all, vt_all = _running_moments(x[idx_t])
    nc_all, mc_all, vc_all = _running_moments(x[idx_c])
    points = np.unique(np.linspace(1, len(x), num=max(1, min(looks, len(x)))).astype(int))
    p, lo, hi, used = 1.0, -math.inf, math.inf, 0
    log_inv_alpha = math.log(1 / alpha)
    for end in points:
        kt = int(np.searchsorted(idx_t, end))  # treatment rows among the first `end`
        kc = int(np.searchsorted(idx_c, end))
        if kt < min_per_arm or kc < min_per_arm:
            continue
        s2 = vt_all[kt - 1] / nt_all[kt - 1] + vc_all[kc - 1] / nc_all[kc - 1]
        if not s2 > 0:
            continue
        d = mt_all[kt - 1] - mc_all[kc - 1]
        used += 1
        lam = float(msprt_lambda(d, s2, tau2))
        p = min(p, 1.0 / lam) if lam > 0 else p
        # Λ(θ) < 1/α  ⇔  (d − θ)² < 2 s²(s²+τ²)/τ² · (log(1/α) + ½ log((s²+τ²)/s²))
        half = math.sqrt(2 * s2 * (s2 + tau2) / tau2 * (log_inv_alpha + 0.5 * math.log((s2 + tau2) / s2)))
        lo, hi = max(lo, d - half), min(hi, d + half)
    return SequentialResult(method="mSPRT (always-valid; safe to peek)", p_value=float(min(1.0, p)),
                            ci_low=float(lo), ci_high=float(hi), tau=float(tau), looks=used)
