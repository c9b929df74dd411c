"""The cheap non-transfer baseline for images: logistic regression on downsampled pixels + colour
histograms (no pretrained weights). Trained on every run; the model search must beat it on validation.

Features (:func:`pixel_features`): the image centre-cropped to a square and downsampled to
``side`` × ``side`` grey levels (``side²`` values), per-channel 8-bin colour histograms (24) and the
per-channel mean and std (6), all in [0, 1]. Then standardisation + ``LogisticRegression`` with ``C`` chosen
by 3-fold cross-validation on train. The fitted state is plain arrays (``coef_``, ``intercept_``,
``mean_``, ``scale_``) saved as safetensors: no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

C_GRID = (0.01, 0.1, 1.0)


def pixel_features(images: Sequence[Any], side: int = 16) -> np.ndarray:
    """Decoded RGB ``PIL`` images → (n, side² + 30) float32."""
    from PIL import Image

    rows = []
    for im in images:
        w, h = im.size
        s = min(w, h)
        sq = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        grey = np.asarray(sq.convert("L").resize((side, side), Image.Resampling.BOX), np.float32) / 255.0
        rgb = np.asarray(sq.resize((64, 64), Image.Resampling.BOX), np.float32) / 255.0
        hist = [np.histogram(rgb[..., c], bins=8, range=(0.0, 1.0))[0] / rgb[..., c].size for c in range(3)]
        stats = [rgb[..., c].mean() for c in range(3)] + [rgb[..., c].std() for c in range(3)]
        rows.append(np.concatenate([grey.ravel(), *hist, np.asarray(stats, np.float32)]))
    return np.asarray(rows, np.float32)


class PixelBaseline:
    """Standardised pixel features + logistic regression (scikit-learn style: fitted state ends in ``_``)."""

    name = "pixel_logreg"

    def __init__(self, *, side: int = 16, multilabel: bool = False, seed: int = 0, tune: bool = True,
                 C: float = 0.1, max_iter: int = 300) -> None:
        self.side = side
        self.multilabel = multilabel
        self.seed = seed
        self.tune = tune
        self.C = C
        self.max_iter = max_iter

    def features(self, items: Sequence[Any]) -> np.ndarray:
        from transferops.modality.image import IMAGE

        return pixel_features(IMAGE.check_inputs(items), self.side)

    def fit(self, items: Sequence[Any], y: np.ndarray, *, n_classes: int | None = None) -> PixelBaseline:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        if self.multilabel:
            from transferops.errors import ConfigError

            raise ConfigError("task: the image modality trains single-label (binary / multi-class) models; "
                              "multi-label images are not supported yet")
        x = self.features(items)
        y = np.asarray(y)
        self.n_classes_ = int(n_classes or (int(y.max()) + 1))
        self.mean_ = x.mean(0)
        self.scale_ = x.std(0) + 1e-6
        z = (x - self.mean_) / self.scale_
        best_c = self.C
        _, counts = np.unique(y, return_counts=True)
        if self.tune and len(counts) > 1 and counts.min() >= 3:
            folds = StratifiedKFold(3, shuffle=True, random_state=self.seed)
            scores = {c: cross_val_score(LogisticRegression(C=c, max_iter=self.max_iter), z, y, cv=folds,
                                         scoring="f1_macro").mean() for c in C_GRID}
            best_c = max(scores, key=lambda c: scores[c])
        self.C_ = best_c
        lr = LogisticRegression(C=best_c, max_iter=self.max_iter).fit(z, y)
        coef, icpt = lr.coef_, lr.intercept_
        full_w = np.zeros((self.n_classes_, x.shape[1]), np.float32)
        full_b = np.full(self.n_classes_, -30.0, np.float32)  # classes absent from train: never predicted
        if coef.shape[0] == 1:  # binary: scikit-learn keeps one row
            full_w[lr.classes_[1]], full_b[lr.classes_[1]] = coef[0], icpt[0]
            full_w[lr.classes_[0]], full_b[lr.classes_[0]] = 0.0, 0.0
        else:
            full_w[lr.classes_], full_b[lr.classes_] = coef, icpt
        self.coef_, self.intercept_ = full_w, full_b
        return self

    def logits_from_features(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_  # type: ignore[no-any-return]

    def logits(self, items: Sequence[Any]) -> np.ndarray:
        return self.logits_from_features(self.features(items))

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        from transferops.modeling import softmax

        return softmax(self.logits(items))  # type: ignore[no-any-return]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef_, "intercept": self.intercept_, "mean": self.mean_, "scale": self.scale_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, side: int) -> PixelBaseline:
        b = cls(side=side)
        b.coef_, b.intercept_ = arrays["coef"], arrays["intercept"]
        b.mean_, b.scale_ = arrays["mean"], arrays["scale"]
        b.n_classes_ = int(b.coef_.shape[0])
        return b


__all__ = ["PixelBaseline", "pixel_features"]
