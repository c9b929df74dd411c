"""Classification metrics, in one place: train, search, baselines, select, distillation, evaluate
and retrain all score with :func:`label_metrics` (hard decisions) and :func:`log_loss`
(scikit-learn based); ``evaluate.metrics.aggregate`` adds the probability metrics on top.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

#: Keys of :func:`classification_metrics` (the training-time headline, stored in manifests).
HEADLINE_KEYS: tuple[str, ...] = ("accuracy", "macro_f1", "weighted_f1", "balanced_accuracy", "log_loss")
MULTILABEL_HEADLINE_KEYS: tuple[str, ...] = ("subset_accuracy", "accuracy", "macro_f1", "micro_f1", "hamming_loss")


def safe_metric(fn: Any, *a: Any, **kw: Any) -> float:
    """A metric that is undefined on this data (e.g. AUC with one class present) is NaN, not an error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn(*a, **kw))
    except ValueError:
        return float("nan")


def label_metrics(y: np.ndarray, pred: np.ndarray, *, n_classes: int | None = None, multilabel: bool = False,
                  positive_index: int | None = None) -> dict[str, float]:
    """Metrics of hard decisions — the one implementation every stage scores labels with.

    Single-label (integer classes; ``n_classes`` defaults to the largest class seen + 1): accuracy,
    macro/micro/weighted F1 over all classes, balanced accuracy; with ``positive_index`` on a binary
    task also precision, recall, F1 and specificity of that class. Multi-label (0-1 matrices):
    subset accuracy (= accuracy), micro/macro/weighted F1, micro precision/recall, Hamming loss.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    out: dict[str, float] = {}
    if multilabel:
        out["subset_accuracy"] = float(skm.accuracy_score(y, pred))
        out["accuracy"] = out["subset_accuracy"]
        out["micro_f1"] = float(skm.f1_score(y, pred, average="micro", zero_division=0))
        out["macro_f1"] = float(skm.f1_score(y, pred, average="macro", zero_division=0))
        out["weighted_f1"] = float(skm.f1_score(y, pred, average="weighted", zero_division=0))
        out["micro_precision"] = float(skm.precision_score(y, pred, average="micro", zero_division=0))
        out["micro_recall"] = float(skm.recall_score(y, pred, average="micro", zero_division=0))
        out["hamming_loss"] = float(skm.hamming_loss(y, pred))
        return out
    k = int(n_classes) if n_classes is not None else int(max(y.max(initial=0), pred.max(initial=0))) + 1
    labels = list(range(k))
    out["accuracy"] = float(skm.accuracy_score(y, pred))
    out["macro_f1"] = float(skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0))
    out["micro_f1"] = float(skm.f1_score(y, pred, average="micro", labels=labels, zero_division=0))
    out["weighted_f1"] = float(skm.f1_score(y, pred, average="weighted", labels=labels, zero_division=0))
    out["balanced_accuracy"] = safe_metric(skm.balanced_accuracy_score, y, pred)
    if positive_index is not None and k == 2:
        out["precision"] = float(skm.precision_score(y, pred, pos_label=positive_index, zero_division=0))
        out["recall"] = float(skm.recall_score(y, pred, pos_label=positive_index, zero_division=0))
        out["f1"] = float(skm.f1_score(y, pred, pos_label=positive_index, zero_division=0))
        neg = 1 - positive_index
        out["specificity"] = float(((pred == neg) & (y == neg)).sum() / max((y == neg).sum(), 1))
    return out


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Single-label log loss over all classes (probabilities clipped and renormalised)."""
    proba = np.asarray(proba, dtype=np.float64)
    clipped = np.clip(proba, 1e-12, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(skm.log_loss(y, clipped, labels=list(range(proba.shape[1]))))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, *, multilabel: bool = False,
                           thresholds: np.ndarray | float = 0.5) -> dict[str, float]:
    """Headline metrics (:data:`HEADLINE_KEYS`) from integer labels (or a 0/1 matrix for
    multi-label) and probabilities, deciding by argmax (multi-label: ``thresholds``)."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if multilabel:
        m = label_metrics(y_true, (proba >= np.asarray(thresholds)).astype(int), multilabel=True)
        return {k: m[k] for k in MULTILABEL_HEADLINE_KEYS}
    m = label_metrics(y_true, proba.argmax(axis=1), n_classes=proba.shape[1])
    m["log_loss"] = log_loss(y_true, proba)
    return {k: m[k] for k in HEADLINE_KEYS}


def encode_labels(y: list[Any], labels: list[str], multilabel: bool) -> np.ndarray:
    index = {lbl: i for i, lbl in enumerate(labels)}
    if multilabel:
        m = np.zeros((len(y), len(labels)), dtype=np.int64)
        for r, row in enumerate(y):
            for lbl in row:
                m[r, index[lbl]] = 1
        return m
    return np.asarray([index[v] for v in y], dtype=np.int64)
