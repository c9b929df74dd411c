"""Known-answer tests for the cheap scores: synthetic features, no model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from transferops.errors import DataError
from transferops.select.scores import (
    cv_folds,
    knn_loo_accuracy,
    logme,
    majority_cv_scores,
    probe_cv_scores,
    tfidf_cv_scores,
)


def _separable(n_per: int = 25, k: int = 4, d: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per)
    centers = rng.normal(size=(k, d)) * 2.0
    return centers[y] + rng.normal(size=(len(y), d)), y


def test_logme_matches_the_gaussian_marginal_likelihood() -> None:
    # At the fitted alpha, beta the closed form must equal log N(y | 0, I/beta + F F^T/alpha) / n,
    # in both regimes (n > d and n < d, where d - r eigenvalues of F^T F are zero).
    rng = np.random.default_rng(1)
    for n, d in [(40, 10), (20, 50)]:
        f = rng.normal(size=(n, d))
        y = rng.integers(0, 3, n)
        res = logme(f, y, n_classes=3)
        for c in range(3):
            cov = np.eye(n) / res.betas[c] + f @ f.T / res.alphas[c]
            direct = multivariate_normal(np.zeros(n), cov).logpdf((y == c).astype(float)) / n
            assert res.per_class[c] == pytest.approx(direct, rel=1e-6, abs=1e-8)


def test_logme_fixed_point_is_a_maximum_of_the_evidence() -> None:
    # Perturbing alpha or beta away from the fixed point must not increase the evidence.
    f, y = _separable(10, 2, 8, seed=3)
    res = logme(f, y, n_classes=2)
    n = len(y)
    yc = (y == 0).astype(float)

    def ev(a: float, b: float) -> float:
        return float(multivariate_normal(np.zeros(n), np.eye(n) / b + f @ f.T / a).logpdf(yc) / n)

    best = ev(res.alphas[0], res.betas[0])
    for fa, fb in [(2, 1), (0.5, 1), (1, 2), (1, 0.5)]:
        assert ev(res.alphas[0] * fa, res.betas[0] * fb) <= best + 1e-9


def test_separable_beats_random_labels_on_every_score() -> None:
    f, y = _separable()
    rng = np.random.default_rng(7)
    y_rand = rng.permutation(y)
    folds_sep = cv_folds(y, seed=0)
    folds_rand = cv_folds(y_rand, seed=0)
    assert logme(f, y).evidence > logme(f, y_rand).evidence + 0.5
    assert knn_loo_accuracy(f, y) > 0.95
    assert knn_loo_accuracy(f, y_rand) < 0.5
    sep, rand = probe_cv_scores(f, y, folds_sep), probe_cv_scores(f, y_rand, folds_rand)
    assert sep["accuracy"] > 0.95 and sep["macro_f1"] > 0.95
    assert rand["accuracy"] < 0.5


def test_logme_ranks_informative_features_above_noise_features() -> None:
    # Same labels, two "checkpoints": one whose features carry the class, one pure noise.
    f, y = _separable(seed=5)
    noise = np.random.default_rng(9).normal(size=f.shape)
    assert logme(f, y).evidence > logme(noise, y).evidence


def test_knn_tie_breaks_by_similarity() -> None:
    # k=2 with one neighbour of each class: the closer one must win.
    x = np.array([[1.0, 0.0], [0.99, 0.14], [0.8, 0.6], [0.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    # Row 3's two nearest are row 2 (class 1, cos .6) and row 1 (class 0, cos .14): a tie in votes that
    # the similarity sum must give to class 1. Row 2 is outvoted by rows 0 and 1 (both class 0), so the
    # right answer is 3/4; breaking ties by class index would give 2/4.
    assert knn_loo_accuracy(x, y, k=2) == pytest.approx(0.75)
    x2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert knn_loo_accuracy(x2, y, k=1) == 1.0


def test_knn_needs_two_examples() -> None:
    with pytest.raises(DataError, match="at least 2"):
        knn_loo_accuracy(np.ones((1, 3)), np.array([0]))


def test_cv_folds_need_two_per_class() -> None:
    with pytest.raises(DataError, match="at least 2 examples"):
        cv_folds(np.array([0, 0, 0, 1]))
    folds = cv_folds(np.array([0, 0, 1, 1, 1, 1]), max_folds=5)
    assert len(folds) == 2  # capped by the smallest class


def test_baselines_on_the_same_folds() -> None:
    y = np.array([0] * 12 + [1] * 8)
    folds = cv_folds(y, seed=0)
    maj = majority_cv_scores(y, folds)
    assert maj["accuracy"] == pytest.approx(0.6)
    texts = ["goal match team win"] * 12 + ["shares market profit bank"] * 8
    tf = tfidf_cv_scores(texts, y, folds)
    assert tf["accuracy"] == 1.0 and tf["macro_f1"] == 1.0
    assert maj["macro_f1"] < tf["macro_f1"]
