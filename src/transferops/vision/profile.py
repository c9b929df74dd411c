"""Image input drift: the reference profile (input statistics + embeddings of the validation split) stored
at training, and the drift report of a new batch of images against it.

Signals (decisions where the issue is silent):

* per statistic (width, height, brightness, contrast, mean R/G/B, saturation: :func:`image_stats`) the PSI
  over the reference's quantile bins (deciles; fewer for a small reference: one bin per 5 images), with
  half a count added to every bin, minus its small-sample noise floor ``(bins − 1)(1/n_ref + 1/n_new)``
  (the expected PSI of two samples from one distribution) — alert at a corrected PSI ≥ 0.2;
* embedding drift: the classifier-based two-sample test — a logistic regression told to separate reference
  from new embeddings; cross-validated ROC-AUC ≥ 0.75 alerts (0.5: indistinguishable);
* the predicted-class distribution (PSI) when the model predicts.

Stored in the model folder as ``image_reference.json`` + ``image_reference.safetensors`` (embeddings), no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops._util import read_json, write_json
from transferops.errors import ArtifactError
from transferops.modality.image import STAT_NAMES, image_stats

PSI_ALERT = 0.2
AUC_ALERT = 0.75
REF_JSON = "image_reference.json"
REF_EMB = "image_reference.safetensors"


def _edges(v: np.ndarray, bins: int = 10) -> list[float]:
    bins = max(2, min(bins, len(v) // 5))
    qs = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(x) for x in qs]


def psi(ref_counts: np.ndarray, new_counts: np.ndarray, smoothing: float = 0.5) -> float:
    """PSI of two histograms over the same bins, each bin smoothed by ``smoothing`` counts."""
    p = (ref_counts + smoothing) / (ref_counts.sum() + smoothing * len(ref_counts))
    q = (new_counts + smoothing) / (new_counts.sum() + smoothing * len(new_counts))
    return float(np.sum((q - p) * np.log(q / p)))


def noise_floor(n_bins: int, n_ref: float, n_new: float) -> float:
    """Expected PSI of two samples of sizes ``n_ref`` / ``n_new`` drawn from one distribution."""
    return float((n_bins - 1) * (1.0 / max(n_ref, 1) + 1.0 / max(n_new, 1)))


def _counts(v: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.bincount(np.searchsorted(np.asarray(edges), v, side="right"), minlength=len(edges) + 1).astype(float)


def build_image_profile(path: str | Path, images: Sequence[Any]) -> dict[str, Any]:
    """Write the reference profile of ``images`` (decoded) for the model in ``path``."""
    from safetensors.numpy import save_file

    from transferops.artifacts import load

    p = Path(path)
    model = load(p)
    stats = image_stats(images)
    logits, emb = model.infer(images)
    pred = logits.argmax(1)
    prof: dict[str, Any] = {"n": len(images), "stats": {k: {"edges": _edges(stats[k]), "mean": float(stats[k].mean()),
                                            "std": float(stats[k].std())} for k in STAT_NAMES}}
    for k in STAT_NAMES:
        prof["stats"][k]["counts"] = _counts(stats[k], prof["stats"][k]["edges"]).tolist()
    prof["predicted"] = np.bincount(pred, minlength=len(model.labels)).tolist()
    write_json(p / REF_JSON, prof)
    save_file({"embedding": np.ascontiguousarray(emb, dtype=np.float32)}, str(p / REF_EMB))
    return prof


def embedding_auc(ref: np.ndarray, new: np.ndarray, seed: int = 0) -> float:
    """Cross-validated ROC-AUC of a classifier separating reference from new embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([ref, new])
    y = np.r_[np.zeros(len(ref)), np.ones(len(new))]
    folds = min(5, len(ref), len(new))
    if folds < 2:
        return float("nan")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    return float(cross_val_score(clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                 scoring="roc_auc").mean())


def image_drift(path: str | Path, items: Sequence[Any]) -> dict[str, Any]:
    """Drift of ``items`` (image paths / bytes / PIL images) against the model's reference profile."""
    from safetensors.numpy import load_file

    from transferops.artifacts import load
    from transferops.modality.image import IMAGE

    p = Path(path)
    if not (p / REF_JSON).exists():
        raise ArtifactError(f"{p}: no image reference profile ({REF_JSON}); it is written by "
                            "`transferops train` on image data")
    ref = read_json(p / REF_JSON)
    images = IMAGE.check_inputs(items)
    model = load(p)
    stats = image_stats(images)
    logits, emb = model.infer(images)
    signals: dict[str, Any] = {}
    for k in STAT_NAMES:
        r = ref["stats"][k]
        rc, nc = np.asarray(r["counts"], float), _counts(stats[k], r["edges"])
        raw = psi(rc, nc)
        val = max(0.0, raw - noise_floor(len(rc), rc.sum(), nc.sum()))
        signals[k] = {"psi": round(val, 4), "raw_psi": round(raw, 4), "reference_mean": r["mean"],
                      "mean": float(stats[k].mean()), "alert": val >= PSI_ALERT}
    ref_emb = load_file(str(p / REF_EMB))["embedding"]
    auc = embedding_auc(ref_emb, emb)
    signals["embedding"] = {"auc": round(auc, 4), "alert": bool(auc >= AUC_ALERT)}
    pred = np.bincount(logits.argmax(1), minlength=len(model.labels)).astype(float)
    rp = np.asarray(ref["predicted"], float)
    raw = psi(rp, pred)
    pv = max(0.0, raw - noise_floor(len(rp), rp.sum(), pred.sum()))
    signals["predicted_class"] = {"psi": round(pv, 4), "raw_psi": round(raw, 4), "alert": pv >= PSI_ALERT}
    alerts = [k for k, v in signals.items() if v["alert"]]
    small = ref["n"] < 50
    return {"note": "the reference holds fewer than 50 images: only large shifts are detectable" if small else None,
            "n": len(images), "reference_n": ref["n"], "signals": signals, "alerts": alerts, "drift": bool(alerts)}


def format_drift(rep: dict[str, Any]) -> str:
    lines = [f"image drift: {rep['n']} images vs {rep['reference_n']} reference (validation) images"]
    for k, v in rep["signals"].items():
        val = f"AUC {v['auc']:.3f}" if "auc" in v else f"PSI {v['psi']:.3f}"
        extra = f" (mean {v['reference_mean']:.3f} → {v['mean']:.3f})" if "mean" in v else ""
        lines.append(f"  {k:<16} {val}{extra}{'  ALERT' if v['alert'] else ''}")
    lines.append("  drift: " + (", ".join(rep["alerts"]) if rep["alerts"] else "none"))
    if rep.get("note"):
        lines.append(f"  note: {rep['note']}")
    return "\n".join(lines)


__all__ = ["AUC_ALERT", "PSI_ALERT", "build_image_profile", "embedding_auc", "format_drift", "image_drift", "psi"]
