"""``freeze``'s default learning rate (docs/finetune.md, decision 2026-12-02): transferops' default recipe
(auto → ``freeze`` half, 4 epochs, ``precision=auto``) at several learning rates, on the splits of
``time_to_quality.py`` (1,050 training rows, 200 validation rows, the fixed 445-row test split, max length
128), for BBC articles or their headlines:

    .venv/bin/python benchmarks/freeze_lr_sweep.py bbc 1e-4
    .venv/bin/python benchmarks/freeze_lr_sweep.py headlines 5e-5 1e-4 2e-4

Prints one line per learning rate: the validation curve (train seconds, macro-F1 per epoch) and the
test macro-F1. One run per cell on a shared machine: read the curves side by side, not as exact figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from _common import bbc_split
from time_to_quality import run_ours


def main() -> None:
    ds, lrs = sys.argv[1], [float(x) for x in sys.argv[2:]]
    tr_all, te = bbc_split()
    if ds == "headlines":
        from model_search_bench import headlines

        tr_all, te = headlines(tr_all), headlines(te)
    pool = tr_all.sample(frac=1.0, random_state=0)
    va = pool.groupby("label", group_keys=False).head(40)
    tr = pool.drop(va.index).groupby("label", group_keys=False).head(210).head(1050)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = {"train": tmp / "train.csv", "validation": tmp / "val.csv", "test": tmp / "test.csv"}
        for k, df in (("train", tr), ("validation", va), ("test", te)):
            df[["text", "label"]].to_csv(files[k], index=False)
        for lr in lrs:
            r = run_ours(files, tmp / f"o{lr}", max_length=128, lr=lr)
            print(json.dumps({"dataset": ds, "lr": lr, "strategy": r["strategy"],
                              "curve": [(round(a, 1), round(b, 4)) for a, b in r["curve"]],
                              "test_macro_f1": round(r["test_macro_f1"], 4), "load_avg": r["load_avg"]}), flush=True)


if __name__ == "__main__":
    main()
