"""Few-shot: transferops' default vs SetFit 1.x, same all-MiniLM-L6-v2 body, tuned TF-IDF beside both.

The design of issue 18: BBC articles and BBC headlines, 8 and 64 labeled examples per class, 3 seeds,
test macro-F1 (mean ± std) and wall time per run, on the fixed BBC test split (or a fixed subsample).

    .venv/bin/python benchmarks/fewshot_vs_setfit.py            # the full design (~1 h on 2 idle cores)
    .venv/bin/python benchmarks/fewshot_vs_setfit.py --quick    # 1 seed, 8/class, headlines only
    .venv/bin/python benchmarks/fewshot_vs_setfit.py --quick --name fewshot_vs_setfit_smoke  # a smoke run,
        # written beside (not over) the full run's results

Who runs what, in every (dataset, k, seed) cell, back to back (so both sides see the same machine):

* ``tfidf``: the tuned TF-IDF + logistic-regression baseline (C and class weight by CV).
* ``transferops``: ``transferops.train(rows, test_data=test)`` with its defaults — on sets this small the
  default is the model search — and ``time_budget`` (``--budget``, 90 s by default: the default 15 min
  budget would make the design take hours here; stated in the results).
* ``setfit_default``: SetFit with its documented defaults (``TrainingArguments()``: oversampled pairs,
  batch 16, 1 body epoch, body lr 2e-5, the body's own max length) — at 8/class only: at 64/class its
  default pair sampling yields 81,920 pairs (5,120 steps), hours per run on 2 CPU cores.
* ``setfit_2x_budget``: SetFit with its defaults but stopped (a TrainerCallback) when its wall time
  reaches 2× transferops' wall time in the same cell, then its head is fitted as usual. If transferops'
  macro-F1 is ≥ this run's, transferops is ahead "at ≤ 0.5× its time". Run at 64/class (and at 8/class
  with ``--budget-at-8``).

Target (issue 18): transferops' macro-F1 ≥ SetFit's at ≤ 0.5× its time in every cell.
The load average is recorded before every run: the machine is shared, read times as ratios.
SetFit is a benchmark-only dependency (the ``bench`` extra), never imported by the package.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import bbc_split, save

DATASETS = ("bbc", "headlines")


def macro_f1(y_true: Any, y_pred: Any) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(list(y_true), list(y_pred), average="macro"))


def load_dataset(name: str) -> tuple[Any, Any]:
    tr, te = bbc_split()
    if name == "headlines":
        from model_search_bench import headlines

        tr, te = headlines(tr), headlines(te)
    return tr, te


def sample(tr: Any, k: int, seed: int) -> Any:
    return tr.groupby("label").sample(n=k, random_state=seed).reset_index(drop=True)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def warm_up(setfit: bool) -> None:
    """Before any timed cell: both sides' libraries imported and the checkpoint's files read once. Otherwise
    the process's first cell pays the one-off imports and a cold page cache, and whichever side runs first
    (ours) pays them for both (2026-12-03: 11.1 s for our first cell against 7.5-8.1 s for the next)."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import transferops.finetune.api
    import transferops.finetune.contrastive  # noqa: F401
    from transferops.checkpoints import resolve_checkpoint

    if setfit:
        import setfit as _setfit  # noqa: F401
    for f in Path(resolve_checkpoint("minilm-l6").path).rglob("*"):
        if f.is_file():
            f.read_bytes()


def run_tfidf(few: Any, te: Any) -> dict[str, Any]:
    from transferops.baselines import TfidfBaseline

    labels = sorted(few["label"].unique())
    y = np.asarray([labels.index(v) for v in few["label"]])
    t0 = time.perf_counter()
    b = TfidfBaseline(tune=True).fit(few["text"].tolist(), y, n_classes=len(labels))
    pred = np.asarray(labels)[b.predict_proba(te["text"].tolist()).argmax(1)]
    return {"macro_f1": macro_f1(te["label"], pred), "wall_seconds": time.perf_counter() - t0}


def run_ours(few: Any, te: Any, tmp: Path, seed: int, budget: float) -> dict[str, Any]:
    import transferops

    out = tmp / f"ours-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    res = transferops.train(few, out=out, test_data=te, checkpoint="minilm-l6", seed=seed, time_budget=budget,
                            check_near_duplicates=False)
    wall = time.perf_counter() - t0
    m = res.manifest
    search = m.get("search") or {}
    return {"macro_f1": m["metrics"]["test"]["macro_f1"], "wall_seconds": wall,
            "winner": search.get("winner", m.get("strategy")),
            "precision": (m.get("training") or {}).get("precision"),
            "leaderboard": {c["name"]: c.get("value") for c in search.get("leaderboard", [])},
            "contrastive": next((c for c in search.get("leaderboard", []) if c["name"] == "contrastive"), None)}


