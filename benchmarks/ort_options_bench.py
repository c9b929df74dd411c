"""ONNX Runtime session options, chosen by measurement (issue 18, lever 4): threads, graph optimisation level,
CPU memory arena, execution mode, and the onnxruntime.transformers fused graph — on fp32 and int8 models.

    nice -n 10 .venv/bin/python benchmarks/ort_options_bench.py             # full: ≈ 5 min on 2 idle cores
    nice -n 10 .venv/bin/python benchmarks/ort_options_bench.py --quick     # smoke: 1 round, fewer calls

Models: the exports int8_accuracy_bench.py makes (its cached BBC MiniLM-L6, trained and exported first
when absent, ≈ 3 min more): fp32, dynamic int8, static QDQ int8; plus, when
``onnxruntime.transformers.optimizer`` imports, the fp32 graph fused by it (Attention, SkipLayerNorm,
BiasGelu; ``opt_level=1``, ``model_type="bert"``, 12 heads, hidden 384) and that fused graph quantised dynamically.

Workloads: one short text (latency, p50 over calls), a batch of 32 short texts and a batch of 32 long texts
(128 tokens) (throughput). Options are varied one at a time from the defaults in
``deploy/onnx_runtime.py::SESSION_DEFAULTS``; every configuration is measured in every round, interleaved,
best and median over rounds kept, load average recorded per round. Writes
benchmarks/results/ort_options_bench.json and .md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save

os.environ.setdefault("TRANSFEROPS_QUIET", "1")
SHORT = "Shares in the carmaker rose after strong quarterly sales"

#: one option changed at a time from SESSION_DEFAULTS
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "intra=1": {"intra_op_num_threads": 1},
    "intra=2": {"intra_op_num_threads": 2},
    "level=basic": {"graph_optimization_level": "basic"},
    "level=extended": {"graph_optimization_level": "extended"},
    "arena=off": {"enable_cpu_mem_arena": False},
    "parallel, inter=2": {"execution_mode": "parallel", "inter_op_num_threads": 2},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> tuple[float, ...]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return (float("nan"),) * 3


def fused(fp32: Path, work: Path) -> dict[str, Path]:
    """The transformers-optimizer graph (and its dynamic int8) when the optimizer imports."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model
    except Exception as exc:
        log(f"onnxruntime.transformers.optimizer unavailable ({type(exc).__name__}): skipped")
        return {}
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / "fused.onnx"
    m = optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384, opt_level=1)
    m.save_model_to_file(str(out))
    q = work / "fused.int8.onnx"
    try:  # contrib ops (Attention, SkipLayerNorm) defeat shape inference: name the default type
        quantize_dynamic(str(out), str(q), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    except Exception as exc:
        log(f"dynamic int8 of the fused graph failed ({type(exc).__name__}: {exc}): skipped")
        return {"fused_fp32": out}
    return {"fused_fp32": out, "fused_int8_dynamic": q}


def measure(sess: Any, n_single: int, n_batch: int, short: dict[str, Any], long: dict[str, Any],
            one: dict[str, Any]) -> dict[str, float]:
    sess.run_encoded(one)
    lat = []
    for _ in range(n_single):
        t0 = time.perf_counter()
        sess.run_encoded(one)
        lat.append(time.perf_counter() - t0)
    sess.run_encoded(short)
    t0 = time.perf_counter()
    for _ in range(n_batch * 4):
        sess.run_encoded(short)
    s_tps = 32 * n_batch * 4 / (time.perf_counter() - t0)
    sess.run_encoded(long)
    t0 = time.perf_counter()
    for _ in range(n_batch):
        sess.run_encoded(long)
    l_tps = 32 * n_batch / (time.perf_counter() - t0)
    return {"single_p50_ms": 1000 * statistics.median(lat), "single_p95_ms": 1000 * float(np.percentile(lat, 95)),
            "short32_tps": s_tps, "long32_tps": l_tps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke: 1 round, fewer calls")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import int8_accuracy_bench as ib

    from transferops._util import cache_dir
    from transferops.constants import ONNX_INT8_MODEL, ONNX_MODEL
    from transferops.deploy.onnx_runtime import SESSION_DEFAULTS, OnnxSession
    from transferops.modeling import load_tokenizer

    t_start = time.perf_counter()
    cache = cache_dir() / "bench"
    run, heldout = ib.get_model(cache)
    work = cache / "int8-bench-exports"
    if not all((work / f"export-{m}" / ONNX_INT8_MODEL).exists() for m in ("dynamic", "static")):
        log("exporting (int8_accuracy_bench's exports are missing)")
        ib.get_exports(run, work)
    models = {"fp32": work / "export-dynamic" / ONNX_MODEL, "int8_dynamic": work / "export-dynamic" / ONNX_INT8_MODEL,
              "int8_static": work / "export-static" / ONNX_INT8_MODEL}
    models.update(fused(models["fp32"], work))
    tok = load_tokenizer(work / "export-dynamic")
    texts = [str(t) for t in heldout["text"]]
    long_batch = sorted(texts, key=len)[-32:]
    rounds = 1 if args.quick else args.rounds
    n_single, n_batch = (30, 2) if args.quick else (100, 5)
    # every option on the plain graphs; the fused graphs with the defaults only
    cells = [(m, c) for m in models for c in (CONFIGS if not m.startswith("fused") else {"defaults": {}})]
    sessions = {(m, c): OnnxSession(models[m], tok, max_length=128, options=CONFIGS[c]) for m, c in cells}
    any_sess = next(iter(sessions.values()))
    one, short, long = any_sess.encode([SHORT]), any_sess.encode([SHORT] * 32), any_sess.encode(long_batch)
    log(f"{len(cells)} cells × {rounds} rounds (long batch: {long['input_ids'].shape[1]} tokens)")
    per_round = []
    for r in range(rounds):
        rec: dict[str, Any] = {"round": r, "load_avg": load(), "cells": {}}
        order = cells if r % 2 == 0 else cells[::-1]  # alternate the order: no cell always runs first
        for m, c in order:
            rec["cells"][f"{m} | {c}"] = measure(sessions[(m, c)], n_single, n_batch, short, long, one)
        per_round.append(rec)
        log(f"round {r}: load {rec['load_avg']}")
    summary: dict[str, Any] = {}
    for m, c in cells:
        key = f"{m} | {c}"
        got = [rr["cells"][key] for rr in per_round]
        summary[key] = {"model": m, "config": c, "options": CONFIGS[c],
                        "single_p50_ms_best": min(g["single_p50_ms"] for g in got),
                        "single_p50_ms_median": statistics.median(g["single_p50_ms"] for g in got),
                        "short32_tps_best": max(g["short32_tps"] for g in got),
                        "long32_tps_best": max(g["long32_tps"] for g in got),
                        "long32_tps_median": statistics.median(g["long32_tps"] for g in got)}
    payload = {"quick": args.quick, "rounds": rounds, "cpus": os.cpu_count(), "defaults": SESSION_DEFAULTS,
               "configs": CONFIGS, "models": {k: str(v) for k, v in models.items()},
               "model_bytes": {k: v.stat().st_size for k, v in models.items()},
               "summary": summary, "per_round": per_round, "load_avg_end": load(),
               "wall_s": round(time.perf_counter() - t_start, 1)}
    md = [f"# ONNX Runtime session options (issue 18){' — SMOKE (--quick)' if args.quick else ''}", "",
          f"{os.cpu_count()} cores; best of {rounds} interleaved round(s) (load average per round "
          f"{[rr['load_avg'][0] for rr in per_round]}); one option changed at a time from the defaults "
          f"{SESSION_DEFAULTS}. Ratios are against the same model's `defaults` row.", "",
          "| model | options | 1 short text p50 ms | 32 short texts/s | 32 long texts/s | long vs defaults |",
          "|---|---|---|---|---|---|"]
    for m in models:
        base = summary[f"{m} | defaults"]
        for c in CONFIGS:
            s = summary.get(f"{m} | {c}")
            if s is None:
                continue
            md.append(f"| {m} | {c} | {s['single_p50_ms_best']:.2f} | {s['short32_tps_best']:.0f} | "
                      f"{s['long32_tps_best']:.1f} | {s['long32_tps_best'] / base['long32_tps_best']:.2f}× |")
    md += ["", f"Wall time {payload['wall_s']} s."]
    save("ort_options_bench", payload, "\n".join(md))


if __name__ == "__main__":
    main()
