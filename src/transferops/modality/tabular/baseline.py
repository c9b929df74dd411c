"""The gradient-boosted baseline every tabular model must beat: scikit-learn's
``HistGradientBoostingClassifier`` on the encoded table (numeric columns with NaN for missing, category
codes as native categorical splits). Saved with skops (no pickle); loading accepts only the types of a
fitted ``HistGradientBoostingClassifier`` (:data:`TRUSTED_PREFIXES`).

Why this estimator and not XGBoost/LightGBM: it is in scikit-learn (already a dependency), handles
missing values and categorical columns natively, is the same algorithm family (histogram-based
gradient boosting, LightGBM-style), and skops can save it without pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transferops._extras import require
from transferops.errors import ArtifactError, NotFittedError

#: Type names a saved tree model may contain; anything else in a ``.skops`` file is refused.
TRUSTED_PREFIXES = ("sklearn.ensemble._hist_gradient_boosting.", "sklearn._loss.")
#: Exact type names skops reports as untrusted for a fitted ``HistGradientBoostingClassifier``
#: (scikit-learn 1.9: its tree predictors, and the ``partial(check_array, ...)`` it keeps).
TRUSTED_TYPES = frozenset({"functools.partial", "sklearn.utils.validation.check_array"})


def class_weight_vector(y: np.ndarray, n_classes: int, class_weight: Any) -> np.ndarray | None:
    """Per-class weights: ``None``; ``"balanced"`` (n / (k · n_c)); or a mapping class index → weight
    (any ratio, e.g. ``{1: 100.0}`` — classes not named weigh 1)."""
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        return len(y) / (n_classes * np.maximum(counts, 1.0))
    w = np.ones(n_classes)
    for k, v in dict(class_weight).items():
        w[int(k)] = float(v)
    return w


def tree_matrix(num: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trees' input: numeric columns then category codes (0 = missing/unseen → NaN), and the
    boolean categorical mask."""
    cat = codes.astype(np.float64)
    cat[codes == 0] = np.nan
    x = np.hstack([num.astype(np.float64), cat - 1.0])
    mask = np.r_[np.zeros(num.shape[1], dtype=bool), np.ones(codes.shape[1], dtype=bool)]
    return x, mask


class TreeModel:
    """Gradient-boosted trees over ``(numeric, codes)``; ``predict_proba`` gives class probabilities."""

    def __init__(self, *, seed: int = 0, class_weight: Any = None, max_iter: int = 300, learning_rate: float = 0.1,
                 max_leaf_nodes: int = 31, early_stopping: bool = True, n_threads: int | None = 1) -> None:
        self.seed = seed
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.early_stopping = early_stopping
        #: OpenMP threads of the boosting (``None``: the library's default, all cores). 1 by default: on a
        #: shared machine OpenMP's spinning threads made a 420-row fit take 22 s instead of 0.3 s (measured).
        self.n_threads = n_threads

    def fit(self, num: np.ndarray, codes: np.ndarray, y: np.ndarray, *, n_classes: int,
            sample_weight: np.ndarray | None = None) -> TreeModel:
        from sklearn.ensemble import HistGradientBoostingClassifier

        x, mask = tree_matrix(num, codes)
        y = np.asarray(y, dtype=np.int64)
        w = class_weight_vector(y, n_classes, self.class_weight)
        sw = w[y] if w is not None else None
        if sample_weight is not None:
            sw = sample_weight if sw is None else sw * sample_weight
        est = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            categorical_features=mask if mask.any() else None, random_state=self.seed,
            early_stopping=self.early_stopping and len(y) >= 200, validation_fraction=0.1, n_iter_no_change=20)
        with self._threads():
            est.fit(x, y, sample_weight=sw)
        self.estimator_ = est
        self.n_classes_ = n_classes
        return self

    def predict_proba(self, num: np.ndarray, codes: np.ndarray) -> np.ndarray:
        est = getattr(self, "estimator_", None)
        if est is None:
            raise NotFittedError("TreeModel: call fit() first")
        x, _ = tree_matrix(num, codes)
        with self._threads():
            p = est.predict_proba(x)
        out = np.zeros((len(x), self.n_classes_))
        out[:, est.classes_.astype(int)] = p  # a class absent from a small training fold keeps 0
        return out

    def _threads(self) -> Any:
        from contextlib import nullcontext

        from threadpoolctl import threadpool_limits

        n = getattr(self, "n_threads", 1)
        return nullcontext() if n is None else threadpool_limits(limits=n, user_api="openmp")

    # ------------------------------------------------------------ safe persistence (skops, no pickle)
    def save(self, path: str | Path) -> None:
        sio = require("skops.io", "tabular")
        sio.dump(self.estimator_, str(path))

    @classmethod
    def load(cls, path: str | Path, *, n_classes: int) -> TreeModel:
        sio = require("skops.io", "tabular")
        p = Path(path)
        if not p.exists():
            raise ArtifactError(f"{p}: the tree model file is missing; the folder is incomplete")
        untrusted = sio.get_untrusted_types(file=str(p))
        bad = [t for t in untrusted if t not in TRUSTED_TYPES and not t.startswith(TRUSTED_PREFIXES)]
        if bad:
            raise ArtifactError(f"{p}: refusing to load types outside the gradient-boosting allowlist: "
                                f"{', '.join(bad[:5])}")
        m = cls()
        est = sio.load(str(p), trusted=untrusted)
        from sklearn.ensemble import HistGradientBoostingClassifier

        if not isinstance(est, HistGradientBoostingClassifier):
            raise ArtifactError(f"{p}: holds a {type(est).__name__}, not a HistGradientBoostingClassifier")
        m.estimator_ = est
        m.n_classes_ = n_classes
        return m


__all__ = ["TRUSTED_PREFIXES", "TreeModel", "class_weight_vector", "tree_matrix"]