def run_setfit(few: Any, te: Any, tmp: Path, seed: int, stop_after: float | None) -> dict[str, Any]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers import TrainerCallback

    from transferops.checkpoints import resolve_checkpoint

    class StopAt(TrainerCallback):  # type: ignore[misc]
        """Stop body training once the run's wall time reaches the budget (then the head is fitted)."""

        def __init__(self, t0: float, budget: float) -> None:
            self.t0, self.budget, self.steps = t0, budget, 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            self.steps = state.global_step
            if time.perf_counter() - self.t0 >= self.budget:
                control.should_training_stop = True
            return control

    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(str(resolve_checkpoint("minilm-l6").path))
    args = TrainingArguments(seed=seed, report_to="none", output_dir=str(tmp / "setfit"))  # documented defaults
    cb = StopAt(t0, stop_after) if stop_after else None
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_pandas(few[["text", "label"]]),
                      callbacks=[cb] if cb else None)
    trainer.train()
    train_s = time.perf_counter() - t0
    pred = list(model.predict(te["text"].tolist()))
    out: dict[str, Any] = {"macro_f1": macro_f1(te["label"], pred), "wall_seconds": train_s,
                           "max_seq_length": int(model.model_body.max_seq_length)}
    if cb is not None:
        out.update({"budget_seconds": round(stop_after or 0, 1), "body_steps": cb.steps})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--shots", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=90.0, help="transferops' search time_budget per run (s)")
    ap.add_argument("--test-size", type=int, default=300, help="fixed subsample of the 445-row test split (0 = all)")
    ap.add_argument("--budget-at-8", action="store_true", help="also run setfit_2x_budget at 8/class")
    ap.add_argument("--no-setfit", action="store_true")
    ap.add_argument("--quick", action="store_true", help="headlines, 8/class, seed 0 (a smoke run)")
    ap.add_argument("--name", default="fewshot_vs_setfit", help="results file name")
    ap.add_argument("--resume", action="store_true", help="keep the runs in the results file; run the missing cells")
    args = ap.parse_args()
    if args.quick:
        args.datasets, args.shots, args.seeds = ["headlines"], [8], [0]
    runs: list[dict[str, Any]] = []
    if args.resume:
        import json

        from _common import RESULTS

        f = RESULTS / f"{args.name}.json"
        runs = json.loads(f.read_text()).get("runs", []) if f.exists() else []
    done = {(r["dataset"], r["k"], r["seed"]) for r in runs if r["method"] == "transferops"}
    warm_up(not args.no_setfit)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = {}
        for ds in args.datasets:
            tr, te = load_dataset(ds)
            if args.test_size and args.test_size < len(te):
                te = te.groupby("label", group_keys=False).sample(
                    frac=args.test_size / len(te), random_state=0).reset_index(drop=True)
            data[ds] = (tr, te)
        # every 8/class cell first, seed by seed over the datasets: an interrupted run keeps a balanced part
        for k in args.shots:
            for seed in args.seeds:
                for ds in args.datasets:
                    tr, te = data[ds]
                    if (ds, k, seed) in done:
                        continue
                    few = sample(tr, k, seed)
                    cell = {"dataset": ds, "k": k, "seed": seed, "test_rows": len(te)}

                    def add(method: str, r: dict[str, Any], la: float, cell: dict[str, Any] = cell) -> None:
                        runs.append({**cell, "method": method, "load_avg_1m": la, **r})
                        print(f"{cell['dataset']} k={cell['k']} seed={cell['seed']} {method}: macro-F1 "
                              f"{r['macro_f1']:.4f} "
                              f"{r['wall_seconds']:.1f}s (load {la})", flush=True)

                    la = load1()
                    add("tfidf", run_tfidf(few, te), la)
                    la = load1()
                    ours = run_ours(few, te, tmp, seed, args.budget)
                    add("transferops", ours, la)
                    if not args.no_setfit:
                        if k <= 8:
                            la = load1()
                            add("setfit_default", run_setfit(few, te, tmp, seed, None), la)
                        if k > 8 or args.budget_at_8:
                            la = load1()
                            add("setfit_2x_budget", run_setfit(few, te, tmp, seed, 2 * ours["wall_seconds"]), la)
                    write(runs, args)  # after every cell: an interrupted benchmark keeps its results


def write(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    import pandas as pd

    df = pd.DataFrame(runs)
    summary = (df.groupby(["dataset", "k", "method"])
               .agg(macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"),
                    wall_mean=("wall_seconds", "mean"), runs=("seed", "count")).reset_index())
    lines = ["| dataset | k/class | method | macro-F1 mean ± std | wall s (mean) | runs |",
             "|---|---:|---|---|---:|---:|"]
    for r in summary.itertuples():
        std = 0.0 if np.isnan(r.macro_f1_std) else r.macro_f1_std
        lines.append(f"| {r.dataset} | {r.k} | {r.method} | {r.macro_f1_mean:.3f} ± {std:.3f} | {r.wall_mean:.1f} | "
                     f"{r.runs} |")
    # the target, per cell: ours >= the SetFit run that took >= 2x our time (default or 2x-budget)
    verdicts = []
    for (ds, k, seed), g in df.groupby(["dataset", "k", "seed"]):
        ours = g[g.method == "transferops"]
        sf = g[g.method.str.startswith("setfit")]
        if ours.empty or sf.empty:
            continue
        o = ours.iloc[0]
        for s in sf.itertuples():
            ratio = o.wall_seconds / s.wall_seconds
            verdicts.append({"dataset": ds, "k": k, "seed": seed, "setfit": s.method,
                             "ours_f1": round(float(o.macro_f1), 4), "setfit_f1": round(float(s.macro_f1), 4),
                             "time_ratio": round(float(ratio), 3),
                             "met": bool(o.macro_f1 >= s.macro_f1 and ratio <= 0.5)})
    lines += ["", "| dataset | k | seed | SetFit run | ours macro-F1 | SetFit macro-F1 | our time / SetFit's | "
              "target met |", "|---|---:|---:|---|---:|---:|---:|---|"]
    for v in verdicts:
        lines.append(f"| {v['dataset']} | {v['k']} | {v['seed']} | {v['setfit']} | {v['ours_f1']:.3f} | "
                     f"{v['setfit_f1']:.3f} | {v['time_ratio']:.2f}× | {'yes' if v['met'] else '**no**'} |")
    save(args.name, {"args": vars(args), "runs": runs, "summary": summary.to_dict("records"), "verdicts": verdicts},
         "\n".join(lines))


if __name__ == "__main__":
    main()
