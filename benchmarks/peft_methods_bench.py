"""PEFT methods side by side (issue 17, item 3): LoRA / prompt tuning / IA3 / prefix tuning / freeze.

Same data, same checkpoint (all-MiniLM-L6-v2), same epochs and max length for every method; each
method's learning rate is its registered default (``finetune/strategies.py`` and the ``strategy_*.py``
files). Per method: trainable parameters, size of the saved ``model/`` weights on disk (the adapter for a
PEFT method, the whole model for freeze), test accuracy / macro-F1 (the artifact's own test split, from
its manifest) and the loop's ``train_seconds``. Prefix tuning is recorded as refused (the installed
transformers' encoder classifiers take no ``past_key_values``; see ``strategy_prefix.py``).

Scaled down on purpose (a shared 2-core machine): ``--per-class`` BBC articles per class (default 60 =
300 rows, split by ``train`` into train / validation / test), ``--max-length`` 64 tokens, ``--epochs`` 3,
``--threads`` 1 torch thread, one rep per method in one process, run in the order given. Accuracy on a
test split of 60 rows is noisy (one row = 1.7 points); the sizes and parameter counts are exact.

    nice -n 10 .venv/bin/python benchmarks/peft_methods_bench.py [--per-class 60] [--epochs 3]

Writes ``benchmarks/results/peft_methods_bench.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import save

METHODS = ("lora", "prompt_tuning", "ia3", "prefix_tuning", "freeze")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import transferops
    from transferops.data.bundled import load_bbc
    from transferops.errors import ConfigError

    bbc = load_bbc()
    data = (bbc.sample(frac=1.0, random_state=0).groupby("label").head(args.per_class)
            .reset_index(drop=True))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "bbc.csv"
        data[["text", "label"]].to_csv(csv, index=False)
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            print(f"--- {method}", flush=True)
            try:
                res = transferops.train(csv, out=Path(tmp) / method, checkpoint="minilm-l6", strategy=method,
                                        epochs=args.epochs, max_length=args.max_length, batch_size=16,
                                        check_near_duplicates=False, baseline=False, threads=args.threads,
                                        early_stopping_patience=None)
            except ConfigError as err:
                rows.append({"method": method, "refused": str(err)})
                continue
            m = res.manifest
            mdir = Path(tmp) / method / "model"
            size = sum(f.stat().st_size for f in mdir.glob("*.safetensors"))
            rows.append({"method": method, "peft_type": m["strategy"].get("peft_type"),
                         "trainable_params": m["strategy"]["trainable_params"],
                         "total_params": m["strategy"]["total_params"], "saved_bytes": size,
                         "lr": m["config"].get("lr") or m["training"].get("lr"),
                         "test_accuracy": round(m["metrics"]["test"]["accuracy"], 4),
                         "test_macro_f1": round(m["metrics"]["test"]["macro_f1"], 4),
                         "train_seconds": m["training"]["train_seconds"],
                         "wall_seconds": round(time.perf_counter() - t0, 1),
                         "test_rows": m["splits"]["sizes"]["test"]})
            print(rows[-1], flush=True)

    lines = ["# PEFT methods on the same data (issue 17, item 3)", "",
             f"all-MiniLM-L6-v2 on {len(data)} BBC articles ({args.per_class} per class; train/validation/test "
             f"split by `train`), {args.epochs} epochs, max length {args.max_length}, batch 16, "
             f"{args.threads} torch thread, each method at its registered default lr; one rep each, sequential "
             f"(load average at start in the JSON). **Scaled down** from the full BBC set / real epochs for a "
             "shared 2-core machine: accuracies on the small test split are noisy; parameter counts and sizes "
             "are exact.", "",
             "| method | trainable params | share | saved weights | test accuracy | test macro-F1 | train s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['method']} | refused: {r['refused'].split(';')[0]} | | | | | |")
            continue
        lines.append(f"| {r['method']} | {r['trainable_params']:,} | {r['trainable_params'] / r['total_params']:.2%} | "
                     f"{r['saved_bytes'] / 1e6:.2f} MB | {r['test_accuracy']:.3f} | {r['test_macro_f1']:.3f} | "
                     f"{r['train_seconds']:.1f} |")
    lines += ["", "Saved weights: the `model/` folder's safetensors (a PEFT method saves its adapter plus the "
              "trained head; `freeze` saves the whole model). An adapter is served over the shared base "
              "(`serve --adapters`), so its size is what each extra model costs.",
              f"Test rows per run: {next((r['test_rows'] for r in rows if 'test_rows' in r), '?')}."]
    save("peft_methods_bench", {"args": vars(args), "rows": rows, "cpu_threads_env": os.environ.get("OMP_NUM_THREADS")},
         "\n".join(lines))


if __name__ == "__main__":
    main()
