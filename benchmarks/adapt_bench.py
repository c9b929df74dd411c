"""Adapt-and-compress benchmark on BBC News (CPU, small by design).

Part ``adapt``: continued MLM pretraining of MiniLM-L6 on the BBC train-split texts (labels
ignored), then few-shot classification at 8 and 64 labeled examples per class, with and without
the adaptation, 3 seeds (the seed picks the few-shot sample). The few-shot classifier is a
logistic regression on the frozen encoder's mean-pooled embeddings (``--finetune`` adds full
fine-tuning at the smallest shot count): on a shared 2-core machine 12 full fine-tunes do not fit
the time budget, and the probe measures exactly what MLM adaptation changes — the encoder.

Part ``distill``: MiniLM-L6 teacher (classifier trained on a BBC subsample) distilled into the
first 3 layers of its own backbone, with extra unlabeled BBC texts scored by the teacher;
accuracy retained, size, and one-text latency in PyTorch and ONNX int8.

    .venv/bin/python benchmarks/adapt_bench.py                 # both parts (~10-15 min on 2 busy cores)
    .venv/bin/python benchmarks/adapt_bench.py --part distill

Writes ``benchmarks/results/adapt_bench.json`` and ``.md`` (parts run separately are merged).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFEROPS_QUIET", "1")

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
NAME = "adapt_bench"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stratified(df: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    parts = [g.sample(n=min(per_class, len(g)), random_state=seed) for _, g in df.groupby("label", sort=True)]
    return pd.concat(parts).reset_index(drop=True)


# ------------------------------------------------------------------------------------------- adapt


def run_adapt(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from transferops.adapt.mlm import adapt
    from transferops.data import ColumnMap, SplitConfig, load_labeled, make_splits
    from transferops.data.bundled import load_bbc
    from transferops.modeling import FrozenEncoder

    t0 = time.perf_counter()
    bbc = load_bbc()
    data = load_labeled(bbc, ColumnMap(text="text", label="label"))
    splits = make_splits(data, SplitConfig(seed=0))
    train = splits.train.frame[["text", "label"]].reset_index(drop=True)
    test = stratified(splits.test.frame[["text", "label"]], args.test_per_class, seed=0)
    pool = train["text"].tolist()
    log(f"MLM on {len(pool)} BBC train-split texts: {args.mlm_steps} steps × batch {args.mlm_batch} × "
        f"{args.mlm_length} tokens")
    # --reuse: a finished checkpoint in --keep is returned as is (adapt checks settings and pool match).
    res = adapt(pool, out=work / "minilm-bbc", checkpoint="minilm-l6", steps=args.mlm_steps, resume=args.reuse,
                batch_size=args.mlm_batch, max_length=args.mlm_length, lr=args.mlm_lr, save_every=10_000,
                head_warmup_steps=args.mlm_head_warmup,
                threads=args.threads)
    m = res.manifest
    log(f"adapted: held-out ppl {m['heldout']['before']['perplexity']:.1f} → "
        f"{m['heldout']['after']['perplexity']:.1f}; general ppl {m['general']['before']['perplexity']:.1f} → "
        f"{m['general']['after']['perplexity']:.1f} ({m['timings']['train_seconds']:.0f}s)")

    # Few-shot candidates: a fixed slice of train (more than the largest shot count, so every seed draws a
    # different k-shot set from it); only these and the test texts need embedding.
    cand = stratified(train, args.candidates_per_class, seed=123)
    texts = cand["text"].tolist() + test["text"].tolist()
    emb: dict[str, np.ndarray] = {}
    for name, ck in (("base", "minilm-l6"), ("adapted", str(work / "minilm-bbc"))):
        log(f"embedding {len(texts)} texts with {name}")
        e = FrozenEncoder(ck, max_length=args.probe_length, batch_size=32).embed(texts)
        emb[name] = e / np.linalg.norm(e, axis=1, keepdims=True)
    n_c = len(cand)
    rows = []
    for k in args.shots:
        for seed in args.seeds:
            idx = stratified(cand.assign(_i=np.arange(n_c)), k, seed=seed)["_i"].to_numpy()
            y_tr = cand["label"].to_numpy()[idx]
            for name in ("base", "adapted"):
                clf = LogisticRegression(C=10.0, max_iter=2000)
                clf.fit(emb[name][idx], y_tr)
                pred = clf.predict(emb[name][n_c:])
                rows.append({"model": name, "shots": k, "seed": seed, "method": "linear_probe",
                             "accuracy": float(accuracy_score(test["label"], pred)),
                             "macro_f1": float(f1_score(test["label"], pred, average="macro"))})
    if args.finetune:
        rows += _finetune_rows(args, work, cand, test)
    table = pd.DataFrame(rows)
    summary = []
    for (method, k), g in table.groupby(["method", "shots"], sort=True):
        b = g[g.model == "base"].sort_values("seed")
        a = g[g.model == "adapted"].sort_values("seed")
        gain = a["macro_f1"].to_numpy() - b["macro_f1"].to_numpy()
        summary.append({"method": method, "shots_per_class": int(k), "seeds": len(b),
                        "base_macro_f1": float(b["macro_f1"].mean()), "base_sd": float(b["macro_f1"].std()),
                        "adapted_macro_f1": float(a["macro_f1"].mean()), "adapted_sd": float(a["macro_f1"].std()),
                        "gain_mean": float(gain.mean()), "gain_per_seed": [round(float(x), 4) for x in gain]})
    return {
        "adaptation": {k: m[k] for k in ("mlm_head", "masking", "steps", "head_warmup_steps", "tokens_seen",
                                         "heldout", "general", "timings", "corpus")},
        "adapt_warnings": res.warnings,
        "test_texts": len(test),
        "runs": rows,
        "summary": summary,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _finetune_rows(args: argparse.Namespace, work: Path, cand: pd.DataFrame, test: pd.DataFrame
                   ) -> list[dict[str, Any]]:
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.trainer import FineTuner
    from transferops.metrics import classification_metrics, encode_labels
    from transferops.modeling import softmax

    labels = sorted(cand["label"].unique())
    k = min(args.shots)
    rows = []
    y_te = encode_labels(test["label"].tolist(), labels, False)
    for seed in args.seeds:
        few = stratified(cand, k, seed=seed)
        val = stratified(cand.drop(cand.index[cand["text"].isin(few["text"])]), 2, seed=seed)
        for name, ck in (("base", "minilm-l6"), ("adapted", str(work / "minilm-bbc"))):
            from transferops.checkpoints import resolve_checkpoint

            cfg = TrainConfig(checkpoint=ck, strategy="full", epochs=args.ft_epochs, lr=5e-5, batch_size=8,
                              max_length=args.ft_length, seed=seed, early_stopping_patience=None,
                              threads=args.threads)
            ft = FineTuner(cfg, strategy="full")
            ft.fit(few["text"].tolist(), encode_labels(few["label"].tolist(), labels, False),
                   val["text"].tolist(), encode_labels(val["label"].tolist(), labels, False), labels=labels,
                   task="multiclass", checkpoint_path=resolve_checkpoint(ck).path)
            met = classification_metrics(y_te, softmax(ft.predict_logits(test["text"].tolist())))
            rows.append({"model": name, "shots": k, "seed": seed, "method": "full_finetune",
                         "accuracy": met["accuracy"], "macro_f1": met["macro_f1"]})
            log(f"fine-tune {name} {k}/class seed {seed}: macro-F1 {met['macro_f1']:.4f}")
    return rows


# ------------------------------------------------------------------------------------------- distill


def run_distill(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import transferops
    from transferops.adapt.distill import distill
    from transferops.data.bundled import load_bbc

    t0 = time.perf_counter()
    bbc = load_bbc()[["text", "label"]]
    sub = stratified(bbc, args.teacher_per_class, seed=0)
    rest = bbc[~bbc["text"].isin(set(sub["text"]))]
    unlabeled = rest.sample(n=min(args.unlabeled_n, len(rest)), random_state=0)["text"].tolist()
    log(f"teacher: MiniLM-L6 ({args.teacher_strategy}) on {len(sub)} BBC articles, max_length {args.length}")
    tres = transferops.train(sub, out=work / "teacher", checkpoint="minilm-l6", strategy=args.teacher_strategy,
                             epochs=args.teacher_epochs, lr=args.teacher_lr, max_length=args.length,
                             check_near_duplicates=False, early_stopping_patience=None, threads=args.threads)
    log(f"teacher test accuracy {tres.test_metrics['accuracy']:.4f} "
        f"({tres.manifest['timings']['total_seconds']:.0f}s)")
    log(f"distilling into the first {args.student_layers} layers (+{len(unlabeled)} unlabeled texts)")
    dres = distill(work / "teacher", out=work / "student", layers=args.student_layers, unlabeled=unlabeled,
                   epochs=args.distill_epochs, lr=args.distill_lr, batch_size=16, latency_texts=args.latency_texts,
                   onnx=args.onnx, threads=args.threads)
    log(dres.summary())
    return {
        "teacher": {"strategy": tres.manifest["strategy"]["name"],
                    "strategy_detail": tres.manifest["strategy"],
                    "train_texts": tres.manifest["splits"]["sizes"]["train"],
                    "test_texts": tres.manifest["splits"]["sizes"]["test"], "test": tres.test_metrics},
        "student": {"layers": args.student_layers, "unlabeled_texts": len(unlabeled),
                    "epochs": args.distill_epochs, "test": dres.manifest["metrics"]["test"]},
        "comparison": dres.comparison,
        "warnings": dres.warnings,
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ------------------------------------------------------------------------------------------- report


def write_markdown(res: dict[str, Any], path: Path) -> None:
    lines = ["# adapt_bench — continued pretraining, distillation (BBC News, CPU)", "",
             f"Machine: {res['env']['cpus']} CPUs shared with other jobs (load average "
             f"{res['env']['load_start']:.1f} at start), torch threads {res['env']['threads']}.", ""]
    a = res.get("adapt")
    if a:
        ad = a["adaptation"]
        lines += ["## Continued MLM pretraining → few-shot", "",
                  f"MiniLM-L6 (no MLM head shipped: head {ad['mlm_head']}, {ad['head_warmup_steps']} head-only "
                  f"steps) + {ad['steps']} MLM steps on {ad['corpus']['train_texts']} BBC train texts "
                  f"({ad['tokens_seen']:,} tokens seen, {ad['timings']['train_seconds']:.0f}s).", "",
                  "| | held-out BBC perplexity | general-English perplexity |", "|---|---:|---:|",
                  f"| before (after head warm-up) | {ad['heldout']['before']['perplexity']:.1f} | "
                  f"{ad['general']['before']['perplexity']:.1f} |",
                  f"| after | {ad['heldout']['after']['perplexity']:.1f} | "
                  f"{ad['general']['after']['perplexity']:.1f} |", "",
                  f"Few-shot macro-F1 on {a['test_texts']} test articles (mean ± sd over seeds; gain = adapted − "
                  "base, paired by seed):", "",
                  "| method | shots/class | base | adapted | gain | gain per seed |", "|---|---:|---:|---:|---:|---|"]
        for s in a["summary"]:
            lines.append(f"| {s['method']} | {s['shots_per_class']} | {s['base_macro_f1']:.4f} ± {s['base_sd']:.4f} "
                         f"| {s['adapted_macro_f1']:.4f} ± {s['adapted_sd']:.4f} | {s['gain_mean']:+.4f} | "
                         f"{', '.join(f'{g:+.3f}' for g in s['gain_per_seed'])} |")
        pool_tokens = ad["corpus"]["train_tokens"]
        lines += ["", "Read with care: the MLM run is tiny (CPU budget): "
                  f"{ad['tokens_seen']:,} tokens (head warm-up included) ≈ "
                  f"{ad['tokens_seen'] / max(pool_tokens, 1) * 100:.1f}% of one pass over the pool, and the "
                  "freshly initialised head keeps perplexities high. "
                  f"One test article is {1 / max(a['test_texts'], 1):.4f} of accuracy. No control run (MLM on "
                  "non-news text) separates domain knowledge from a generic change of the embedding geometry. "
                  "The probe uses frozen mean-pooled embeddings + logistic regression (C=10); "
                  "`--finetune` adds full fine-tuning at the smallest shot count.", ""]
    d = res.get("distill")
    if d:
        c = d["comparison"]
        lines += ["## Distillation: MiniLM-L6 teacher → first 3 layers of its backbone", "",
                  f"Teacher ({d['teacher']['strategy']}) trained on {d['teacher']['train_texts']} articles; "
                  f"student distilled on the same train split + {d['student']['unlabeled_texts']} unlabeled "
                  f"articles ({d['student']['epochs']} epochs); {d['teacher']['test_texts']} test articles.", "",
                  "| | accuracy | macro-F1 | params | size | PyTorch ms/text (median) | ONNX int8 ms/text | "
                  "ONNX int8 size |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name in ("teacher", "student"):
            r = c[name]
            onnx = (f"{r['onnx_int8_ms']['median']:.1f} | {r['onnx_int8_ms']['size_bytes'] / 2**20:.1f} MB"
                    if r.get("onnx_int8_ms") else "- | -")
            lat = f"{r['latency_ms']['median']:.1f}" if r.get("latency_ms") else "-"
            lines.append(f"| {name} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['params'] / 1e6:.1f}M | "
                         f"{r['size_bytes'] / 2**20:.1f} MB | {lat} | {onnx} |")
        lines += ["", f"Accuracy retained {c['accuracy_retained'] * 100:.1f}%, agreement with the teacher "
                  f"{c['agreement'] * 100:.1f}%, PyTorch speed-up {c.get('speedup', float('nan')):.2f}x. "
                  "Latency: one text per call, median over "
                  f"{c['student'].get('latency_ms', {}).get('n', 0)} test texts, 1 torch thread, on a machine "
                  "shared with other jobs — compare the ratio, not the absolute milliseconds.", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["all", "adapt", "distill"], default="all")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mlm-steps", type=int, default=40)
    p.add_argument("--mlm-batch", type=int, default=8)
    p.add_argument("--mlm-length", type=int, default=64)
    p.add_argument("--mlm-lr", type=float, default=1e-4)
    p.add_argument("--mlm-head-warmup", type=int, default=40,
                   help="head-only steps first (MiniLM ships no MLM head; a random head's gradients would "
                        "otherwise hit the backbone)")
    p.add_argument("--shots", type=int, nargs="+", default=[8, 64])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--test-per-class", type=int, default=30)
    p.add_argument("--candidates-per-class", type=int, default=100)
    p.add_argument("--probe-length", type=int, default=64)
    p.add_argument("--finetune", action="store_true", help="also full fine-tuning at the smallest shot count")
    p.add_argument("--ft-epochs", type=int, default=5)
    p.add_argument("--ft-length", type=int, default=64)
    p.add_argument("--teacher-per-class", type=int, default=100)
    p.add_argument("--teacher-strategy", default="auto",
                   help="auto = the toolkit's choice for <1k examples: freeze all but the last 2 layers")
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--teacher-lr", type=float, default=1e-4)
    p.add_argument("--length", type=int, default=64, help="max_length of teacher and student")
    p.add_argument("--unlabeled-n", type=int, default=100)
    p.add_argument("--student-layers", type=int, default=3)
    p.add_argument("--distill-epochs", type=int, default=4)
    p.add_argument("--distill-lr", type=float, default=3e-4)
    p.add_argument("--latency-texts", type=int, default=40)
    p.add_argument("--no-onnx", action="store_false", dest="onnx")
    p.add_argument("--keep", help="keep the work folder here instead of a temp dir")
    p.add_argument("--results", default=str(RESULTS), help="folder for the JSON and Markdown results")
    p.add_argument("--reuse", action="store_true", help="reuse a finished adapted checkpoint in --keep")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    out_json = results / f"{NAME}.json"
    from transferops._util import read_json, write_json

    res: dict[str, Any] = read_json(out_json) if out_json.exists() else {}
    from _common import machine

    res["env"] = {**machine(), "load_start": os.getloadavg()[0], "threads": args.threads,
                  "torch": torch.__version__}
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="adapt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if args.part in ("all", "adapt"):
            res["adapt"] = run_adapt(args, work)
            keys = ("mlm_steps", "mlm_batch", "mlm_length", "mlm_lr", "mlm_head_warmup", "shots", "seeds",
                    "candidates_per_class", "test_per_class", "probe_length", "finetune")
            res["adapt"]["config"] = {k: getattr(args, k) for k in keys}
            write_json(out_json, res)
        if args.part in ("all", "distill"):
            res["distill"] = run_distill(args, work)
            keys = ("teacher_per_class", "teacher_strategy", "teacher_epochs", "teacher_lr", "length",
                    "unlabeled_n", "student_layers", "distill_epochs", "distill_lr", "onnx")
            res["distill"]["config"] = {k: getattr(args, k) for k in keys}
            write_json(out_json, res)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res["env"]["load_end"] = os.getloadavg()[0]
    res["env"]["last_run_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out_json, res)
    write_markdown(res, results / f"{NAME}.md")
    log(f"wrote {out_json} and {NAME}.md in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
