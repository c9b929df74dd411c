"""``transferops evaluate`` and ``transferops calibrate``."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="per-class, slice and calibration metrics; gates; HTML report",
                       description="Evaluate a trained model (default: on its own held-out test "
                                   "split). Exits 1 when a gate fails.")
    p.add_argument("--model", "-m", required=True, help="model folder (from transferops train)")
    p.add_argument("--data",
                   help="labeled CSV/JSONL/Parquet to evaluate on (default: the model's test split)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--label-columns", nargs="+", default=None, help="multi-label: several 0/1 columns")
    p.add_argument("--label-sep", default=None, help="multi-label: separator inside the label column")
    p.add_argument("--slice", action="append", default=[], dest="slices", metavar="COLUMN",
                   help="evaluate per value of COLUMN (repeatable); text-length quartiles are automatic")
    p.add_argument("--no-auto-slices", action="store_true", help="skip the automatic text-length slices")
    p.add_argument("--gates", help="YAML of conditions, e.g. macro_f1: \">= 0.85\"")
    p.add_argument("--report", help="write a self-contained HTML report here")
    p.add_argument("--json", dest="json_path", help="write the full result as JSON here")
    p.add_argument("--ignore-unknown-labels", action="store_true",
                   help="drop rows whose label the model never saw (default: error)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% CIs (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-support", type=int, default=20, help="flag slices smaller than this")
    p.add_argument("--robustness", nargs="?", const="all", default=None, metavar="NAMES",
                   help="also score the rows under text perturbations (typos, keyboard, leetspeak, masking); "
                        "optional comma-separated names (default: all)")
    p.add_argument("--robustness-rate", type=float, default=None,
                   help="share of words each perturbation touches (default 0.15)")
    p.set_defaults(func=run_evaluate)

    c = sub.add_parser("calibrate", help="fit temperature scaling and decision thresholds on validation",
                       description="Fit temperature scaling (and, for binary/multi-label models, decision "
                                   "thresholds for a target) on the validation split, store them in the "
                                   "model, and report the resulting operating point on the test split.")
    c.add_argument("--model", "-m", required=True, help="model folder")
    c.add_argument("--target", default=None,
                   help="recall>=0.95 | precision>=0.9 | max-f1 (default for binary/multi-label: max-f1)")
    c.add_argument("--positive", default=None, help="binary: the positive class (default: the second label)")
    c.add_argument("--no-temperature", action="store_true",
                   help="thresholds only; keep the stored temperature")
    c.add_argument("--no-test", action="store_true", help="do not report the operating point on test")
    c.add_argument("--json", dest="json_path", help="write the result as JSON here")
    c.set_defaults(func=run_calibrate)


def run_evaluate(args: argparse.Namespace) -> int:
    from transferops.tabular import cli as tabular_cli

    if tabular_cli.is_tabular_folder(args.model):  # issue 16: tables
        return tabular_cli.evaluate(args)
    from transferops._progress import say
    from transferops.evaluate.api import evaluate
    from transferops.evaluate.discipline import TestSetReuseWarning
    from transferops.evaluate.gates import raise_if_failed
    from transferops.evaluate.multitask import is_multitask

    if is_multitask(args.model):  # one report per task (evaluate/multitask.py)
        return run_evaluate_multitask(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TestSetReuseWarning)  # the summary prints it, once
        rep = evaluate(args.model, args.data, text_column=args.text_column, label_column=args.label_column,
                       label_columns=args.label_columns, label_sep=args.label_sep, slices=args.slices,
                       auto_slices=not args.no_auto_slices, gates=args.gates, report=args.report,
                       json_path=args.json_path, ignore_unknown_labels=args.ignore_unknown_labels,
                       n_bootstrap=args.bootstrap, seed=args.seed, min_support=args.min_support,
                       robustness=_robustness_arg(args.robustness), robustness_rate=args.robustness_rate)
    print(rep.summary())
    if args.report:
        say(f"report written to {Path(args.report).resolve()}")
        from transferops.vision import cli as image_cli

        if image_cli.is_image_model(args.model) and args.data is None:  # issue 15: worst-predicted images
            grid = image_cli.worst_grid(args.model, Path(args.report).with_suffix(".worst.png"))
            say(f"worst-predicted test images: {grid.resolve()}")
    if args.json_path:
        say(f"JSON written to {Path(args.json_path).resolve()}")
    if not rep.passed:  # the summary above already holds the failure table
        raise_if_failed(rep.gates)
    return 0


def run_evaluate_multitask(args: argparse.Namespace) -> int:
    from transferops._progress import say
    from transferops.evaluate.discipline import TestSetReuseWarning
    from transferops.evaluate.gates import raise_if_failed
    from transferops.evaluate.multitask import evaluate_multitask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TestSetReuseWarning)  # the summary prints it, once
        ev = evaluate_multitask(args.model, args.data, text_column=args.text_column, slices=args.slices,
                                auto_slices=not args.no_auto_slices, gates=args.gates, report=args.report,
                                json_path=args.json_path, ignore_unknown_labels=args.ignore_unknown_labels,
                                n_bootstrap=args.bootstrap, seed=args.seed, min_support=args.min_support,
                                robustness=_robustness_arg(args.robustness), robustness_rate=args.robustness_rate)
    print(ev.summary())
    if args.report:
        say(f"report written to {Path(args.report).resolve()}")
    if not ev.passed:
        raise_if_failed(ev.gates)
    return 0


def _robustness_arg(value: str | None) -> bool | list[str]:
    if value is None:
        return False
    if value == "all":
        return True
    return [v.strip() for v in value.split(",") if v.strip()]


def run_calibrate(args: argparse.Namespace) -> int:
    from transferops._util import write_json
    from transferops.evaluate.api import calibrate

    res = calibrate(args.model, target=args.target, positive=args.positive,
                    temperature=not args.no_temperature, report_test=not args.no_test)
    print(res.summary())
    if args.json_path:
        write_json(args.json_path, res.to_dict())
    return 0


__all__ = ["register", "run_calibrate", "run_evaluate"]
