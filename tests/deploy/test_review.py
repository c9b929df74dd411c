"""Review routing: the threshold derived for a target auto accuracy, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from transferops.deploy.review import ReviewPolicy, confidence_of, derive_review_threshold
from transferops.errors import ConfigError


def test_smallest_review_rate_reaching_target() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    ok = np.array([1, 1, 1, 1, 0, 1, 0, 0])
    # auto top-4: 4/4 = 1.0; top-6: 5/6 = 0.833; top-5: 4/5 = 0.8
    p = derive_review_threshold(conf, ok, 0.8)
    assert p.threshold == pytest.approx(0.6) and p.review_rate == pytest.approx(2 / 8)
    assert p.auto_accuracy == pytest.approx(5 / 6) and p.reached
    p = derive_review_threshold(conf, ok, 0.95)
    assert p.threshold == pytest.approx(0.8) and p.review_rate == pytest.approx(0.5)
    assert p.route(0.79) == "review" and p.route(0.8) == "auto"
    # a target everything reaches: no review at all
    p = derive_review_threshold(conf, ok, 0.5)
    assert p.threshold == 0.0 and p.review_rate == 0.0
    assert p.overall_accuracy == pytest.approx(5 / 8)


def test_ties_are_routed_together_and_unreachable_targets() -> None:
    # the two 0.9s must go the same way: cutting between them is not allowed
    p = derive_review_threshold(np.array([0.9, 0.9, 0.5]), np.array([1, 0, 1]), 0.99)
    assert not p.reached and p.review_rate == 1.0 and p.route(1.0) == "review"
    with pytest.raises(ConfigError, match="target_auto_accuracy"):
        derive_review_threshold(np.array([0.5]), np.array([1]), 1.5)
    with pytest.raises(ConfigError, match="empty"):
        derive_review_threshold(np.array([]), np.array([]), 0.9)


def test_confidence_and_fixed_policy() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    np.testing.assert_allclose(confidence_of(proba, False), [0.7, 0.4])
    np.testing.assert_allclose(confidence_of(np.array([[0.9, 0.3], [0.5, 0.99]]), True), [0.7, 0.5])
    fixed = ReviewPolicy(threshold=0.7, source="fixed")
    assert [fixed.route(c) for c in (0.69, 0.7, 0.95)] == ["review", "auto", "auto"]
    assert ReviewPolicy(None, "none").route(0.0) == "auto"
