"""Sample size for a two-arm conversion test.

Two formulas, both normal approximations with equal arms:

* **pooled** (the source text's formula): ``n = 2 (z_{α/2} + z_β)² p̄(1 − p̄) / Δ²`` with
  ``p̄ = (p₁ + p₂) / 2`` — one variance for both arms;
* **unpooled**: ``n = (z_{α/2} + z_β)² (p₁q₁ + p₂q₂) / Δ²`` — each arm keeps its own variance (what a
  Wald test of the difference actually has). The two differ by well under 1 % for small lifts.

The source text's own example (p̄ = 0.10, Δp = 0.002, z = 1.96 / 0.84) states "n ≈ 30,000 per group";
the formula it prints gives 352,800. We compute from the formula (see ``docs/abtest.md``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from transferops._validation import Interval, check_param
from transferops.errors import ConfigError

_OPEN_UNIT = Interval(Real, 0.0, 1.0, closed="neither")


def _open_unit(name: str, value: float) -> None:
    check_param(name, value, _OPEN_UNIT)


def source_formula_n(p_bar: float, delta: float, z_alpha: float, z_beta: float) -> float:
    """The source text's formula verbatim (no rounding up), for checking its worked example.

    >>> round(source_formula_n(0.10, 0.002, 1.96, 0.84))
    352800
    """
    return 2.0 * (z_alpha + z_beta) ** 2 * p_bar * (1.0 - p_bar) / delta**2


@dataclass(frozen=True)
class SampleSizeConfig:
    """Inputs of :func:`plan_sample_size` (validated here, so every caller gets the same errors).

    ``mde`` is the minimum detectable effect: an absolute difference in rate (0.002 = 0.2 points) or,
    with ``relative=True``, a fraction of the baseline (0.02 = a 2 % lift). ``daily_traffic`` is the
    number of users entering the experiment per day, all arms together.
    """

    baseline_rate: float
    mde: float
    relative: bool = False
    alpha: float = 0.05
    power: float = 0.8
    daily_traffic: float | None = None
    two_sided: bool = True

    def __post_init__(self) -> None:
        _open_unit("baseline_rate", self.baseline_rate)
        _open_unit("alpha", self.alpha)
        _open_unit("power", self.power)
        if not isinstance(self.mde, (int, float)) or not math.isfinite(self.mde) or self.mde == 0:
            raise ConfigError(f"mde: {self.mde!r} must be a non-zero effect (e.g. 0.002 absolute, or 0.02 "
                              "with --relative)")
        p2 = self.treatment_rate
        if not 0.0 < p2 < 1.0:
            raise ConfigError(f"mde: baseline_rate {self.baseline_rate} + effect {self.delta:+g} = {p2:g} is "
                              "not a rate in (0, 1); use a smaller effect")
        check_param("daily_traffic", self.daily_traffic, [None, Interval(Real, 0.0, None, closed="neither")],
                    hint="users entering the experiment per day")

    @property
    def delta(self) -> float:
        """The absolute difference in rate the test must detect."""
        return self.baseline_rate * self.mde if self.relative else float(self.mde)

    @property
    def treatment_rate(self) -> float:
        return self.baseline_rate + self.delta


@dataclass(frozen=True)
class SampleSizeResult:
    """Users per arm (rounded up) for both formulas; ``n_per_arm`` is the larger, the one to plan on."""

    baseline_rate: float
    treatment_rate: float
    delta: float
    relative_effect: float
    alpha: float
    power: float
    z_alpha: float
    z_beta: float
    n_pooled: int
    n_unpooled: int
    n_per_arm: int
    total: int
    daily_traffic: float | None
    days: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        rows = [
            ("baseline rate", f"{self.baseline_rate:.4g}"),
            ("treatment rate", f"{self.treatment_rate:.4g}"),
            ("effect (absolute / relative)", f"{self.delta:+.4g} / {self.relative_effect:+.2%}"),
            ("alpha / power", f"{self.alpha:g} / {self.power:g}"),
            ("z_alpha / z_beta", f"{self.z_alpha:.4f} / {self.z_beta:.4f}"),
            ("users per arm, pooled (source-text formula)", f"{self.n_pooled:,}"),
            ("users per arm, unpooled", f"{self.n_unpooled:,}"),
            ("users per arm (plan)", f"{self.n_per_arm:,}"),
            ("users total", f"{self.total:,}"),
        ]
        if self.days is not None:
            rows.append((f"days at {self.daily_traffic:,.0f} users/day", f"{self.days:,}"))
        lines = ["| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
        return "\n".join(lines)


def z_values(alpha: float, power: float, two_sided: bool = True) -> tuple[float, float]:
    """``(z_{α/2}, z_β)`` (or ``z_α`` for a one-sided test) from the normal quantile function."""
    za = float(stats.norm.ppf(1 - alpha / 2 if two_sided else 1 - alpha))
    zb = float(stats.norm.ppf(power))
    return za, zb


def _n_both(p1: float, p2: float, za: float, zb: float) -> tuple[float, float]:
    d2 = (p2 - p1) ** 2
    pbar = (p1 + p2) / 2
    pooled = 2 * (za + zb) ** 2 * pbar * (1 - pbar) / d2
    unpooled = (za + zb) ** 2 * (p1 * (1 - p1) + p2 * (1 - p2)) / d2
    return pooled, unpooled


def plan_sample_size(config: SampleSizeConfig | None = None, /, **kwargs: Any) -> SampleSizeResult:
    """Users per arm needed to detect ``mde`` with the given ``alpha`` and ``power``.

    >>> r = plan_sample_size(baseline_rate=0.10, mde=0.02, relative=True, daily_traffic=20_000)
    >>> r.n_pooled, r.n_unpooled, r.days
    (356336, 356332, 36)
    """
    cfg = config if config is not None else SampleSizeConfig(**kwargs)
    za, zb = z_values(cfg.alpha, cfg.power, cfg.two_sided)
    p1, p2 = cfg.baseline_rate, cfg.treatment_rate
    pooled, unpooled = _n_both(p1, p2, za, zb)
    n_pooled, n_unpooled = math.ceil(pooled - 1e-9), math.ceil(unpooled - 1e-9)
    n = max(n_pooled, n_unpooled)
    days = math.ceil(2 * n / cfg.daily_traffic) if cfg.daily_traffic else None
    return SampleSizeResult(
        baseline_rate=p1, treatment_rate=p2, delta=cfg.delta, relative_effect=cfg.delta / p1,
        alpha=cfg.alpha, power=cfg.power, z_alpha=za, z_beta=zb, n_pooled=n_pooled, n_unpooled=n_unpooled,
        n_per_arm=n, total=2 * n, daily_traffic=cfg.daily_traffic, days=days,
    )


def power_curve(baseline_rate: float, mdes: Any, *, relative: bool = False, alpha: float = 0.05,
                power: float = 0.8, daily_traffic: float | None = None) -> pd.DataFrame:
    """Users per arm for each detectable effect in ``mdes`` (the table behind the power-curve plot).

    Columns: ``mde``, ``delta``, ``n_pooled``, ``n_unpooled``, ``days`` (when traffic is given).
    """
    rows = []
    for m in np.asarray(mdes, dtype=float).ravel():
        r = plan_sample_size(SampleSizeConfig(baseline_rate=baseline_rate, mde=float(m), relative=relative,
                                              alpha=alpha, power=power, daily_traffic=daily_traffic))
        rows.append({"mde": float(m), "delta": r.delta, "n_pooled": r.n_pooled, "n_unpooled": r.n_unpooled,
                     "days": r.days})
    return pd.DataFrame(rows)


def achieved_power(n_per_arm: float, baseline_rate: float, delta: float, alpha: float = 0.05) -> float:
    """Power of the two-sided unpooled z-test with ``n_per_arm`` users per arm (both tails counted)."""
    _open_unit("baseline_rate", baseline_rate)
    _open_unit("alpha", alpha)
    p2 = baseline_rate + delta
    se = math.sqrt((baseline_rate * (1 - baseline_rate) + p2 * (1 - p2)) / n_per_arm)
    za = float(stats.norm.ppf(1 - alpha / 2))
    shift = abs(delta) / se
    return float(stats.norm.cdf(shift - za) + stats.norm.cdf(-shift - za))


def detectable_effect(n_per_arm: float, baseline_rate: float, alpha: float = 0.05,
                      power: float = 0.8) -> float:
    """Smallest absolute lift detectable with ``n_per_arm`` users per arm (pooled formula, solved for Δ).

    Used by the analysis to say what an inconclusive test could have seen.
    """
    _open_unit("baseline_rate", baseline_rate)
    if n_per_arm <= 0:
        return float("inf")
    za, zb = z_values(alpha, power)
    return float((za + zb) * math.sqrt(2 * baseline_rate * (1 - baseline_rate) / n_per_arm))
