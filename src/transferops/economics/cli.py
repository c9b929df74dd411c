"""``transferops cost`` and ``transferops roi``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transferops._util import dumps

DEFAULT_SERVE_BENCH = Path("benchmarks/results/serve_bench.json")


def register(sub: Any) -> None:
    c = sub.add_parser(
        "cost", help="training, labeling, storage and inference cost, from measured runs or inputs",
        description="Cost of a model from a measured run (recorded training time, artifact size on disk, "
        "serve-benchmark throughput) or from typed-in numbers. Example: transferops cost --run runs/full "
        "--run runs/lora --price-per-hour 3.06 --n-models 40 --monthly-volume 10000000")
    c.add_argument("--run", action="append", default=[], metavar="DIR",
                   help="trained artifact folder (repeatable; one full + one LoRA run gives storage)")
    c.add_argument("--price-per-hour", type=float, help="instance price in $/hour (e.g. 3.06 for p3.2xlarge)")
    c.add_argument("--train-hours", type=float, help="training wall hours (instead of a measured --run)")
    c.add_argument("--labels", type=int, help="examples to label")
    c.add_argument("--labels-from", metavar="RUN", help="estimate --labels from RUN's learning curve "
                   "(`transferops learning-curve --model RUN` first): the extra labels needed for --target-metric")
    c.add_argument("--target-metric", type=float, help="validation metric to reach (with --labels-from), e.g. 0.9")
    c.add_argument("--price-per-label", type=float, help="$ per label (e.g. 0.05 on Mechanical Turk)")
    c.add_argument("--minutes-per-label", type=float, help="annotation minutes per example "
                   "(with --hourly-rate)")
    c.add_argument("--hourly-rate", type=float, help="annotator $/hour (with --minutes-per-label)")
    al = c.add_mutually_exclusive_group()
    al.add_argument("--al-examples", type=int, help="examples active learning needs instead of --labels")
    al.add_argument("--al-reduction", type=float, help="share of labels active learning saves (0-1)")
    c.add_argument("--n-models", type=int, help="number of task models to store (full copies vs adapters)")
    c.add_argument("--full-size-mb", type=float, help="size of one full model in MB (else from a full --run)")
    c.add_argument("--adapter-size-mb", type=float, help="size of one adapter in MB (else from a LoRA --run)")
    c.add_argument("--storage-price", type=float, help="$ per GB-month of storage")
    c.add_argument("--throughput", type=float, help="measured predictions/second per instance")
    c.add_argument("--serve-bench", default=str(DEFAULT_SERVE_BENCH),
                   help="serve benchmark JSON to read throughput from when --throughput is not given "
                   f"(default {DEFAULT_SERVE_BENCH}, used if present)")
    c.add_argument("--cost-per-prediction", type=float, help="$ per prediction (instead of throughput)")
    c.add_argument("--monthly-volume", type=float, help="predictions per month")
    c.add_argument("--utilization", type=float, default=1.0, help="share of paid time spent serving (0-1]")
    c.add_argument("--format", choices=["md", "json"], default="md")
    c.add_argument("--out", help="also write the report to this file")
    c.set_defaults(func=_cost)

    r = sub.add_parser("roi", help="first-year cost, annual benefit, ROI and payback from a YAML config",
                       description="Example config: see docs/economics.md. transferops roi --config roi.yaml "
                       "--format html --out roi.html")
    r.add_argument("--config", required=True, help="YAML (or JSON) with one_time, recurring_monthly, "
                   "benefit_monthly (or benefit)")
    r.add_argument("--format", choices=["md", "html", "json"], default="md")
    r.add_argument("--out", help="write the report here instead of printing it")
    r.set_defaults(func=_roi)


def _emit(text: str, out: str | None, *, also_print: bool = True) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")
    if also_print:
        print(text)


def _cost(args: argparse.Namespace) -> int:
    from transferops.economics.report import CostInputs, build_cost_report

    labels = args.labels
    if args.labels_from or args.target_metric is not None:
        labels = _labels_from_curve(args.labels_from, args.target_metric, labels)
    inp = CostInputs(
        runs=args.run, price_per_hour=args.price_per_hour, train_hours=args.train_hours, labels=labels,
        price_per_label=args.price_per_label, minutes_per_label=args.minutes_per_label,
        hourly_rate=args.hourly_rate, active_learning_examples=args.al_examples,
        active_learning_reduction=args.al_reduction, n_models=args.n_models, full_size_mb=args.full_size_mb,
        adapter_size_mb=args.adapter_size_mb, storage_price_gb_month=args.storage_price,
        throughput=args.throughput, serve_bench=args.serve_bench,
        cost_per_prediction=args.cost_per_prediction,
        monthly_volume=args.monthly_volume, utilization=args.utilization)
    rep = build_cost_report(inp)
    text = dumps(rep.to_dict()) if args.format == "json" else rep.to_markdown()
    _emit(text, args.out)
    return 0


def _labels_from_curve(run: str | None, target: float | None, labels: int | None) -> int:
    """Extra labels to buy for ``target``: learning-curve estimate minus the labels the run already has."""
    import sys

    from transferops.artifacts.model import read_manifest
    from transferops.errors import ConfigError
    from transferops.finetune.learning_curve import labels_needed

    if not run or target is None:
        raise ConfigError("--labels-from and --target-metric go together (e.g. --labels-from runs/news "
                          "--target-metric 0.9)")
    if labels is not None:
        raise ConfigError("--labels and --labels-from: give one (typed-in labels, or the learning-curve estimate)")
    lc = read_manifest(run).get("learning_curve")
    if not lc:
        raise ConfigError(f"--labels-from: {run} has no learning curve; run `transferops learning-curve --model "
                          f"{run}` first")
    est = labels_needed(lc["points"], target)
    if est["labels_needed"] is None:
        raise ConfigError(f"--target-metric {target}: {est['reason']}")
    extra = max(0, int(est["labels_needed"]) - int(est["n_measured"]))
    print(f"labels: {extra} more for {lc['metric']} {target} (learning curve of {run}: {est['reason']})",
          file=sys.stderr)
    return extra


def _roi(args: argparse.Namespace) -> int:
    from transferops.economics.roi import ROIConfig, compute_roi

    res = compute_roi(ROIConfig.from_file(args.config))
    text = {"json": lambda: dumps(res.to_dict()), "html": res.to_html, "md": res.to_markdown}[args.format]()
    _emit(text, args.out, also_print=not args.out)
    if args.out:
        print(f"ROI {res.roi:.0%}, payback {res.payback_months:.1f} months → {args.out}")
    return 0
