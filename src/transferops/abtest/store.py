"""Read an experiment back from the monitoring store, and record outcomes into it.

The ``outcomes`` table lives in :mod:`transferops.monitor.store` (one schema for the whole log);
this module only adds the experiment-shaped queries the analysis needs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from transferops.errors import ConfigError, DataError

#: Prediction columns the analysis reads (the text, sketch and probabilities stay in the database).
ANALYSIS_COLUMNS = ("id", "ts", "model", "arm", "experiment", "ab_key", "route", "latency_ms")


def open_store(db_url: str | Path, *, must_exist: bool = True) -> Any:
    """A :class:`transferops.monitor.store.Store`; a SQLite file that does not exist is an error."""
    from transferops.monitor.store import Store, normalise_url

    url = normalise_url(db_url)
    if must_exist and url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            raise ConfigError(f"db: {path} does not exist; point --db at the store the server logs to")
    return Store(url)


def load_experiment(db_url: str | Path, experiment: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(predictions, outcomes)`` of one experiment, ready for
    :func:`~transferops.abtest.analysis.analyze_experiment`.

    Outcomes recorded by prediction id are kept when that prediction belongs to the experiment;
    outcomes recorded by key are kept when the key was exposed in the experiment.
    """
    import sqlalchemy as sa

    store = open_store(db_url)
    try:
        p = store.table("predictions")
        stmt = (sa.select(*[p.c[c] for c in ANALYSIS_COLUMNS]).where(p.c.experiment == experiment)
                .order_by(p.c.ts))
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
            preds = pd.DataFrame(rows, columns=list(ANALYSIS_COLUMNS))
            if preds.empty:
                known = [r[0] for r in conn.execute(sa.select(p.c.experiment).distinct()
                                                    .where(p.c.experiment.is_not(None))).fetchall()]
                raise DataError(f"experiment {experiment!r}: no predictions in {store!r}; experiments "
                                f"logged there: {known or 'none'}")
            # Only this experiment's outcomes: by one of its prediction ids, or by one of its keys.
            o = store.table("outcomes")
            exp_ids = sa.select(p.c.id).where(p.c.experiment == experiment)
            exp_keys = sa.select(p.c.ab_key).where(p.c.experiment == experiment, p.c.ab_key.is_not(None))
            ostmt = (sa.select(o.c.prediction_id, o.c.key, o.c.metric, o.c.value, o.c.ts)
                     .where(sa.or_(o.c.prediction_id.in_(exp_ids),
                                   sa.and_(o.c.prediction_id.is_(None), o.c.key.in_(exp_keys))))
                     .order_by(o.c.ts))
            outcomes = pd.DataFrame(conn.execute(ostmt).fetchall(),
                                    columns=["prediction_id", "key", "metric", "value", "ts"])
    finally:
        store.dispose()
    return preds, outcomes


def record_outcome(store: Any, *, metric: str, value: float, prediction_id: str | None = None,
                   key: str | None = None, ts: Any = None) -> None:
    """Validate and write one outcome. Unknown prediction ids raise ``KeyError`` (the server's 404)."""
    if not metric or not str(metric).strip():
        raise ConfigError("metric: must be a non-empty name such as 'conversion' or 'revenue'")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"value: {value!r} must be a finite number")
    if prediction_id is None and key is None:
        raise ConfigError("prediction_id: give the prediction id or the assignment key")
    if prediction_id is not None and not store.has_prediction(str(prediction_id)):
        raise KeyError(str(prediction_id))
    store.add_outcome(None if prediction_id is None else str(prediction_id), str(metric), float(value),
                      key=None if key is None else str(key), ts=ts)
