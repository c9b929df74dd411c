"""Serving benchmark: latency/throughput of ``transferops serve`` vs a naive peer vs raw ONNX Runtime,
int8 accuracy drop and size, and memory for 1 vs 20 LoRA adapters.

    .venv/bin/python benchmarks/serve_bench.py [--model RUN] [--duration 5] [--threads 1]

Full size (the committed results): about 7 minutes on 2 idle cores once the model, its export, the LoRA
adapter and the int8 accuracy figure are cached (HTTP cells: 3 systems × 2 texts × 3 concurrencies × 2
rounds × 5.5 s ≈ 3.3 min); the first run also trains and exports them, ~5 min more.
Smoke form: ``--duration 3 --rounds 1 --skip-naive --adapters '' --out serve_bench_smoke``.

Without ``--model`` it trains a BBC MiniLM classifier first (strategy freeze, 2 epochs, lr 4e-4, 600-article
stratified subset, max_length 128; cached under the transferops cache dir). Writes
``benchmarks/results/serve_bench.json`` and ``.md``.

Systems (one text per request, closed-loop clients on loopback, each cell ``--duration`` seconds):
  (a) transferops serve — ONNX int8 + dynamic batching (subprocess, uvicorn), with its own thread default
       (no ``--threads``: ONNX Runtime's intra-op default, one thread per core, and 1 inference worker);
       ``--server-threads N`` passes ``--threads N`` (before 2026-12-04 the benchmark ran it at ``--threads 1``,
       which means 2 workers of 1 thread each on 2 cores)
  (a') the same with ``--no-fast-path`` (every request through the FastAPI route; ``--skip-plain-route``
       leaves it out): the fast path's effect, measured interleaved
  (a+) ``--system NAME='FLAGS'`` (repeatable): (a) with extra serve flags, interleaved with the others, e.g.
       ``--system split2048='--split-min-chars 2048' --texts short --concurrency 8,32`` (serve_split_c8_s24)
  (b) naive peer — FastAPI + transformers pipeline per request, PyTorch fp32 (benchmarks/serve_naive.py)
  (c) raw ONNX Runtime int8 in-process, full batches of 32 (no HTTP: the ceiling on this machine): the best
       of 1 thread, cores × 1-thread batches at once, and 1 batch over all cores' intra-op threads

The load generator is a minimal asyncio HTTP/1.1 keep-alive client (lighter than httpx, so it
steals less CPU from the server under test). It runs in this process and shares the cores with the
server: each cell records its CPU time (``time.process_time``) and the server process's (all threads,
``/proc/PID/stat``) over the same window — per request, as a share of the usable CPUs (affinity and
cgroup quota, not ``os.cpu_count``) and as a share of the CPU the cell used (load generator + server).
The machine is shared and noisy: short cells, read
the numbers as rough.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFEROPS_QUIET", "1")

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
PY = sys.executable
SHORT = "Shares in the carmaker rose after strong quarterly sales"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- model
def get_model(args: argparse.Namespace, cache: Path) -> tuple[Path, Any]:
    if args.model:
        return Path(args.model), bbc_sets()[1]
    return train_bbc_model(cache, "bbc-minilm-freeze-e2")


def bbc_sets() -> tuple[Any, Any]:
    """The benchmark model's 600-article training subset, and the BBC articles it never saw (shuffled)."""
    from transferops.data.bundled import load_bbc

    bbc = load_bbc()
    subset = bbc.groupby("label").sample(120, random_state=0).reset_index(drop=True)
    return subset, bbc[~bbc["id"].isin(subset["id"])].sample(frac=1.0, random_state=1)


