"""Does ``train --augment`` buy robustness? MiniLM-L6 ``head`` on BBC, with and without augmentation,
each scored by ``evaluate --robustness`` on the same test rows.

Scaled down for a shared 2-core machine: ``--train`` rows (default 250, stratified) of the fixed
80/20 BBC split, ``--test`` test rows (default 200), max length 128, strategy ``head``. Accuracy figures,
not timings (train seconds are recorded for information only).

    nice -n 10 python benchmarks/augment_bench.py [--train 250 --test 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import bbc_split, save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=250)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--rate", type=float, default=0.15)
    args = ap.parse_args()

    import transferops
    from transferops.evaluate import evaluate

    tr, te = bbc_split()
    tr = tr.groupby("label").sample(n=args.train // 5, random_state=0).reset_index(drop=True)
    te = te.groupby("label").sample(n=args.test // 5, random_state=0).reset_index(drop=True)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in (("no augmentation", {}), ("augment 1.0 (all perturbations)", {"augment": 1.0})):
            t0 = time.perf_counter()
            res = transferops.train(tr, out=Path(tmp) / name.split()[0], test_data=te, checkpoint="minilm-l6",
                                    strategy="head", max_length=128, check_near_duplicates=False, baseline=False,
                                    seed=0, **kw)
            secs = time.perf_counter() - t0
            rb = evaluate(res.path, robustness=True, robustness_rate=args.rate, n_bootstrap=0).robustness
            runs[name] = {"train_seconds": round(secs, 1), "clean": rb["clean"]["macro_f1"],
                          "perturbed": {r["name"]: r["macro_f1"] for r in rb["perturbations"]},
                          "flipped": {r["name"]: r["flipped"] for r in rb["perturbations"]},
                          "rows_added": (res.manifest.get("augmentation") or {}).get("rows_added", 0)}
    names = list(next(iter(runs.values()))["perturbed"])
    lines = [f"# Augmentation vs robustness (MiniLM-L6 head, BBC {args.train} train / {args.test} test rows, "
             f"rate {args.rate}; scaled down)", "",
             "| model | rows added | clean | " + " | ".join(names) + " | mean perturbed |",
             "|---|---|---|" + "---|" * len(names) + "---|"]
    for name, r in runs.items():
        mean = sum(r["perturbed"].values()) / len(names)
        lines.append(f"| {name} | {r['rows_added']} | {r['clean']:.3f} | "
                     + " | ".join(f"{r['perturbed'][n]:.3f}" for n in names) + f" | {mean:.3f} |")
    lines += ["", "Macro-F1 on the same test rows, clean and under each perturbation (seed 0). One seed, "
              f"{args.test} test rows: differences under ~0.03 are within noise."]
    save("augment_bench", {"args": vars(args), "runs": runs}, "\n".join(lines))


if __name__ == "__main__":
    main()
