"""Drift over millions of rows: bin in the database, fetch one small integer per prediction.

Materialising a million rows × seven columns as Python objects costs seconds on its own. Here the
database evaluates, per row, the reference-profile bin of every quantity (label → class index,
confidence, each input feature, review route, ≥ 0.9 flag, time bucket) with ``CASE`` expressions
over the covering index, and packs them into one integer; Python fetches one column and unpacks
it with numpy. The result is a :class:`~transferops.monitor.window.PreparedWindow`, the type
:class:`~transferops.monitor.drift.DriftMonitor` builds from a DataFrame, so every signal is
computed by the same code.

Used automatically by :func:`transferops.monitor.api.monitor` for windows above
:data:`FAST_MIN_ROWS` rows of single-label predictions. Windows above :data:`SAMPLE_ROWS` rows are
binned on a systematic sample (every k-th row; the report says ``sampled_every: k``): evaluating
the bins costs the database a few microseconds per row, which is most of the time on a million.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from transferops.monitor.profile import HIGH_CONFIDENCE, ReferenceProfile
from transferops.monitor.window import FeatureBins, PreparedWindow

#: Windows with more rows than this are binned in the database.
FAST_MIN_ROWS = 100_000
NULL_BIN = 15  # 4 bits per quantity; bins 0..14
MAX_CLASSES = 14  # label codes 0..13, 14 = a label the reference never saw, 15 = NULL
MAX_BUCKETS = 1023
#: Rows binned per window at most: every k-th row beyond that. PSI's sampling noise at 200k rows is
#: about (bins − 1) / 100,000 ≈ 1e-4, three orders below the 0.1 warn line.
SAMPLE_ROWS = 100_000

# bit layout (low → high): label 4 | confidence 4 | feature × 3 (4 each) | route 2 | high 1 | bucket 10
_SHIFTS = {"label": 0, "conf": 4, "f0": 8, "f1": 12, "f2": 16, "route": 20, "high": 22, "bucket": 23}


def supported(profile: ReferenceProfile | dict[str, Any], buckets: int) -> bool:
    """The packed layout fits: few enough classes, bins, features and buckets; single-label."""
    prof = ReferenceProfile.from_dict(profile)
    if prof.multilabel or len(prof.labels) > MAX_CLASSES - 1:
        return False
    if len(prof.features) > 3 or buckets > MAX_BUCKETS:
        return False
    hists = [prof.confidence, *prof.features.values()]
    return all(len(h.edges) + 1 < NULL_BIN for h in hists)


def _bin_expr(col: Any, edges: Sequence[float]) -> Any:
    # Same bins as numpy.searchsorted(edges, v, side="left"): bin i holds edges[i-1] < v <= edges[i].
    whens = [(col.is_(None), NULL_BIN)] + [(col <= float(e), i) for i, e in enumerate(edges)]
    return sa.case(*whens, else_=len(edges))


def binned_window(store: Any, profile: ReferenceProfile | dict[str, Any], *, since: float | None,
                  until: float | None, model: str | None, buckets: int, max_rows: int | None = SAMPLE_ROWS,
                  grouped: bool = False) -> PreparedWindow:
    """The :class:`PreparedWindow` for :meth:`DriftMonitor.calculate` / ``timeline``, binned in
    the database without fetching the rows.

    ``grouped``: the database counts rows per bin combination (``COUNT(*) ... GROUP BY``) and
    returns only those counts: exact over every row, no sampling (the default on PostgreSQL, see
    :func:`grouped_default`). Otherwise windows larger than ``max_rows`` are read as a systematic
    sample (every k-th row, k = ceil(n / max_rows)); ``None`` reads every row.
    """
    prof = ReferenceProfile.from_dict(profile)
    p = store.table("predictions")
    labels = list(prof.labels)
    k = len(labels)

    def where(stmt: Any) -> Any:
        return store.window_filter(stmt, since, until, model)

    feats = list(prof.features)
    # Three cheap statements rather than one: count(*) alone and min/max(ts) alone are answered
    # from the index without a scan; together they force one. Feature means are not computed here.
    n = count_window(store, since=since, until=until, model=model)
    if not n:
        return PreparedWindow.empty(k)
    with store.engine.connect() as conn:
        lo = conn.execute(where(sa.select(sa.func.min(p.c.ts)))).scalar()
        hi = conn.execute(where(sa.select(sa.func.max(p.c.ts)))).scalar()
    lo, hi = float(lo), float(hi)
    width = (hi + 1e-6 - lo) / buckets

    label = sa.case({lab: i for i, lab in enumerate(labels)}, value=p.c.label, else_=k)
    label = sa.case((p.c.label.is_(None), NULL_BIN), else_=label)
    conf = _bin_expr(p.c.confidence, prof.confidence.edges)
    parts = [label, conf * (1 << _SHIFTS["conf"])]
    for j, fname in enumerate(feats):
        parts.append(_bin_expr(p.c[fname], prof.features[fname].edges) * (1 << _SHIFTS[f"f{j}"]))
    route = sa.case((p.c.route.is_(None), 2), (p.c.route == "review", 1), else_=0)
    high = sa.case((p.c.confidence >= HIGH_CONFIDENCE, 1), else_=0)
    scaled = (p.c.ts - lo) / width
    # Truncation, not rounding: SQLite's CAST truncates, PostgreSQL's rounds (so floor() there).
    bucket = sa.cast(scaled, sa.Integer) if store.is_sqlite else sa.cast(sa.func.floor(scaled), sa.Integer)
    parts += [route * (1 << _SHIFTS["route"]), high * (1 << _SHIFTS["high"]),
              sa.case((bucket > buckets - 1, buckets - 1), else_=bucket) * (1 << _SHIFTS["bucket"])]
    packed_expr = parts[0]
    for part in parts[1:]:
        packed_expr = packed_expr + part
    if grouped:
        # COUNT(*) ... GROUP BY the packed bins: the database returns one row per distinct bin
        # combination (thousands), never one per prediction, and every row counts (no sampling).
        # Repeating each combination by its count, in bucket order, rebuilds the same prepared form
        # (within a time bucket row order does not enter any signal).
        key = packed_expr.label("packed")
        gstmt = where(sa.select(key, sa.func.count().label("n"))).group_by(sa.literal_column("packed"))
        pairs = np.asarray(store.fetch_rows(gstmt), dtype=np.int64).reshape(-1, 2)
        pairs = pairs[np.argsort(pairs[:, 0] >> _SHIFTS["bucket"], kind="stable")]
        return _unpack(np.repeat(pairs[:, 0], pairs[:, 1]), n, 1, lo, hi, k, feats)
    stmt = where(sa.select(packed_expr.label("packed"))).order_by(p.c.ts)
    step = 1 if max_rows is None else max(1, -(-n // int(max_rows)))
    if step > 1:
        # Systematic sample: SQLite's rowid is insertion order (≈ time order); PostgreSQL has no
        # cheap row number in a scan, so a seeded pseudo-random filter on the id's hash instead.
        if store.is_sqlite:
            stmt = stmt.where(sa.literal_column("predictions.rowid") % step == 0)
        else:
            stmt = stmt.where(sa.func.abs(sa.func.hashtext(p.c.id)) % step == 0)
    rows = store.fetch_rows(stmt)
    packed = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return _unpack(packed, n, step, lo, hi, k, feats)


def _unpack(packed: np.ndarray, n: int, step: int, lo: float, hi: float, k: int,
            feats: list[str]) -> PreparedWindow:
    def field(name: str, bits: int) -> np.ndarray:
        return (packed >> _SHIFTS[name]) & ((1 << bits) - 1)

    codes = field("label", 4)
    codes = np.where(codes == NULL_BIN, -1, codes)
    conf_bin = field("conf", 4)
    features = {}
    for j, fname in enumerate(feats):
        fb = field(f"f{j}", 4)
        features[fname] = FeatureBins(None, fb != NULL_BIN, fb)
    r = field("route", 2)
    return PreparedWindow(n=len(packed), codes=codes, matrix=np.eye(k + 1), conf_bin=conf_bin,
                          conf_ok=conf_bin != NULL_BIN, high=field("high", 1).astype(bool), features=features,
                          review=(r == 1, r != 2), ts=None, t_lo=lo, t_hi=hi, bucket=field("bucket", 10),
                          step=step, n_total=n)


def grouped_default(store: Any) -> bool:
    """Whether :func:`transferops.monitor.api.monitor` aggregates with ``GROUP BY``.

    Off by default on both stores: measured at 1M rows (``benchmarks/drift_db_bench.py``) the
    sampled read (≤ 100k integers fetched) took 1.8 s on PostgreSQL and 0.9 s on SQLite, the exact
    ``GROUP BY`` 10.5 s and 7.1 s, for signal differences of < 0.001 (thresholds are 0.1 / 0.25).
    ``TRANSFEROPS_DRIFT_GROUP_BY=1`` turns it on: exact, and no prediction row reaches Python."""
    import os

    del store  # the same choice for both stores; kept in the signature for a per-store default
    return os.environ.get("TRANSFEROPS_DRIFT_GROUP_BY", "0") not in ("", "0")


def nth_newest_ts(store: Any, n: int, *, since: float | None, until: float | None, model: str | None
                  ) -> float | None:
    """Timestamp of the ``n``-th newest prediction in the window (the start of ``--last n``)."""
    p = store.table("predictions")
    stmt = store.window_filter(sa.select(p.c.ts), since, until, model).order_by(p.c.ts.desc())
    with store.engine.connect() as conn:
        v = conn.execute(stmt.offset(int(n) - 1).limit(1)).scalar()
    return None if v is None else float(v)


def count_window(store: Any, *, since: float | None, until: float | None, model: str | None) -> int:
    p = store.table("predictions")
    with store.engine.connect() as conn:
        return int(conn.execute(store.window_filter(sa.select(sa.func.count()).select_from(p), since, until,
                                                     model)).scalar_one())


__all__ = ["FAST_MIN_ROWS", "binned_window", "count_window", "grouped_default", "nth_newest_ts", "supported"]