def train_bbc_model(cache: Path, name: str) -> tuple[Path, Any]:
    """The serving benchmarks' BBC MiniLM model, trained once into ``cache / name``, and its held-out
    articles (shared with ``int8_accuracy_bench.py`` and ``ort_options_bench.py``)."""
    import pandas as pd

    import transferops

    subset, heldout = bbc_sets()
    run = cache / name
    if not (run / "transferops.json").exists():
        shutil.rmtree(run, ignore_errors=True)
        # 1 epoch at the default freeze lr (5e-5) leaves near-uniform probabilities (mean max 0.22):
        # any rounding then flips argmaxes. 2 epochs at 4e-4 give a model worth serving.
        log("training BBC MiniLM (freeze, 2 epochs, lr 4e-4, 600 articles, max_length 128)")
        t0 = time.perf_counter()
        transferops.train(pd.DataFrame(subset[["text", "label"]]), out=run, checkpoint="minilm-l6",
                          strategy="freeze", epochs=2, lr=4e-4, max_length=128, batch_size=16,
                          check_near_duplicates=False)
        log(f"  trained in {time.perf_counter() - t0:.0f}s")
    return run, heldout


def get_lora(cache: Path, heldout: Any) -> Path:
    import pandas as pd

    import transferops

    run = cache / "bbc-minilm-lora"
    if not (run / "transferops.json").exists():
        shutil.rmtree(run, ignore_errors=True)
        log("training a BBC MiniLM LoRA adapter (30 steps) for the adapter memory figure")
        data = pd.DataFrame(heldout[["text", "label"]].iloc[:300])
        transferops.train(data, out=run, checkpoint="minilm-l6", strategy="lora", max_steps=30,
                          max_length=128, batch_size=16, check_near_duplicates=False)
    return run


