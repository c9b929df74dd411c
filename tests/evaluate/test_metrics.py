"""Metric computations against scikit-learn and hand-made answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from transferops.evaluate import metrics as M


def _data(n: int = 400, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)) + 1.5 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, p, p.argmax(axis=1)


def test_aggregate_matches_sklearn() -> None:
    y, p, pred = _data()
    m = M.aggregate(y, p, pred, multilabel=False)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(np.mean(((p - np.eye(3)[y]) ** 2).sum(axis=1)))
    assert 0 <= m["ece"] <= 1


def test_binary_uses_the_positive_index_and_stored_threshold() -> None:
    y = np.asarray([0, 0, 1, 1, 1])
    p1 = np.asarray([0.1, 0.35, 0.3, 0.6, 0.9])
    proba = np.stack([1 - p1, p1], axis=1)
    pred = M.predictions(proba, {"decision_threshold": 0.32, "positive_index": 1}, ["no", "yes"], False)
    assert pred.tolist() == [0, 1, 0, 1, 1]
    m = M.aggregate(y, proba, pred, multilabel=False, positive_index=1)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(0.5)


def test_bootstrap_ci_brackets_the_estimate_and_is_reproducible() -> None:
    y, _, pred = _data(300, seed=1)
    ci = M.bootstrap_ci(y, pred, 3, multilabel=False, n=500, seed=7)
    acc = float((y == pred).mean())
    f1 = skm.f1_score(y, pred, average="macro")
    assert ci["accuracy"][0] < acc < ci["accuracy"][1]
    assert ci["macro_f1"][0] < f1 < ci["macro_f1"][1]
    assert ci["accuracy"][1] - ci["accuracy"][0] < 0.15
    assert ci == M.bootstrap_ci(y, pred, 3, multilabel=False, n=500, seed=7)


def test_bootstrap_multilabel() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((200, 4)) < 0.4).astype(int)
    pred = np.where(rng.random(y.shape) < 0.85, y, 1 - y)
    ci = M.bootstrap_ci(y, pred, 4, multilabel=True, n=300)
    micro = skm.f1_score(y, pred, average="micro")
    assert ci["micro_f1"][0] < micro < ci["micro_f1"][1]


def test_multilabel_aggregate_and_per_label() -> None:
    y = np.asarray([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.asarray([[0.9, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.1]])
    pred = M.predictions(p, {"thresholds": {"a": 0.5, "b": 0.35}}, ["a", "b"], True)
    assert pred.tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]]
    m = M.aggregate(y, p, pred, multilabel=True)
    assert m["subset_accuracy"] == 1.0 and m["hamming_loss"] == 0.0
    rows = M.per_class(y, p, pred, ["a", "b"], multilabel=True)
    assert [r["support"] for r in rows] == [2, 2]
    assert M.confusion(y, pred, 2, multilabel=True) == [[2, 0, 0, 2], [2, 0, 0, 2]]


def test_slice_metrics_per_class_recall() -> None:
    y = np.asarray([0, 0, 1, 1, 2])
    pred = np.asarray([0, 1, 1, 1, 0])
    s = M.slice_metrics(y, pred, 3, multilabel=False)
    assert s["support"] == 5
    assert s["class_recall"] == {0: 0.5, 1: 1.0, 2: 0.0}
    assert s["recall"] == pytest.approx(0.5)


def test_length_quartiles_cover_every_row() -> None:
    texts = ["a" * n for n in range(1, 101)]
    q = M.length_quartiles(texts)
    assert len(q) == 100
    assert sorted(set(q)) == ["Q1: 1–25 chars", "Q2: 26–50 chars", "Q3: 51–75 chars", "Q4: 76–100 chars"]
