"""Few-shot vs SetFit, pooled: transferops − SetFit per (dataset, k, seed) run, over result files of
``fewshot_vs_setfit.py`` (no training; reads the committed JSON).

    .venv/bin/python benchmarks/fewshot_pooled.py --name fewshot_pooled_s29 \
        fewshot_vs_setfit_s27b_headlines8 fewshot_vs_setfit_s27b_bbc8 \
        fewshot_vs_setfit_s28_headlines64 fewshot_vs_setfit_s28_bbc64

Per seed, the test split holds ~300 rows, so one seed's macro-F1 moves by about ±2 points with the rows
drawn. "Ahead on every seed" is then a coin flip per seed even at equal skill. The pooled mean difference
has a t-interval and a bootstrap interval over the runs: it says whether either side is ahead overall.
A run's SetFit side is ``setfit_default`` where the cell has it (8/class), else ``setfit_2x_budget``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from _common import RESULTS, save


def pooled(names: list[str]) -> dict[str, Any]:
    from scipy import stats

    rows: list[dict[str, Any]] = []
    for name in names:
        res = json.loads((RESULTS / f"{name.removesuffix('.json')}.json").read_text())
        cells: dict[tuple[str, int, int], dict[str, Any]] = {}
        for run in res["runs"]:
            cells.setdefault((run["dataset"], run["k"], run["seed"]), {})[run["method"]] = run
        for (ds, k, seed), m in sorted(cells.items()):
            sf = m.get("setfit_default") or m.get("setfit_2x_budget")
            if "transferops" not in m or sf is None:
                continue
            ours = m["transferops"]
            rows.append({"file": name, "dataset": ds, "k": k, "seed": seed, "setfit": sf["method"],
                         "ours": round(ours["macro_f1"], 4), "setfit_f1": round(sf["macro_f1"], 4),
                         "diff_pt": round(100 * (ours["macro_f1"] - sf["macro_f1"]), 2),
                         "time_ratio": round(ours["wall_seconds"] / sf["wall_seconds"], 3)})
    if len(rows) < 2:
        raise SystemExit("fewshot_pooled: fewer than 2 runs with both sides in these files")
    d = np.asarray([r["diff_pt"] for r in rows])
    se = d.std(ddof=1) / np.sqrt(len(d))
    t = float(stats.t.ppf(0.975, len(d) - 1))
    rng = np.random.default_rng(0)
    boot = [float(rng.choice(d, len(d)).mean()) for _ in range(10_000)]
    ratios = [r["time_ratio"] for r in rows]
    return {"runs": rows, "n": len(rows), "mean_diff_pt": round(float(d.mean()), 2),
            "t_interval_pt": [round(float(d.mean() - t * se), 2), round(float(d.mean() + t * se), 2)],
            "bootstrap_interval_pt": [round(float(np.percentile(boot, 2.5)), 2),
                                      round(float(np.percentile(boot, 97.5)), 2)],
            "ahead_or_level": int((d >= 0).sum()),
            "sign_test_p": round(float(stats.binomtest(int((d > 0).sum()), len(d)).pvalue), 3),
            "time_ratio_range": [min(ratios), max(ratios)],
            "runs_at_or_below_half_time": int(sum(r <= 0.5 for r in ratios))}


def render(p: dict[str, Any]) -> str:
    head = ("| dataset | k | seed | transferops | SetFit | Δ pt | time ratio |\n"
            "|---|---:|---:|---:|---:|---:|---:|")
    body = [f"| {r['dataset']} | {r['k']} | {r['seed']} | {r['ours']:.4f} | {r['setfit_f1']:.4f} ({r['setfit']}) | "
            f"{r['diff_pt']:+.2f} | {r['time_ratio']:.2f}× |" for r in p["runs"]]
    lo, hi = p["t_interval_pt"]
    blo, bhi = p["bootstrap_interval_pt"]
    summary = (f"\nPooled over {p['n']} runs: transferops − SetFit = **{p['mean_diff_pt']:+.2f} pt** macro-F1, "
               f"95 % t-interval [{lo:+.2f}, {hi:+.2f}], bootstrap [{blo:+.2f}, {bhi:+.2f}]; ahead or level on "
               f"{p['ahead_or_level']} of {p['n']} (sign test p = {p['sign_test_p']}); time "
               f"{p['time_ratio_range'][0]:.2f}–{p['time_ratio_range'][1]:.2f}× SetFit's, "
               f"≤ 0.5× on {p['runs_at_or_below_half_time']} of {p['n']}.")
    return "\n".join([head, *body, summary])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="result stems under benchmarks/results")
    ap.add_argument("--name", default="fewshot_pooled")
    args = ap.parse_args()
    p = pooled(args.files)
    p["files"] = args.files
    save(args.name, p, render(p))  # writes the JSON and Markdown and prints the table


if __name__ == "__main__":
    main()
