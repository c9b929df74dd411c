"""``transferops abtest plan`` and ``transferops abtest analyze``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transferops._util import dumps


def register(sub: Any) -> None:
    p = sub.add_parser("abtest", help="A/B tests: sample size (plan) and analysis of a logged experiment",
                       description="Plan an A/B test or analyse one the server logged.")
    asub = p.add_subparsers(dest="abtest_command", metavar="SUBCOMMAND")

    pl = asub.add_parser("plan", help="users per arm, total and days to detect an effect",
                         description="Example: transferops abtest plan --baseline-rate 0.10 --mde 0.02 "
                         "--relative --daily-traffic 20000 --plot power.png")
    pl.add_argument("--baseline-rate", type=float, required=True, help="control conversion rate, in (0, 1)")
    pl.add_argument("--mde", type=float, required=True,
                    help="minimum detectable effect: absolute difference in rate (0.002), or a share of the "
                    "baseline with --relative (0.02 = 2%% lift)")
    pl.add_argument("--relative", action="store_true", help="--mde is relative to the baseline rate")
    pl.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level (default 0.05)")
    pl.add_argument("--power", type=float, default=0.8, help="1 - beta (default 0.8)")
    pl.add_argument("--daily-traffic", type=float, help="users per day entering the test (all arms)")
    pl.add_argument("--plot", help="write the power curve (users per arm vs detectable effect) to this PNG")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_plan)

    an = asub.add_parser("analyze", help="per-arm results, tests, guardrails, SRM and a verdict",
                         description="Example: transferops abtest analyze --db sqlite:///runs/monitor.db "
                         "--experiment ranker-v2 --metric conversion")
    an.add_argument("--db", "--db-url", required=True, help="store URL the server logs to (sqlite:///x.db, postgresql://...)")
    an.add_argument("--experiment", required=True)
    an.add_argument("--metric", default="conversion", help="outcome metric to analyse (default conversion)")
    an.add_argument("--kind", choices=["auto", "binary", "continuous"], default="auto",
                    help="binary → two-proportion z-test; continuous → Welch t-test "
                    "(auto: 0/1 values → binary)")
    an.add_argument("--unit", choices=["auto", "key", "prediction"], default="auto",
                    help="unit of analysis: the assignment key (user) or each prediction")
    an.add_argument("--control", default="control", help="name of the control arm")
    an.add_argument("--split", help="planned split, arms in alphabetical order after control, e.g. 50/50 "
                    "(for the sample-ratio check; equal when omitted)")
    an.add_argument("--alpha", type=float, default=0.05)
    an.add_argument("--max-latency-increase", type=float, default=0.20,
                    help="guardrail: treatment p95 latency may exceed control's by this share")
    an.add_argument("--max-error-increase", type=float, default=0.01, help="guardrail: error-rate points")
    an.add_argument("--max-review-increase", type=float, default=0.05, help="guardrail: review-rate points")
    an.add_argument("--json", action="store_true")
    an.add_argument("--out", help="also write the report (markdown, or JSON with --json) to this file")
    an.set_defaults(func=_analyze)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _plan(args: argparse.Namespace) -> int:
    from transferops.abtest.sample_size import SampleSizeConfig, plan_sample_size, power_curve

    cfg = SampleSizeConfig(baseline_rate=args.baseline_rate, mde=args.mde, relative=args.relative,
                           alpha=args.alpha, power=args.power, daily_traffic=args.daily_traffic)
    res = plan_sample_size(cfg)
    if args.plot:
        import numpy as np

        from transferops.abtest.plots import plot_power_curve

        # Effects from a quarter to four times the planned one, kept inside valid rates.
        mdes = np.geomspace(abs(args.mde) / 4, abs(args.mde) * 4, 40) * np.sign(args.mde)
        top = 1 - args.baseline_rate - 1e-6
        bottom = -args.baseline_rate + 1e-6
        scale = args.baseline_rate if args.relative else 1.0
        mdes = mdes[(mdes * scale < top) & (mdes * scale > bottom)]
        mdes = np.sort(np.append(mdes, args.mde))  # the planned point lies exactly on the curve
        curve = power_curve(args.baseline_rate, mdes, relative=args.relative, alpha=args.alpha,
                            power=args.power)
        plot_power_curve(curve, args.plot, baseline_rate=args.baseline_rate, alpha=args.alpha,
                         power=args.power, relative=args.relative, mark=args.mde)
    if args.json:
        print(dumps(res.to_dict()))
    else:
        print(res.to_markdown())
        if args.plot:
            print(f"\npower curve: {args.plot}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from transferops.abtest.analysis import AnalysisConfig, GuardrailConfig, analyze_experiment
    from transferops.abtest.assignment import parse_split
    from transferops.abtest.store import load_experiment

    preds, outcomes = load_experiment(args.db, args.experiment)
    split = None
    if args.split:
        arms = sorted(preds["arm"].dropna().astype(str).unique())
        ordered = [args.control, *[a for a in arms if a != args.control]]
        split = dict(zip(ordered, parse_split(args.split, len(ordered)), strict=True))
    cfg = AnalysisConfig(metric=args.metric, kind=args.kind, unit=args.unit, control=args.control,
                         alpha=args.alpha, split=split,
                         guardrails=GuardrailConfig(latency_p95_increase=args.max_latency_increase,
                                                    error_rate_increase=args.max_error_increase,
                                                    review_rate_increase=args.max_review_increase))
    res = analyze_experiment(preds, outcomes, cfg, experiment=args.experiment)
    text = dumps(res.to_dict()) if args.json else res.to_markdown()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
