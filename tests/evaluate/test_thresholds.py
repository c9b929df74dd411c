"""Threshold search hits its target on the data it was chosen on."""

from __future__ import annotations

import numpy as np
import pytest

from transferops.errors import ConfigError, DataError
from transferops.evaluate.thresholds import (
    ThresholdTarget,
    choose_label_thresholds,
    choose_threshold,
    curve,
    operating_point,
    parse_target,
)


def _scores(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    p = np.clip(rng.normal(np.where(y, 0.65, 0.35), 0.18), 0, 1)
    return p, y


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99])
def test_recall_target_is_met_at_the_highest_such_threshold(target: float) -> None:
    p, y = _scores()
    op = choose_threshold(p, y, f"recall>={target}")
    assert op.recall >= target
    # The next distinct score above the chosen one would miss the target: nothing stricter works.
    chosen = p[p >= op.threshold].min()
    assert 0 < chosen - op.threshold <= 1.001e-6  # just below the score (float32 recomputation keeps its decision)
    higher = np.unique(p[p > chosen])
    if len(higher):
        assert operating_point(p, y, float(higher[0])).recall < target
    # The operating point matches a recount at the threshold.
    assert op.tp == int(((p >= op.threshold) & y).sum())


def test_precision_target_is_met_at_the_lowest_such_threshold() -> None:
    p, y = _scores(seed=1)
    op = choose_threshold(p, y, "precision>=0.9")
    assert op.precision >= 0.9
    lower = np.unique(p[p < op.threshold])
    assert operating_point(p, y, float(lower[-1])).precision < 0.9


def test_max_f1_equals_brute_force() -> None:
    p, y = _scores(500, seed=2)
    best = max(operating_point(p, y, float(t)).f1 for t in np.unique(p))
    assert choose_threshold(p, y, "max-f1").f1 == pytest.approx(best)


def test_curve_is_monotone_in_recall() -> None:
    p, y = _scores(300, seed=3)
    c = curve(p, y)
    assert np.all(np.diff(c["threshold"]) > 0)
    assert np.all(np.diff(c["recall"]) <= 1e-12)
    assert c["recall"][0] == pytest.approx(1.0)


def test_multilabel_grid_thresholds_differ_per_label() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random((1_500, 2)) < 0.3).astype(int)
    # "spam" scores sit low, "hate" high: their best thresholds differ (source text: 0.3 vs 0.6).
    p = np.clip(np.stack([rng.normal(np.where(y[:, 0], 0.45, 0.15), 0.1),
                          rng.normal(np.where(y[:, 1], 0.85, 0.45), 0.1)], axis=1), 0, 1)
    th = choose_label_thresholds(p, y, ["spam", "hate"])
    assert th["spam"] < 0.4 < th["hate"]
    th_r = choose_label_thresholds(p, y, ["spam", "hate"], "recall>=0.95")
    assert operating_point(p[:, 0], y[:, 0], th_r["spam"]).recall >= 0.95


def test_parse_target() -> None:
    assert parse_target("recall>=0.95") == ThresholdTarget("recall", 0.95)
    assert parse_target("precision >= 90%") == ThresholdTarget("precision", 0.9)
    assert parse_target("sensitivity>=0.95").kind == "recall"
    assert parse_target("max-f1").kind == "max_f1"
    assert str(parse_target("recall>=0.95")) == "recall>=0.95"
    with pytest.raises(ConfigError, match="target"):
        parse_target("recall<=0.5")
    with pytest.raises(ConfigError, match="target"):
        parse_target("recall>=1.5")


def test_no_positives_is_an_error() -> None:
    with pytest.raises(DataError, match="no positive"):
        choose_threshold(np.asarray([0.1, 0.2]), np.asarray([0, 0]), "max-f1")


def test_retinopathy_case_threshold_032_for_sensitivity_95() -> None:
    """Source text: optimising for sensitivity >= 95% instead of 0.5 gave a threshold of 0.32."""
    pos = np.r_[np.linspace(0.05, 0.25, 5), 0.32, np.linspace(0.35, 0.99, 94)]  # 5 of 100 below 0.32
    neg = np.linspace(0.0, 0.6, 200)
    p, y = np.r_[pos, neg], np.r_[np.ones(100), np.zeros(200)]
    op = choose_threshold(p, y, "sensitivity>=0.95")
    assert op.threshold == pytest.approx(0.32, abs=1e-5)  # just below the score 0.32
    assert op.recall == pytest.approx(0.95)
    assert operating_point(p, y, 0.5).recall < 0.95  # the default threshold misses the clinical target
