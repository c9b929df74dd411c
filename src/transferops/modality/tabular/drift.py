"""Per-feature drift of table rows against the training reference, and prediction-rate drift.

* numeric: the reference's deciles (bin edges from the *reference* quantiles; missing values are a bin
  of their own); PSI = Σ (c − r) · ln(c / r) over the bins, KL(current ‖ reference) = Σ c · ln(c / r);
* categorical (and datetime, by month): the reference's category shares (top categories, the rest as
  ``<other>``, missing as ``<missing>``); the same PSI and KL;
* prediction rate: the share of each decided label (binary: the positive rate, e.g. an approval rate
  falling from 68 % to 52 %) against the reference's held-out rate, as an absolute change and a PSI.

Shares are floored at :data:`EPS` before the logarithms (an empty bin would make both infinite).
Only numpy and pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from transferops.modality.tabular.schema import TableSchema

if TYPE_CHECKING:
    import pandas as pd

EPS = 1e-4
N_BINS = 10
TOP_CATEGORIES = 20
MISSING, OTHER = "<missing>", "<other>"


def _numeric_edges(values: np.ndarray, n_bins: int = N_BINS) -> list[float]:
    v = values[~np.isnan(values)]
    if not len(v):
        return []
    edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return [float(e) for e in edges]


def numeric_shares(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Shares per bin: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``, then missing."""
    values = np.asarray(values, dtype=np.float64)
    n = max(len(values), 1)
    miss = np.isnan(values)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values[~miss], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return [float(c / n) for c in counts] + [float(miss.sum() / n)]


def category_shares(values: Sequence[Any], categories: Sequence[str]) -> list[float]:
    """Shares of ``categories``, then ``<other>``, then ``<missing>``."""
    n = max(len(values), 1)
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 2)
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            counts[-1] += 1
        else:
            counts[index.get(str(v), len(categories))] += 1
    return [float(c / n) for c in counts]


def psi(ref: Sequence[float], cur: Sequence[float]) -> float:
    r, c = np.maximum(np.asarray(ref, dtype=np.float64), EPS), np.maximum(np.asarray(cur, dtype=np.float64), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def kl(ref: Sequence[float], cur: Sequence[float]) -> float:
    """KL(current ‖ reference) over floored, renormalised shares."""
    r, c = np.maximum(np.asarray(ref, dtype=np.float64), EPS), np.maximum(np.asarray(cur, dtype=np.float64), EPS)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum(c * np.log(c / r)))


def _as_category(s: pd.Series, kind: str) -> list[Any]:
    import pandas as pd

    if kind == "datetime":
        t = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
        return [None if pd.isna(v) else f"month {v.month:02d}" for v in t]
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in s]


def build_reference(frame: pd.DataFrame, schema: TableSchema, *, decided: np.ndarray, labels: Sequence[str],
                    proba: np.ndarray | None = None) -> dict[str, Any]:
    """The drift reference: feature bins/shares of ``frame`` (the training rows) and the decided-label
    shares of held-out predictions (``decided``: class indices)."""
    typed = schema.coerce(frame, where="reference")
    feats: dict[str, Any] = {}
    for c in schema.features:
        if c.type == "numeric":
            v = typed[c.name].to_numpy(dtype=np.float64)
            edges = _numeric_edges(v)
            feats[c.name] = {"type": "numeric", "edges": edges, "shares": numeric_shares(v, edges)}
        else:
            vals = _as_category(typed[c.name], c.type)
            counts: dict[str, int] = {}
            for v in vals:
                if v is not None:
                    counts[v] = counts.get(v, 0) + 1
            cats = [k for k, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:TOP_CATEGORIES]]
            feats[c.name] = {"type": c.type, "categories": cats, "shares": category_shares(vals, cats)}
    decided = np.asarray(decided, dtype=np.int64)
    rates = np.bincount(decided, minlength=len(labels)) / max(len(decided), 1)
    pred = {"label_shares": {lbl: float(rates[i]) for i, lbl in enumerate(labels)}, "n": int(len(decided))}
    if proba is not None and len(labels) == 2:
        pred["mean_positive_proba"] = float(np.mean(proba[:, 1])) if len(proba) else float("nan")
    return {"features": feats, "prediction": pred, "rows": len(frame)}


def compare(reference: dict[str, Any], frame: pd.DataFrame, schema: TableSchema, *, decided_labels: Sequence[str],
            warn: float = 0.1, retrain: float = 0.25, rate_warn: float = 0.05, rate_retrain: float = 0.10
            ) -> dict[str, Any]:
    """Drift of a window of rows (and their decided labels) against ``reference``. Status per feature
    by PSI (``warn`` / ``retrain``, the usual 0.1 / 0.25), of the prediction rate by absolute change of a
    label's share (``rate_warn`` / ``rate_retrain``); overall: the worst."""
    typed = schema.coerce(frame, where="window")
    order = {"ok": 0, "warn": 1, "retrain": 2}
    feats: dict[str, Any] = {}
    worst = "ok"
    for c in schema.features:
        ref = reference["features"].get(c.name)
        if ref is None:
            continue
        if ref["type"] == "numeric":
            cur = numeric_shares(typed[c.name].to_numpy(dtype=np.float64), ref["edges"])
        else:
            cur = category_shares(_as_category(typed[c.name], c.type), ref["categories"])
        p, k = psi(ref["shares"], cur), kl(ref["shares"], cur)
        st = "retrain" if p >= retrain else "warn" if p >= warn else "ok"
        worst = max(worst, st, key=order.__getitem__)
        feats[c.name] = {"type": ref["type"], "psi": round(p, 4), "kl": round(k, 4), "status": st,
                         "reference_shares": [round(x, 4) for x in ref["shares"]],
                         "current_shares": [round(x, 4) for x in cur]}
    ref_shares = reference["prediction"]["label_shares"]
    n = max(len(decided_labels), 1)
    cur_shares = {lbl: sum(1 for d in decided_labels if d == lbl) / n for lbl in ref_shares}
    change = {lbl: round(cur_shares[lbl] - ref_shares[lbl], 4) for lbl in ref_shares}
    big = max((abs(v) for v in change.values()), default=0.0)
    rate_status = "retrain" if big >= rate_retrain else "warn" if big >= rate_warn else "ok"
    worst = max(worst, rate_status, key=order.__getitem__)
    ranked = sorted(feats, key=lambda f: -feats[f]["psi"])
    return {"status": worst, "rows": len(frame), "features": feats, "most_drifted": ranked[:5],
            "prediction_rate": {"reference": {k: round(v, 4) for k, v in ref_shares.items()},
                                "current": {k: round(v, 4) for k, v in cur_shares.items()}, "change": change,
                                "psi": round(psi(list(ref_shares.values()), list(cur_shares.values())), 4),
                                "status": rate_status},
            "thresholds": {"psi_warn": warn, "psi_retrain": retrain, "rate_warn": rate_warn,
                           "rate_retrain": rate_retrain}}


__all__ = ["EPS", "build_reference", "category_shares", "compare", "kl", "numeric_shares", "psi"]
