"""Less work per step (issue 18, lever 2): the frozen-prefix cache of strategy ``freeze``, and head+tail
truncation of long texts.

Real all-MiniLM-L6-v2 (``minilm-l6``) on BBC News: the fixed stratified 80/20 split of
``benchmarks/_common.bbc_split`` (test: all 445 test articles, never subsampled at full size). Training rows
are **subsampled** to fit a 2-core machine: ``--per-class`` training articles per class (default 60 = 300
rows) plus ``--val-per-class`` validation articles per class (default 20 = 100 rows), both drawn with seed 0
from the 80 % training part. ``FineTuner.fit`` is called directly (no leakage check / baseline / decision
rule: only the training differs between arms), ``max_length`` 128, batch 16, ``--epochs`` 3, the strategy's
default lr (5e-5) and half the layers frozen, torch's default thread count.

Part A — cache on vs off (both ``frozen_dropout=False``), ``--rounds`` interleaved rounds (order alternates per
round), plus the default (``legacy`` arm: ``frozen_dropout=True``, the frozen layers keep their dropout, no
cache possible; round 0 only) to measure the accuracy effect of running the frozen layers in eval mode. Per arm:
the fit's wall seconds (tokenisation + the one encode pass + the loop + validation), the loop's train seconds,
examples/s over (loop + encode) seconds, test macro-F1. Part B — ``truncation`` head vs head_tail (cache on,
same everything else), ``--seeds`` seeds each: test macro-F1 with a 95 % bootstrap CI over the 445 test rows,
and the paired bootstrap CI of the difference (head_tail − head); seed 0's ``head`` run is part A's round-0
cache-on run (identical config). The load average is recorded per run.

Full size (one command; 8 fits, about 8 minutes on 2 idle cores, 11 at most by the smoke run's CPU time):

    nice -n 10 .venv/bin/python benchmarks/frozen_cache_bench.py

Smoke (``--quick``: 8 train + 2 validation articles per class, 60 test rows, 2 epochs, 1 round, 1 seed,
max_length 128 kept; about 2 minutes idle, 11 under load 12):

    nice -n 10 .venv/bin/python benchmarks/frozen_cache_bench.py --quick

Writes ``benchmarks/results/frozen_cache_bench.json`` and ``.md``.
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

sys.path.insert(0, str(Path(__file__).parent))
from _common import bbc_split, save

N_BOOT = 2000


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [float("nan")] * 3


def _boot_ci(y: np.ndarray, pred: np.ndarray, other: np.ndarray | None = None, seed: int = 0
             ) -> tuple[float, float]:
    """95 % bootstrap CI of macro-F1 (or, with ``other``, of macro-F1(pred) − macro-F1(other), paired)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(N_BOOT):
        i = rng.integers(0, len(y), len(y))
        v = f1_score(y[i], pred[i], average="macro", zero_division=0)
        if other is not None:
            v -= f1_score(y[i], other[i], average="macro", zero_division=0)
        vals.append(v)
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def run_arm(arm: str, data: dict[str, Any], args: argparse.Namespace, *, seed: int = 0,
            truncation: str = "head") -> dict[str, Any]:
    from sklearn.metrics import f1_score

    from transferops.checkpoints import resolve_checkpoint
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.trainer import FineTuner

    cfg = TrainConfig(strategy="freeze", epochs=args.epochs, batch_size=16, max_length=args.max_length,
                      cache_frozen="off" if arm in ("off", "legacy") else "on", early_stopping_patience=None,
                      frozen_dropout=arm == "legacy",
                      seed=seed, truncation=truncation)  # type: ignore[arg-type]
    load = _load()
    t0 = time.perf_counter()
    ft = FineTuner(cfg).fit(data["train_texts"], data["y_train"], data["val_texts"], data["y_val"],
                            labels=data["labels"], task="multiclass",
                            checkpoint_path=resolve_checkpoint("minilm-l6").path)
    fit_s = time.perf_counter() - t0
    pred = ft.predict_logits(data["test_texts"]).argmax(1)
    y = data["y_test"]
    enc_s = float((ft.frozen_cache_ or {}).get("encode_seconds", 0.0))
    res = ft.result_
    return {"arm": arm, "truncation": truncation, "seed": seed, "load_avg": load,
            "fit_seconds": round(fit_s, 2), "train_seconds": round(res.train_seconds, 2),
            "encode_seconds": round(enc_s, 2),
            "examples_per_second": round(res.examples_seen / (res.train_seconds + enc_s), 2),
            "test_macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
            "test_macro_f1_ci95": _boot_ci(y, pred, seed=seed),
            "frozen_cache": ft.frozen_cache_, "pred": pred.tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--val-per-class", type=int, default=20)
    ap.add_argument("--test-rows", type=int, default=0, help="0: the whole test split")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--name", default="frozen_cache_bench", help="results file stem under benchmarks/results")
    args = ap.parse_args()
    if args.quick:
        args.per_class, args.val_per_class, args.test_rows, args.epochs, args.rounds, args.seeds = 8, 2, 60, 2, 1, 1

    from transferops._progress import set_quiet

    set_quiet(True)
    tr, te = bbc_split()
    shuffled = tr.sample(frac=1.0, random_state=0)
    train = shuffled.groupby("label").head(args.per_class)
    val = shuffled.drop(train.index).groupby("label").head(args.val_per_class)
    if args.test_rows:
        te = te.sample(n=args.test_rows, random_state=0)
    labels = sorted(tr["label"].unique())

    def enc(s: Any) -> np.ndarray:
        return np.array([labels.index(v) for v in s])

    data = {"labels": labels, "train_texts": train["text"].tolist(), "y_train": enc(train["label"]),
            "val_texts": val["text"].tolist(), "y_val": enc(val["label"]),
            "test_texts": te["text"].tolist(), "y_test": enc(te["label"])}
    runs: list[dict[str, Any]] = []
    arms = ["off", "on", "legacy"]
    for r in range(args.rounds):
        for arm in (arms if r % 2 == 0 else arms[::-1]):
            if arm == "legacy" and r:
                continue
            row = run_arm(arm, data, args)
            row["round"] = r
            runs.append(row)
            print(f"round {r} {arm}: fit {row['fit_seconds']} s, loop {row['train_seconds']} s, "
                  f"F1 {row['test_macro_f1']}, load {row['load_avg'][0]}", flush=True)
    trunc: list[dict[str, Any]] = [dict(next(x for x in runs if x["arm"] == "on" and x["round"] == 0))]
    for s in range(args.seeds):
        for mode in (("head", "head_tail") if s % 2 == 0 else ("head_tail", "head")):
            if s == 0 and mode == "head":
                continue  # = part A's round-0 cache-on run
            row = run_arm("on", data, args, seed=s, truncation=mode)
            trunc.append(row)
            print(f"seed {s} {mode}: F1 {row['test_macro_f1']} {row['test_macro_f1_ci95']}", flush=True)

    y = data["y_test"]
    diffs = []
    for s in range(args.seeds):
        h = next(x for x in trunc if x["seed"] == s and x["truncation"] == "head")
        ht = next(x for x in trunc if x["seed"] == s and x["truncation"] == "head_tail")
        diffs.append({"seed": s, "head_tail_minus_head": round(ht["test_macro_f1"] - h["test_macro_f1"], 4),
                      "paired_ci95": _boot_ci(y, np.array(ht["pred"]), np.array(h["pred"]), seed=s)})

    def agg(arm: str, key: str) -> tuple[float, float]:
        v = [x[key] for x in runs if x["arm"] == arm]
        return min(v), statistics.median(v)

    lines = ["# Frozen-prefix cache and head+tail truncation (issue 18, lever 2)", "",
             f"minilm-l6 on BBC, strategy freeze (3 of 6 layers frozen), max_length {args.max_length}, batch 16, "
             f"{args.epochs} epochs; train {len(train)} rows ({args.per_class}/class, subsampled), validation "
             f"{len(val)}, test {len(te)} rows{' (subsampled)' if args.test_rows else ' (the whole fixed test split)'}"
             f"; {args.rounds} interleaved round(s){'; QUICK SMOKE RUN' if args.quick else ''}.", "",
             "| arm | fit s (best / median) | loop s (best / median) | encode s | examples/s (median) | "
             "test macro-F1 (median) | load avg |", "|---|---|---|---|---|---|---|"]
    names = {"off": "cache off (frozen layers in eval mode)", "on": "cache on",
             "legacy": "default: dropout in the frozen layers (frozen_dropout), no cache"}
    for arm in arms:
        sel = [x for x in runs if x["arm"] == arm]
        fb, fm = agg(arm, "fit_seconds")
        lb, lm = agg(arm, "train_seconds")
        lines.append(f"| {names[arm]} | {fb:.1f} / {fm:.1f} | {lb:.1f} / {lm:.1f} | "
                     f"{statistics.median(x['encode_seconds'] for x in sel):.1f} | "
                     f"{statistics.median(x['examples_per_second'] for x in sel):.1f} | "
                     f"{statistics.median(x['test_macro_f1'] for x in sel):.4f} | "
                     f"{', '.join(str(x['load_avg'][0]) for x in sel)} |")
    off_f, on_f = agg("off", "fit_seconds")[1], agg("on", "fit_seconds")[1]
    lines += ["", f"Cache on vs off, median fit wall: **{off_f / on_f:.2f}×** faster "
              f"({off_f:.1f} → {on_f:.1f} s).", "",
              "| truncation | seed | test macro-F1 | 95 % CI (bootstrap) | load avg |", "|---|---|---|---|---|"]
    for x in trunc:
        lines.append(f"| {x['truncation']} | {x['seed']} | {x['test_macro_f1']:.4f} | {x['test_macro_f1_ci95']} | "
                     f"{x['load_avg'][0]} |")
    lines += ["", "| seed | head_tail − head | paired 95 % CI |", "|---|---|---|"]
    lines += [f"| {d['seed']} | {d['head_tail_minus_head']:+.4f} | {d['paired_ci95']} |" for d in diffs]
    for x in runs + trunc:
        x.pop("pred", None)
    save(args.name, {"args": vars(args), "runs": runs, "truncation": trunc, "differences": diffs},
         "\n".join(lines))


if __name__ == "__main__":
    main()
