"""Analysis: tests against statsmodels/scipy, verdicts on synthetic experiments, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from transferops.abtest.analysis import (
    AnalysisConfig,
    analyze_experiment,
    srm_check,
    two_proportion_test,
    welch_test,
)
from transferops.errors import ConfigError, DataError

from .synth import make_experiment


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(1000, 10_000, 1100, 10_000), (37, 400, 21, 380),
                                                    (5, 60, 9, 75)])
def test_two_proportion_test_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    diff, lo, hi, z, p = two_proportion_test(x1, n1, x2, n2)
    z_ref, p_ref = proportions_ztest([x2, x1], [n2, n1])  # pooled variance, two-sided
    assert z == pytest.approx(z_ref, rel=1e-9)
    assert p == pytest.approx(p_ref, rel=1e-9)
    lo_ref, hi_ref = confint_proportions_2indep(x2, n2, x1, n1, method="wald", compare="diff")
    assert (lo, hi) == pytest.approx((lo_ref, hi_ref), rel=1e-9)
    assert diff == pytest.approx(x2 / n2 - x1 / n1)


def test_welch_matches_scipy_and_statsmodels() -> None:
    rng = np.random.default_rng(3)
    a = rng.exponential(10.0, 300)
    b = rng.exponential(12.0, 250) + rng.normal(0, 5, 250)
    diff, lo, hi, t, p = welch_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert t == pytest.approx(ref.statistic, rel=1e-9)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    cm = CompareMeans(DescrStatsW(b), DescrStatsW(a))
    assert (lo, hi) == pytest.approx(cm.tconfint_diff(usevar="unequal"), rel=1e-9)
    assert diff == pytest.approx(b.mean() - a.mean())


def test_srm_matches_scipy_chisquare_and_flags_mismatch() -> None:
    ok = srm_check({"control": 10_040, "treatment": 9_960})
    assert not ok.mismatch
    bad = srm_check({"control": 10_400, "treatment": 9_600})
    ref = stats.chisquare([10_400, 9_600])
    assert bad.chi2 == pytest.approx(ref.statistic) and bad.p_value == pytest.approx(ref.pvalue)
    assert bad.mismatch
    # a planned 90/10 split is not a mismatch when 90/10 is what arrived
    assert not srm_check({"control": 9_010, "treatment": 990}, {"control": 0.9, "treatment": 0.1}).mismatch
    with pytest.raises(ConfigError, match="split"):
        srm_check({"control": 1, "treatment": 1}, {"control": 1.0})


def test_true_lift_ships() -> None:
    preds, outs = make_experiment(20_000, rates={"control": 0.10, "treatment": 0.125})
    r = analyze_experiment(preds, outs, experiment="exp1")
    assert r.verdict == "ship"
    c = r.comparisons[0]
    assert c.test == "two-proportion z" and c.significant and c.ci_low > 0
    assert c.ci_low < 0.025 < c.ci_high  # the CI covers the true difference
    assert c.sequential.p_value < 0.05 and "always-valid" in c.sequential.method
    assert [a.arm for a in r.arms] == ["control", "treatment"]
    assert r.unit == "key" and r.kind == "binary"
    assert r.arms[0].n + r.arms[1].n == 20_000
    assert "Verdict: ship" in r.to_markdown()


def test_no_effect_is_inconclusive_and_harm_keeps_control() -> None:
    preds, outs = make_experiment(6_000, rates={"control": 0.10, "treatment": 0.10}, seed=1)
    r = analyze_experiment(preds, outs)
    assert r.verdict == "inconclusive"
    assert r.comparisons[0].detectable_effect > 0
    preds, outs = make_experiment(20_000, rates={"control": 0.12, "treatment": 0.09}, seed=2)
    assert analyze_experiment(preds, outs).verdict == "keep control"


def test_sample_ratio_mismatch_overrides_a_win() -> None:
    preds, outs = make_experiment(20_000, rates={"control": 0.10, "treatment": 0.13},
                                  drop_share={"treatment": 0.08}, seed=4)
    r = analyze_experiment(preds, outs)
    assert r.srm.mismatch and r.verdict == "invalid: sample ratio mismatch"


def test_guardrails_latency_review_and_error() -> None:
    preds, outs = make_experiment(8_000, rates={"control": 0.10, "treatment": 0.14},
                                  latency={"treatment": 25.0}, seed=5)
    r = analyze_experiment(preds, outs)
    g = r.comparisons[0].guardrails
    assert not g["latency_p95_ms"]["ok"] and r.verdict == "guardrail failed"
    assert r.arms[1].latency_p95_ms == pytest.approx(np.percentile(preds.loc[preds.arm == "treatment",
                                                                             "latency_ms"], 95))
    preds, outs = make_experiment(8_000, review={"control": 0.1, "treatment": 0.3}, seed=6)
    r = analyze_experiment(preds, outs)
    assert not r.comparisons[0].guardrails["review_rate"]["ok"]
    assert r.arms[1].review_rate == pytest.approx(0.3, abs=0.03)
    # errors reported by clients as 'error' outcomes
    preds, outs = make_experiment(4_000, seed=7)
    t_ids = preds.loc[preds.arm == "treatment", "id"].iloc[:200]
    errs = pd.DataFrame({"prediction_id": t_ids, "key": None, "metric": "error", "value": 1.0, "ts": 0.0})
    r = analyze_experiment(preds, pd.concat([outs, errs]))
    assert r.arms[1].error_rate == pytest.approx(200 / r.arms[1].predictions)
    assert r.arms[0].error_rate == 0.0
    assert not r.comparisons[0].guardrails["error_rate"]["ok"]


def test_continuous_metric_uses_welch_and_key_outcomes() -> None:
    preds, outs = make_experiment(4_000, revenue={"control": 10.0, "treatment": 12.0}, preds_per_user=2,
                                  seed=8)
    r = analyze_experiment(preds, outs, metric="revenue")
    assert r.kind == "continuous" and r.comparisons[0].test == "Welch t"
    assert r.verdict == "ship"
    # unit = user: two predictions per user still count one unit each
    assert sum(a.n for a in r.arms) == 4_000
    assert sum(a.predictions for a in r.arms) == 8_000
    # the per-user means equal a direct computation
    rev = outs[outs.metric == "revenue"].groupby("key")["value"].sum()
    arm_of = preds.drop_duplicates("ab_key").set_index("ab_key")["arm"]
    assert r.arms[1].mean == pytest.approx(rev[arm_of[rev.index] == "treatment"].mean())


def test_unit_prediction_when_no_keys() -> None:
    preds, outs = make_experiment(3_000, seed=9, preds_per_user=2)
    preds = preds.drop(columns=["ab_key"])
    r = analyze_experiment(preds, outs)
    assert r.unit == "prediction" and sum(a.n for a in r.arms) == 6_000


def test_msprt_is_safe_to_peek_where_the_z_test_is_not() -> None:
    from transferops.abtest.sequential import msprt

    rng = np.random.default_rng(11)
    sims, n, looks = 300, 2_000, 20
    arm = rng.random((sims, 2 * n)) < 0.5
    y = rng.normal(size=(sims, 2 * n))  # no effect at all
    naive_p = np.ones(sims)
    for end in np.linspace(100, 2 * n, looks).astype(int):
        a, t = arm[:, :end], y[:, :end]
        n1, n0 = a.sum(1), (~a).sum(1)
        m1, m0 = (t * a).sum(1) / n1, (t * ~a).sum(1) / n0
        v1 = ((t - m1[:, None]) ** 2 * a).sum(1) / (n1 - 1)
        v0 = ((t - m0[:, None]) ** 2 * ~a).sum(1) / (n0 - 1)
        z = (m1 - m0) / np.sqrt(v1 / n1 + v0 / n0)
        naive_p = np.minimum(naive_p, 2 * stats.norm.sf(np.abs(z)))
    naive_rejects = int((naive_p < 0.05).sum())
    seq_rejects = sum(msprt(y[i], arm[i], looks=looks, tau=0.1).p_value < 0.05 for i in range(sims))
    naive, seq = naive_rejects / sims, seq_rejects / sims
    print(f"false positives with 20 peeks: naive {naive:.3f}, mSPRT {seq:.3f}")
    assert naive > 0.12  # peeking at a fixed-horizon test inflates the false-positive rate
    assert seq <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / sims)


def test_msprt_lambda_matches_the_equal_n_closed_form() -> None:
    from transferops.abtest.sequential import msprt_lambda

    # Johari et al.: Λ = sqrt(V/(V+nτ²)) exp(n²τ²(ȳ−x̄)² / (2V(V+nτ²))), V = σ₁² + σ₂²
    v, n, tau2, d = 2.0, 500, 0.04, 0.15
    closed = np.sqrt(v / (v + n * tau2)) * np.exp(n**2 * tau2 * d**2 / (2 * v * (v + n * tau2)))
    assert float(msprt_lambda(d, v / n, tau2)) == pytest.approx(closed, rel=1e-12)


def test_no_data_and_one_arm_are_clear_errors() -> None:
    with pytest.raises(DataError, match="no predictions"):
        analyze_experiment(pd.DataFrame(), None, experiment="x")
    preds, outs = make_experiment(500, seed=10)
    with pytest.raises(DataError, match="only one arm"):
        analyze_experiment(preds[preds.arm == "control"], outs)
    with pytest.raises(DataError, match="no predictions logged for this experiment"):
        analyze_experiment(preds, outs, experiment="other")
    with pytest.raises(ConfigError, match="control"):
        analyze_experiment(preds, outs, control="baseline")
    bad = outs.assign(value=2.0)
    with pytest.raises(DataError, match="kind=continuous"):
        analyze_experiment(preds, bad, AnalysisConfig(kind="binary"))
    with pytest.raises(ConfigError, match="alpha"):
        AnalysisConfig(alpha=1.0)


def test_no_outcomes_is_noted_not_crashing() -> None:
    preds, _ = make_experiment(1_000, seed=12)
    r = analyze_experiment(preds, None)
    assert any("no outcomes" in n for n in r.notes)
    assert r.arms[0].mean == 0.0 and r.verdict == "inconclusive"
    assert r.to_dict()["arms"][0]["error_rate"] is None  # NaN → null in JSON


def test_three_arms_and_predictions_without_keys() -> None:
    rng = np.random.default_rng(13)
    n = 9_000
    arm = rng.choice(["control", "t1", "t2"], n)
    preds = pd.DataFrame({"id": [str(i) for i in range(n)],
                          "ab_key": [f"u{i}" if i % 10 else None for i in range(n)], "arm": arm,
                          "latency_ms": 10.0, "route": "auto"})
    conv = rng.random(n) < np.where(arm == "t2", 0.15, 0.10)
    outs = pd.DataFrame({"prediction_id": preds.id[conv], "metric": "conversion", "value": 1.0})
    r = analyze_experiment(preds, outs)
    assert [c.arm for c in r.comparisons] == ["t1", "t2"]
    assert sum(a.n for a in r.arms) == n  # keyless predictions are their own units, not one "None" user
    assert r.verdict == "ship" and "t2" in r.reasons[0]
    assert any("Bonferroni" in note for note in r.notes)
    # a planned 80/10/10 split makes these equal counts a mismatch
    r = analyze_experiment(preds, outs, split={"control": 0.8, "t1": 0.1, "t2": 0.1})
    assert r.verdict == "invalid: sample ratio mismatch"
