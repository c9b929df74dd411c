"""Benchmark for ``transferops select``.

Part ``timing`` (issue 18, lever 6) — the one command the integrator reruns on an idle machine::

    nice -n 10 .venv/bin/python benchmarks/select_bench.py --part timing --rounds 3

It runs ``transferops select --data bbc.csv --candidates minilm-l6,mpnet-base --n 100 --max-length 128
--json`` as a user does, in a fresh process each time (imports, model loads, tokenisation, embeddings,
scores and baselines all counted), with ``--precision fp32`` (the pre-issue-18 pass) and ``--precision
auto`` interleaved: per round cold fp32, cold auto (this command's embedding and baseline cache entries
removed first), warm fp32, warm auto. Per run: wall, CPU (user + sys of the child), load average
before/after; per mode median and best; the fp32-vs-auto score differences. Default torch threads (no
pinning). Targets: cold ≤ 30 s wall, warm ≤ 10 s. Needs mpnet-base (``TRANSFEROPS_WITH_MPNET=1 bash
scripts/setup.sh``). Runtime: about 3 min for 3 rounds on 2 idle cores (estimate from the loaded smoke run's
CPU seconds); ``--rounds 1`` is the smoke form.

Part ``ranking``: does the cheap ranking predict the fine-tuned ranking? On two labeled sets:

* ``bbc``: BBC News (title + body), 200 articles (40 per class), 5 topics.
* ``bbc-headlines``: 300 articles (60 per class, a superset of the 200) reduced to their headline
  (first line of the original file) — a short-text task (~10 tokens) with the same labels. It is
  derived from the shipped corpus, not independent data; it changes the input distribution (length,
  vocabulary density), which is what checkpoint choice is sensitive to.

Only two real checkpoints ship (minilm-l6, mpnet-base), and a rank correlation over two points is
±1 by construction. So two derived HF folders are added as candidates: ``minilm-cut2`` (the first 2
of MiniLM's 6 layers) and ``minilm-random`` (MiniLM's architecture, random weights). The TF-IDF
baseline is a fifth point (its cheap scores vs its test macro-F1 from the training manifest).

Each candidate is then fine-tuned with ``transferops.train`` (strategy ``head``: frozen backbone,
pooler + classifier trained on cached features, max_length 128, early-stopping patience 10; default
splits, seed 0, so the test split is one the selection never saw). CPU is shared by several agents; keep it small.

Run: ``.venv/bin/python benchmarks/select_bench.py [--part timing|ranking|all] [--rounds N]
[--dataset bbc|bbc-headlines]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PY = sys.executable
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFEROPS_QUIET", "1")

CANDIDATES = ("minilm-l6", "mpnet-base")
KEEP = ("name", "rank", "knn_accuracy", "probe_accuracy", "probe_macro_f1", "logme", "params",
        "embed_ms_per_example", "load_seconds", "cached", "precision")
#: What was measured at the start of issue 18 (lever 6), before the bf16 embedding pass, with the same CLI
#: command, cold cache, default threads, on the shared 2-core box (load average 8.9 before → 10.1 after).
BEFORE = {"process_wall_seconds": 189.18, "process_cpu_seconds": 73.23, "load_avg_1m": "8.9-10.1",
          "code": "main 44bd943 (fp32 only)", "measured": "2026-12-01 19:10 UTC"}


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        return "?"


def _select_cmd(csv: Path, precision: str) -> list[str]:
    """The command a user types (``transferops select``), machine-readable output."""
    return [PY, "-m", "transferops", "select", "--data", str(csv), "--candidates", ",".join(CANDIDATES),
            "--n", "100", "--seed", "0", "--max-length", "128", "--precision", precision, "--json"]


def _clear_cache(csv: Path, precision: str) -> None:
    """Cold start: remove exactly the cache entries this command creates (nothing else of the user's)."""
    from transferops._util import sha256_texts
    from transferops.checkpoints import resolve_checkpoint
    from transferops.data import load_labeled
    from transferops.select.selection import SelectConfig, embedding_cache_path, selection_split

    texts, y_names, _, _ = selection_split(load_labeled(str(csv)), SelectConfig(n=100, seed=0))
    for name in CANDIDATES:
        p = embedding_cache_path(resolve_checkpoint(name).sha256(), texts, 128, precision)
        p.unlink(missing_ok=True)
        p.with_suffix(".json").unlink(missing_ok=True)
    classes = sorted(set(y_names))
    fp = sha256_texts(texts, [classes.index(v) for v in y_names])
    for f in p.parent.glob(f"baselines-{fp}-*.json"):
        f.unlink()


def _run_select(csv: Path, precision: str, label: str) -> dict[str, Any]:
    """One ``transferops select`` in a fresh process: wall, CPU (user + sys of the child), load average."""
    load_before = _load()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(_select_cmd(csv, precision), capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"select failed ({label}, {precision}):\n{out.stderr[-3000:]}")
    d = json.loads(out.stdout)
    return {"run": label, "precision_flag": precision, "process_wall_seconds": round(wall, 2),
            "process_cpu_seconds": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2),
            "select_seconds": d["seconds"], "load_avg_1m_before": load_before, "load_avg_1m_after": _load(),
            "rows": [{k: r.get(k) for k in KEEP} for r in d["rows"]], "recommended": d["recommended"],
            "warnings": d["warnings"]}


