"""The baselines every model must beat: majority class and TF-IDF (1–2 grams) + logistic regression."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferops.errors import DataError, NotFittedError
from transferops.metrics import classification_metrics

#: Largest memory the TF-IDF baseline may plan for (the sparse matrix plus the solver's dense
#: coefficients); override with TRANSFEROPS_BASELINE_MAX_GB.
BASELINE_MAX_BYTES = 2 * 2**30


def check_baseline_memory(texts: list[str], n_classes: int, max_features: int,
                          ngram_range: tuple[int, int] = (1, 2)) -> int:
    """Estimate the baseline's memory *before* fitting; a clear error instead of an 8 GB surprise.

    Sparse TF-IDF matrix: about one entry per token per n-gram order (12 bytes: value + index).
    Logistic regression (L-BFGS): ``n_classes x (features + 1)`` doubles, times ~12 for the
    gradient and the solver's history. Features are bounded by the vocabulary cap and by the
    number of distinct n-grams, which cannot exceed the token count."""
    import os

    limit = float(os.environ.get("TRANSFEROPS_BASELINE_MAX_GB", BASELINE_MAX_BYTES / 2**30)) * 2**30
    tokens = sum(len(t) for t in texts) // 5 + len(texts)
    orders = ngram_range[1] - ngram_range[0] + 1
    features = min(max_features, tokens * orders)
    sparse = tokens * orders * 12
    dense = (1 if n_classes <= 2 else n_classes) * (features + 1) * 8 * 12
    need = sparse + dense
    if need > limit:
        raise DataError(f"TF-IDF baseline: {n_classes:,} labels x {features:,} features would need about "
                        f"{need / 2**30:.1f} GiB (limit {limit / 2**30:.1f} GiB, TRANSFEROPS_BASELINE_MAX_GB). "
                        f"With {len(texts):,} rows that is {len(texts) / max(n_classes, 1):.1f} rows per label: "
                        "merge rare labels, or skip the baseline (baseline: false in --config, or baseline=False)")
    return int(need)


@dataclass
class TfidfBaseline:
    """TF-IDF + logistic regression (one-vs-rest for multi-label).

    >>> b = TfidfBaseline().fit(train_texts, y_train, n_classes=5)     # doctest: +SKIP
    >>> b.predict_proba(["some text"]).shape                           # doctest: +SKIP
    (1, 5)
    """

    max_features: int = 100_000
    ngram_range: tuple[int, int] = (1, 2)
    C: float = 10.0
    multilabel: bool = False
    seed: int = 0
    fit_seconds_: float | None = field(default=None, init=False)
    _pipe: Any = field(default=None, init=False, repr=False)

    def fit(self, texts: list[str], y: np.ndarray, *, n_classes: int) -> TfidfBaseline:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline

        t0 = time.perf_counter()
        lr = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        clf: Any = OneVsRestClassifier(lr) if self.multilabel else lr
        vec = TfidfVectorizer(ngram_range=self.ngram_range, max_features=self.max_features,
                              sublinear_tf=True, min_df=1)
        self._pipe = make_pipeline(vec, clf)
        self._n_classes = n_classes
        check_baseline_memory(texts, n_classes, self.max_features, self.ngram_range)
        self._pipe.fit(texts, y)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self._pipe is None:
            raise NotFittedError("TfidfBaseline is not fitted; call fit() first")
        p = self._pipe.predict_proba(texts)
        if self.multilabel:
            return np.asarray(p)
        # Classes absent from the training fold still need a column.
        out = np.zeros((len(texts), self._n_classes))
        out[:, self._pipe.classes_] = p
        return out


def majority_proba(y_train: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    counts = np.bincount(y_train, minlength=n_classes).astype(float)
    prior = counts / counts.sum()
    return np.tile(prior, (n, 1))


def baseline_report(train_texts: list[str], y_train: np.ndarray, test_texts: list[str], y_test: np.ndarray,
                    *, n_classes: int, multilabel: bool = False, seed: int = 0) -> dict[str, Any]:
    """Fit the TF-IDF baseline on train and score it (and the majority class) on test."""
    b = TfidfBaseline(multilabel=multilabel, seed=seed).fit(train_texts, y_train, n_classes=n_classes)
    out: dict[str, Any] = {
        "tfidf_logreg": {
            "metrics": classification_metrics(y_test, b.predict_proba(test_texts), multilabel=multilabel),
            "fit_seconds": round(b.fit_seconds_ or 0.0, 3),
        }
    }
    if not multilabel:
        out["majority"] = {"metrics": classification_metrics(
            y_test, majority_proba(y_train, len(test_texts), n_classes))}
    return out
