"""``embedding``: domain-classifier drift on the 16-number sketches.

``2·AUC − 1`` of a logistic regression told to separate reference from live sketches (0 =
identical), minus a 95 % band of chance separation; an RBF MMD² is reported alongside. Whole
windows only (timeline buckets pass no sketches).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from transferops.monitor.signals.base import Signal, SignalContext, domain_auc, grade, mmd2, register_signal


@register_signal("embedding", order=40)
def embedding(ctx: SignalContext) -> Iterator[Signal]:
    cfg, ref = ctx.config, ctx.profile.sketch_array
    if not cfg.embedding or ctx.sketches is None or len(ctx.sketches) < 10 or len(ref) < 10:
        return
    live = np.asarray(ctx.sketches, dtype=np.float64)
    rng = np.random.default_rng(cfg.seed)
    if len(live) > cfg.embedding_sample:
        live = live[rng.choice(len(live), cfg.embedding_sample, replace=False)]
    auc = domain_auc(ref, live, seed=cfg.seed)
    raw = max(0.0, 2.0 * auc - 1.0)
    # Hanley–McNeil standard error of an AUC of 0.5: a 95% band of chance separation is
    # subtracted (same idea as the PSI noise floor), so small windows do not cry wolf.
    n1, n2 = len(ref), len(live)
    noise = 2.0 * 1.96 * math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
    score = max(0.0, raw - noise) if cfg.correct_small_sample else raw
    m = mmd2(ref[:500], live[:500])
    yield Signal("embedding", score, grade(score, cfg.warn, cfg.retrain), cfg.warn, cfg.retrain,
                 {"domain_auc": auc, "score_raw": raw, "noise_floor": noise, "mmd2": m,
                  "n_live": n2, "n_reference": n1})
