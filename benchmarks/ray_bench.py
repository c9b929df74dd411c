"""Batch scoring rows/s: the local engine vs the Ray engine with 1 and 2 workers (same machine, same run).

Model: MiniLM-L6 with a head trained on the 200-article test fixture, exported to ONNX int8 (the
Ray engine's default runtime), max_length 128. Backlog: BBC articles (first 400 characters), as CSV
shards of 500 rows. Each configuration runs ``ROUNDS`` times, interleaved; each Ray run includes
starting its actors (model load), not ``ray.init``.

    nice -n 10 python benchmarks/ray_bench.py [--rows 4000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import pandas as pd

    import transferops
    from transferops.data.bundled import load_bbc
    from transferops.deploy.onnx_export import export_onnx
    from transferops.predict.batch import predict_file
    from transferops.predict.ray_engine import init_ray, predict_ray

    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    fixture = Path(__file__).parents[1] / "tests" / "data" / "bbc_small.csv"
    transferops.train(fixture, out=work / "run", checkpoint="minilm-l6", strategy="head", epochs=20,
                      max_length=128, check_near_duplicates=False, baseline=False)
    export_onnx(work / "run", work / "onnx", quantize="int8", max_drop=1.0)
    bbc = load_bbc()
    texts = (bbc["text"].str.slice(0, 400).tolist() * (args.rows // len(bbc) + 1))[:args.rows]
    df = pd.DataFrame({"id": range(args.rows), "text": texts})
    shards = work / "shards"
    shards.mkdir()
    for i, s in enumerate(range(0, args.rows, 500)):
        df.iloc[s:s + 500].to_csv(shards / f"s{i:03d}.csv", index=False)
    single = work / "all.csv"
    df.to_csv(single, index=False)
    init_ray(None, num_cpus=2)
    model = transferops.load(work / "onnx", threads=1)
    times: dict[str, list[float]] = {"local (1 process, 1 thread)": [], "ray, 1 worker": [], "ray, 2 workers": []}
    for _ in range(args.rounds):
        out = work / "local.parquet"
        t = time.perf_counter()
        predict_file(model, single, out, id_column="id", chunk_size=500)
        times["local (1 process, 1 thread)"].append(time.perf_counter() - t)
        out.unlink()
        for n in (1, 2):
            o = work / f"ray{n}"
            t = time.perf_counter()
            predict_ray(work / "onnx", shards, o, id_column="id", num_workers=n, threads=1)
            times[f"ray, {n} worker" + ("s" if n > 1 else "")].append(time.perf_counter() - t)
            shutil.rmtree(o)
    rows = {k: {"seconds_median": round(statistics.median(v), 2), "seconds": [round(x, 2) for x in v],
                "rows_per_second": round(args.rows / statistics.median(v), 1)} for k, v in times.items()}
    base = rows["ray, 1 worker"]["rows_per_second"]
    lines = [f"Batch scoring {args.rows} rows (MiniLM-L6 head, ONNX int8, max_length 128), 2-core machine, "
             f"median of {args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.2f} at the end.", "",
             "| engine | seconds (median) | rows/s | vs Ray 1 worker |", "|---|---:|---:|---:|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {v['seconds_median']} | {v['rows_per_second']} | "
                     f"{v['rows_per_second'] / base:.2f}× |")
    save("ray_bench", {"rows": args.rows, "rounds": args.rounds, "results": rows}, "\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
