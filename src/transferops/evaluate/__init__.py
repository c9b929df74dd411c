"""Evaluation: per-class and slice metrics with bootstrap CIs, quality gates, calibration
(temperature scaling, ECE), decision thresholds, test-set discipline and a self-contained HTML report.

>>> from transferops.evaluate import evaluate
>>> rep = evaluate("runs/news", gates="gates.yaml", report="report.html")   # doctest: +SKIP
>>> rep.passed                                                               # doctest: +SKIP
True
"""

from transferops.evaluate.api import CalibrateResult, calibrate, evaluate
from transferops.evaluate.calibration import ece, fit_temperature, reliability
from transferops.evaluate.gates import GateResult, Gates, check_gates, load_gates
from transferops.evaluate.report import EvaluationReport
from transferops.evaluate.thresholds import ThresholdTarget, choose_threshold, parse_target

__all__ = [
    "CalibrateResult",
    "EvaluationReport",
    "GateResult",
    "Gates",
    "ThresholdTarget",
    "calibrate",
    "check_gates",
    "choose_threshold",
    "ece",
    "evaluate",
    "fit_temperature",
    "load_gates",
    "parse_target",
    "reliability",
]
