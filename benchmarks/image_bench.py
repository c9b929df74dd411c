"""MNIST-5k few-shot with the real mobilenet-v2 checkpoint (scaled down for 2 shared CPU cores).

For each labeled-set size (images per class) and seed: head / freeze / full vs the pixel baseline, trained
with `train_images` (explicit strategy, so each is measured), test accuracy on a fixed 500-image test pool
cut from the same MNIST 5k (never in train), train seconds; then ONNX fp32 vs int8 (static QDQ) latency and
accuracy of the head model. Resolution 64 px (the checkpoint's 224 is too slow here), 3 epochs for freeze/full.

    nice -n 10 python benchmarks/image_bench.py --per-class 10,50 --seeds 0 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", default="10,50")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--strategies", default="head,freeze,full")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--full-max-per-class", type=int, default=10,
                    help="train freeze/full only up to this many images per class (CPU budget)")
    ap.add_argument("--append", action="store_true", help="keep the rows of an earlier run in --out (same settings)")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--checkpoints", default="mobilenet-v2", help="comma-separated image checkpoints")
    ap.add_argument("--select", action="store_true",
                    help="also rank the checkpoints with `select` (100 images of the largest training set)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared, loaded 2-core machine 2 threads were ~30x slower per conv)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from transferops.artifacts import load
    from transferops.vision.onnx import export_image
    from transferops.vision.sample_data import mnist_arrays, write_mnist_folder
    from transferops.vision.train import ImageTrainConfig, train_images

    _, y = mnist_arrays()
    rng = np.random.default_rng(123)
    test_idx = np.sort(rng.choice(len(y), 500, replace=False))
    tmp = Path(tempfile.mkdtemp(prefix="image_bench_"))
    test_dir = tmp / "test"
    from PIL import Image

    x, _ = mnist_arrays()
    for i in test_idx:
        d = test_dir / f"digit_{y[i]}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(d / f"t{i:05d}.png")
    test_files = sorted(test_dir.rglob("*.png"))
    test_y = [f.parent.name for f in test_files]
    outd = Path(a.out)
    res_file = outd / "image_bench.json"
    prev = json.loads(res_file.read_text()) if a.append and res_file.exists() else {}
    rows = list(prev.get("rows", []))
    for r in rows:
        r.setdefault("checkpoint", "mobilenet-v2")
    done = {(r["checkpoint"], r["per_class"], r["seed"], r["strategy"]) for r in rows}
    selection = prev.get("select")
    load1 = os.getloadavg()[0]
    onnx_row = prev.get("onnx")
    if a.no_onnx:
        onnx_row = onnx_row or None
    for pc in [int(v) for v in a.per_class.split(",")]:
        for seed in [int(v) for v in a.seeds.split(",")]:
            data = write_mnist_folder(tmp / f"train_{pc}_{seed}", per_class=pc, seed=seed, exclude=test_idx)
            for ck, strat in [(c, s) for c in a.checkpoints.split(",") for s in ["baseline", *a.strategies.split(",")]]:
                if strat == "baseline" and any(k[1:] == (pc, seed, "baseline") for k in done):
                    continue  # the pixel baseline does not depend on the checkpoint
                if (ck, pc, seed, strat) in done or (strat in ("freeze", "full") and pc > a.full_max_per_class):
                    continue
                out = tmp / f"run_{ck}_{pc}_{seed}_{strat}"
                cfg = ImageTrainConfig(checkpoint=ck, strategy=strat, image_size=a.size,
                                       epochs=None if strat == "head" else a.epochs, seed=seed, threads=a.threads)
                t0 = time.perf_counter()
                res = train_images(data, out=out, config=cfg)
                secs = time.perf_counter() - t0
                m = load(out)
                t1 = time.perf_counter()
                pred = m.predict([str(f) for f in test_files])
                pred_s = time.perf_counter() - t1
                acc = float(np.mean([p == t for p, t in zip(pred, test_y, strict=True)]))
                done.add((ck, pc, seed, strat))
                rows.append({"checkpoint": ck if strat != "baseline" else "-", "per_class": pc, "seed": seed,
                             "strategy": strat, "train_s": round(secs, 1),
                             "test_accuracy": round(acc, 4),
                             "predict_ms_per_image": round(1000 * pred_s / len(test_files), 2),
                             "validation_macro_f1": res.manifest["metrics"]["validation"]["macro_f1"]})
                print(rows[-1], flush=True)
                write(outd, a, rows, onnx_row, load1, len(test_files), selection)
                if (strat == "head" and ck == "mobilenet-v2" and onnx_row is None and not a.no_onnx
                        and pc == max(int(v) for v in a.per_class.split(","))):
                    rep = export_image(out, tmp / "export")
                    onnx_row = {"fp32": rep["fp32"], "int8": rep["int8"], "parity": rep["parity"]}
                    print(onnx_row, flush=True)
                    write(outd, a, rows, onnx_row, load1, len(test_files), selection)
    if a.select:
        from transferops.vision.select import select_images

        pc = max(int(v) for v in a.per_class.split(","))
        res = select_images(tmp / f"train_{pc}_0", a.checkpoints.split(","), n=100, image_size=a.size)
        heads = {r["checkpoint"]: r["test_accuracy"] for r in rows if r["strategy"] == "head" and r["per_class"] == pc}
        selection = {"n": res["n"], "ranking": res["ranking"], "pixel_baseline": res["pixel_baseline"],
                     "finetuned_head_test_accuracy": heads,
                     "select_order": [r["name"] for r in res["ranking"]],
                     "finetuned_order": sorted(heads, key=lambda k: -heads[k])}
        print(selection, flush=True)
        write(outd, a, rows, onnx_row, load1, len(test_files), selection)
    shutil.rmtree(tmp, ignore_errors=True)


def write(outd: Path, a: argparse.Namespace, rows: list[dict[str, Any]], onnx_row: dict[str, Any] | None,
          load1: float, n_test: int, selection: dict[str, Any] | None = None) -> None:
    """Write the JSON and the Markdown table (after every row: a long run killed midway keeps its rows)."""
    test_files = range(n_test)
    result = {"benchmark": "image_bench", "checkpoint": "mobilenet-v2", "image_size": a.size, "epochs": a.epochs,
              "test_pool": len(test_files), "rows": rows, "onnx": onnx_row, "select": selection,
              "threads": getattr(a, "threads", None),
              "loadavg_start": load1, "loadavg_end": os.getloadavg()[0],
              "scaled_down": f"{a.size} px instead of 224; one seed; freeze/full only up to "
                             f"{a.full_max_per_class} images per class; {a.epochs} epochs for freeze/full; "
                             "500-image test pool"}
    outd.mkdir(parents=True, exist_ok=True)
    (outd / "image_bench.json").write_text(json.dumps(result, indent=2))
    cks = sorted({str(r.get("checkpoint")) for r in rows} - {"-", "None"})
    lines = [f"# image_bench ({', '.join(cks)}; MNIST-5k, {a.size} px, test pool {len(test_files)})", "",
             f"Scaled down: {result['scaled_down']}. Load average {load1:.2f} → {result['loadavg_end']:.2f}.", "",
             "| checkpoint | per class | seed | strategy | train s | test accuracy |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.get('checkpoint', 'mobilenet-v2')} | {r['per_class']} | {r['seed']} | {r['strategy']} | "
              f"{r['train_s']} | {r['test_accuracy']:.4f} |" for r in sorted(
                  rows, key=lambda r: (r["per_class"], r["strategy"] != "baseline", r.get("checkpoint", "")))]
    groups: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        groups.setdefault((r["per_class"], r["strategy"], r.get("checkpoint", "")), []).append(r["test_accuracy"])
    if any(len(v) > 1 for v in groups.values()):
        lines += ["", "Mean ± std of test accuracy over the seeds run:", "",
                  "| per class | strategy | checkpoint | seeds | mean | std |", "|---|---|---|---|---|---|"]
        for (pc, st, ck), v in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "baseline", kv[0][1:])):
            lines.append(f"| {pc} | {st} | {ck} | {len(v)} | {np.mean(v):.4f} | {np.std(v):.4f} |")
    if onnx_row:
        lines += ["", "| ONNX variant | test accuracy | ms / image | MB |", "|---|---|---|---|"]
        for v in ("fp32", "int8"):
            t = onnx_row[v]["test"]
            lines.append(f"| {v} | {t['accuracy']:.4f} | {t['ms_per_image']:.2f} | {onnx_row[v]['bytes'] / 1e6:.1f} |")
        lines.append(f"\nfp32 parity: max |Δlogit| {onnx_row['parity']['max_abs_logit_diff']:.2e}, argmax agreement "
                     f"{onnx_row['parity']['argmax_agreement']:.3f}; int8 accuracy drop "
                     f"{onnx_row['int8']['accuracy_drop']:+.4f} (on the run's own test split).")
    if selection:
        lines += ["", f"`select` on {selection['n']} training images (frozen features, probe macro-F1) vs the "
                  "fine-tuned head's test accuracy:", "", "| checkpoint | select probe F1 | kNN acc | LogME | "
                  "fine-tuned head test acc |", "|---|---|---|---|---|"]
        for r in selection["ranking"]:
            lines.append(f"| {r['name']} | {r['probe_macro_f1']:.4f} | {r['knn_accuracy']:.4f} | {r['logme']:.3f} | "
                         f"{selection['finetuned_head_test_accuracy'].get(r['name'], float('nan')):.4f} |")
        agree = selection["select_order"] == selection["finetuned_order"]
        lines.append(f"\nselect order {selection['select_order']} vs fine-tuned order {selection['finetuned_order']}: "
                     + ("same" if agree else "different"))
    (outd / "image_bench.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
