"""Should the search refit ``contrastive`` on train + validation at few labels? Development seeds only.

The few-shot benchmark (``fewshot_vs_setfit.py``) keeps seeds 0-2 and its test split for the final figures;
this study never reads either. Per development seed it samples ``k`` examples a class from the training pool,
draws 300 development rows from the rest of the pool, and fits ``ContrastiveTuner`` (the search's recipe):

* ``search``: on the sample minus 5 held-out rows (what the search trains on: its validation split of 40 rows
  is 5 rows);
* ``refit``: on the whole sample (what ``refit_by_default`` now does after the search);
* ``seeds2``: the mean probability of two ``search`` bodies with different seeds (a cheap ensemble);
* ``search_ppe200`` / ``search_ppe400``: ``search`` with 2× / 4× the default pair budget (pairs per example).

At 64/class the held-out rows are 10 % of the sample (32; the search's validation split is 30) instead of 5.
``--name`` writes another results file (each (dataset, k)'s runs are kept; a rerun replaces them).

    .venv/bin/python benchmarks/contrastive_refit_study.py --shots 64 --variants search search_ppe200 \
        search_ppe400 --no-heads --name contrastive_steps_study_k64

    .venv/bin/python benchmarks/contrastive_refit_study.py --datasets headlines --seeds 3 4 5 6 7 8 9 10 11 12

Writes ``results/contrastive_refit_study.{json,md}`` (each dataset's runs are kept; a rerun replaces them).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from _common import RESULTS, machine
from fewshot_vs_setfit import load1, load_dataset, macro_f1, sample

VARIANTS = ("search", "refit", "seeds2", "search_ppe200", "search_ppe400")
#: heads refit on the ``refit`` body's embeddings (no extra body fit): raw / L2-normalised mean pool, C by the
#: probe's 3-fold CV or SetFit's fixed C = 1 (its default head is sklearn's LogisticRegression on normalised
#: sentence-transformers embeddings)
HEADS = ("refit_head_norm_cv", "refit_head_norm_c1", "refit_head_raw_c1")
HELD_OUT = 5


def run_seed(pool: Any, k: int, seed: int, variants: list[str], dev_size: int,
             heads: bool = True) -> list[dict[str, Any]]:
    from scipy.special import softmax

    from transferops.checkpoints import resolve_checkpoint
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.contrastive import ContrastiveTuner

    few = sample(pool, k, seed)
    rest = pool[~pool["text"].isin(set(few["text"]))]
    dev = rest.groupby("label", group_keys=False).sample(frac=dev_size / len(rest), random_state=seed)
    labels = sorted(few["label"].unique())
    y = np.asarray([labels.index(v) for v in few["label"]])
    yd = np.asarray([labels.index(v) for v in dev["label"]])
    n_hold = HELD_OUT if k <= 16 else int(round(0.1 * len(few)))
    hold = np.random.default_rng(seed).choice(len(few), n_hold, replace=False)
    keep = np.setdiff1d(np.arange(len(few)), hold)
    ck = resolve_checkpoint("minilm-l6").path
    out = []
    for v in variants:
        idx = np.arange(len(few)) if v == "refit" else keep
        t0, probs = time.perf_counter(), []
        for j in range(2 if v == "seeds2" else 1):
            ppe = {"ppe": int(v.split("_ppe")[1])} if "_ppe" in v else {}
            t = ContrastiveTuner(TrainConfig(strategy="contrastive", seed=seed + 1000 * j),
                                 **({"pairs_per_example": ppe["ppe"]} if ppe else {}))
            t.fit(few["text"].iloc[idx].tolist(), y[idx], [], np.asarray([]), labels=labels, task="multiclass",
                  checkpoint_path=ck)
            probs.append(softmax(t.predict_logits(dev["text"].tolist()), axis=1))
        out.append({"variant": v, "train_rows": int(len(idx)), "dev_macro_f1": round(
            macro_f1(yd, np.mean(probs, axis=0).argmax(1)), 4), "seconds": round(time.perf_counter() - t0, 1)})
        if v == "refit" and heads:
            out += head_variants(t, few["text"].tolist(), y, dev["text"].tolist(), yd, seed)
    return out


def head_variants(t: Any, texts: list[str], y: np.ndarray, dev_texts: list[str], yd: np.ndarray,
                  seed: int) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression

    from transferops.finetune.probe_head import fit_probe_lr

    e_tr, e_dev = t.encoder.embed(texts, desc="heads"), t.encoder.embed(dev_texts, desc="heads")

    def norm(e: np.ndarray) -> np.ndarray:
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    out = []
    for name in HEADS:
        a, b = (norm(e_tr), norm(e_dev)) if "_norm_" in name else (e_tr, e_dev)
        clf = (fit_probe_lr(a, y, multilabel=False, class_weight=None, seed=seed) if name.endswith("_cv")
               else LogisticRegression(C=1.0, max_iter=3000, random_state=seed).fit(a, y))
        out.append({"variant": name, "train_rows": int(len(y)),
                    "dev_macro_f1": round(macro_f1(yd, clf.predict(b)), 4), "seconds": 0.0})
    return out


def write_md(doc: dict[str, Any], name: str = "contrastive_refit_study") -> None:
    md = ["# Contrastive at few labels: refit on train + validation? (development seeds)", "",
          "`ContrastiveTuner` (the search's recipe) per development seed; macro-F1 on 300 development rows from "
          "the training pool (never the few-shot benchmark's test split or seeds 0-2). `search` = trained on the "
          f"sample minus {HELD_OUT} held-out rows at 8/class, 10 % at 64/class (the search's validation split), "
          "`refit` = on the whole sample (the default since 2026-12-03), `seeds2` = mean of two `search` bodies "
          "with different seeds; `search_ppeN` = `search` with N pairs per example (default 100); "
          "`refit_head_*` = other heads on the `refit` body's embeddings (`norm` = L2-normalised mean pool, `cv` = "
          "C from {0.1, 1, 10} by 3-fold CV as the probe does, `c1` = C = 1 as SetFit's default head); `refit` "
          "and `search*` have the head the tuner had when they ran: the 8/class rows ran with the raw mean pool and "
          "CV, before the L2-normalised head (`refit_head_norm_cv`) became the default; the 64/class rows ran "
          "with it.", ""]
    for (ds, k), runs in _groups(doc["runs"]).items():
        n_seeds = len({r["seed"] for r in runs})
        md += [f"## {ds}, {k} per class ({n_seeds} seeds)", "", "| variant | dev macro-F1 mean ± std | better "
               "than `search` | seconds (mean) |", "|---|---|---|---:|"]
        base = {r["seed"]: r["dev_macro_f1"] for r in runs if r["variant"] == "search"}
        for v in VARIANTS + HEADS:
            rs = [r for r in runs if r["variant"] == v]
            if not rs:
                continue
            f = np.asarray([r["dev_macro_f1"] for r in rs])
            wins = sum(r["dev_macro_f1"] > base[r["seed"]] for r in rs if r["seed"] in base)
            md.append(f"| {v} | {f.mean():.4f} ± {f.std():.4f} | {wins if v != 'search' else '—'} of {len(rs)} | "
                      f"{np.mean([r['seconds'] for r in rs]):.1f} |")
        seeds = sorted({r["seed"] for r in runs})
        present = [v for v in VARIANTS + HEADS if any(r["variant"] == v for r in runs)]
        md += ["", "| seed | " + " | ".join(present) + " |",
               "|---:|" + "---:|" * len({r["variant"] for r in runs})]
        for s in seeds:
            cells = [next((f"{r['dev_macro_f1']:.4f}" for r in runs if r["seed"] == s and r["variant"] == v), "")
                     for v in present]
            md.append(f"| {s} | " + " | ".join(cells) + " |")
        md.append("")
    md.append(f"Machine: {doc['machine']}")
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    g: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        g.setdefault((r["dataset"], r["k"]), []).append(r)
    return g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["headlines"])
    ap.add_argument("--shots", type=int, default=8)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(3, 13)))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--dev-size", type=int, default=300)
    ap.add_argument("--no-heads", action="store_true", help="skip the head variants on the refit body")
    ap.add_argument("--name", default="contrastive_refit_study")
    args = ap.parse_args()
    if set(args.seeds) & {0, 1, 2}:
        ap.error("--seeds: 0, 1 and 2 are the few-shot benchmark's own seeds; this study must not use them")
    path = RESULTS / f"{args.name}.json"
    doc = json.loads(path.read_text()) if path.exists() else {"runs": []}
    doc["runs"] = [r for r in doc["runs"] if not (r["dataset"] in args.datasets and r["k"] == args.shots)]
    doc["machine"] = machine()
    for ds in args.datasets:
        pool, _test = load_dataset(ds)  # the benchmark's test split is never read
        for seed in args.seeds:
            la = load1()
            for r in run_seed(pool, args.shots, seed, args.variants, args.dev_size, heads=not args.no_heads):
                doc["runs"].append({"dataset": ds, "k": args.shots, "seed": seed, "load_avg_1m": la, **r})
                print(json.dumps(doc["runs"][-1]), flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc, indent=1))
            write_md(doc, args.name)


if __name__ == "__main__":
    main()
