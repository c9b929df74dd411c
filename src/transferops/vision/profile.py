"""Image input drift: the reference profile (input statistics + embeddings of the validation split) stored
at training, and the drift report of a new batch of images against it.

Signals (decisions where the issue is silent):

* per statistic (width, height, brightness, contrast, mean R/G/B, saturation: :func:`image_stats`) the PSI
  over the reference's decile bins — alert at PSI ≥ 0.2 (the usual "significant shift" line);
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
    qs = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(x) for x in qs]


def psi(ref_counts: np.ndarray, new_counts: np.ndarray, eps: float = 1e-4) -> float:
    p = ref_counts / max(ref_counts.sum(), 1) + eps
    q = new_counts / max(new_counts.sum(), 1) + eps
    return float(np.sum((q - p) * np.log(q / p)))


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
        val = psi(np.asarray(r["counts"]), _counts(stats[k], r["edges"]))
        signals[k] = {"psi": round(val, 4), "reference_mean": r["mean"], "mean": float(stats[k].mean()),
                      "alert": val >= PSI_ALERT}
    ref_emb = load_file(str(p / REF_EMB))["embedding"]
    auc = embedding_auc(ref_emb, emb)
    signals["embedding"] = {"auc": round(auc, 4), "alert": bool(auc >= AUC_ALERT)}
    pred = np.bincount(logits.argmax(1), minlength=len(model.labels)).astype(float)
    pv = psi(np.asarray(ref["predicted"], float), pred)
    signals["predicted_class"] = {"psi": round(pv, 4), "alert": pv >= PSI_ALERT}
    alerts = [k for k, v in signals.items() if v["alert"]]
    return {"n": len(images), "reference_n": ref["n"], "signals": signals, "alerts": alerts, "drift": bool(alerts)}


def format_drift(rep: dict[str, Any]) -> str:
    lines = [f"image drift: {rep['n']} images vs {rep['reference_n']} reference (validation) images"]
    for k, v in rep["signals"].items():
        val = f"AUC {v['auc']:.3f}" if "auc" in v else f"PSI {v['psi']:.3f}"
        extra = f" (mean {v['reference_mean']:.3f} → {v['mean']:.3f})" if "mean" in v else ""
        lines.append(f"  {k:<16} {val}{extra}{'  ALERT' if v['alert'] else ''}")
    lines.append("  drift: " + (", ".join(rep["alerts"]) if rep["alerts"] else "none"))
    return "\n".join(lines)


__all__ = ["AUC_ALERT", "PSI_ALERT", "build_image_profile", "embedding_auc", "format_drift", "image_drift", "psi"]
