"""``evaluate --robustness``: the same rows scored clean and under each text perturbation.

The perturbations are the ones ``train --augment`` uses (:mod:`transferops.modality.augment`),
seeded, so a report is reproducible. Per perturbation: headline metrics, per-class F1 and recall,
the share of texts it changed and the share of decisions it flipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from transferops.evaluate import metrics as M

#: Share of the words each perturbation touches when the user gives no rate.
DEFAULT_ROBUSTNESS_RATE = 0.15


def _class_scores(y: np.ndarray, proba: np.ndarray, pred: np.ndarray, labels: list[str], multilabel: bool
                  ) -> dict[str, dict[str, float]]:
    return {r["label"]: {"f1": r["f1"], "recall": r["recall"]}
            for r in M.per_class(y, proba, pred, labels, multilabel=multilabel)}


def robustness_section(model: Any, texts: list[str], y: np.ndarray, clean_proba: np.ndarray, clean_pred: np.ndarray,
                       *, labels: list[str], manifest: dict[str, Any], multilabel: bool, positive_index: int,
                       perturbations: Sequence[str] | None = None, rate: float = DEFAULT_ROBUSTNESS_RATE,
                       seed: int = 0, predict: Any = None) -> dict[str, Any]:
    """Clean vs perturbed metrics; ``predict(texts) -> proba`` defaults to ``model.predict_proba``."""
    from transferops.modality.augment import TextAugmenter

    predict = predict or model.predict_proba
    aug = TextAugmenter(list(perturbations) if perturbations is not None else None, rate=rate, seed=seed)
    # token_replace draws from the data's own frequent words (the evaluated texts: no train split needed)
    aug.fit(texts)
    headline = "micro_f1" if multilabel else "macro_f1"

    def scores(proba: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
        agg = M.aggregate(y, proba, pred, multilabel=multilabel, positive_index=positive_index)
        return {"accuracy": agg.get("accuracy"), "macro_f1": agg.get("macro_f1"),
                headline: agg.get(headline),
                "per_class": _class_scores(y, proba, pred, labels, multilabel)}

    clean = scores(clean_proba, clean_pred)
    rows = []
    for name in aug.perturbations or []:
        pt = aug.perturb(texts, name)
        proba = np.asarray(predict(pt), dtype=np.float64)
        pred = M.predictions(proba, manifest, labels, multilabel)
        s = scores(proba, pred)
        flipped = (pred != clean_pred).any(axis=1) if multilabel else pred != clean_pred
        rows.append({"name": name, **s, "delta": float(s[headline] - clean[headline]),
                     "changed": float(np.mean([a != b for a, b in zip(pt, texts, strict=True)])) if texts else 0.0,
                     "flipped": float(np.mean(flipped)) if len(flipped) else 0.0,
                     "example": {"clean": texts[0][:160], "perturbed": pt[0][:160]} if texts else None})
    worst = min(rows, key=lambda r: r["delta"]) if rows else None
    return {"rate": rate, "seed": seed, "headline": headline, "clean": clean, "perturbations": rows,
            "worst": worst["name"] if worst else None}


__all__ = ["DEFAULT_ROBUSTNESS_RATE", "robustness_section"]
