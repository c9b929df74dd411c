"""Sample size against the source text's formula and independent references (statsmodels, simulation)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from transferops.abtest.sample_size import (
    SampleSizeConfig,
    achieved_power,
    plan_sample_size,
    power_curve,
    source_formula_n,
)
from transferops.cli.main import main
from transferops.errors import ConfigError


def test_source_text_example_gives_352800_not_30000() -> None:
    # The source text: p̄ = 0.10, Δp = 0.002, z = 1.96 / 0.84, "This gives n ≈ 30,000 users per group".
    # Its own formula gives 2·2.8²·0.1·0.9 / 0.002² = 352,800; we compute from the formula.
    n = source_formula_n(0.10, 0.002, 1.96, 0.84)
    assert n == pytest.approx(352_800, abs=1e-6)
    assert abs(n - 30_000) > 300_000


def test_figure5_claim_matches_a_3pct_lift_not_1pct() -> None:
    # Figure 5 says a 1% relative lift on a 10% baseline needs ~157,000 per arm. With the text's formula
    # a 1% lift (Δ = 0.001) needs 1,411,200; 157,000 is what a 3% lift (Δ = 0.003) needs (156,800).
    assert source_formula_n(0.10, 0.001, 1.96, 0.84) == pytest.approx(1_411_200)
    assert source_formula_n(0.10, 0.003, 1.96, 0.84) == pytest.approx(156_800)


@pytest.mark.parametrize(("p1", "delta", "alpha", "power"), [
    (0.10, 0.002, 0.05, 0.8), (0.10, 0.01, 0.05, 0.9), (0.30, -0.05, 0.01, 0.8), (0.02, 0.004, 0.10, 0.95),
])
def test_both_formulas_match_statsmodels_normal_ind_power(p1: float, delta: float, alpha: float,
                                                          power: float) -> None:
    r = plan_sample_size(baseline_rate=p1, mde=delta, alpha=alpha, power=power)
    p2 = p1 + delta
    solver = NormalIndPower()
    pbar = (p1 + p2) / 2
    # pooled: effect size Δ / sqrt(p̄q̄); unpooled: Δ / sqrt((p1q1 + p2q2)/2) (ratio 1 ⇒ n = 2(z+z)²/d²)
    n_pooled = solver.solve_power(effect_size=abs(delta) / math.sqrt(pbar * (1 - pbar)), alpha=alpha,
                                  power=power)
    n_unpooled = solver.solve_power(effect_size=abs(delta) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2),
                                    alpha=alpha, power=power)
    # statsmodels also counts the far rejection tail, so it may need a hair fewer users; never more than 1.
    assert r.n_pooled == pytest.approx(n_pooled, rel=2e-3)
    assert r.n_unpooled == pytest.approx(n_unpooled, rel=2e-3)
    assert r.n_pooled >= n_pooled - 1e-6 and r.n_unpooled >= n_unpooled - 1e-6
    # Cohen's arcsine effect size (a different approximation) lands within 2%.
    h = abs(proportion_effectsize(p2, p1))
    n_arcsine = solver.solve_power(effect_size=h, alpha=alpha, power=power)
    assert r.n_unpooled == pytest.approx(n_arcsine, rel=0.02)
    assert r.n_per_arm == max(r.n_pooled, r.n_unpooled)
    assert r.total == 2 * r.n_per_arm


def test_planned_n_reaches_the_power_in_simulation() -> None:
    # Independent of any formula: simulate 4,000 experiments at the planned n with scipy's z-test.
    p1, delta = 0.30, 0.05
    r = plan_sample_size(baseline_rate=p1, mde=delta, alpha=0.05, power=0.8)
    rng = np.random.default_rng(0)
    n = r.n_per_arm
    x1 = rng.binomial(n, p1, size=4000)
    x2 = rng.binomial(n, p1 + delta, size=4000)
    pp = (x1 + x2) / (2 * n)
    z = (x2 / n - x1 / n) / np.sqrt(pp * (1 - pp) * 2 / n)
    rejected = (2 * stats.norm.sf(np.abs(z)) < 0.05).mean()
    assert rejected == pytest.approx(0.8, abs=0.03)
    assert achieved_power(n, p1, delta) == pytest.approx(0.8, abs=0.01)
    # and with half the users the power is clearly lower
    assert achieved_power(n // 2, p1, delta) < 0.6


def test_relative_mde_and_days() -> None:
    a = plan_sample_size(baseline_rate=0.10, mde=0.02, relative=True, daily_traffic=20_000)
    b = plan_sample_size(baseline_rate=0.10, mde=0.002)
    assert a.delta == pytest.approx(0.002)
    assert (a.n_pooled, a.n_unpooled) == (b.n_pooled, b.n_unpooled)
    assert a.days == math.ceil(2 * a.n_per_arm / 20_000)
    assert a.relative_effect == pytest.approx(0.02)
    assert b.days is None


def test_power_curve_shrinks_with_effect() -> None:
    curve = power_curve(0.10, [0.001, 0.002, 0.004, 0.008])
    assert list(curve.columns[:4]) == ["mde", "delta", "n_pooled", "n_unpooled"]
    assert curve["n_pooled"].is_monotonic_decreasing
    # n ∝ 1/Δ²: doubling the effect cuts n by about 4
    assert curve["n_pooled"].iloc[0] / curve["n_pooled"].iloc[1] == pytest.approx(4, rel=0.02)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"baseline_rate": 0.0, "mde": 0.01}, "baseline_rate"),
    ({"baseline_rate": 1.2, "mde": 0.01}, "baseline_rate"),
    ({"baseline_rate": 0.1, "mde": 0.01, "power": 1.0}, "power"),
    ({"baseline_rate": 0.1, "mde": 0.01, "power": 0.0}, "power"),
    ({"baseline_rate": 0.1, "mde": 0.01, "alpha": 1.5}, "alpha"),
    ({"baseline_rate": 0.1, "mde": 0.0}, "mde"),
    ({"baseline_rate": 0.95, "mde": 0.1}, "mde"),
    ({"baseline_rate": 0.1, "mde": 0.01, "daily_traffic": 0}, "daily_traffic"),
])
def test_bad_inputs_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SampleSizeConfig(**kwargs)


def test_cli_plan_text_json_and_plot(tmp_path, capsys) -> None:
    png = tmp_path / "power.png"
    assert main(["abtest", "plan", "--baseline-rate", "0.10", "--mde", "0.02", "--relative",
                 "--daily-traffic", "20000", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "users per arm" in out and "days at 20,000" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    assert main(["abtest", "plan", "--baseline-rate", "0.10", "--mde", "0.002", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_per_arm"] == plan_sample_size(baseline_rate=0.1, mde=0.002).n_per_arm
    assert d["total"] == 2 * d["n_per_arm"]


@pytest.mark.parametrize(("argv", "field"), [
    (["--baseline-rate", "1.5", "--mde", "0.01"], "baseline_rate"),
    (["--baseline-rate", "0.1", "--mde", "0"], "mde"),
    (["--baseline-rate", "0.1", "--mde", "0.01", "--power", "1"], "power"),
])
def test_cli_plan_bad_input_exits_2_naming_field(argv: list[str], field: str, capsys) -> None:
    assert main(["abtest", "plan", *argv]) == 2
    assert field in capsys.readouterr().err