def _stats(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    v = sorted(r[key] for r in runs)
    return {"median": round(float(statistics.median(v)), 2), "best": round(v[0], 2), "n": len(v)}


def _equivalence(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """fp32 vs bf16: same ranking, recommendation and warnings? Largest score difference per score."""
    ra = {r["name"]: r for r in a["rows"]}
    rb = {r["name"]: r for r in b["rows"]}
    diff = {s: max((abs(ra[n][s] - rb[n][s]) for n in ra if ra[n][s] is not None and rb[n][s] is not None),
                   default=0.0) for s in ("knn_accuracy", "probe_accuracy", "probe_macro_f1", "logme")}
    return {"same_ranking": [r["name"] for r in a["rows"]] == [r["name"] for r in b["rows"]],
            "same_recommended": a["recommended"] == b["recommended"],
            "same_warnings": [w.split(" (")[0] for w in a["warnings"]] == [w.split(" (")[0] for w in b["warnings"]],
            "max_abs_score_diff": {k: round(v, 6) for k, v in diff.items()}}


def timing(rounds: int, work: Path) -> dict[str, Any]:
    """Cold and warm ``transferops select`` runs, fp32 (the pre-issue-18 pass) and auto interleaved."""
    from transferops.data.bundled import load_bbc
    from transferops.select.precision import resolve_precision

    csv = work / "bbc.csv"
    if not csv.exists():
        load_bbc().to_csv(csv, index=False)
    modes = ("fp32", "auto")
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        for mode in modes:  # cold: fp32 then auto, interleaved round by round
            _clear_cache(csv, mode)
            runs.append({**_run_select(csv, mode, "cold"), "round": r})
            print(f"round {r} cold {mode}: {runs[-1]['process_wall_seconds']} s wall, "
                  f"{runs[-1]['process_cpu_seconds']} s CPU, load {runs[-1]['load_avg_1m_before']}", flush=True)
        for mode in modes:
            runs.append({**_run_select(csv, mode, "warm"), "round": r})
            print(f"round {r} warm {mode}: {runs[-1]['process_wall_seconds']} s wall", flush=True)
    summary = {f"{lab}_{m}": {"wall": _stats(sel, "process_wall_seconds"), "cpu": _stats(sel, "process_cpu_seconds")}
               for lab in ("cold", "warm") for m in modes
               if (sel := [x for x in runs if x["run"] == lab and x["precision_flag"] == m])}
    cold = [x for x in runs if x["run"] == "cold"]
    eq = _equivalence(next(x for x in cold if x["precision_flag"] == "fp32"),
                      next(x for x in cold if x["precision_flag"] == "auto"))
    auto_is = resolve_precision("auto")
    return {"command": "transferops " + " ".join(_select_cmd(Path("bbc.csv"), "auto")[3:]), "rounds": rounds,
            "runs": runs,
            "summary": summary, "auto_resolves_to": auto_is, "fp32_vs_auto": eq,
            "targets": {"cold_seconds": 30, "warm_seconds": 10},
            "met": {"cold": summary["cold_auto"]["wall"]["median"] <= 30,
                    "warm": summary["warm_auto"]["wall"]["median"] <= 10},
            "before": BEFORE, "threads": os.environ.get("OMP_NUM_THREADS", "torch default"),
            "cpu_count": os.cpu_count(), "note": "2 cores shared with other agents; see the load averages"}


# --------------------------------------------------------------------------- ranking vs fine-tuning


def _derived_candidates(work: Path) -> dict[str, str]:
    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    from transferops.checkpoints import resolve_checkpoint

    src = resolve_checkpoint("minilm-l6").path
    out = {}
    cut = work / "minilm-cut2"
    if not (cut / "config.json").exists():
        m = AutoModel.from_pretrained(str(src), local_files_only=True)
        m.encoder.layer = m.encoder.layer[:2]
        m.config.num_hidden_layers = 2
        m.save_pretrained(str(cut), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(cut))
    out["minilm-cut2"] = str(cut)
    rnd = work / "minilm-random"
    if not (rnd / "config.json").exists():
        torch.manual_seed(0)
        cfg = BertConfig.from_pretrained(str(src))
        BertModel(cfg).save_pretrained(str(rnd), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(rnd))
    out["minilm-random"] = str(rnd)
    return out


def _datasets() -> dict[str, Any]:
    import pandas as pd

    from transferops.data.bundled import BBC_CLASSES, bbc_root, load_bbc

    # 60 articles per class; the full-text set keeps 40 of them (mpnet at 128 tokens costs ~1 s per
    # text on this shared CPU).
    bbc = load_bbc().groupby("label").sample(60, random_state=0).reset_index(drop=True)
    heads = []
    for _id, lab in zip(bbc["id"], bbc["label"], strict=True):
        folder, stem = _id.split("/")
        raw = (bbc_root() / folder / f"{stem}.txt").read_bytes().decode("latin-1")
        title = next(line.strip() for line in raw.splitlines() if line.strip())
        heads.append({"id": _id, "text": title, "label": BBC_CLASSES.get(folder, lab)})
    bodies = bbc.groupby("label").head(40).reset_index(drop=True)
    return {"bbc": bodies[["id", "text", "label"]], "bbc-headlines": pd.DataFrame(heads)}


def _plot(res: Any, cands: dict[str, str], ds_name: str) -> None:
    from transferops.select.plot import plot_selection

    names = {v: k for k, v in cands.items()}
    for r in res.rows:  # folder paths → short names on the axis
        r.name = names.get(r.name, r.name)
    plot_selection(res, RESULTS / f"select_bench_{ds_name}.png")
    for r in res.rows:
        r.name = cands.get(r.name, r.name)


def _selection_order(rows: list[dict[str, Any]], n: int) -> tuple[list[str], list[str]]:
    """``select``'s own order (probe macro-F1, ties broken by LogME) and its close-call warning."""
    from transferops.select.selection import CandidateScore, _close_call, rank_rows

    cs = [CandidateScore(r["candidate"], "checkpoint", probe_macro_f1=r["probe_macro_f1"], logme=r["logme"])
          for r in rows]
    ranked = rank_rows(cs, "probe_macro_f1")
    return [r.name for r in ranked], _close_call(ranked, "probe_macro_f1", n)


def ranking(work: Path, only: str | None = None, plots_only: bool = False) -> dict[str, Any]:
    from transferops.select.selection import SCORES, TFIDF, finetune_top, rank_correlations, select

    cands = {"minilm-l6": "minilm-l6", "mpnet-base": "mpnet-base", **_derived_candidates(work)}
    out: dict[str, Any] = {}
    for ds_name, df in _datasets().items():
        if only and ds_name != only:
            continue
        t0 = time.perf_counter()
        res = select(df, list(cands.values()), n=100, seed=0, max_length=128, top=len(cands))
        t_sel = time.perf_counter() - t0
        _plot(res, cands, ds_name)
        if plots_only:
            continue
        names = {v: k for k, v in cands.items()}
        t1 = time.perf_counter()
        run_dir = work / "runs" / ds_name
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
        # Patience 10 (train's default is 2): with the head strategy's warm-up, weak encoders sit at
        # chance for the first epochs and patience 2 stops them there.
        ft = finetune_top(res, df, len(cands), out=run_dir, seed=0, strategy="head", max_length=128,
                          check_near_duplicates=False, threads=1, early_stopping_patience=10)
        t_ft = time.perf_counter() - t1
        rows = []
        for run in ft.runs:
            rows.append({"candidate": names.get(run["name"], run["name"]),
                         **{s: round(run[s], 4) for s in SCORES},
                         "finetuned_test_macro_f1": round(run["test_macro_f1"], 4),
                         "finetuned_test_accuracy": round(run["test_accuracy"], 4)})
        tf = res.row(TFIDF)
        base_test = ft.runs[0]["baseline_test_macro_f1"]
        rows.append({"candidate": "baseline:tfidf-logreg", **{s: tf.score(s) for s in SCORES},
                     "finetuned_test_macro_f1": round(base_test, 4), "finetuned_test_accuracy": None})
        # Rank agreement among checkpoints (4 points) and with the TF-IDF baseline (5 points).
        final = [r["finetuned_test_macro_f1"] for r in rows[:-1]]
        corr = {s: rank_correlations([r[s] for r in rows[:-1]], final) for s in SCORES}
        corr5 = {s: rank_correlations([r[s] for r in rows], [r["finetuned_test_macro_f1"] for r in rows])
                 for s in SCORES}
        sel_rank, close = _selection_order(rows[:-1], res.n)
        ft_rank = [r["candidate"] for r in sorted(rows[:-1], key=lambda r: -r["finetuned_test_macro_f1"])]
        out[ds_name] = {"rows": rows, "spearman_kendall_checkpoints": corr, "close_call_warning": close,
                        "spearman_kendall_with_baseline": corr5, "selection_ranking_probe_f1": sel_rank,
                        "finetuned_ranking": ft_rank, "top1_match": sel_rank[0] == ft_rank[0],
                        "select_seconds": round(t_sel, 1), "finetune_seconds": round(t_ft, 1),
                        "n_rows": len(df), "load_avg_1m_after": _load()}
    return out


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:+.2f}" if isinstance(v, float) else str(v)


def write_md(res: dict[str, Any], path: Path) -> None:
    lines = ["# select benchmark", "", "Interpretation and caveats: docs/select.md, section Benchmark. Plots: "
             "select_bench_bbc.png, select_bench_bbc-headlines.png.", ""]
    if "timing" in res:
        t = res["timing"]
        lines += ["## Cold and warm `transferops select`: 2 checkpoints + 2 baselines on 100 BBC examples", "",
                  f"`{t['command']}` in a fresh process per run (imports, model loads and embeddings counted; "
                  f"cold = this command's cache entries removed first), {t['rounds']} round(s), fp32 and auto "
                  f"interleaved; auto resolves to **{t['auto_resolves_to']}** here; threads: {t['threads']}, "
                  f"{t['cpu_count']} cores.", "",
                  "| run | precision | wall s median | wall s best | CPU s median | target | met (median wall) |",
                  "|---|---|---|---|---|---|---|"]
        for key, v in t["summary"].items():
            lab, mode = key.split("_")
            tgt = t["targets"][f"{lab}_seconds"]
            lines.append(f"| {lab} | {mode} | {v['wall']['median']} | {v['wall']['best']} | {v['cpu']['median']} | "
                         f"≤ {tgt} | {v['wall']['median'] <= tgt} |")
        b = t.get("before", {})
        if b:
            lines += ["", f"Before (measured at the start of lever 6, {b['code']}, same command without "
                      f"`--precision`, cold): {b['process_wall_seconds']} s wall, {b['process_cpu_seconds']} s CPU, "
                      f"load average {b['load_avg_1m']}."]
        eq = t["fp32_vs_auto"]
        lines += ["", f"fp32 vs auto (cold runs of round 0): same ranking {eq['same_ranking']}, same "
                  f"recommendation {eq['same_recommended']}, same warnings {eq['same_warnings']}; largest score "
                  "difference: " + ", ".join(f"{k} {v:g}" for k, v in eq["max_abs_score_diff"].items()) + ".", "",
                  "| round | run | precision | wall s | CPU s | load avg before → after |", "|---|---|---|---|---|---|"]
        for r in t["runs"]:
            lines.append(f"| {r['round']} | {r['run']} | {r['precision_flag']} | {r['process_wall_seconds']} | "
                         f"{r['process_cpu_seconds']} | {r['load_avg_1m_before']} → {r['load_avg_1m_after']} |")
        lines += ["", "Wall time is on cores shared with other agents when the load average is above the core "
                  "count; read CPU seconds and the fp32/auto ratio, not the absolute wall time.", "",
                  "| rank | candidate | precision | kNN | probe acc | probe F1 | LogME | ms/ex | load s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        first = next(r for r in t["runs"] if r["run"] == "cold" and r["precision_flag"] == "auto")
        for r in first["rows"]:
            lines.append("| " + " | ".join("-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)
                                           for x in (r["rank"], r["name"], r.get("precision"), r["knn_accuracy"],
                                                     r["probe_accuracy"], r["probe_macro_f1"], r["logme"],
                                                     r["embed_ms_per_example"], r["load_seconds"])) + " |")
        lines.append("")
    for ds, d in res.get("ranking", {}).items():
        lines += [f"## Selection vs fine-tuned ranking: {ds} ({d['n_rows']} rows, head strategy)", "",
                  "| candidate | kNN | probe acc | probe F1 | LogME | fine-tuned test macro-F1 |",
                  "|---|---|---|---|---|---|"]
        for r in d["rows"]:
            vals = [r["knn_accuracy"], r["probe_accuracy"], r["probe_macro_f1"], r["logme"],
                    r["finetuned_test_macro_f1"]]
            lines.append(f"| {r['candidate']} | " + " | ".join(
                "-" if v is None else f"{v:.3f}" for v in vals) + " |")
        lines += ["", "| score | Spearman (4 ckpts) | Kendall (4 ckpts) | Spearman (+TF-IDF) "
                  "| Kendall (+TF-IDF) |",
                  "|---|---|---|---|---|"]
        for s, c in d["spearman_kendall_checkpoints"].items():
            c5 = d["spearman_kendall_with_baseline"][s]
            lines.append(f"| {s} | {_fmt(c['spearman'])} | {_fmt(c['kendall'])} | {_fmt(c5['spearman'])} | "
                         f"{_fmt(c5['kendall'])} |")
        lines += ["", f"selection ranking (probe F1, ties by LogME): {' > '.join(d['selection_ranking_probe_f1'])}  ",
                  f"fine-tuned ranking: {' > '.join(d['finetuned_ranking'])}  ",
                  f"top-1 match: {d['top1_match']} · select {d['select_seconds']} s · fine-tune "
                  f"{d['finetune_seconds']} s  "]
        lines += [f"select's warning: {w}  " for w in d.get("close_call_warning", [])] + [""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["timing", "ranking", "plots", "all"], default="all")
    ap.add_argument("--dataset", choices=["bbc", "bbc-headlines"], help="ranking: only this data set")
    ap.add_argument("--rounds", type=int, default=3, help="timing: rounds of (cold fp32, cold auto, warm x2)")
    args = ap.parse_args()
    from transferops._util import cache_dir

    work = cache_dir() / "select-bench"
    work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json = RESULTS / "select_bench.json"
    res: dict[str, Any] = json.loads(out_json.read_text()) if out_json.exists() else {}
    if args.part in ("timing", "all"):
        res["timing"] = timing(args.rounds, work)
        print(json.dumps(res["timing"]["met"]), json.dumps(res["timing"]["summary"]))
    if args.part == "plots":  # re-draw the selection plots from the warm cache, no fine-tuning
        ranking(work, args.dataset, plots_only=True)
        return
    if args.part in ("ranking", "all"):
        res["ranking"] = {**res.get("ranking", {}), **ranking(work, args.dataset)}
    import platform

    res["machine"] = {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                      "python": platform.python_version()}
    out_json.write_text(json.dumps(res, indent=2, default=str))
    write_md(res, RESULTS / "select_bench.md")
    print((RESULTS / "select_bench.md").read_text())


if __name__ == "__main__":
    main()
