"""The reference profile: what "normal" traffic looked like, stored inside the artifact.

Built from the validation split at training time (cheap: one prediction pass and one embedding
pass over at most ``max_texts`` texts). Live windows are compared with it by
:mod:`transferops.monitor.drift`. Histograms use the reference's own quantiles as bin edges
(the usual PSI convention), so every reference bin holds about the same share.

>>> profile = build_profile(transferops.load("runs/news"), texts, labels)     # doctest: +SKIP
>>> save_profile("runs/news", profile)                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops._util import read_json, utcnow, write_json
from transferops.constants import LABEL_COL, REFERENCE_PROFILE, TEXT_COL
from transferops.errors import ArtifactError, DataError
from transferops.hooks import register_post_train

log = logging.getLogger(__name__)

#: Input features profiled and logged per prediction (see ``transferops.deploy.features``).
FEATURES: tuple[str, ...] = ("n_chars", "n_tokens", "unk_rate")
HIGH_CONFIDENCE = 0.9
PROFILE_VERSION = 1


def quantile_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Bin edges at the reference quantiles (+ point-mass bins at min/max; duplicates removed)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])
    # A point mass at the minimum or maximum (every reference text cut to 300 characters) gets its
    # own bin, so live values moving below/above it are seen. Continuous tails do not: the outer
    # quantile bins already catch those, and a bin the reference barely fills makes PSI noisy.
    extra = []
    if np.mean(v == v.min()) >= 1.0 / bins:
        extra.append(float(np.nextafter(v.min(), -np.inf)))
    if np.mean(v == v.max()) >= 1.0 / bins:
        extra.append(float(v.max()))
    return [float(x) for x in np.unique(np.r_[qs, extra])]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts in ``(-inf, e0], (e0, e1], ..., (e_last, inf)``; NaNs are ignored."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


def label_keys(labels: Sequence[Any]) -> list[str]:
    """Predicted labels as class names (multi-label predictions count once per label)."""
    out: list[str] = []
    for lab in labels:
        if isinstance(lab, (list, tuple)):
            out.extend(str(x) for x in lab)
        elif isinstance(lab, str) and lab.startswith("["):
            try:
                out.extend(str(x) for x in json.loads(lab))
            except ValueError:
                out.append(lab)
        else:
            out.append(str(lab))
    return out


def histogram(values: np.ndarray, bins: int = 10) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    edges = quantile_edges(v, bins)
    return {"edges": edges, "counts": bin_counts(v, edges).tolist(),
            "mean": float(np.nanmean(v)) if v.size else 0.0, "std": float(np.nanstd(v)) if v.size else 0.0}


def auto_bins(n: int) -> int:
    """About 20 reference rows per bin, between 4 and 10 bins (PSI's noise grows with bins/rows)."""
    return int(min(10, max(4, n // 20)))


def build_profile(model: Any, texts: Sequence[str], labels: Sequence[Any] | None = None, *,
                  bins: int | None = None,
                  sketch_sample: int = 1000, max_texts: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Reference profile of ``model`` on ``texts``: class mix, confidence, input features, sketches.

    ``model`` needs ``predict_proba``, ``decide``, ``embed``, ``tokenizer`` and ``labels`` (a
    :class:`~transferops.artifacts.model.TransferOpsModel`). With ``labels`` the reference accuracy
    and per-class recall are stored too (the baseline for feedback accuracy).
    """
    from transferops.deploy.features import sketch, text_features

    texts = list(texts)
    if not texts:
        raise DataError("reference profile: no texts (is the validation split empty?)")
    rng = np.random.default_rng(seed)
    idx = np.arange(len(texts))
    if len(texts) > max_texts:
        idx = np.sort(rng.choice(len(texts), size=max_texts, replace=False))
    texts = [texts[i] for i in idx]
    nb = auto_bins(len(texts)) if bins is None else int(bins)
    proba = np.asarray(model.predict_proba(texts))
    predicted = model.decide(proba)
    conf = proba.max(axis=1)
    keys = label_keys(predicted)
    counts = {str(lab): 0 for lab in model.labels}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    feats = text_features(model.tokenizer, texts)
    sk_idx = np.arange(len(texts))
    if len(texts) > sketch_sample:
        sk_idx = np.sort(rng.choice(len(texts), size=sketch_sample, replace=False))
    sk = sketch(np.asarray(model.embed([texts[i] for i in sk_idx])))

    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "created": utcnow(),
        "n": len(texts),
        "labels": [str(x) for x in model.labels],
        "task": getattr(model, "task", "multiclass"),
        "class_counts": counts,
        "bins": nb,
        "confidence": {**histogram(conf, nb), "high_share": float(np.mean(conf >= HIGH_CONFIDENCE))},
        "features": {name: histogram(np.asarray(feats[name], dtype=np.float64), nb) for name in FEATURES},
        "sketch": np.asarray(sk, dtype=np.float64).round(5).tolist(),
    }
    if labels is not None:
        y = [labels[int(i)] for i in idx]
        pred_s = [json.dumps(p) if isinstance(p, list) else str(p) for p in predicted]
        true_s = [json.dumps(list(t)) if isinstance(t, (list, tuple, np.ndarray)) else str(t) for t in y]
        hits = np.asarray([a == b for a, b in zip(pred_s, true_s, strict=True)])
        profile["accuracy"] = float(hits.mean()) if hits.size else None
        profile["recall"] = {lab: float(hits[[t == lab for t in true_s]].mean())
                             for lab in profile["labels"] if any(t == lab for t in true_s)}
    return profile


def save_profile(artifact_dir: str | Path, profile: dict[str, Any]) -> Path:
    path = Path(artifact_dir) / REFERENCE_PROFILE
    write_json(path, profile)
    return path


def load_profile(artifact_dir: str | Path) -> dict[str, Any]:
    """The profile saved in an artifact; a clear error (with the fix) if it has none."""
    path = Path(artifact_dir) / REFERENCE_PROFILE
    if not path.exists():
        raise ArtifactError(f"{artifact_dir}: no {REFERENCE_PROFILE}; build it with "
                            f"`transferops monitor --model {artifact_dir} --build-profile`")
    return read_json(path)  # type: ignore[no-any-return]


def profile_artifact(artifact_dir: str | Path, *, split: str = "validation", **kw: Any) -> dict[str, Any]:
    """Build and save the reference profile of a saved artifact from one of its splits."""
    from transferops.artifacts.model import load

    model = load(artifact_dir)  # a single model, an ensemble or an ONNX export
    df = model.split(split)
    labels = list(df[LABEL_COL]) if LABEL_COL in df.columns else None
    profile = build_profile(model, list(df[TEXT_COL]), labels, **kw)
    profile["split"] = split
    save_profile(artifact_dir, profile)
    return profile


@register_post_train("reference_profile", order=20)  # after calibration: the profile uses its temperature
def post_train(artifact_dir: Path, config: Any) -> dict[str, Any] | None:
    """Training hook: always store the reference profile built from the validation split.

    A profile that cannot be built (e.g. an empty validation split) is logged, never fatal: the
    model itself is fine, and ``transferops monitor --build-profile`` can add it later.
    """
    seed = int(getattr(config, "seed", 0) or 0)
    try:
        profile = profile_artifact(artifact_dir, split="validation", seed=seed)
    except Exception as exc:
        log.warning("no monitoring reference profile for %s: %s (build it later with "
                    "`transferops monitor --model %s --build-profile`)", artifact_dir, exc, artifact_dir)
        return None
    return {"reference_profile": REFERENCE_PROFILE, "n": profile["n"]}


__all__ = ["FEATURES", "HIGH_CONFIDENCE", "bin_counts", "build_profile", "label_keys", "load_profile",
           "post_train", "profile_artifact", "quantile_edges", "save_profile"]
