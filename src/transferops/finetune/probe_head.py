"""The probe's head: a logistic regression on sentence embeddings, C chosen by cross-validation. Shared by
the ``probe`` and ``stack`` search candidates (:mod:`transferops.finetune.search`, which re-exports it) and
strategy ``contrastive`` (over its tuned body); a module of its own so the strategy does not import the search."""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_probe_lr(emb: np.ndarray, y: np.ndarray, *, multilabel: bool, class_weight: str | None, seed: int) -> Any:
    """LR on embeddings with C from {0.1, 1, 10} by 3-fold CV (stated fallback C=1 when a class is
    smaller than 2)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.multiclass import OneVsRestClassifier
    from threadpoolctl import threadpool_limits

    def make(C: float) -> Any:
        lr = LogisticRegression(C=C, max_iter=3000, class_weight=class_weight, random_state=seed)
        return OneVsRestClassifier(lr) if multilabel else lr

    with threadpool_limits(1):
        best_c = 1.0
        if not multilabel:
            n_min = int(np.bincount(y)[np.bincount(y) > 0].min())
            folds = min(3, n_min)
            if folds >= 2:
                cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
                scores = {C: cross_val_score(make(C), emb, y, cv=cv, scoring="f1_macro").mean()
                          for C in (0.1, 1.0, 10.0)}
                best_c = max(scores, key=lambda c: (scores[c], -c))
        return make(best_c).fit(emb, y)


__all__ = ["fit_probe_lr"]
