"""Drift over many logged rows in SQLite and PostgreSQL: time and Python-side memory per read path.

Paths, all producing the prepared form DriftMonitor consumes (signals then cost the same):
  * group-by  — ``COUNT(*) ... GROUP BY`` of the packed bins in SQL: exact, returns ~thousands of rows
  * sampled   — per-row bins in SQL, every k-th row fetched (100k rows at most)
  * per-row   — per-row bins in SQL, every row fetched (one integer each)
Memory: tracemalloc peak of Python/numpy allocations during the read (the database's own memory is
not in it). Each path runs ROUNDS times, interleaved, per store.

    nice -n 10 python benchmarks/drift_db_bench.py --rows 1000000 --pg-url postgresql://...
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "monitor"))
from _common import save
from monitor_bench import fill_sqlite
from monitor_synth import synthetic_profile

from transferops.monitor import fastread
from transferops.monitor.drift import DriftMonitor
from transferops.monitor.store import Store
from transferops.monitor.window import PreparedWindow

COLS = ("id", "ts", "model", "version", "variant", "experiment", "arm", "route", "label", "probs", "confidence",
        "latency_ms", "n_chars", "n_tokens", "unk_rate", "sketch", "text")


def copy_to_pg(db: Path, url: str) -> float:
    st = Store(url, create=False)
    st.metadata.drop_all(st.engine)
    st.create_all()
    st.dispose()
    import psycopg

    t0 = time.perf_counter()
    src = sqlite3.connect(db)
    names = [r[1] for r in src.execute("PRAGMA table_info(predictions)")]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pg, pg.cursor() as cur:
        with cur.copy(f"COPY predictions ({', '.join(names)}) FROM STDIN") as cp:
            for row in src.execute(f"SELECT {', '.join(names)} FROM predictions"):
                cp.write_row(row)
        cur.execute("ANALYZE predictions")
    src.close()
    return time.perf_counter() - t0


def measure(store: Store, prof: dict[str, Any], path: str) -> tuple[float, float, PreparedWindow]:
    tracemalloc.start()
    t = time.perf_counter()
    if path == "group-by":
        prep = fastread.binned_window(store, prof, since=None, until=None, model=None, buckets=24, grouped=True)
    elif path == "sampled":
        prep = fastread.binned_window(store, prof, since=None, until=None, model=None, buckets=24)
    else:
        prep = fastread.binned_window(store, prof, since=None, until=None, model=None, buckets=24, max_rows=None)
    secs = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return secs, peak, prep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pg-url", default=os.environ.get("TRANSFEROPS_TEST_PG_URL"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drift-db-"))
    db = work / "log.db"
    fill_s = fill_sqlite(db, args.rows)
    stores = {"SQLite": Store(db)}
    pg_fill = None
    if args.pg_url:
        pg_fill = copy_to_pg(db, args.pg_url)
        stores["PostgreSQL"] = Store(args.pg_url, create=False)
    prof = synthetic_profile()
    mon = DriftMonitor().fit(prof)
    paths = ["group-by", "sampled", "per-row"]
    res: dict[str, dict[str, Any]] = {}
    for name, st in stores.items():
        res[name] = {p: {"seconds": [], "peak_mb": []} for p in paths}
        signals: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for p in paths:
                secs, peak, prep = measure(st, prof, p)
                res[name][p]["seconds"].append(round(secs, 3))
                res[name][p]["peak_mb"].append(round(peak, 1))
                rep = mon.calculate(prep)
                signals[p] = {s.name: s.value for s in rep.signals if s.value is not None}
        res[name]["max_signal_diff_group_by_vs_per_row"] = max(
            abs(signals["group-by"][k] - signals["per-row"][k]) for k in signals["per-row"])
        res[name]["max_signal_diff_sampled_vs_per_row"] = max(
            abs(signals["sampled"][k] - signals["per-row"][k]) for k in signals["per-row"])
    lines = [f"Drift read paths over {args.rows:,} logged predictions (24 time buckets), 2 shared CPU cores, "
             f"median of {args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.2f} at the end. "
             f"Fill: SQLite {fill_s:.0f} s" + (f", PostgreSQL COPY {pg_fill:.0f} s" if pg_fill else "") + ".", "",
             "| store | path | seconds (median) | Python peak MB | max signal diff vs per-row |",
             "|---|---|---:|---:|---:|"]
    for name in stores:
        for p in paths:
            d = res[name][p]
            diff = {"group-by": res[name]["max_signal_diff_group_by_vs_per_row"],
                    "sampled": res[name]["max_signal_diff_sampled_vs_per_row"], "per-row": 0.0}[p]
            lines.append(f"| {name} | {p} | {statistics.median(d['seconds']):.2f} | "
                         f"{statistics.median(d['peak_mb']):.1f} | {diff:.2g} |")
    save("drift_db_bench", {"rows": args.rows, "rounds": args.rounds, "results": res}, "\n".join(lines))
    for st in stores.values():
        st.dispose()
    if args.pg_url:
        st = Store(args.pg_url, create=False)
        st.metadata.drop_all(st.engine)
        st.dispose()


if __name__ == "__main__":
    main()