# --------------------------------------------------------------------------- load generation
async def _client(host: str, port: int, path: str, body: bytes, deadline: float, lat: list[float],
                  errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
            await reader.readexactly(length)
            dt = time.perf_counter() - t0
            status = int(status_line.split()[1]) if status_line else 0
            if status == 200:
                lat.append(dt)
            else:
                errors.append(str(status))
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        errors.append(type(exc).__name__)
    finally:
        writer.close()


def usable_cpus() -> float:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota when one is set."""
    n = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return n


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) of process ``pid`` and its live children so far (``serve
    --processes N`` runs the server in N children of a supervisor)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the task ended meanwhile
            children.update(int(c) for c in (task / "children").read_text().split())
    return own + sum(proc_cpu_s(c) for c in children)


async def _load(port: int, path: str, text: str, concurrency: int, duration: float,
                server_pid: int | None = None) -> dict[str, Any]:
    body = json.dumps({"texts": [text]}).encode()
    lat: list[float] = []
    errors: list[str] = []
    # warm-up: a few requests per connection
    await asyncio.gather(*[_client("127.0.0.1", port, path, body, time.perf_counter() + 0.5, [], [])
                           for _ in range(min(concurrency, 4))])
    s0 = proc_cpu_s(server_pid) if server_pid is not None else None
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*[_client("127.0.0.1", port, path, body, t0 + duration, lat, errors)
                           for _ in range(concurrency)])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    server_cpu = proc_cpu_s(server_pid) - s0 if server_pid is not None and s0 is not None else None
    ms = np.asarray(lat) * 1000
    n = max(len(lat) + len(errors), 1)
    out = {"requests": len(lat), "errors": len(errors), "seconds": round(elapsed, 2),
           "throughput_rps": round(len(lat) / elapsed, 1),
           "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
           "p95_ms": round(float(np.percentile(ms, 95)), 2) if len(ms) else None,
           "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
           # the load generator shares the machine with the server: its CPU share of the usable cores
           "loadgen_cpu_share": round(cpu / (elapsed * usable_cpus()), 3),
           "loadgen_cpu_ms_per_request": round(1000 * cpu / n, 3),
           "load_avg_1m": round(os.getloadavg()[0], 2)}
    if server_cpu is not None:
        out["server_cpu_ms_per_request"] = round(1000 * server_cpu / n, 3)
        # of the CPU time this cell used (server + load generator), the load generator's part
        out["loadgen_share_of_used_cpu"] = round(cpu / max(cpu + server_cpu, 1e-9), 3)
    return out


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server not ready in time")


THREADS = {"n": 1}


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    n = str(THREADS["n"])
    # pins PyTorch (the naive peer); the ONNX Runtime build does not read these, so the server's default stays its own
    env = {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_ready(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- parts
def bench_raw_ort(export: Path, texts: dict[str, str], duration: float, threads: int) -> dict[str, Any]:
    """The ceiling: ONNX Runtime int8 in-process, no HTTP. Full batches of 32 from one thread, from
    ``cores / threads`` threads at once over one session (what the server does with ``--threads 1``), and
    from one thread over a session with ``cores`` intra-op threads (what the server does without
    ``--threads``); the best of them is the ceiling. Plus single-text calls on both sessions (the latency
    floors: ``single_*`` at ``threads``, ``single_cores_*`` at ``cores`` intra-op threads)."""
    import concurrent.futures

    from transferops.deploy.onnx_runtime import OnnxSession
    from transferops.modeling import load_tokenizer

    em = json.loads((export / "export.json").read_text())
    sess = OnnxSession(export / "model.int8.onnx", load_tokenizer(export), max_length=em["max_length"],
                       threads=threads)
    cores = os.cpu_count() or 1
    par = max(1, cores // threads)
    wide = OnnxSession(export / "model.int8.onnx", load_tokenizer(export), max_length=em["max_length"],
                       threads=cores) if cores > threads else None

    def loop(batch: list[str], until: float, lat: list[float], s: Any = sess) -> int:
        n = 0
        while time.perf_counter() < until:
            b0 = time.perf_counter()
            s.run(batch, batch_size=len(batch))
            lat.append(time.perf_counter() - b0)
            n += len(batch)
        return n

    out: dict[str, Any] = {}
    for kind, text in texts.items():
        batch = [text] * 32
        sess.run(batch)
        lat: list[float] = []
        t0 = time.perf_counter()
        n = loop(batch, t0 + duration, lat)
        el = time.perf_counter() - t0
        ms = np.asarray(lat) * 1000
        r: dict[str, Any] = {"texts": n, "seconds": round(el, 2), "throughput_1thread_tps": round(n / el, 1),
                             "batch_p50_ms": round(float(np.percentile(ms, 50)), 2),
                             "batch_p95_ms": round(float(np.percentile(ms, 95)), 2)}
        if par > 1:
            with concurrent.futures.ThreadPoolExecutor(par) as ex:
                t0 = time.perf_counter()
                futs = [ex.submit(loop, batch, t0 + duration, []) for _ in range(par)]
                n = sum(f.result() for f in futs)
                el = time.perf_counter() - t0
            r[f"throughput_{par}threads_tps"] = round(n / el, 1)
        if wide is not None:
            wide.run(batch)
            t0 = time.perf_counter()
            n = loop(batch, t0 + duration, [], wide)
            r[f"throughput_1x{cores}intraop_tps"] = round(n / (time.perf_counter() - t0), 1)
        r["parallel_batches"] = par
        r["throughput_tps"] = max(v for k, v in r.items() if k.startswith("throughput_") and k.endswith("_tps"))
        one: list[float] = []
        t0 = time.perf_counter()
        loop([text], t0 + min(duration, 3.0), one)
        ms1 = np.asarray(one) * 1000
        r["single_p50_ms"] = round(float(np.percentile(ms1, 50)), 3)
        r["single_p95_ms"] = round(float(np.percentile(ms1, 95)), 3)
        if wide is not None:
            one = []
            t0 = time.perf_counter()
            loop([text], t0 + min(duration, 3.0), one, wide)
            ms1 = np.asarray(one) * 1000
            r["single_cores_p50_ms"] = round(float(np.percentile(ms1, 50)), 3)
            r["single_cores_p95_ms"] = round(float(np.percentile(ms1, 95)), 3)
        r["load_avg_1m"] = round(os.getloadavg()[0], 2)
        out[kind] = r
        log(f"  raw ORT int8 {kind}: {r['throughput_tps']} texts/s (1 thread {r['throughput_1thread_tps']}); "
            f"one text p50 {r['single_p50_ms']} ms p95 {r['single_p95_ms']} ms")
    return out


def bench_http(systems: dict[str, tuple[list[str], int]], texts: dict[str, str], conc: list[int],
               duration: float, rounds: int) -> dict[str, dict[str, Any]]:
    """All servers up at once (idle ones cost nothing); each cell runs the systems back to back and
    is repeated ``rounds`` times, keeping the round with the best throughput: on a shared machine
    this compares the systems under the same background load instead of at different minutes."""
    procs = {name: start(cmd, port) for name, (cmd, port) in systems.items()}
    res: dict[str, dict[str, Any]] = {name: {} for name in systems}
    try:
        for name, proc in procs.items():
            res[name]["rss_mb"] = round(rss_mb(proc.pid), 1)
        for kind, text in texts.items():
            for c in conc:
                rounds_seen: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
                for rnd in range(rounds):
                    for name, (_, port) in systems.items():
                        r = asyncio.run(_load(port, "/v1/models/bbc/predict", text, c, duration,
                                              server_pid=procs[name].pid))
                        rounds_seen[name].append(r)
                        log(f"  {name} {kind} c={c} round {rnd}: {r['throughput_rps']} req/s  p50 {r['p50_ms']} "
                            f"ms  p95 {r['p95_ms']} ms  p99 {r['p99_ms']} ms  errors {r['errors']}")
                for name, seen in rounds_seen.items():
                    best = dict(max(seen, key=lambda x: x["throughput_rps"]))
                    best["rounds_throughput"] = [x["throughput_rps"] for x in seen]
                    best["errors"] = sum(x["errors"] for x in seen)  # errors of every round count
                    res[name][f"{kind}_c{c}"] = best
    finally:
        for proc in procs.values():
            stop(proc)
    return res


def int8_accuracy(run: Path, export: Path, heldout: Any, n: int) -> dict[str, Any]:
    import transferops
    from transferops.deploy.onnx_runtime import OnnxModel

    df = heldout.iloc[:n]
    texts, y = df["text"].tolist(), df["label"].to_numpy()
    t0 = time.perf_counter()
    pt = np.asarray(transferops.load(run, threads=2).predict(texts))
    t_pt = time.perf_counter() - t0
    t0 = time.perf_counter()
    q8 = np.asarray(OnnxModel(export, variant="int8", threads=2).predict(texts))
    t_q8 = time.perf_counter() - t0
    f32 = np.asarray(OnnxModel(export, variant="fp32", threads=2).predict(texts))
    acc = {k: float((v == y).mean()) for k, v in {"pytorch": pt, "onnx_fp32": f32, "onnx_int8": q8}.items()}
    return {"n_heldout": len(texts), "accuracy": acc,
            "drop_points": round(100 * (acc["pytorch"] - acc["onnx_int8"]), 3),
            "agreement_int8_vs_pytorch": float((q8 == pt).mean()),
            "batch_scoring_texts_per_s": {"pytorch": round(len(texts) / t_pt, 1),
                                          "onnx_int8": round(len(texts) / t_q8, 1)}}


def bench_adapters(lora: Path, work: Path, counts: list[int], threads: int) -> dict[str, Any]:
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(0)
    size = (lora / "model" / "adapter_model.safetensors").stat().st_size
    res: dict[str, Any] = {"adapter_file_kb": round(size / 1024, 1)}
    for k in counts:
        d = work / f"adapters-{k}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for i in range(k):
            dst = d / f"task{i:02d}"
            shutil.copytree(lora, dst, ignore=shutil.ignore_patterns("data"))
            f = dst / "model" / "adapter_model.safetensors"
            w = load_file(str(f))
            for key, v in w.items():  # distinct weights per adapter (no accidental sharing)
                if "lora_B" in key or "classifier" in key:
                    w[key] = (v + rng.standard_normal(v.shape) * 0.01).astype(v.dtype)
            save_file(w, str(f))
        port = free_port()
        proc = start([PY, "-m", "transferops", "--quiet", "serve", "--adapters", str(d), "--port", str(port),
                      "--threads", str(threads)], port)
        try:
            import httpx

            for i in range(k):  # touch every adapter once
                httpx.post(f"http://127.0.0.1:{port}/v1/models/task{i:02d}/predict", json={"texts": [SHORT]},
                           timeout=60).raise_for_status()
            res[f"rss_mb_{k}"] = round(rss_mb(proc.pid), 1)
            log(f"  {k} adapters: RSS {res[f'rss_mb_{k}']} MB")
        finally:
            stop(proc)
    return res


def write_md(res: dict[str, Any], path: Path) -> None:
    lines = ["# Serving benchmark", "",
             f"Machine: {res['machine']}; transferops serve threads: {res.get('server_threads', res['threads'])}; "
             f"naive peer and raw ORT's first session: {res['threads']} intra-op thread(s). Cells of "
             f"{res['duration_s']} s (best of {res['rounds']} interleaved rounds), one text per request, "
             "closed-loop "
             "clients on loopback; shared, noisy CPU — read as rough figures.", "",
             "| system | text | concurrency | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms/req "
             "| load generator CPU ms/req | load avg |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    extra = [(f"(a+) the same, {v.get('flags')}", v) for v in res.get("extra_systems", {}).values()]
    for sys_name, key in (("(a) transferops serve, ONNX int8 + batching", "transferops"),
                          ("(a') the same, --no-fast-path", "transferops_plain"),
                          *extra, ("(b) naive FastAPI + pipeline (PyTorch)", "naive")):
        for cell, r in (key if isinstance(key, dict) else res.get(key, {})).items():
            if not isinstance(r, dict):
                continue
            kind, c = cell.split("_c")
            lines.append(f"| {sys_name} | {kind} | {c} | {r['throughput_rps']} | {r['p50_ms']} | "
                         f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r.get('server_cpu_ms_per_request', '–')} "
                         f"| {r.get('loadgen_cpu_ms_per_request', '–')} | {r.get('load_avg_1m', '–')} |")
    for kind, r in res["raw_ort"].items():
        lines.append(f"| (c) raw ORT int8, batches of 32, in-process (best of 1 thread, "
                     f"{r.get('parallel_batches', 1)} threads × 1, 1 thread × all cores) | {kind} | – | "
                     f"{r['throughput_tps']} texts/s | – | batch p95 {r['batch_p95_ms']} "
                     f"| – | 0 | – | – | {r.get('load_avg_1m', '–')} |")
        lines.append(f"| (c) raw ORT int8, one text per call | {kind} | 1 | – | {r.get('single_p50_ms')} | "
                     f"{r.get('single_p95_ms')} | – | 0 | – | – | |")
        if "single_cores_p95_ms" in r:
            lines.append(f"| (c) raw ORT int8, one text per call, intra-op threads = cores | {kind} | 1 | – | "
                         f"{r['single_cores_p50_ms']} | {r['single_cores_p95_ms']} | – | 0 | – | – | |")
    q = res["int8"]
    lines += ["", "| int8 | value |", "|---|---|",
              f"| held-out BBC articles | {q['n_heldout']} |",
              f"| accuracy PyTorch / ONNX fp32 / ONNX int8 | {q['accuracy']['pytorch']:.4f} / "
              f"{q['accuracy']['onnx_fp32']:.4f} / {q['accuracy']['onnx_int8']:.4f} |",
              f"| int8 drop | {q['drop_points']} points |",
              f"| size fp32 → int8 | {res['sizes']['onnx_fp32_mb']} MB → {res['sizes']['onnx_int8_mb']} MB "
              f"({res['sizes']['ratio']}×) |",
              f"| batch scoring texts/s PyTorch / ONNX int8 | {q['batch_scoring_texts_per_s']['pytorch']} / "
              f"{q['batch_scoring_texts_per_s']['onnx_int8']} |"]
    a = res.get("adapters", {})
    if a:
        lines += ["", "| LoRA adapters over one MiniLM base | RSS |", "|---|---|"]
        lines += [f"| {k.split('_')[-1]} adapters | {v} MB |" for k, v in a.items()
                  if k.startswith("rss_mb_")]
        lines.append(f"| adapter file | {a['adapter_file_kb']} KB |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |" for t in res["targets"]]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="trained BBC artifact (default: train one)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads of the naive peer, of raw ORT's first session and of the adapter server")
    ap.add_argument("--server-threads", type=int, default=None,
                    help="transferops serve --threads (default: none given, the server's own default: ONNX "
                         "Runtime's intra-op default, one thread per core, and 1 inference worker)")
    ap.add_argument("--out", default="serve_bench", help="results file stem under benchmarks/results")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--heldout", type=int, default=600, help="held-out articles for the int8 accuracy drop")
    ap.add_argument("--adapters", default="1,20", help="adapter counts for the memory figure ('' to skip)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-plain-route", action="store_true", help="leave out (a') --no-fast-path")
    ap.add_argument("--rounds", type=int, default=2, help="repeat each cell, keep the best round")
    ap.add_argument("--system", action="append", default=[], metavar="NAME=FLAGS",
                    help="also run (a) with these extra serve flags, interleaved with the others, e.g. "
                         "--system split0='--split-min-chars 0'; repeatable")
    ap.add_argument("--texts", default="short,long", help="which texts to run (short, long)")
    args = ap.parse_args()

    from transferops._util import cache_dir
    from transferops.deploy.onnx_export import export_onnx

    THREADS["n"] = args.threads
    cache = cache_dir() / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    run, heldout = get_model(args, cache)
    export = cache / f"{run.name}-onnx"
    if not (export / "export.json").exists():
        log("exporting to ONNX + int8")
        export_onnx(run, export, quantize="int8", max_drop=0.01, overwrite=True)
    em = json.loads((export / "export.json").read_text())
    long_text = max(heldout["text"].iloc[:50], key=len)[:3000]
    texts = {k: v for k, v in {"short": SHORT, "long": long_text}.items() if k in args.texts.split(",")}
    conc = [int(c) for c in args.concurrency.split(",")]
    res: dict[str, Any] = {"machine": f"{os.cpu_count()} visible CPUs (shared with other jobs)",
                           "duration_s": args.duration, "threads": args.threads, "rounds": args.rounds,
                           "server_threads": args.server_threads or "server default",
                           "model": str(run),
                           "texts": {"short_chars": len(SHORT), "long_chars": len(long_text)},
                           "export": {k: em[k] for k in ("parity", "int8", "sizes")}}
    sizes = em["sizes"]
    res["sizes"] = {"onnx_fp32_mb": round(sizes["onnx_fp32"] / 2**20, 1),
                    "onnx_int8_mb": round(sizes["onnx_int8"] / 2**20, 1),
                    "ratio": round(sizes["onnx_int8"] / sizes["onnx_fp32"], 3)}
    log("int8 accuracy on held-out BBC articles")
    acc_cache = cache / f"int8-accuracy-{em['sha256']['onnx_int8'][:12]}-{args.heldout}.json"
    if acc_cache.exists():  # slow on a shared CPU; the numbers do not change for the same export
        res["int8"] = json.loads(acc_cache.read_text())
    else:
        res["int8"] = int8_accuracy(run, export, heldout, args.heldout)
        acc_cache.write_text(json.dumps(res["int8"]))
    log(f"  {res['int8']}")
    log("raw ONNX Runtime int8, full batches")
    res["raw_ort"] = bench_raw_ort(export, texts, args.duration, args.threads)
    pa, pb = free_port(), free_port()

    server_threads = ["--threads", str(args.server_threads)] if args.server_threads else []

    def serve_cmd(port: int, *extra: str) -> list[str]:
        return [PY, "-m", "transferops", "--quiet", "serve", "--model", f"bbc={export}", "--port", str(port),
                *server_threads, "--max-batch-size", "32", "--max-wait-ms", "2", *extra]

    systems = {"transferops": (serve_cmd(pa), pa)}
    if not args.skip_plain_route:
        pp = free_port()
        systems["transferops_plain"] = (serve_cmd(pp, "--no-fast-path"), pp)
    extra_flags: dict[str, str] = {}
    for spec in args.system:
        name, sep, flags = spec.partition("=")
        if not sep or not name:
            raise SystemExit(f"--system {spec!r}: expected NAME=FLAGS, e.g. split0='--split-min-chars 0'")
        extra_flags[name] = flags
    for name, flags in extra_flags.items():
        ps = free_port()
        systems[f"transferops_{name}"] = (serve_cmd(ps, *shlex.split(flags)), ps)
    if not args.skip_naive:
        systems["naive"] = ([PY, str(ROOT / "serve_naive.py"), str(run / "model"), str(pb), str(args.threads)], pb)
    log(f"HTTP: {', '.join(systems)} (interleaved, best of {args.rounds} rounds per cell)")
    http = bench_http(systems, texts, conc, args.duration, args.rounds)
    res["transferops"] = http["transferops"]
    res["naive"] = http.get("naive", {})
    res["transferops_plain"] = http.get("transferops_plain", {})
    res["extra_systems"] = {name: {"flags": flags, **http[f"transferops_{name}"]}
                            for name, flags in extra_flags.items()}
    if args.adapters:
        log("memory: LoRA adapters over one base")
        lora = get_lora(cache, heldout)
        counts = [int(k) for k in args.adapters.split(",")]
        res["adapters"] = bench_adapters(lora, cache, counts, args.threads)

    # ---- targets
    cmax = max(conc)
    t: list[dict[str, Any]] = []
    for kind in texts:
        cell = res["transferops"][f"{kind}_c{cmax}"]
        a = cell["throughput_rps"]
        c = res["raw_ort"][kind]["throughput_tps"]
        used = cell.get("loadgen_share_of_used_cpu")
        t.append({"target": f"(a) ≥ 85% of (c) throughput at c={cmax}, {kind} (load generator: "
                            f"{cell['loadgen_cpu_share']:.1%} of the usable CPUs, {cell['loadgen_cpu_ms_per_request']} "
                            f"ms CPU per request"
                            + (f" = {used:.1%} of the CPU the cell used" if used is not None else "") + ")",
                  "measured": f"{a} vs {c} ({a / c:.0%})", "met": a >= 0.85 * c})
        if res["naive"]:
            b = res["naive"][f"{kind}_c{cmax}"]["throughput_rps"]
            t.append({"target": f"(a) ≥ 3× (b) throughput at c={cmax}, {kind}",
                      "measured": f"{a} vs {b} ({a / max(b, 1e-9):.1f}×)", "met": a >= 3 * b})
    if "short_c1" in res["transferops"]:
        p95 = res["transferops"]["short_c1"]["p95_ms"]
        rs = res["raw_ort"]["short"]
        # the floor at the server's intra-op threads (its default uses every core); the raw calls were timed at
        # --threads and at every core, so another --server-threads is compared with the --threads call
        cores = os.cpu_count() or 1
        floors = {args.threads: rs["single_p95_ms"], cores: rs.get("single_cores_p95_ms", rs["single_p95_ms"])}
        same = args.server_threads or cores
        same = same if same in floors else args.threads
        raw1 = floors[same]
        t.append({"target": f"(a) p95 at c=1, short text ≤ 1.5× one raw ORT call's p95 (same text, raw call at "
                            f"{same} intra-op thread(s))",
                  "measured": f"{p95} ms vs {raw1} ms ({p95 / raw1:.2f}×)", "met": p95 <= 1.5 * raw1})
    drop = res["int8"]["drop_points"]
    t.append({"target": "int8 accuracy drop ≤ 0.5 point", "measured": f"{drop} points", "met": drop <= 0.5})
    t.append({"target": "int8 size ≤ 0.3× fp32", "measured": f"{res['sizes']['ratio']}×",
              "met": res["sizes"]["ratio"] <= 0.3})
    errs = sum(r["errors"] for s in ("transferops", "transferops_plain", "naive") for r in res[s].values()
               if isinstance(r, dict)) + sum(r["errors"] for v in res["extra_systems"].values()
                                             for r in v.values() if isinstance(r, dict))
    t.append({"target": "zero errors under load", "measured": str(errs), "met": errs == 0})
    res["targets"] = t
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2))
    write_md(res, RESULTS / f"{args.out}.md")
    log(f"wrote {RESULTS / args.out}.json and .md")
    for x in t:
        log(f"  {'met ' if x['met'] else 'MISS'} {x['target']}: {x['measured']}")


if __name__ == "__main__":
    main()
