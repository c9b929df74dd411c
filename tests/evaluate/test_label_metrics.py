"""One implementation of the label metrics: numbers by hand, and every helper agrees with it."""

from __future__ import annotations

import numpy as np
import pytest

from transferops.evaluate.metrics import aggregate
from transferops.metrics import classification_metrics, label_metrics


def test_label_metrics_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])
    m = label_metrics(y, pred, n_classes=3)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["micro_f1"] == pytest.approx(4 / 6)
    # F1: class 0 = 2·1·(2/3)/(1+2/3) = 0.8; class 1 = 2·0.5·1/1.5 = 2/3; class 2 = 0 (never predicted)
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 2 / 3) / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    b = label_metrics(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1]), positive_index=1)
    assert (b["precision"], b["recall"], b["specificity"]) == (0.5, 0.5, 0.5)
    ml = label_metrics(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 1]]), multilabel=True)
    assert ml["subset_accuracy"] == 0.5 and ml["hamming_loss"] == 0.25 and ml["micro_recall"] == pytest.approx(2 / 3)


def test_every_helper_is_label_metrics() -> None:
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 60), rng.dirichlet(np.ones(4), 60)
    hard = label_metrics(y, p.argmax(1), n_classes=4)
    cm, ag = classification_metrics(y, p), aggregate(y, p, p.argmax(1), multilabel=False)
    for k in ("accuracy", "macro_f1", "weighted_f1", "balanced_accuracy"):
        assert cm[k] == ag[k] == hard[k]
    assert cm["log_loss"] == pytest.approx(ag["log_loss"])
    assert set(cm) == {"accuracy", "macro_f1", "weighted_f1", "balanced_accuracy", "log_loss"}  # as stored


def test_holdout_metrics_on_string_labels_with_unseen_predictions() -> None:
    from transferops.monitor.retrain import holdout_metrics

    class Fixed:
        def predict(self, texts: list[str]) -> list[str]:
            return ["a", "b", "c", "a"]

    m = holdout_metrics(Fixed(), ["w", "x", "y", "z"], ["a", "b", "b", "b"])
    assert m["accuracy"] == 0.5 and m["n"] == 4.0
    # classes = union {a, b, c}: F1 a = 2/3, b = 0.5, c = 0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
