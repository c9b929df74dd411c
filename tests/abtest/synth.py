"""Synthetic experiment logs (predictions + outcomes) with known effects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferops.abtest.assignment import assign_arm


def make_experiment(n_users: int = 20_000, *, rates: dict[str, float] | None = None, seed: int = 0,
                    preds_per_user: int = 1, latency: dict[str, float] | None = None,
                    review: dict[str, float] | None = None, drop_share: dict[str, float] | None = None,
                    revenue: dict[str, float] | None = None, experiment: str = "exp1",
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    rates = rates or {"control": 0.10, "treatment": 0.10}
    arms = list(rates)
    rng = np.random.default_rng(seed)
    rows, outs = [], []
    t = 1_700_000_000.0
    for u in range(n_users):
        key = f"user-{u}"
        arm = assign_arm(key, arms, [1 / len(arms)] * len(arms))
        if drop_share and rng.random() < drop_share.get(arm, 0.0):
            continue  # lost from the log: a sample-ratio mismatch
        ids = []
        for j in range(preds_per_user):
            t += 1.0
            pid = f"p{u}-{j}"
            ids.append(pid)
            rows.append({"id": pid, "ts": t, "arm": arm, "experiment": experiment, "ab_key": key,
                         "latency_ms": rng.gamma(4.0, (latency or {}).get(arm, 10.0) / 4.0),
                         "route": "review" if rng.random() < (review or {}).get(arm, 0.1) else "auto"})
        if rng.random() < rates[arm]:
            outs.append({"prediction_id": ids[-1], "key": None, "metric": "conversion", "value": 1.0,
                         "ts": t})
        if revenue is not None:
            outs.append({"prediction_id": None, "key": key, "metric": "revenue",
                         "value": float(rng.exponential(revenue[arm])), "ts": t})
    return pd.DataFrame(rows), pd.DataFrame(outs, columns=["prediction_id", "key", "metric", "value", "ts"])
