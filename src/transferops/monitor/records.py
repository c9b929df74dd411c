"""Prediction records exactly as the server logs them, for batch jobs that score offline.

>>> recs = make_records(transferops.load("runs/news"), texts)      # doctest: +SKIP
>>> Store("runs/monitor.db").insert_predictions(recs)             # doctest: +SKIP
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np


def make_records(model: Any, texts: Sequence[str], *, ts: float | Sequence[float] | None = None,
                 model_name: str | None = None, model_version: str | None = None, route: str | None = None,
                 review_below: float | None = None, arm: str | None = None, experiment: str | None = None,
                 keep_text: bool = True, batch_size: int = 64) -> list[dict[str, Any]]:
    """One record per text: label, probabilities, confidence, input features and embedding sketch.

    ``review_below`` sets ``route`` to ``review`` under that confidence (``auto`` otherwise), as the
    server's human-review routing does.
    """
    from transferops.deploy.features import sketch, text_features

    texts = list(texts)
    t0 = time.perf_counter()
    proba = np.asarray(model.predict_proba(texts, batch_size=batch_size))
    labels, confidence = model.decision_rule.apply(proba)  # the server's labels and confidence
    sk = sketch(np.asarray(model.embed(texts, batch_size=batch_size)))
    feats = text_features(model.tokenizer, texts)
    latency = (time.perf_counter() - t0) * 1000 / max(len(texts), 1)
    now = time.time()
    if ts is None:
        times = [now] * len(texts)
    elif isinstance(ts, (int, float)):
        times = [float(ts)] * len(texts)
    else:
        times = [float(t) for t in ts]
    names = [str(x) for x in model.labels]
    out = []
    for i, text in enumerate(texts):
        conf = float(confidence[i])
        r = route or ("review" if review_below is not None and conf < review_below else "auto")
        out.append({
            "id": uuid.uuid4().hex, "ts": float(times[i]), "model": model_name or getattr(model, "name", None),
            "model_version": model_version, "arm": arm, "experiment": experiment, "ab_key": None, "route": r,
            "label": labels[i], "probabilities": dict(zip(names, proba[i].round(6).tolist(), strict=True)),
            "confidence": conf, "latency_ms": latency, "n_chars": int(feats["n_chars"][i]),
            "n_tokens": int(feats["n_tokens"][i]), "unk_rate": float(feats["unk_rate"][i]),
            "sketch": sk[i].tolist(), "text": text if keep_text else None,
        })
    return out


__all__ = ["make_records"]
