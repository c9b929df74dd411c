"""The baselines every model must beat: majority class and a *tuned* TF-IDF (1–2 grams) + logistic
regression.

An untuned baseline flatters transfer (issue 11: 0.340 untuned vs 0.483 with C chosen by CV on the
same data), so ``train`` fits :class:`TfidfBaseline` with ``tune=True``: C and the class weighting
are chosen by stratified k-fold cross-validation on the **training split only** (the vectorizer is
refit inside each fold, so no fold sees its own held-out vocabulary statistics). Every gap
``train`` prints or records is against this tuned baseline.

When the smallest class has fewer examples than folds, the number of folds drops to that size; with
a class of a single example no stratified CV is possible and the stated fallback is used
(``C=10``, class weighting ``balanced`` when the classes are imbalanced), recorded in ``cv_``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferops.errors import DataError, NotFittedError
from transferops.metrics import classification_metrics

#: Grid searched by ``tune=True``: log-spaced C, with and without balanced class weights (the
#: weighting is only searched when the largest class is over 1.5x the smallest: below that the two
#: fits are near-identical and the grid would cost twice as much for nothing).
C_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
CLASS_WEIGHT_GRID: tuple[str | None, ...] = (None, "balanced")
FALLBACK_C = 10.0


def _macro_f1(y: np.ndarray, proba: np.ndarray, multilabel: bool) -> float:
    return classification_metrics(y, proba, multilabel=multilabel)["macro_f1"]


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

    >>> b = TfidfBaseline(tune=True).fit(train_texts, y_train, n_classes=5)   # doctest: +SKIP
    >>> b.C_, b.class_weight_, b.cv_["folds"]                                  # doctest: +SKIP
    (3.0, 'balanced', 5)
    >>> b.predict_proba(["some text"]).shape                                   # doctest: +SKIP
    (1, 5)
    """

    max_features: int = 100_000
    ngram_range: tuple[int, int] = (1, 2)
    C: float = 10.0
    class_weight: str | None = None
    multilabel: bool = False
    tune: bool = False
    cv_folds: int = 5
    seed: int = 0
    fit_seconds_: float | None = field(default=None, init=False)
    C_: float | None = field(default=None, init=False)
    class_weight_: str | None = field(default=None, init=False)
    cv_: dict[str, Any] = field(default_factory=dict, init=False)
    _pipe: Any = field(default=None, init=False, repr=False)

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=self.ngram_range, max_features=self.max_features,
                               sublinear_tf=True, min_df=1)

    def _classifier(self, C: float, class_weight: str | None) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        lr = LogisticRegression(C=C, max_iter=2000, tol=1e-3, random_state=self.seed, class_weight=class_weight)
        return OneVsRestClassifier(lr) if self.multilabel else lr

    def fit(self, texts: list[str], y: np.ndarray, *, n_classes: int) -> TfidfBaseline:
        from threadpoolctl import threadpool_limits

        # L-BFGS on a sparse TF-IDF matrix is memory-bound: BLAS threads only fight each other (8x
        # slower measured on 2 busy cores), so the baseline runs single-threaded.
        with threadpool_limits(1):
            return self._fit(texts, y, n_classes=n_classes)

    def _fit(self, texts: list[str], y: np.ndarray, *, n_classes: int) -> TfidfBaseline:
        from sklearn.pipeline import make_pipeline

        t0 = time.perf_counter()
        y = np.asarray(y)
        self._n_classes = n_classes
        check_baseline_memory(texts, n_classes, self.max_features, self.ngram_range)
        C, cw = self.C, self.class_weight
        if self.tune:
            C, cw = self._tune(texts, y, n_classes)
        self.C_, self.class_weight_ = C, cw
        self._pipe = make_pipeline(self._vectorizer(), self._classifier(C, cw))
        self._pipe.fit(texts, y)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _tune(self, texts: list[str], y: np.ndarray, n_classes: int) -> tuple[float, str | None]:
        from sklearn.model_selection import KFold, StratifiedKFold

        if self.multilabel:
            n_min = int(min(y.sum(axis=0).min(), (1 - y).sum(axis=0).min()))
            splitter: Any = KFold
        else:
            counts = np.bincount(y, minlength=n_classes)
            n_min = int(counts[counts > 0].min())
            splitter = StratifiedKFold
        folds = min(self.cv_folds, n_min, len(y))
        imbalanced = (not self.multilabel and
                      np.bincount(y).max() / max(np.bincount(y)[np.bincount(y) > 0].min(), 1) > 3.0)
        if folds < 2:
            cw = "balanced" if imbalanced else None
            self.cv_ = {"folds": 0, "fallback": True,
                        "reason": f"the smallest class has {n_min} training example(s), fewer than 2 folds: "
                                  f"no cross-validation; fallback C={FALLBACK_C:g}, class_weight={cw}",
                        "C": FALLBACK_C, "class_weight": cw}
            return FALLBACK_C, cw
        split = splitter(n_splits=folds, shuffle=True, random_state=self.seed)
        arr = np.asarray(texts, dtype=object)
        # Vectorize once per fold (fit on the fold's training part only), then sweep the grid.
        fold_data = []
        for tr, va in split.split(arr, y if not self.multilabel else np.zeros(len(y))):
            vec = self._vectorizer().fit(arr[tr])
            fold_data.append((vec.transform(arr[tr]), y[tr], vec.transform(arr[va]), y[va]))
        scores: dict[tuple[float, str | None], list[float]] = {}
        ratio = (1.0 if self.multilabel else
                 float(np.bincount(y).max() / max(np.bincount(y)[np.bincount(y) > 0].min(), 1)))
        for C in C_GRID:
            for cw in (CLASS_WEIGHT_GRID if ratio > 1.5 else (None,)):
                s = []
                for xtr, ytr, xva, yva in fold_data:
                    clf = self._classifier(C, cw).fit(xtr, ytr)
                    s.append(_macro_f1(yva, _full_proba(clf, xva, n_classes, self.multilabel),
                                       self.multilabel))
                scores[(C, cw)] = s
        # Best mean; ties go to the smaller C (simpler model) and to no weighting.
        best = max(scores, key=lambda k: (round(float(np.mean(scores[k])), 6), -k[0], k[1] is None))
        self.cv_ = {"folds": folds, "fallback": folds < self.cv_folds,
                    "reason": (f"{folds}-fold stratified CV on the training split" if folds == self.cv_folds
                               else f"{folds}-fold CV: the smallest class has only {n_min} training examples "
                                    f"(fewer than {self.cv_folds} folds)"),
                    "C": best[0], "class_weight": best[1], "cv_macro_f1": round(float(np.mean(scores[best])), 4),
                    "cv_macro_f1_std": round(float(np.std(scores[best])), 4),
                    "grid": [{"C": k[0], "class_weight": k[1], "macro_f1": round(float(np.mean(v)), 4)}
                             for k, v in scores.items()]}
        return best

    # ----------------------------------------------------------------- prediction
    @property
    def vectorizer_(self) -> Any:
        if self._pipe is None:
            raise NotFittedError("TfidfBaseline is not fitted; call fit() first")
        return self._pipe.steps[0][1]

    @property
    def classifier_(self) -> Any:
        if self._pipe is None:
            raise NotFittedError("TfidfBaseline is not fitted; call fit() first")
        return self._pipe.steps[-1][1]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self._pipe is None:
            raise NotFittedError("TfidfBaseline is not fitted; call fit() first")
        return _full_proba(self.classifier_, self.vectorizer_.transform(texts), self._n_classes, self.multilabel)

    def params(self) -> dict[str, Any]:
        return {"ngram_range": list(self.ngram_range), "max_features": self.max_features, "C": self.C_,
                "class_weight": self.class_weight_, "cv": {k: v for k, v in self.cv_.items() if k != "grid"}}


