"""One training loop (issue 13): the loops before the refactor vs the shared ``finetune/loop.py``.

Each side runs in a fresh process with ``PYTHONPATH`` on its own source tree (``--before``: a git revision,
exported with ``git archive``; after: this working tree), interleaved ``--reps`` times, 1 torch thread.
Per method it records the loop's own ``train_seconds`` and whether the two sides end with **bit-identical
weights** (``torch.equal`` on every tensor).

Scaled down on purpose (a shared 2-core machine): a tiny random BERT (2 layers, 32 wide) on the 200-row
test fixture, so the per-step overhead of the loop is as large a share of a step as it can be (worst
case); the absolute times say nothing about real models.

    .venv/bin/python benchmarks/loop_bench.py [--before ad1688c] [--reps 3]

Writes ``benchmarks/results/loop_bench.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import save

ROOT = Path(__file__).resolve().parent.parent
CHILD = r'''
import json, sys, torch
from pathlib import Path
from safetensors.torch import load_file
torch.set_num_threads(1)
import pandas as pd, transferops
out, tb, data = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
res = {}
def weights(folder, name):
    w = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        w.update(load_file(str(f)))
    torch.save(w, out / f"{name}.pt")
kw = {"max_length": 32, "batch_size": 16, "lr": 1e-3, "check_near_duplicates": False, "baseline": False,
      "early_stopping_patience": None}
for name, extra in {"full": {"strategy": "full", "epochs": 3},
                    "head": {"strategy": "head", "epochs": 20, "lr": 1e-2},
                    "freeze_ga2": {"strategy": "freeze", "epochs": 2, "grad_accum": 2, "batch_size": 8}}.items():
    r = transferops.train(data, out=out / name, checkpoint=str(tb), **{**kw, **extra})
    weights(out / name / "model", name)
    res[name] = r.manifest["training"]["train_seconds"]
from transferops.adapt.distill import distill
d = distill(out / "full", out=out / "distill", layers=1, epochs=3, latency_texts=0, lr=1e-3)
weights(out / "distill" / "model", "distill")
res["distill"] = d.manifest["training"]["train_seconds"]
from transferops.adapt.mlm import adapt
a = adapt(pd.read_csv(data), out=out / "mlm", checkpoint=str(tb), steps=30, lr=3e-3, batch_size=8, max_length=32,
          grad_accum=2)
weights(out / "mlm", "mlm")
res["mlm"] = a.manifest["timings"]["train_seconds"]
(out / "times.json").write_text(json.dumps(res))
'''


def tiny_bert(dst: Path) -> Path:
    code = ("import sys, torch; from transformers import AutoTokenizer, BertConfig, BertForMaskedLM; "
            "from transferops.checkpoints import resolve_checkpoint; torch.manual_seed(0); "
            "tok = AutoTokenizer.from_pretrained(str(resolve_checkpoint('minilm-l6').path)); "
            "cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, "
            "intermediate_size=64, max_position_embeddings=256); "
            "BertForMaskedLM(cfg).save_pretrained(sys.argv[1], safe_serialization=True); "
            "tok.save_pretrained(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(dst)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="ad1688c", help="git revision with the three separate loops")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory(prefix="loop-bench-") as tmp_:
        tmp = Path(tmp_)
        before_src = tmp / "before"
        before_src.mkdir()
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "src"], check=True,
                              capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before_src)], input=arch, check=True)
        sides = {"before": before_src / "src", "after": ROOT / "src"}
        tb = tiny_bert(tmp / "tiny-bert")
        data = ROOT / "tests" / "data" / "bbc_small.csv"
        times: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
        loads, identical = [], {}
        for rep in range(args.reps):
            for side, src in sides.items():  # interleaved: before, after, before, after, ...
                out = tmp / f"{side}-{rep}"
                out.mkdir()
                loads.append(round(os.getloadavg()[0], 2))
                env = {**os.environ, "PYTHONPATH": str(src), "TRANSFEROPS_QUIET": "1", "OMP_NUM_THREADS": "1",
                       "TRANSFEROPS_CACHE": str(tmp / "cache")}
                subprocess.run([sys.executable, "-c", CHILD, str(out), str(tb), str(data)], check=True, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for k, v in json.loads((out / "times.json").read_text()).items():
                    times[side].setdefault(k, []).append(v)
            for name in times["after"]:
                a = torch.load(tmp / f"before-{rep}" / f"{name}.pt")
                b = torch.load(tmp / f"after-{rep}" / f"{name}.pt")
                same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
                identical[name] = identical.get(name, True) and same
    rows = ["| method | before: train s (median) | after: train s (median) | after / before | weights bit-identical |",
            "|---|---|---|---|---|"]
    summary = {}
    for name in times["after"]:
        b, a = statistics.median(times["before"][name]), statistics.median(times["after"][name])
        summary[name] = {"before_s": times["before"][name], "after_s": times["after"][name], "ratio": a / b,
                         "identical": identical[name]}
        rows.append(f"| {name} | {b:.3f} | {a:.3f} | {a / b:.2f} | {'yes' if identical[name] else 'NO'} |")
    md = (f"# One training loop: before ({args.before}) vs after\n\n"
          f"Tiny random BERT (2×32) on 200 rows, 1 thread, {args.reps} interleaved reps; load average at each "
          f"start: {loads}. Scaled down: the loop's own overhead is at its largest share of a step here.\n\n"
          + "\n".join(rows) + "\n")
    save("loop_bench", {"before": args.before, "reps": args.reps, "load_avg": loads, "results": summary}, md)


if __name__ == "__main__":
    main()
