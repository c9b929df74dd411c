"""A/B tests: sample size, deterministic assignment, analysis (z-test, Welch, SRM, mSPRT).

Names are imported on first use, so the server's ``from transferops.abtest.assignment import
assign_arm`` does not pull in scipy and pandas.
"""

from __future__ import annotations

from transferops._lazy import lazy_exports

_EXPORTS = {
    "ABResult": "analysis", "AnalysisConfig": "analysis", "GuardrailConfig": "analysis",
    "analyze_experiment": "analysis", "srm_check": "analysis", "two_proportion_test": "analysis",
    "welch_test": "analysis",
    "assign_arm": "assignment", "parse_split": "assignment",
    "SampleSizeConfig": "sample_size", "SampleSizeResult": "sample_size", "achieved_power": "sample_size",
    "plan_sample_size": "sample_size", "power_curve": "sample_size", "source_formula_n": "sample_size",
    "SequentialResult": "sequential", "msprt": "sequential",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, {k: f"transferops.abtest.{v}" for k, v in _EXPORTS.items()})
