"""Metric computations for evaluation: aggregate, per-class, confusion, bootstrap CIs, slices.

All functions take integer classes (or a 0/1 matrix for multi-label), probabilities and hard
predictions, and return plain dicts; nothing here plots or prints.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

from transferops.metrics import label_metrics, log_loss, safe_metric

# re-exported: the automatic text-length slice is the text modality's
from transferops.modality.text import length_quartiles as length_quartiles

#: Metrics where lower is better (gates written as bare numbers mean "<=" for these).
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "hamming_loss"})


def predictions(proba: np.ndarray, manifest: dict[str, Any], labels: list[str], multilabel: bool
                ) -> np.ndarray:
    """Hard predictions with the model's stored decision rule, as indices / 0-1 matrix
    (the one rule of :mod:`transferops.decision`)."""
    from transferops.decision import decide_indices

    return decide_indices(proba, manifest, labels, multilabel)


def aggregate(y: np.ndarray, proba: np.ndarray, pred: np.ndarray, *, multilabel: bool,
              positive_index: int = 1) -> dict[str, float]:
    """Headline metrics: :func:`transferops.metrics.label_metrics` of the decisions plus the
    probability metrics (AUCs, Brier, log loss, ECE). Single-label Brier is the multi-class form
    (binary: on the positive class)."""
    from transferops.evaluate.calibration import ece

    proba = np.asarray(proba, dtype=np.float64)
    if multilabel:
        out = label_metrics(y, pred, multilabel=True)
        present = y.sum(axis=0) > 0
        both = present & (y.sum(axis=0) < len(y))
        nan = float("nan")
        out["roc_auc"] = (safe_metric(skm.roc_auc_score, y[:, both], proba[:, both], average="macro")
                          if both.any() else nan)
        out["pr_auc"] = (safe_metric(skm.average_precision_score, y[:, present], proba[:, present], average="macro")
                         if present.any() else nan)
        p = np.clip(proba, 1e-12, 1 - 1e-12)
        out["log_loss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        out["brier"] = float(np.mean((proba - y) ** 2))
        out["ece"] = ece(proba, y)
        return out
    k = proba.shape[1]
    out = label_metrics(y, pred, n_classes=k, positive_index=positive_index)
    onehot = np.eye(k)[y]
    if k == 2:
        out["roc_auc"] = safe_metric(skm.roc_auc_score, y == positive_index, proba[:, positive_index])
        out["pr_auc"] = safe_metric(skm.average_precision_score, y == positive_index, proba[:, positive_index])
        out["brier"] = float(np.mean((proba[:, positive_index] - onehot[:, positive_index]) ** 2))
    else:
        present = np.flatnonzero(onehot.sum(axis=0) > 0)
        # One-vs-rest AUC per class present in the data, averaged (macro): sklearn's multi_class="ovr"
        # refuses data in which some class is absent, which slices and small files often are.
        aucs = [safe_metric(skm.roc_auc_score, onehot[:, j], proba[:, j]) for j in present]
        aps = [safe_metric(skm.average_precision_score, onehot[:, j], proba[:, j]) for j in present]
        out["roc_auc"] = float(np.nanmean(aucs)) if aucs and not np.all(np.isnan(aucs)) else float("nan")
        out["pr_auc"] = float(np.nanmean(aps)) if aps and not np.all(np.isnan(aps)) else float("nan")
        out["brier"] = float(np.mean(((proba - onehot) ** 2).sum(axis=1)))
    out["log_loss"] = log_loss(y, proba)
    out["ece"] = ece(proba, y)
    return out


def per_class(y: np.ndarray, proba: np.ndarray, pred: np.ndarray, labels: list[str], *,
              multilabel: bool) -> list[dict[str, Any]]:
    """Precision, recall, F1, support and one-vs-rest ROC-AUC for each class (or label)."""
    k = len(labels)
    if multilabel:
        p, r, f, s = skm.precision_recall_fscore_support(y, pred, average=None, zero_division=0)
        truth = y
    else:
        p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=list(range(k)), average=None,
                                                         zero_division=0)
        truth = np.eye(k, dtype=np.int64)[y]
    predicted = pred.sum(axis=0) if multilabel else np.bincount(pred, minlength=k)
    rows = []
    for j, lbl in enumerate(labels):
        rows.append({"label": lbl, "precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]),
                     "support": int(s[j]), "predicted": int(predicted[j]),
                     "roc_auc": safe_metric(skm.roc_auc_score, truth[:, j], proba[:, j])})
    return rows


def confusion(y: np.ndarray, pred: np.ndarray, k: int, *, multilabel: bool) -> list[list[int]]:
    """k×k confusion (rows true, columns predicted); multi-label: per label [[tn, fp], [fn, tp]] flattened."""
    if multilabel:
        t, p = y.astype(bool), pred.astype(bool)
        return [[int((~t[:, j] & ~p[:, j]).sum()), int((~t[:, j] & p[:, j]).sum()),
                 int((t[:, j] & ~p[:, j]).sum()), int((t[:, j] & p[:, j]).sum())] for j in range(k)]
    return skm.confusion_matrix(y, pred, labels=list(range(k))).astype(int).tolist()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- bootstrap


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def bootstrap_ci(y: np.ndarray, pred: np.ndarray, k: int, *, multilabel: bool, n: int = 1000,
                 seed: int = 0, level: float = 0.95, positive_index: int = 1
                 ) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for the headline metrics (vectorised: 1,000 resamples in ~ms)."""
    if n <= 0 or len(y) < 2:
        return {}
    rng = np.random.default_rng(seed)
    m = len(y)
    idx = rng.integers(0, m, size=(n, m))
    stats: dict[str, np.ndarray] = {}
    if multilabel:
        yt, yp = y[idx], pred[idx]  # (n, m, k)
        tp = ((yt == 1) & (yp == 1)).sum(axis=1).astype(float)
        fp = ((yt == 0) & (yp == 1)).sum(axis=1).astype(float)
        fn = ((yt == 1) & (yp == 0)).sum(axis=1).astype(float)
        stats["micro_f1"] = _f1_from_counts(tp.sum(1), fp.sum(1), fn.sum(1))
        stats["macro_f1"] = _f1_from_counts(tp, fp, fn).mean(axis=1)
        stats["subset_accuracy"] = (yt == yp).all(axis=2).mean(axis=1)
    else:
        yt, yp = y[idx], pred[idx]  # (n, m)
        # Per-resample confusion counts through one bincount over (resample, true, pred) codes.
        codes = (np.arange(n)[:, None] * k * k + yt * k + yp).ravel()
        cm = np.bincount(codes, minlength=n * k * k).reshape(n, k, k).astype(float)
        tp = np.diagonal(cm, axis1=1, axis2=2)
        support = cm.sum(axis=2)
        predicted = cm.sum(axis=1)
        f1 = _f1_from_counts(tp, predicted - tp, support - tp)
        stats["accuracy"] = tp.sum(axis=1) / m
        stats["macro_f1"] = f1.mean(axis=1)
        stats["weighted_f1"] = (f1 * support).sum(axis=1) / m
        with np.errstate(invalid="ignore", divide="ignore"):
            rec = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample may miss a class entirely
            stats["balanced_accuracy"] = np.nanmean(rec, axis=1)
        if k == 2:
            j = positive_index
            stats["precision"] = np.where(predicted[:, j] > 0, tp[:, j] / np.maximum(predicted[:, j], 1), 0.0)
            stats["recall"] = np.where(support[:, j] > 0, tp[:, j] / np.maximum(support[:, j], 1), np.nan)
            stats["f1"] = f1[:, j]
    a = (1 - level) / 2
    return {name: (float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a))) for name, v in stats.items()
            if not np.all(np.isnan(v))}


