"""How well does the model search pick at few labels? Every candidate scored on a large held-out set.

The few-shot design (``fewshot_vs_setfit.py``) records only the winner's test score. This study keeps
every candidate the search fitted and scores each one on 300 *development* rows, so that selection rules
can be compared offline: which candidate the validation split picks, against the one that was really best.

It never touches the benchmark's test split or its seeds: the few-shot samples use other seeds (3, 4, 5,
... by default) and the development rows are drawn from the BBC training pool, minus the sample.

    .venv/bin/python benchmarks/selection_study.py --datasets headlines bbc --shots 64 --seeds 3 4 5 6 7

Per run the JSON holds, for each candidate: its validation score, its development macro-F1, and the
probabilities on validation and development rows (to evaluate rules that combine candidates).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, machine
from fewshot_vs_setfit import load1, load_dataset, macro_f1, sample


def run_one(few: Any, dev: Any, seed: int, budget: float, tmp: Path) -> dict[str, Any]:
    import transferops
    import transferops.finetune.search as search
    from transferops.finetune.search import candidate_proba

    cap: dict[str, Any] = {}
    orig_run, orig_drop = search.run_search, search._drop_losers

    def run_search(train_texts: list[str], y_tr: Any, val_texts: list[str], y_va: Any, **kw: Any) -> Any:
        cap.update(val_texts=list(val_texts), y_va=np.asarray(y_va), labels=list(kw["labels"]),
                   n_train=len(train_texts))
        res = orig_run(train_texts, y_tr, val_texts, y_va, **kw)
        cap["board"] = [c.to_dict() for c in res.leaderboard]
        cap.setdefault("fitted", {})[res.winner] = res.fitted
        return res

    def keep_all(board: Any, fitted: dict[str, Any], keep: int = 1) -> None:  # the study needs every candidate
        cap["fitted"] = fitted

    search.run_search, search._drop_losers = run_search, keep_all
    try:
        t0 = time.perf_counter()
        res = transferops.train(few, out=tmp / f"run-{time.monotonic_ns()}", test_data=dev, checkpoint="minilm-l6",
                                seed=seed, time_budget=budget, check_near_duplicates=False)
        wall = time.perf_counter() - t0
    finally:
        search.run_search, search._drop_losers = orig_run, orig_drop
    labels = cap["labels"]
    dev_texts, dev_y = dev["text"].tolist(), np.asarray([labels.index(v) for v in dev["label"]])
    cands: dict[str, Any] = {}
    for row in cap["board"]:
        name = row["name"]
        if row["status"] != "ok" or name not in cap["fitted"]:
            cands[name] = {"status": row["status"], "reason": row.get("reason", "")}
            continue
        obj = cap["fitted"][name]
        pv = candidate_proba(name, obj, cap["val_texts"])
        pd_ = candidate_proba(name, obj, dev_texts)
        cands[name] = {"status": "ok", "val": row["value"], "train_seconds": row.get("train_seconds"),
                       "dev_macro_f1": round(macro_f1(dev_y, pd_.argmax(1)), 4),
                       "val_proba": np.round(pv, 5).tolist(), "dev_proba": np.round(pd_, 5).tolist()}
    return {"winner": res.manifest["search"]["winner"], "wall_seconds": round(wall, 1),
            "n_train": cap["n_train"], "n_val": len(cap["y_va"]), "labels": labels,
            "y_val": cap["y_va"].tolist(), "y_dev": dev_y.tolist(), "candidates": cands}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["headlines", "bbc"])
    ap.add_argument("--shots", nargs="+", type=int, default=[64])
    ap.add_argument("--seeds", nargs="+", type=int, default=[3, 4, 5, 6, 7])
    ap.add_argument("--budget", type=float, default=90.0, help="the search's time budget (as fewshot_vs_setfit)")
    ap.add_argument("--dev-size", type=int, default=300)
    ap.add_argument("--name", default="selection_study")
    ap.add_argument("--analyse", metavar="JSON", type=Path, nargs="+",
                    help="only replay the selection rules on finished studies' JSON (the runs of all of them; "
                         "writes the .md beside the first, or results/NAME.md with --name)")
    args = ap.parse_args()
    if args.analyse is not None:
        analyse(args.analyse, None if args.name == ap.get_default("name") else RESULTS / f"{args.name}.md")
        return
    if set(args.seeds) & {0, 1, 2}:
        ap.error("--seeds: 0, 1 and 2 are the benchmark's own seeds; a selection study must not use them")
    out = RESULTS / f"{args.name}.json"
    runs: list[dict[str, Any]] = json.loads(out.read_text())["runs"] if out.exists() else []
    done = {(r["dataset"], r["k"], r["seed"]) for r in runs}
    with tempfile.TemporaryDirectory() as td:
        for ds in args.datasets:
            pool, _test = load_dataset(ds)  # the benchmark's test split is never read
            for k in args.shots:
                for seed in args.seeds:
                    if (ds, k, seed) in done:
                        continue
                    few = sample(pool, k, seed)
                    rest = pool[~pool["text"].isin(set(few["text"]))]
                    dev = rest.groupby("label", group_keys=False).sample(
                        frac=args.dev_size / len(rest), random_state=seed).reset_index(drop=True)
                    la = load1()
                    r = run_one(few, dev, seed, args.budget, Path(td))
                    runs.append({"dataset": ds, "k": k, "seed": seed, "load_avg_1m": la, **r})
                    best = max((c["dev_macro_f1"], n) for n, c in r["candidates"].items() if c["status"] == "ok")
                    print(f"{ds} k={k} seed={seed}: winner {r['winner']} "
                          f"dev {r['candidates'][r['winner']]['dev_macro_f1']:.3f}; best on dev {best[1]} "
                          f"{best[0]:.3f}; n_val {r['n_val']}", flush=True)
                    RESULTS.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs}))


def analyse(paths: list[Path], md_path: Path | None = None) -> None:
    """Offline: each selection rule's pick per run, and its development macro-F1 (mean over runs)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from transferops.finetune.search import prior_stands

    runs = [r for p in paths for r in json.loads(p.read_text())["runs"]]
    table: dict[tuple[str, int], dict[str, list[float]]] = {}
    for r in runs:
        # the search's own "ensemble" row (kept by later studies) is a rule's output, not a candidate
        ok = {n: c for n, c in r["candidates"].items() if c["status"] == "ok" and n != "ensemble"}
        yv = np.asarray(r["y_val"])
        correct = {n: np.asarray(c["val_proba"]).argmax(1) == yv for n, c in ok.items()}
        best_val = max(ok, key=lambda n: (ok[n]["val"], -list(ok).index(n)))
        picks = {"validation-best": best_val, "oracle": max(ok, key=lambda n: ok[n]["dev_macro_f1"])}
        if "contrastive" in ok and best_val != "contrastive":
            picks["contrastive_prior"] = "contrastive" if prior_stands(correct[best_val], correct["contrastive"])[0] \
                else best_val
        else:
            picks["contrastive_prior"] = best_val
        yd = np.asarray(r["y_dev"])
        for n in ok:
            table.setdefault((r["dataset"], r["k"]), {}).setdefault(f"always {n}", []).append(ok[n]["dev_macro_f1"])
        for k_, v in picks.items():
            table.setdefault((r["dataset"], r["k"]), {}).setdefault(k_, []).append(ok[v]["dev_macro_f1"])
        ranked = sorted(ok, key=lambda n: -ok[n]["val"])
        top = ranked[:3]
        # as the search does: every candidate the paired interval cannot tell from the best, the first K of them
        passing = [n for n in ranked if n == ranked[0] or prior_stands(correct[ranked[0]], correct[n])[0]]
        close, close5 = passing[:3], passing[:5]
        nf = [n for n in ranked if n != "full"]
        close_nf = [n for n in nf if n == nf[0] or prior_stands(correct[nf[0]], correct[n])[0]][:3]
        for label, members in (("mean of all", list(ok)), ("mean of top 3", top),
                               ("up to 3, paired filter (shipped until 2026-12-03)", close),
                               ("up to 3, paired filter, `full` left out", close_nf),
                               ("shipped: up to 5, paired filter", close5)):
            pd_ = np.mean([np.asarray(ok[n]["dev_proba"]) for n in members], axis=0)
            from sklearn.metrics import f1_score
            table[(r["dataset"], r["k"])].setdefault(label, []).append(
                float(f1_score(yd, pd_.argmax(1), average="macro")))
        print(f"{r['dataset']:<9} k={r['k']} seed={r['seed']} n_val={r['n_val']}  "
              + "  ".join(f"{n}:{c['val']:.3f}/{c['dev_macro_f1']:.3f}" for n, c in ok.items()))
        print("    picks: " + ", ".join(f"{k}={v} ({ok[v]['dev_macro_f1']:.3f})" for k, v in picks.items()))
    md = ["# Selection at small validation splits (issue 18, lever 7)", "",
          f"{len(runs)} runs of the model search (`transferops.train` defaults, 90 s budget, MiniLM-L6) on "
          "development seeds (never the few-shot benchmark's seeds 0-2), every fitted candidate scored on 300 "
          "development rows drawn from the dataset's training pool (never the benchmark's test split). A rule "
          "is how the saved model is chosen from the same fitted candidates; the table is the saved model's "
          "development macro-F1, mean ± std over runs. `validation-best` = the search before its ensemble; "
          "`oracle` = the candidate best on the development rows (not a rule: it looks at them); `shipped` = "
          "the rule the search now applies (the mean probability of the validation-best and up to 4 more of "
          "the next by validation score that the paired 95 % interval cannot tell apart from it; up to 2 more "
          "until 2026-12-03). `Δ` = shipped minus up to 3 per run, with a bootstrap 95 % interval over runs.",
          ""]
    for (ds, k), rules in table.items():
        n_val = sorted({r["n_val"] for r in runs if (r["dataset"], r["k"]) == (ds, k)})
        md += [f"## {ds}, {k} per class (validation rows: {', '.join(map(str, n_val))})", "",
               "| rule | dev macro-F1 | runs |", "|---|---|---:|"]
        print(f"\n{ds} k={k}: rule -> dev macro-F1 mean over runs (runs)")
        for rule, vals in sorted(rules.items(), key=lambda kv: -np.mean(kv[1])):
            print(f"  {rule:<24} {np.mean(vals):.4f} ± {np.std(vals):.4f} ({len(vals)})")
            name = f"**{rule}**" if rule.startswith("shipped") else rule
            md.append(f"| {name} | {np.mean(vals):.4f} ± {np.std(vals):.4f} | {len(vals)} |")
        new, old = (np.asarray(rules[k_]) for k_ in ("shipped: up to 5, paired filter",
                                                      "up to 3, paired filter (shipped until 2026-12-03)"))
        d = new - old
        boot = np.random.default_rng(0).choice(d, (5000, len(d))).mean(axis=1)
        md += ["", f"Δ shipped − up to 3: {d.mean():+.4f} (bootstrap 95 % [{np.percentile(boot, 2.5):+.4f}, "
               f"{np.percentile(boot, 97.5):+.4f}]); better on {int((d > 1e-9).sum())}, worse on "
               f"{int((d < -1e-9).sum())} of {len(d)} runs", ""]
    md += ["## Per run: validation / development macro-F1 of every fitted candidate", "",
           "| dataset | k | seed | candidates (validation / development) | validation pick |",
           "|---|---:|---:|---|---|"]
    for r in runs:
        ok = {n: c for n, c in r["candidates"].items() if c["status"] == "ok"}
        md.append(f"| {r['dataset']} | {r['k']} | {r['seed']} | "
                  + ", ".join(f"{n} {c['val']:.3f}/{c['dev_macro_f1']:.3f}" for n, c in ok.items())
                  + f" | {r['winner']} |")
    (md_path or paths[0].with_suffix(".md")).write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
