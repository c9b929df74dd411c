"""Synthetic reference profile and prediction records with known distributions (shared by the
monitor tests and benchmarks/monitor_bench.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

LABELS = ["business", "entertainment", "politics", "sport", "tech"]


def synthetic_profile(n: int = 2000, seed: int = 0) -> dict[str, Any]:
    """A reference profile built from known distributions (the numbers the streams below reuse)."""
    from transferops.monitor.profile import bin_counts, histogram

    rng = np.random.default_rng(seed)
    conf = np.clip(rng.beta(8, 2, n), 0.2, 1.0)
    sketch = rng.standard_normal((400, 16)) * 0.25
    counts = {lab: n // len(LABELS) for lab in LABELS}
    feats = {"n_chars": rng.normal(400, 40, n).round(), "n_tokens": rng.normal(90, 10, n).round(),
             "unk_rate": np.where(rng.random(n) < 0.05, 0.01, 0.0)}
    ch = histogram(conf, 10)
    assert sum(bin_counts(conf, ch["edges"])) == n
    return {"version": 1, "n": n, "labels": LABELS, "task": "multiclass", "class_counts": counts, "bins": 10,
            "confidence": {**ch, "high_share": float(np.mean(conf >= 0.9))},
            "features": {k: histogram(v, 10) for k, v in feats.items()},
            "sketch": sketch.tolist(), "accuracy": 0.9, "recall": {lab: 0.9 for lab in LABELS}}


def synthetic_records(n: int, *, seed: int = 1, class_p: list[float] | None = None, conf_beta: tuple = (8, 2),
                      chars_mean: float = 400.0, sketch_shift: float = 0.0, ts0: float | None = None,
                      review_below: float = 0.5) -> list[dict[str, Any]]:
    """Prediction records drawn like the synthetic profile (or shifted by the keyword arguments)."""
    rng = np.random.default_rng(seed)
    p = class_p or [0.2] * 5
    labels = rng.choice(LABELS, size=n, p=p)
    conf = np.clip(rng.beta(*conf_beta, n), 0.2, 1.0)
    t0 = time.time() - 3600 if ts0 is None else ts0
    out = []
    for i in range(n):
        rest = (1 - conf[i]) / 4
        probs = {lab: (float(conf[i]) if lab == labels[i] else rest) for lab in LABELS}
        out.append({
            "id": uuid.uuid4().hex, "ts": t0 + i * (3000 / max(n, 1)), "model": "news", "model_version": "v1",
            "arm": None, "experiment": None, "ab_key": None,
            "route": "review" if conf[i] < review_below else "auto", "label": str(labels[i]),
            "probabilities": probs, "confidence": float(conf[i]), "latency_ms": 5.0,
            "n_chars": int(rng.normal(chars_mean, 40)), "n_tokens": int(rng.normal(90, 10)),
            "unk_rate": 0.01 if rng.random() < 0.05 else 0.0,
            "sketch": (rng.standard_normal(16) * 0.25 + sketch_shift).tolist(),
            "text": f"text {i} {labels[i]}",
        })
    return out
