"""``retrain`` for a tabular model: champion / challenger on a holdout of the new rows.

The challenger is trained with the champion's options on the champion's labeled rows (its train, validation
and test splits) plus the new labeled rows outside the holdout. The holdout is the newest
``holdout_fraction`` of the new rows (by the time column; stratified at random without one), which neither
model has seen. Both are scored there at their own stored thresholds; the challenger wins when its
``metric`` beats the champion's by ``margin``. With a database, both are registered in the model registry
(:class:`~transferops.monitor.registry.Registry`, lineage ``parent``) and a winner is promoted to
``champion``. Exit code 0: promoted (or won with ``promote=False``), 3: not promoted.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import ConfigError, DataError


def retrain_tabular(champion: str | Path, new_data: str | Path, *, out: str | Path | None = None,
                    db: str | None = None, metric: str = "pr_auc", margin: float = 0.01,
                    holdout_fraction: float = 0.3, epochs: int | None = None, promote: bool = True) -> dict[str, Any]:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from transferops.tabular.api import TabularConfig, read_rows, scores, train_tabular
    from transferops.tabular.artifact import TabularModel

    if not 0 < holdout_fraction < 1:
        raise ConfigError(f"holdout_fraction: {holdout_fraction} must be in (0, 1)")
    champ = TabularModel(champion)
    schema, label = champ.schema, champ.schema.label
    new = read_rows(new_data)
    for c in [label, *schema.names] + ([schema.time_column] if schema.time_column else []):
        if c not in new.columns:
            raise DataError(f"new_data: column {c!r} of the champion's schema is missing")
    new = new[new[label].notna()].reset_index(drop=True)
    if len(new) < 20:
        raise DataError(f"new_data: {len(new)} labeled rows; retraining needs at least 20")
    if schema.time_column:
        t = pd.to_datetime(new[schema.time_column], errors="coerce", format="mixed", utc=True)
        order = np.argsort(t.to_numpy(), kind="stable")
        k = int(round(holdout_fraction * len(new)))
        fit_ix, hold_ix = order[:len(new) - k], order[len(new) - k:]
    else:
        y_new = new[label].astype(str)
        strat = y_new if y_new.value_counts().min() >= 2 else None
        fit_ix, hold_ix = train_test_split(np.arange(len(new)), test_size=holdout_fraction, random_state=0,
                                           stratify=strat)
    old = pd.concat([champ.split(s) for s in ("train", "validation", "test")], ignore_index=True)
    keep = [c for c in old.columns if c in new.columns]
    combined = pd.concat([old[keep], new.iloc[fit_ix][keep]], ignore_index=True)
    known = {f.name for f in fields(TabularConfig)}
    cfg_kw = {k: v for k, v in (champ.manifest.get("config") or {}).items() if k in known}
    cfg_kw["compare_random_split"] = False
    if epochs is not None:
        cfg_kw["epochs"] = epochs
    cfg_kw["models"] = tuple(cfg_kw.get("models") or ("trees",))
    out_dir = Path(out) if out else Path(champion).with_name(Path(champion).name + "-challenger")
    train_tabular(combined, out=out_dir, label_column=label, feature_columns=schema.names,
                  time_column=schema.time_column, group_column=schema.group_column, id_column=schema.id_column,
                  slice_columns=schema.slice_columns, config=TabularConfig(**cfg_kw))
    chal = TabularModel(out_dir)
    hold = new.iloc[hold_ix]
    y = hold[label].map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
    unknown = sorted(set(y) - set(champ.labels))
    if unknown:
        raise DataError(f"new_data: labels {unknown[:3]} are new; add classes with the text path's --add-classes "
                        "(not available for tables)")
    yi = y.map({v: i for i, v in enumerate(champ.labels)}).to_numpy(dtype=np.int64)
    res: dict[str, Any] = {"holdout_rows": len(hold), "metric": metric, "margin": margin}
    for name, m in (("champion", champ), ("challenger", chal)):
        s = scores(m.predict_proba(hold[schema.names]), yi, m.manifest.get("decision_threshold"))
        if metric not in s:
            raise ConfigError(f"metric: {metric!r} is not one of {', '.join(s)}")
        res[name] = {"path": str(m.path), "model": m.chosen, "holdout": s}
    gain = res["challenger"]["holdout"][metric] - res["champion"]["holdout"][metric]
    res["gain"] = round(float(gain), 4)
    res["winner"] = "challenger" if gain >= margin else "champion"
    res["promoted"] = False
    if db:
        from transferops.monitor.registry import Registry
        from transferops.monitor.store import Store

        reg = Registry(Store(db))
        champ_path = str(Path(champion).resolve())
        mine = [v for v in reg.list() if v.path == champ_path]
        cv = mine[-1] if mine else reg.register(champion, note="tabular champion")
        if reg.alias("champion") is None:
            reg.promote(cv.version, reason="first tabular champion")
        nv = reg.register(out_dir, parent=cv.version, note=f"tabular challenger ({metric} {gain:+.4f} on holdout)",
                          metrics=res["challenger"]["holdout"])
        res["registry"] = {"champion": cv.version, "challenger": nv.version}
        if res["winner"] == "challenger" and promote:
            reg.promote(nv.version, reason=f"{metric} {gain:+.4f} >= margin {margin} on {len(hold)} holdout rows")
            res["promoted"] = True
    res["exit_code"] = 0 if res["winner"] == "challenger" else 3
    return res


__all__ = ["retrain_tabular"]
