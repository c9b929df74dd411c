"""Core classification metrics shared by train, baselines, select and evaluate (scikit-learn based)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, *, multilabel: bool = False,
                           thresholds: np.ndarray | float = 0.5) -> dict[str, float]:
    """Headline metrics from integer labels (or a 0/1 matrix for multi-label) and probabilities."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    out: dict[str, float] = {}
    if multilabel:
        pred = (proba >= np.asarray(thresholds)).astype(int)
        out["subset_accuracy"] = float(skm.accuracy_score(y_true, pred))
        out["accuracy"] = out["subset_accuracy"]
        out["macro_f1"] = float(skm.f1_score(y_true, pred, average="macro", zero_division=0))
        out["micro_f1"] = float(skm.f1_score(y_true, pred, average="micro", zero_division=0))
        out["hamming_loss"] = float(skm.hamming_loss(y_true, pred))
        return out
    pred = proba.argmax(axis=1)
    k = proba.shape[1]
    out["accuracy"] = float(skm.accuracy_score(y_true, pred))
    out["macro_f1"] = float(skm.f1_score(y_true, pred, average="macro", labels=list(range(k)), zero_division=0))
    out["weighted_f1"] = float(skm.f1_score(y_true, pred, average="weighted", labels=list(range(k)),
                                            zero_division=0))
    out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, pred))
    clipped = np.clip(proba, 1e-12, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    out["log_loss"] = float(skm.log_loss(y_true, clipped, labels=list(range(k))))
    return out


def encode_labels(y: list[Any], labels: list[str], multilabel: bool) -> np.ndarray:
    index = {lbl: i for i, lbl in enumerate(labels)}
    if multilabel:
        m = np.zeros((len(y), len(labels)), dtype=np.int64)
        for r, row in enumerate(y):
            for lbl in row:
                m[r, index[lbl]] = 1
        return m
    return np.asarray([index[v] for v in y], dtype=np.int64)