def _full_proba(clf: Any, x: Any, n_classes: int, multilabel: bool) -> np.ndarray:
    p = clf.predict_proba(x)
    if multilabel:
        return np.asarray(p)
    # Classes absent from the training fold still need a column.
    out = np.zeros((x.shape[0], n_classes))
    out[:, clf.classes_] = p
    return out


def majority_proba(y_train: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    counts = np.bincount(y_train, minlength=n_classes).astype(float)
    prior = counts / counts.sum()
    return np.tile(prior, (n, 1))


def baseline_report(train_texts: list[str], y_train: np.ndarray, test_texts: list[str], y_test: np.ndarray,
                    *, n_classes: int, multilabel: bool = False, seed: int = 0, tune: bool = True,
                    validation: tuple[list[str], np.ndarray] | None = None,
                    fitted: TfidfBaseline | None = None) -> dict[str, Any]:
    """Fit the tuned TF-IDF baseline on train and score it (and the majority class) on test
    (and on validation when given). ``fitted`` reuses an already fitted baseline."""
    b = fitted or TfidfBaseline(multilabel=multilabel, seed=seed, tune=tune).fit(train_texts, y_train,
                                                                                 n_classes=n_classes)
    entry: dict[str, Any] = {
        "metrics": classification_metrics(y_test, b.predict_proba(test_texts), multilabel=multilabel),
        "fit_seconds": round(b.fit_seconds_ or 0.0, 3),
        "tuned": bool(b.tune),
        "params": b.params(),
    }
    if validation is not None:
        entry["validation_metrics"] = classification_metrics(validation[1], b.predict_proba(validation[0]),
                                                             multilabel=multilabel)
    out: dict[str, Any] = {"tfidf_logreg": entry}
    if not multilabel:
        out["majority"] = {"metrics": classification_metrics(
            y_test, majority_proba(y_train, len(test_texts), n_classes))}
    return out
