"""Few-shot on BBC (8 and 64 labeled examples per class, 3 seeds): transferops vs SetFit 1.x with the
same all-MiniLM-L6-v2 body, and the TF-IDF baseline beside both. Accuracy mean ± std and training time.

    .venv/bin/python benchmarks/fewshot_vs_setfit.py [--shots 8 64] [--seeds 0 1 2] [--strategies head full]

SetFit is installed only in the benchmark environment (`pip install setfit`); it is not a dependency.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import bbc_split, save


def sample(tr, k: int, seed: int):
    return tr.groupby("label").sample(n=k, random_state=seed).reset_index(drop=True)


def run_ours(few, te, strategy: str, tmp: Path, max_length: int) -> dict:
    import transferops

    k = len(few) // few["label"].nunique()
    epochs = {"head": 60, "full": 10 if k <= 8 else 4, "lora": 15 if k <= 8 else 6, "freeze": 10 if k <= 8 else 4}
    lr = {"head": 3e-3, "full": 8e-5, "lora": 1e-3, "freeze": 1e-4}
    out = tmp / f"ours-{strategy}-{time.monotonic_ns()}"
    t0 = time.perf_counter()
    # The few-shot rows are also the "validation" split (there is nothing else labeled), so no epoch is
    # chosen on held-out data: fixed epochs, last weights. The benchmark test rows are the test split.
    res = transferops.train(few, out=out, validation_data=few, test_data=te, checkpoint="minilm-l6",
                            strategy=strategy, epochs=epochs[strategy], lr=lr[strategy], batch_size=8,
                            max_length=max_length, early_stopping_patience=None, select_best=False,
                            check_near_duplicates=False, baseline=False)
    wall = time.perf_counter() - t0
    return {"accuracy": res.manifest["metrics"]["test"]["accuracy"],
            "train_seconds": res.manifest["timings"]["train_seconds"], "wall_seconds": wall}


def run_setfit(few, te, max_length: int, tmp: Path) -> dict:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from transferops.checkpoints import resolve_checkpoint

    model = SetFitModel.from_pretrained(str(resolve_checkpoint("minilm-l6").path))
    model.model_body.max_seq_length = max_length
    # SetFit's default pair sampling grows quadratically with the labeled set (81,920 pairs at 64/class,
    # hours on 2 CPU cores); num_iterations bounds it as SetFit's own examples do: 20 pairs per example
    # at 8/class, 5 at 64/class. Recorded in the results.
    k = len(few) // few["label"].nunique()
    args = TrainingArguments(batch_size=16, num_epochs=1, seed=0, report_to="none",
                             num_iterations=20 if k <= 8 else 5, output_dir=str(tmp / "setfit"))
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_pandas(few[["text", "label"]]))
    t0 = time.perf_counter()
    trainer.train()
    secs = time.perf_counter() - t0
    pred = model.predict(te["text"].tolist())
    acc = float(np.mean(np.asarray(list(pred)) == te["label"].to_numpy()))
    return {"accuracy": acc, "train_seconds": secs, "num_iterations": args.num_iterations}


def run_baseline(few, te) -> dict:
    from transferops.baselines import TfidfBaseline

    labels = sorted(few["label"].unique())
    y = np.asarray([labels.index(v) for v in few["label"]])
    t0 = time.perf_counter()
    b = TfidfBaseline().fit(few["text"].tolist(), y, n_classes=len(labels))
    p = b.predict_proba(te["text"].tolist()).argmax(1)
    return {"accuracy": float(np.mean(np.asarray(labels)[p] == te["label"].to_numpy())),
            "train_seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shots", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=["head", "full"])
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--no-setfit", action="store_true")
    ap.add_argument("--test-size", type=int, default=0, help="subsample the 445-article test split (0 = all)")
    ap.add_argument("--name", default="fewshot_vs_setfit", help="results file name")
    args = ap.parse_args()
    tr, te = bbc_split()
    if args.test_size:
        te = te.sample(args.test_size, random_state=0).reset_index(drop=True)
    rows: dict[str, dict[int, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for k in args.shots:
            for seed in args.seeds:
                few = sample(tr, k, seed)
                runs = {"tfidf_logreg": run_baseline(few, te)}
                for s in args.strategies:
                    runs[f"transferops_{s}"] = run_ours(few, te, s, tmp, args.max_length)
                if not args.no_setfit:
                    runs["setfit"] = run_setfit(few, te, args.max_length, tmp)
                for name, r in runs.items():
                    rows.setdefault(name, {}).setdefault(k, []).append(r)
                print(k, seed, {n: round(r["accuracy"], 4) for n, r in runs.items()}, flush=True)
                _write(rows, args, len(te))  # after every run, so an interrupted benchmark keeps its results


def _write(rows: dict, args: argparse.Namespace, n_test: int) -> None:
    summary: dict = {}
    shots = [k for k in args.shots if any(k in by_k for by_k in rows.values())]
    md = "| method | " + " | ".join(f"{k}/class accuracy | {k}/class train s | {k}/class runs" for k in shots) + " |\n"
    md += "|---|" + "---|---|---|" * len(shots) + "\n"
    for name, by_k in rows.items():
        cells = []
        for k in shots:
            if k not in by_k:
                cells.append("– | – | 0")
                continue
            accs = np.asarray([r["accuracy"] for r in by_k[k]])
            secs = np.asarray([r["train_seconds"] for r in by_k[k]])
            summary.setdefault(name, {})[k] = {"accuracy_mean": float(accs.mean()), "accuracy_std": float(accs.std()),
                                                "train_seconds_mean": float(secs.mean()), "runs": by_k[k]}
            cells.append(f"{accs.mean():.3f} ± {accs.std():.3f} | {secs.mean():.1f} | {len(accs)}")
        md += f"| {name} | " + " | ".join(cells) + " |\n"
    save(args.name, {"args": vars(args), "test_rows": n_test, "results": summary}, md)


if __name__ == "__main__":
    main()
