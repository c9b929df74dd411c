"""Known answers for ECE, reliability data and temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest

from transferops.errors import DataError
from transferops.evaluate.calibration import calibrate_logits, ece, fit_temperature, reliability, scale


def _calibrated_sample(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits with a true model: labels are drawn from softmax(logits), so the model is calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(n, k))
    p = scale(logits, 1.0)
    y = np.asarray([rng.choice(k, p=row) for row in p])
    return logits, p, y


def test_ece_of_a_perfectly_calibrated_model_is_near_zero() -> None:
    _, p, y = _calibrated_sample(20_000, 4)
    assert ece(p, y) < 0.015


def test_ece_of_an_overconfident_model_is_large_and_temperature_scaling_fixes_it() -> None:
    logits, _, y = _calibrated_sample(8_000, 4, seed=1)
    hot = logits * 3.0  # the same ranking, three times too sharp: the classic overconfident network
    before = ece(scale(hot, 1.0), y)
    t = fit_temperature(hot, y)
    after = ece(scale(hot, t), y)
    assert before > 0.1
    assert t == pytest.approx(3.0, rel=0.1)  # recovers the factor it was sharpened by
    assert after < 0.03
    assert after < before / 4


def test_underconfident_model_gets_a_temperature_below_one() -> None:
    logits, _, y = _calibrated_sample(5_000, 3, seed=2)
    assert fit_temperature(logits / 2.0, y) == pytest.approx(0.5, rel=0.12)


def test_multilabel_temperature_and_ece() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, size=(6_000, 3))
    y = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(int)
    assert ece(scale(logits, 1.0, multilabel=True), y) < 0.02
    res = calibrate_logits(logits * 2.5, y, multilabel=True)
    assert res.temperature == pytest.approx(2.5, rel=0.1)
    assert res.ece_after < res.ece_before
    assert res.manifest_entry()["bins"] == 15


def test_reliability_bins_count_every_row_and_hand_computed_ece() -> None:
    # Two rows at confidence 0.9 (one right), two at 0.6 (both right): ECE = .5*|.5-.9| + .5*|1-.6| = 0.4
    p = np.asarray([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.asarray([0, 1, 1, 1])
    r = reliability(p, y, n_bins=10)
    assert sum(r["count"]) == 4
    assert len(r["edges"]) == 11
    assert ece(p, y, n_bins=10) == pytest.approx(0.4)


def test_confidence_of_exactly_one_lands_in_the_last_bin() -> None:
    r = reliability(np.asarray([[1.0, 0.0]]), np.asarray([0]), n_bins=15)
    assert r["count"][-1] == 1


def test_bad_shapes_are_errors() -> None:
    with pytest.raises(DataError, match="labels for"):
        ece(np.ones((3, 2)) / 2, np.asarray([0, 1]))
    with pytest.raises(DataError, match="2-D"):
        ece(np.ones(3), np.asarray([0, 1, 1]))
    with pytest.raises(DataError, match="n_bins"):
        reliability(np.ones((2, 2)) / 2, np.asarray([0, 1]), n_bins=0)


def test_retinopathy_case_ece_014_to_003_with_a_500_row_calibration_set() -> None:
    """Source text: temperature scaling on a 500-image calibration set took ECE from 0.14 to 0.03."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1.5, size=(3_500, 2))
    y = (rng.random(3_500) < scale(logits, 1.0)[:, 1]).astype(int)
    hot = logits * 3.5  # overconfident
    t = fit_temperature(hot[:500], y[:500])  # fitted on the 500 calibration rows only
    before, after = ece(scale(hot[500:], 1.0), y[500:]), ece(scale(hot[500:], t), y[500:])
    assert before == pytest.approx(0.14, abs=0.015)
    assert after <= 0.03
