"""Monitoring benchmark: drift over 1M logged predictions, logger cost, bounded buffer, server overhead.

    .venv/bin/python benchmarks/monitor_bench.py [--rows 1000000] [--only drift,logger,buffer,serve]

1. ``drift``  — 1,000,000 synthetic predictions (sketch, probabilities, 60-character text) in a SQLite
   file; time ``monitor(model, db, last=1_000_000)`` (read + every signal + the 24-bucket series +
   sketch sample + feedback join). Target ≤ 2 s.
2. ``logger`` — cost of ``PredictionLogger.submit`` on the request path (µs per request of 1 text)
   and the background flush rate into SQLite (rows/s).
3. ``buffer`` — the database is locked by another connection for 5 s while records arrive in
   batches of 50 every 10 ms:
   the buffer must stay at its bound (drops counted), memory must not grow, and writing must
   resume once the lock is gone.
4. ``serve``  — throughput of a real ``transferops serve`` process (tiny model, 1 text per request)
   at concurrency 32, with and without ``--db-url`` (interleaved rounds). Target: logging costs ≤ 5%.

Writes ``benchmarks/results/monitor_bench.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "monitor"))

from _common import save
from monitor_synth import LABELS, synthetic_profile, synthetic_records

from transferops.monitor.store import Store


# ---------------------------------------------------------------------------- 1. drift over 1M rows
def fill_sqlite(path: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` rows straight through sqlite3 (the benchmark measures reading, not filling)."""
    st = Store(path)
    st.dispose()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    chunk = 100_000
    start = time.time() - n * 0.05
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        labels = rng.choice(LABELS, size=m)
        conf = np.clip(rng.beta(8, 2, m), 0.2, 1.0)
        sk = (rng.standard_normal((m, 16)) * 0.25).round(5)
        chars = rng.normal(400, 40, m).astype(int)
        toks = rng.normal(90, 10, m).astype(int)
        unk = np.where(rng.random(m) < 0.05, 0.01, 0.0)
        rows = []
        for i in range(m):
            c = float(conf[i])
            rest = round((1 - c) / 4, 6)
            probs = json.dumps({lab: (round(c, 6) if lab == labels[i] else rest) for lab in LABELS})
            rows.append((uuid.uuid4().hex, start + (lo + i) * 0.05, "news", "v1", None, None, None,
                         "review" if c < 0.5 else "auto", str(labels[i]), probs, c, 5.0, int(chars[i]),
                         int(toks[i]), float(unk[i]), json.dumps(sk[i].tolist()), f"synthetic text number {lo + i}"))
        con.executemany("INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.commit()
    ids = [r[0] for r in con.execute("SELECT id FROM predictions ORDER BY ts DESC LIMIT 2000")]
    con.executemany("INSERT INTO feedback (prediction_id, label, ts) VALUES (?, 'sport', ?)",
                    [(i, time.time()) for i in ids])
    con.commit()
    con.close()
    return time.perf_counter() - t0


def bench_drift(rows: int, work: Path) -> dict[str, Any]:
    from transferops.monitor.api import monitor
    from transferops.monitor.profile import save_profile

    db = work / "million.db"
    if db.exists() and Store(db).count_predictions() == rows:
        fill_s = float("nan")  # reused from --workdir
        Store(db).create_all()  # adds indexes a previous version lacked
    else:
        db.unlink(missing_ok=True)
        fill_s = fill_sqlite(db, rows)
    model = work / "model"
    model.mkdir(exist_ok=True)
    save_profile(model, synthetic_profile())
    size_mb = db.stat().st_size / 1e6
    times, stages = [], {}
    st = Store(db)
    for _ in range(3):
        t0 = time.perf_counter()
        res = monitor(model, db=st, last=rows)
        times.append(time.perf_counter() - t0)
    # Where the time goes (one extra run, stage by stage), and the exact row-by-row path for contrast.
    from transferops.monitor import fastread
    from transferops.monitor.drift import DRIFT_COLUMNS, DriftMonitor, read_sketches
    from transferops.monitor.profile import load_profile

    prof = load_profile(model)
    t = time.perf_counter()
    binned = fastread.binned_window(st, prof, since=None, until=None, model=None, buckets=24)
    stages["bin_in_database_s"] = time.perf_counter() - t
    t = time.perf_counter()
    sk = read_sketches(st, since=None, until=None, last=rows)
    fb = st.read_feedback_joined()
    stages["read_sketch_and_feedback_s"] = time.perf_counter() - t
    mon = DriftMonitor().fit(prof)
    t = time.perf_counter()
    mon.calculate(binned, feedback=fb, sketches=sk)
    stages["signals_incl_embedding_s"] = time.perf_counter() - t
    t = time.perf_counter()
    mon.timeline(binned, buckets=24, feedback=fb)
    stages["timeline_24_buckets_s"] = time.perf_counter() - t
    t = time.perf_counter()
    exact = fastread.binned_window(st, prof, since=None, until=None, model=None, buckets=24, max_rows=None)
    stages["bin_every_row_s"] = time.perf_counter() - t
    t = time.perf_counter()
    frame = st.read_predictions(columns=list(DRIFT_COLUMNS), last=rows)
    stages["fetch_every_row_python_s"] = time.perf_counter() - t
    full = mon.calculate(frame)
    sampled = mon.calculate(binned)
    diff = max(abs((a.value or 0) - (b.value or 0)) for a, b in zip(full.signals, sampled.signals, strict=False))
    exact_diff = max(abs((a.value or 0) - (b.value or 0))
                     for a, b in zip(full.signals, mon.calculate(exact).signals, strict=False))
    return {"rows": rows, "db_mb": round(size_mb, 1), "fill_seconds": round(fill_s, 1),
            "monitor_seconds": [round(x, 3) for x in times], "best_s": round(min(times), 3),
            "median_s": round(float(np.median(times)), 3), "target_s": 2.0, "met": min(times) <= 2.0,
            "status": res.report.status, "sampled_every": res.report.sampled_every,
            "max_abs_signal_diff_sample_vs_all_rows": round(diff, 5),
            "max_abs_signal_diff_sql_bins_vs_python": round(exact_diff, 8),
            "stages": {k: round(v, 3) for k, v in stages.items()}}


# ---------------------------------------------------------------------------- 2. logger cost
def bench_logger(work: Path) -> dict[str, Any]:
    from transferops.monitor.logger import PredictionLogger

    st = Store(work / "logger.db")
    lg = PredictionLogger(st, flush_interval=0.5, max_buffer=1_000_000).start()
    recs = synthetic_records(20_000, seed=3)
    batches = [[r] for r in recs]
    t0 = time.perf_counter()
    for b in batches:
        lg.submit(b)
    submit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    while lg.written < len(recs):
        time.sleep(0.01)
    drain_s = time.perf_counter() - t1
    lg.close()
    return {"records": len(recs), "submit_us_per_request": round(submit_s / len(batches) * 1e6, 2),
            "flush_rows_per_s": round(len(recs) / max(drain_s + submit_s, 1e-9)),
            "flushes": lg.flushes, "stored": st.count_predictions()}


# ---------------------------------------------------------------------------- 3. bounded buffer
def bench_buffer(work: Path) -> dict[str, Any]:
    from transferops.monitor.logger import PredictionLogger

    path = work / "slow.db"
    st = Store(path, busy_timeout_s=0.2)
    bound = 5_000
    lg = PredictionLogger(st, flush_interval=0.2, max_buffer=bound, log_every_s=1e9).start()
    recs = synthetic_records(30_000, seed=4)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    samples = []
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < 5.0 and i < len(recs) - 50:  # up to 5,000 records/s for 5 s
        lg.submit(recs[i:i + 50])
        i += 50
        samples.append(lg.buffered)
        time.sleep(0.01)
    mem_locked = tracemalloc.get_traced_memory()[0] - base
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    submitted_locked = i
    blocker.execute("COMMIT")
    blocker.close()
    t1 = time.perf_counter()
    while lg.buffered:
        time.sleep(0.05)
        if time.perf_counter() - t1 > 60:
            break
    recover_s = time.perf_counter() - t1
    lg.close()
    return {"bound": bound, "submitted_while_locked": submitted_locked, "max_buffer_seen": lg.max_seen_buffer,
            "dropped": lg.dropped, "write_errors": lg.errors, "stored_after_unlock": st.count_predictions(),
            "buffer_mem_mb_while_locked": round(mem_locked / 1e6, 2), "peak_mem_mb": round(peak / 1e6, 2),
            "recovery_seconds": round(recover_s, 2), "bounded": lg.max_seen_buffer <= bound}


# ---------------------------------------------------------------------------- 4. server overhead
def _tiny_artifact(work: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    import transferops
    from transferops.checkpoints import resolve_checkpoint

    torch.manual_seed(0)
    bert = work / "tiny-bert"
    tok = AutoTokenizer.from_pretrained(str(resolve_checkpoint("minilm-l6").path))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256)
    BertForMaskedLM(cfg).save_pretrained(str(bert), safe_serialization=True)
    tok.save_pretrained(str(bert))
    data = Path(__file__).parent.parent / "tests" / "data" / "bbc_small.csv"
    out = work / "tiny-run"
    transferops.train(data, out=out, checkpoint=str(bert), strategy="full", epochs=1, lr=1e-3, max_length=64,
                      check_near_duplicates=False, baseline=False)
    return out


async def _load(url: str, texts: list[str], seconds: float, concurrency: int) -> tuple[int, float]:
    import httpx

    done = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < stop:
                r = await client.post("/v1/models/news/predict", json={"texts": [texts[i % len(texts)]]})
                if r.status_code == 200:
                    done += 1
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done, time.perf_counter() - t0


def bench_serve(work: Path, rounds: int = 3, seconds: float = 8.0) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "monitor"))
    import pandas as pd
    from monitor_server import server_process

    model = _tiny_artifact(work)
    texts = [str(t) for t in pd.read_csv(Path(__file__).parent.parent / "tests" / "data" / "bbc_small.csv")["text"]]
    env = {"OMP_NUM_THREADS": "1"}
    results: dict[str, list[float]] = {"no_log": [], "sqlite_log": []}
    rows = 0
    for r in range(rounds):
        for mode in ("no_log", "sqlite_log") if r % 2 == 0 else ("sqlite_log", "no_log"):
            args = ["--model", f"news={model}", "--threads", "1"]
            db = work / f"serve-{r}.db"
            if mode == "sqlite_log":
                args += ["--db-url", f"sqlite:///{db}"]
            with server_process(args, env=env) as (_proc, url):
                asyncio.run(_load(url, texts, 1.5, 32))  # warm-up
                done, dt = asyncio.run(_load(url, texts, seconds, 32))
            results[mode].append(done / dt)
            if mode == "sqlite_log":
                rows += Store(db).count_predictions()
    base, logged = float(np.median(results["no_log"])), float(np.median(results["sqlite_log"]))
    overhead = (base - logged) / base if base else float("nan")
    return {"concurrency": 32, "rounds": rounds, "seconds_per_round": seconds,
            "rps_no_log": [round(x, 1) for x in results["no_log"]],
            "rps_sqlite_log": [round(x, 1) for x in results["sqlite_log"]],
            "median_rps_no_log": round(base, 1), "median_rps_sqlite_log": round(logged, 1),
            "overhead_fraction": round(overhead, 4), "target": 0.05, "met": overhead <= 0.05,
            "rows_logged": rows}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--only", default="drift,logger,buffer,serve")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="keep the generated databases here (reused next run)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    prev = Path(__file__).parent / "results" / "monitor_bench.json"
    if prev.exists():  # keep sections not re-run this time
        out = {k: v for k, v in json.loads(prev.read_text()).items() if k != "machine"}
    try:
        if "drift" in parts:
            out["drift"] = bench_drift(args.rows, work)
            print("drift", out["drift"], flush=True)
        if "logger" in parts:
            out["logger"] = bench_logger(work)
            print("logger", out["logger"], flush=True)
        if "buffer" in parts:
            out["buffer"] = bench_buffer(work)
            print("buffer", out["buffer"], flush=True)
        if "serve" in parts:
            out["serve"] = bench_serve(work, rounds=args.rounds)
            print("serve", out["serve"], flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    md = ["# monitor benchmark", "", "| measure | value | target |", "|---|---|---|"]
    if "drift" in out:
        d = out["drift"]
        md.append(f"| drift over {d['rows']:,} SQLite rows ({d['db_mb']} MB), best of 3 | {d['best_s']} s "
                  f"(median {d['median_s']} s) | ≤ 2 s {'✓' if d['met'] else '✗ missed'} |")
        md.append(f"| — stages (s) | {', '.join(f'{k} {v}' for k, v in d['stages'].items())} | |")
        md.append(f"| — binned on every {d['sampled_every']}th row: max signal difference vs all rows | "
                  f"{d['max_abs_signal_diff_sample_vs_all_rows']} | ≪ 0.1 |")
    if "logger" in out:
        g = out["logger"]
        md.append(f"| logger submit() per request | {g['submit_us_per_request']} µs | |")
        md.append(f"| logger flush rate into SQLite | {g['flush_rows_per_s']:,} rows/s | |")
    if "buffer" in out:
        b = out["buffer"]
        md.append(f"| DB locked 5 s, {b['submitted_while_locked']:,} records arriving: max buffer | "
                  f"{b['max_buffer_seen']:,} (bound {b['bound']:,}), "
                  f"{b['dropped']:,} dropped, {b['buffer_mem_mb_while_locked']} MB | bounded "
                  f"{'✓' if b['bounded'] else '✗'} |")
        md.append(f"| — after unlock | {b['stored_after_unlock']:,} rows stored in {b['recovery_seconds']} s | |")
    if "serve" in out:
        s = out["serve"]
        md.append(f"| server throughput c=32, no log / SQLite log (median rps) | {s['median_rps_no_log']} / "
                  f"{s['median_rps_sqlite_log']} → overhead {100 * s['overhead_fraction']:.1f}% (noise ±30%) | ≤ 5% "
                  f"{'✓' if s['met'] else '✗ missed'} |")
    if "serve" in out and "logger" in out:
        s, g = out["serve"], out["logger"]
        per_req_us = g["submit_us_per_request"] + 1e6 / max(g["flush_rows_per_s"], 1)
        share = per_req_us / (1e6 / max(s["median_rps_no_log"], 1e-9))
        md.append(f"| logging CPU per 1-text request (submit + its share of the flush) | {per_req_us:.0f} µs = "
                  f"{100 * share:.2f}% of one core at {s['median_rps_no_log']} rps | bound on the overhead |")
    md += ["", "Machine: 2 CPU cores shared with other jobs (load average ~8 at start); round-to-round throughput "
           "varies by ±30%, so the end-to-end c=32 comparison cannot resolve a 5% difference on its own — the "
           "CPU-cost line bounds the logging overhead directly. Rounds are in the JSON."]
    save("monitor_bench", out, "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
