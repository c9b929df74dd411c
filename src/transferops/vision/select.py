"""``transferops select --data images/ --candidates mobilenet-v2,/path/vit``: rank image checkpoints with
cheap scores on frozen features of a small stratified split (default 100 images), next to the pixel
baseline on the same folds. The scores are the text selector's own (:mod:`transferops.select.scores`):
leave-one-out kNN accuracy, a cross-validated logistic probe, LogME."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ImageSelectRow:
    name: str
    knn_accuracy: float
    probe_accuracy: float
    probe_macro_f1: float
    logme: float
    feature_dim: int
    seconds: float


def frozen_features(checkpoint: str, images: list[Any], *, image_size: int | None = None) -> np.ndarray:
    from transferops.checkpoints.image import resolve_image_checkpoint
    from transferops.modality.image.preprocess import ImagePreprocessing
    from transferops.vision.model import WithFeatures, image_forward, load_image_classifier

    ck = resolve_image_checkpoint(checkpoint)
    pre = ImagePreprocessing.from_folder(ck.path).at_size(image_size)
    module = WithFeatures.wrap(load_image_classifier(ck.path))
    return image_forward(module, pre, images)[1]


def select_images(data: str | Path, candidates: list[str], *, n: int = 100, seed: int = 0, knn_k: int = 5,
                  folds: int = 5, image_size: int | None = None) -> dict[str, Any]:
    """Scores per candidate (rank by probe macro-F1) and the pixel baseline on the same folds."""
    from transferops.modality.image.baseline import PixelBaseline
    from transferops.select.scores import cv_folds, knn_loo_accuracy, logme, probe_cv_scores
    from transferops.vision.data import load_images

    dec = load_images(data)
    y_all = np.asarray([dec.data.labels.index(v) for v in dec.data.y])
    rng = np.random.default_rng(seed)
    per = max(2, n // len(dec.data.labels))
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y_all == c))[:per]
                                  for c in range(len(dec.data.labels))]))
    images = [dec.images[i] for i in idx]
    y = y_all[idx]
    fl = cv_folds(y, max_folds=folds, seed=seed)
    rows = []
    for c in candidates:
        t0 = time.perf_counter()
        f = frozen_features(c, images, image_size=image_size)
        pr = probe_cv_scores(f, y, fl, seed=seed)
        rows.append(ImageSelectRow(c, knn_loo_accuracy(f, y, k=knn_k), pr["accuracy"], pr["macro_f1"],
                                   float(logme(f, y).evidence), int(f.shape[1]), time.perf_counter() - t0))
    px = PixelBaseline(tune=False).features(images)
    base = probe_cv_scores(px, y, fl, seed=seed)
    rows.sort(key=lambda r: -r.probe_macro_f1)
    return {"n": len(y), "labels": dec.data.labels, "ranking": [r.__dict__ for r in rows],
            "pixel_baseline": base, "rank_by": "probe_macro_f1"}


def format_selection(res: dict[str, Any]) -> str:
    lines = [f"image checkpoint selection on {res['n']} images ({len(res['labels'])} classes), frozen features:",
             f"  {'candidate':<40} {'probe F1':>8} {'probe acc':>9} {'kNN acc':>8} {'LogME':>8} {'dim':>5} {'s':>6}"]
    for r in res["ranking"]:
        lines.append(f"  {r['name'][-40:]:<40} {r['probe_macro_f1']:>8.4f} {r['probe_accuracy']:>9.4f} "
                     f"{r['knn_accuracy']:>8.4f} {r['logme']:>8.3f} {r['feature_dim']:>5} {r['seconds']:>6.1f}")
    b = res["pixel_baseline"]
    lines.append(f"  {'pixel baseline (same folds)':<40} {b['macro_f1']:>8.4f} {b['accuracy']:>9.4f}")
    return "\n".join(lines)


__all__ = ["ImageSelectRow", "format_selection", "frozen_features", "select_images"]
