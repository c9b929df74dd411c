"""Cheap transferability scores on frozen features: LogME, leave-one-out kNN, a cross-validated probe.

All three take a feature matrix ``(n, d)`` and integer labels ``(n,)`` and need no model, so they are
tested on synthetic data with a known answer (separable vs random labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferops.errors import DataError

# --------------------------------------------------------------------------- LogME


@dataclass
class LogMEResult:
    """Per-sample log marginal evidence, averaged over the one-hot label columns."""

    evidence: float
    per_class: list[float]
    alphas: list[float]
    betas: list[float]
    iterations: list[int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def logme(features: np.ndarray, y: np.ndarray, *, n_classes: int | None = None, max_iter: int = 100,
          tol: float = 1e-3) -> LogMEResult:
    """LogME (You et al., ICML 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning"): the log evidence of a Bayesian linear model ``y_k ~ N(F w, 1/beta)``,
    ``w ~ N(0, 1/alpha)`` on the frozen features, for each one-hot label column ``y_k``, maximised over
    ``alpha`` and ``beta`` by the paper's fixed-point iteration (MacKay's updates), divided by ``n`` and
    averaged over classes. Higher is better.

    The SVD ``F = U S V^T`` is done once (via the Gram matrix when ``d > n``); with ``sigma = s^2``
    and ``x = U^T y_k`` every quantity in the iteration is a sum over singular values, so each class
    costs O(min(n, d)) per iteration.

    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 20)
    >>> good = np.eye(3)[y] * 3 + rng.normal(size=(60, 3))
    >>> logme(good, y).evidence > logme(rng.normal(size=(60, 3)), y).evidence
    True
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    if f.ndim != 2 or len(f) != len(y):
        raise DataError(f"logme: features must be (n, d) with n == len(y); got {f.shape} and {y.shape}")
    n, d = f.shape
    k = int(n_classes if n_classes is not None else y.max() + 1)
    if d > n:
        # Wide features (TF-IDF, or n < hidden size): the n x n Gram matrix has the same left singular
        # vectors and sigma = s^2 as eigenvalues, at O(n^2 d) instead of a d-wide SVD.
        sigma, u = np.linalg.eigh(f @ f.T)
        order = np.argsort(sigma)[::-1]
        sigma, u = np.clip(sigma[order], 0.0, None), u[:, order]
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)  # u: (n, r), r = min(n, d)
        sigma = s**2
    r = len(sigma)
    per_class, alphas, betas, iters = [], [], [], []
    for c in range(k):
        yc = (y == c).astype(np.float64)
        x = u.T @ yc
        x2 = x**2
        # The part of y outside the column space of F: no weight can fit it.
        res_x2 = max(float(yc @ yc - x2.sum()), 0.0)
        alpha, beta = 1.0, 1.0
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
            t = alpha / beta
            gamma = float((sigma / (sigma + t)).sum())
            m2 = float((sigma * x2 / (t + sigma) ** 2).sum())  # m^T m of the posterior mean
            res2 = float((x2 / (1.0 + sigma / t) ** 2).sum()) + res_x2  # ||F m - y||^2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= tol:
                break
        t = alpha / beta
        m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
        res2 = float((x2 / (1.0 + sigma / t) ** 2).sum()) + res_x2
        # log|A| with A = alpha I_d + beta F^T F: d - r eigenvalues of F^T F are zero (n < d case).
        logdet = float(np.log(alpha + beta * sigma).sum()) + (d - r) * np.log(alpha)
        ev = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * logdet - beta / 2.0 * res2
              - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))
        per_class.append(float(ev / n))
        alphas.append(float(alpha))
        betas.append(float(beta))
        iters.append(it)
    return LogMEResult(float(np.mean(per_class)), per_class, alphas, betas, iters)


# --------------------------------------------------------------------------- kNN


def knn_loo_accuracy(features: np.ndarray, y: np.ndarray, *, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy under cosine similarity.

    Each example is classified by a majority vote of its ``k`` nearest other examples; ties go to
    the class with the larger summed similarity.

    >>> X = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]]); y = np.array([0, 0, 1, 1])
    >>> knn_loo_accuracy(X, y, k=1)
    1.0
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    n = len(f)
    if n < 2:
        raise DataError("knn: leave-one-out needs at least 2 examples")
    k = max(1, min(k, n - 1))
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    z = f / np.where(norm == 0, 1.0, norm)
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    nn = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    n_classes = int(y.max()) + 1
    votes = np.zeros((n, n_classes))
    weight = np.zeros((n, n_classes))
    rows = np.repeat(np.arange(n), k)
    np.add.at(votes, (rows, y[nn].ravel()), 1.0)
    np.add.at(weight, (rows, y[nn].ravel()), sim[rows, nn.ravel()])
    # Votes dominate; the similarity sum (bounded by k) only breaks ties.
    pred = np.argmax(votes * (2.0 * k + 1.0) + weight, axis=1)
    return float((pred == y).mean())


# --------------------------------------------------------------------------- probe


def cv_folds(y: np.ndarray, *, max_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds shared by the probe and the baselines, so all are scored on the same splits."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(np.asarray(y))
    counts = counts[counts > 0]
    n_folds = int(min(max_folds, counts.min()))
    if n_folds < 2:
        raise DataError("probe: every class needs at least 2 examples for cross-validation")
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in skf.split(np.zeros(len(y)), y)]


def probe_cv_scores(features: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], *,
                    C: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Cross-validated accuracy and macro-F1 of a logistic-regression probe on standardised features.

    Predictions from every held-out fold are pooled before scoring (one number per metric).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    pred = np.empty_like(y)
    for tr, te in folds:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
        clf.fit(f[tr], y[tr])
        pred[te] = clf.predict(f[te])
    return _acc_f1(y, pred)


def _acc_f1(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from transferops.metrics import label_metrics

    m = label_metrics(y, pred, n_classes=int(y.max()) + 1)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def majority_cv_scores(y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The majority class of each training fold, scored on its held-out fold."""
    y = np.asarray(y)
    pred = np.empty_like(y)
    for tr, te in folds:
        pred[te] = np.bincount(y[tr]).argmax()
    return _acc_f1(y, pred)


def tfidf_cv_scores(texts: list[str], y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], *,
                    seed: int = 0) -> dict[str, float]:
    """The TF-IDF + logistic-regression baseline (same class as in ``train``) on the same folds."""
    from transferops.baselines import TfidfBaseline

    y = np.asarray(y)
    n_classes = int(y.max()) + 1
    pred = np.empty_like(y)
    arr = np.asarray(texts, dtype=object)
    for tr, te in folds:
        b = TfidfBaseline(seed=seed).fit(list(arr[tr]), y[tr], n_classes=n_classes)
        pred[te] = b.predict_proba(list(arr[te])).argmax(axis=1)
    return _acc_f1(y, pred)


def tfidf_features(texts: list[str]) -> np.ndarray:
    """Dense TF-IDF vectors of the selection texts (vocabulary fit on them, labels unseen), so kNN and
    LogME can score the baseline representation too."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=20_000)
    return np.asarray(vec.fit_transform(texts).toarray(), dtype=np.float64)


__all__ = ["LogMEResult", "cv_folds", "knn_loo_accuracy", "logme", "majority_cv_scores", "probe_cv_scores",
           "tfidf_cv_scores", "tfidf_features"]
