"""Model search vs tuned TF-IDF vs SetFit on BBC *headlines* (first line of each article only):
few-shot 8 and 32 per class and an imbalanced subsample (300/100/40/20/10 per class). Macro-F1 on a
fixed held-out set of headlines and wall time per run.

    .venv/bin/python benchmarks/model_search_bench.py [--sets fewshot8 fewshot32 imbalanced]
        [--seeds 0] [--budget 150] [--test-size 300] [--no-setfit]

``transferops default`` is ``transferops.train(data, test_data=holdout)`` with every default: on these
small sets (≤ 1,000 training rows) the default *is* the model search, so the default and ``--search``
are one run (its budget here: ``--budget``). SetFit (1.x, same MiniLM-L6 body) is installed only in the
benchmark environment (`pip install setfit`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import bbc_split, save

IMBALANCED = {"sport": 300, "business": 100, "politics": 40, "tech": 20, "entertainment": 10}


def headlines(df):
    """The first line of each article file (its headline); load_bbc joins the lines, so re-read them."""
    from transferops.data.bundled import bbc_root

    folders = {p.name: p for p in bbc_root().iterdir() if p.is_dir()}
    by_label = {}
    for name, p in folders.items():
        for f in p.iterdir():
            by_label[(name, f.stem)] = f.read_bytes().decode("latin-1").strip().splitlines()[0].strip()
    df = df.copy()
    df["text"] = [by_label[tuple(i.split("/"))] for i in df["id"]]
    return df


def make_set(tr, name: str, seed: int):
    if name.startswith("fewshot"):
        k = int(name[len("fewshot"):])
        return tr.groupby("label").sample(n=k, random_state=seed).reset_index(drop=True)
    parts = [tr[tr["label"] == lbl].sample(n=n, random_state=seed) for lbl, n in IMBALANCED.items()]
    import pandas as pd

    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def macro_f1(y_true, y_pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro"))


def run_default(data, te, tmp: Path, budget: float, seed: int) -> dict:
    import transferops

    out = tmp / f"ours-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    res = transferops.train(data, out=out, test_data=te, checkpoint="minilm-l6", time_budget=budget, seed=seed,
                            check_near_duplicates=False)
    wall = time.perf_counter() - t0
    m = res.manifest
    return {"macro_f1": m["metrics"]["test"]["macro_f1"], "wall_seconds": wall, "winner": m["search"]["winner"],
            "decision_rule": bool(m.get("decision")),
            "leaderboard": [{k: c[k] for k in ("name", "status", "value", "ci", "train_seconds")}
                            for c in m["search"]["leaderboard"]],
            "recipe": {c["field"]: c["value"] for c in m["recipe"]}}


def run_tfidf(data, te) -> dict:
    from transferops.baselines import TfidfBaseline

    labels = sorted(data["label"].unique())
    y = np.asarray([labels.index(v) for v in data["label"]])
    t0 = time.perf_counter()
    b = TfidfBaseline(tune=True).fit(data["text"].tolist(), y, n_classes=len(labels))
    p = np.asarray(labels)[b.predict_proba(te["text"].tolist()).argmax(1)]
    return {"macro_f1": macro_f1(te["label"], p), "wall_seconds": time.perf_counter() - t0, "C": b.C_,
            "class_weight": b.class_weight_}


def run_setfit(data, te, tmp: Path, seed: int, iterations: int | None = None) -> dict:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from transferops.checkpoints import resolve_checkpoint

    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(str(resolve_checkpoint("minilm-l6").path))
    model.model_body.max_seq_length = 64
    # Pair sampling grows with the labeled set: bound it (20 pairs/example at 8/class, fewer above).
    n = len(data)
    iters = iterations or (20 if n <= 40 else 5 if n <= 200 else 2)
    args = TrainingArguments(batch_size=16, num_epochs=1, seed=seed, report_to="none", num_iterations=iters,
                             output_dir=str(tmp / "setfit"))
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_pandas(data[["text", "label"]]))
    trainer.train()
    pred = list(model.predict(te["text"].tolist()))
    return {"macro_f1": macro_f1(te["label"], pred), "wall_seconds": time.perf_counter() - t0,
            "num_iterations": iters}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+", default=["fewshot8", "fewshot32", "imbalanced"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--budget", type=float, default=150.0, help="search budget per run (s)")
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--no-setfit", action="store_true")
    ap.add_argument("--name", default="model_search_bench", help="results file name")
    ap.add_argument("--setfit-iterations", type=int, help="SetFit num_iterations (pairs per example); "
                    "default 20 at <= 40 rows, 5 at <= 200, 2 above")
    args = ap.parse_args()
    tr, te = bbc_split()
    tr, te = headlines(tr), headlines(te)
    te = te.groupby("label").sample(n=args.test_size // 5, random_state=0).reset_index(drop=True)
    rows: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in args.sets:
            for seed in args.seeds:
                data = make_set(tr, name, seed)
                runs = {"tfidf_tuned": run_tfidf(data, te),
                        "transferops_default (= --search)": run_default(data, te, tmp, args.budget, seed)}
                if not args.no_setfit:
                    runs["setfit"] = run_setfit(data, te, tmp, seed, args.setfit_iterations)
                for m, r in runs.items():
                    rows.setdefault(m, {}).setdefault(name, []).append(r)
                print(name, seed, {m: round(r["macro_f1"], 4) for m, r in runs.items()}, flush=True)
                _write(rows, args, len(te))


def _write(rows: dict, args: argparse.Namespace, n_test: int) -> None:
    sets = [s for s in args.sets if any(s in by for by in rows.values())]
    md = "| method | " + " | ".join(f"{s} macro-F1 | {s} wall s" for s in sets) + " |\n"
    md += "|---|" + "---|---|" * len(sets) + "\n"
    summary: dict = {}
    for m, by in rows.items():
        cells = []
        for s in sets:
            if s not in by:
                cells.append("– | –")
                continue
            f = np.asarray([r["macro_f1"] for r in by[s]])
            w = np.asarray([r["wall_seconds"] for r in by[s]])
            summary.setdefault(m, {})[s] = {"macro_f1_mean": float(f.mean()), "macro_f1_std": float(f.std()),
                                            "wall_seconds_mean": float(w.mean()), "runs": by[s]}
            cells.append(f"{f.mean():.3f} ± {f.std():.3f} (n={len(f)}) | {w.mean():.0f}")
        md += f"| {m} | " + " | ".join(cells) + " |\n"
    save(args.name, {"args": vars(args), "test_rows": n_test, "load_avg_end": os.getloadavg(),
                                "results": summary}, md)


if __name__ == "__main__":
    main()
