"""Evaluation: per-class and slice metrics with bootstrap CIs, quality gates, calibration
(temperature scaling, ECE), decision thresholds, test-set discipline and a self-contained HTML report.

>>> from transferops.evaluate import evaluate
>>> rep = evaluate("runs/news", gates="gates.yaml", report="report.html")   # doctest: +SKIP
>>> rep.passed                                                               # doctest: +SKIP
True

Names are imported on first use: the CLI imports ``transferops.evaluate.cli`` to build its parser, and
that must not load scikit-learn and scipy (seconds on every command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transferops._lazy import lazy_exports

if TYPE_CHECKING:
    from transferops.evaluate.api import CalibrateResult, calibrate, evaluate
    from transferops.evaluate.calibration import ece, fit_temperature, reliability
    from transferops.evaluate.gates import GateResult, Gates, check_gates, load_gates
    from transferops.evaluate.report import EvaluationReport
    from transferops.evaluate.thresholds import ThresholdTarget, choose_threshold, parse_target

_EXPORTS = {
    **dict.fromkeys(("CalibrateResult", "calibrate", "evaluate"), "transferops.evaluate.api"),
    **dict.fromkeys(("ece", "fit_temperature", "reliability"), "transferops.evaluate.calibration"),
    **dict.fromkeys(("GateResult", "Gates", "check_gates", "load_gates"), "transferops.evaluate.gates"),
    "EvaluationReport": "transferops.evaluate.report",
    **dict.fromkeys(("ThresholdTarget", "choose_threshold", "parse_target"), "transferops.evaluate.thresholds"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