# --------------------------------------------------------------------------- slices


def slice_metrics(y: np.ndarray, pred: np.ndarray, k: int, *, multilabel: bool,
                  positive_index: int = 1) -> dict[str, Any]:
    """Metrics of one slice. ``recall``/``precision``/``f1``: binary → positive class; multi-class →
    macro over the classes present in the slice; multi-label → micro. Also per-class recall."""
    out: dict[str, Any] = {"support": len(y)}
    if multilabel:
        out["accuracy"] = float(skm.accuracy_score(y, pred))
        out["macro_f1"] = float(skm.f1_score(y, pred, average="macro", zero_division=0))
        out["recall"] = float(skm.recall_score(y, pred, average="micro", zero_division=0))
        out["precision"] = float(skm.precision_score(y, pred, average="micro", zero_division=0))
        out["f1"] = float(skm.f1_score(y, pred, average="micro", zero_division=0))
        sup = y.sum(axis=0)
        rec = ((y == 1) & (pred == 1)).sum(axis=0) / np.maximum(sup, 1)
        out["class_recall"] = {int(j): float(rec[j]) for j in range(k) if sup[j] > 0}
        out["class_support"] = {int(j): int(sup[j]) for j in range(k) if sup[j] > 0}
        return out
    present = sorted(set(y.tolist()))
    out["accuracy"] = float((y == pred).mean())
    out["macro_f1"] = float(skm.f1_score(y, pred, average="macro", labels=present, zero_division=0))
    if k == 2:
        out["recall"] = float(skm.recall_score(y, pred, pos_label=positive_index, zero_division=0)) \
            if (y == positive_index).any() else float("nan")
        out["precision"] = float(skm.precision_score(y, pred, pos_label=positive_index, zero_division=0))
        out["f1"] = float(skm.f1_score(y, pred, pos_label=positive_index, zero_division=0))
    else:
        out["recall"] = float(skm.recall_score(y, pred, average="macro", labels=present, zero_division=0))
        out["precision"] = float(skm.precision_score(y, pred, average="macro", labels=present,
                                                     zero_division=0))
        out["f1"] = out["macro_f1"]
    sup = np.bincount(y, minlength=k)
    hit = np.bincount(y[y == pred], minlength=k)
    out["class_recall"] = {int(j): float(hit[j] / sup[j]) for j in range(k) if sup[j] > 0}
    out["class_support"] = {int(j): int(sup[j]) for j in range(k) if sup[j] > 0}
    return out

