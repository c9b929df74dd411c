"""``EvaluationReport``: the plain-data result of an evaluation (no plotting here; see ``html.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from transferops._util import dumps, utcnow
from transferops.evaluate.gates import GateResult, failures, format_table


def _fmt(v: Any, nd: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


@dataclass
class EvaluationReport:
    """Everything one evaluation measured.

    >>> rep = transferops.evaluate.evaluate("runs/news")          # doctest: +SKIP
    >>> rep.metrics["macro_f1"], rep.ci["macro_f1"]               # doctest: +SKIP
    (0.962, (0.941, 0.979))
    >>> rep.per_class_df()                                        # doctest: +SKIP
    """

    model: dict[str, Any]
    data: dict[str, Any]
    task: str
    labels: list[str]
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    threshold: dict[str, Any] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    #: ``evaluate(robustness=True)``: clean vs perturbed metrics (see ``evaluate/robustness.py``).
    robustness: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=utcnow)

    # ------------------------------------------------------------------ verdicts
    @property
    def passed(self) -> bool:
        """True when every gate passed (or there were none)."""
        return not failures(self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return failures(self.gates)

    @property
    def headline_metric(self) -> str:
        return "micro_f1" if self.task == "multilabel" else "macro_f1"

    @property
    def headline(self) -> str:
        """One line: the headline metric with its CI, the gap to the baseline and the gate verdict."""
        k = self.headline_metric
        v = self.metrics.get(k, float("nan"))
        ci = self.ci.get(k)
        parts = [f"{k} {_fmt(v)}" + (f" [95% CI {ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")]
        b = (self.baseline.get("tfidf_logreg") or {}).get("metrics", {}).get(k)
        if b is not None:
            parts.append(f"TF-IDF baseline {b:.4f} ({v - b:+.4f})")
        if "ece" in self.metrics:
            parts.append(f"ECE {self.metrics['ece']:.3f}")
        if self.gates:
            bad = len(self.failed_gates)
            parts.append(f"gates {'FAILED ' + str(bad) if bad else 'passed'}/{len(self.gates)}")
        return " · ".join(parts)

    # ------------------------------------------------------------------ tables
    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "model": self.model, "data": self.data, "task": self.task,
                "labels": self.labels, "metrics": self.metrics,
                "ci": {k: list(v) for k, v in self.ci.items()}, "per_class": self.per_class,
                "confusion": self.confusion, "slices": self.slices, "baseline": self.baseline,
                "calibration": self.calibration, "threshold": self.threshold,
                "gates": [g.to_dict() for g in self.gates], "passed": self.passed,
                "warnings": self.warnings, "settings": self.settings,
                **({"robustness": self.robustness} if self.robustness else {})}

    def to_json(self, path: str | Path) -> Path:
        from transferops._util import write_json

        write_json(path, self.to_dict())
        return Path(path)

    def to_html(self, path: str | Path) -> Path:
        from transferops.evaluate.html import write_report

        return write_report(self, path)

    def metrics_df(self) -> pd.DataFrame:
        """Headline metrics with 95% CIs, next to each stored baseline's value."""
        rows = []
        for name, v in self.metrics.items():
            row: dict[str, Any] = {"metric": name, "model": v}
            lo, hi = self.ci.get(name, (float("nan"), float("nan")))
            row["ci_low"], row["ci_high"] = lo, hi
            for b, bd in self.baseline.items():
                row[b] = (bd.get("metrics") or {}).get(name, float("nan"))
            rows.append(row)
        return pd.DataFrame(rows)

    def per_class_df(self) -> pd.DataFrame:
        return pd.DataFrame(self.per_class)

    def slices_df(self) -> pd.DataFrame:
        cols = ["column", "value", "support", "accuracy", "macro_f1", "recall", "precision", "f1",
                "low_support"]
        return pd.DataFrame([{k: s.get(k) for k in cols} for s in self.slices], columns=cols)

    def confusion_df(self) -> pd.DataFrame:
        if self.task == "multilabel":
            return pd.DataFrame(self.confusion, index=self.labels, columns=["tn", "fp", "fn", "tp"])
        return pd.DataFrame(self.confusion, index=pd.Index(self.labels, name="true"),
                            columns=pd.Index(self.labels, name="predicted"))

    def gates_df(self) -> pd.DataFrame:
        return pd.DataFrame([g.to_dict() for g in self.gates])

    # ------------------------------------------------------------------ text
    def summary(self, *, max_slices: int = 8) -> str:
        """A readable plain-text summary for the terminal."""
        m, ci = self.metrics, self.ci
        base = self.baseline.get("tfidf_logreg", {}).get("metrics", {})
        lines = [f"evaluation of {self.model.get('name')} on {self.data.get('source')} "
                 f"({self.data.get('n')} rows, task {self.task}, {len(self.labels)} labels)"]
        keys = [k for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "balanced_accuracy",
                            "precision", "recall", "specificity", "subset_accuracy", "hamming_loss",
                            "roc_auc", "pr_auc", "log_loss", "brier", "ece") if k in m]
        lines.append(f"  {'metric':<18} {'model':>8}  {'95% CI':<17} {'baseline':>8}")
        for k in keys:
            c = f"[{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in ci else ""
            lines.append(f"  {k:<18} {_fmt(m[k]):>8}  {c:<17} {_fmt(base.get(k)):>8}")
        worst = sorted(self.per_class, key=lambda r: r["f1"])[:3]
        if worst:
            lines.append("  weakest classes: " + ", ".join(
                f"{r['label']} (F1 {r['f1']:.3f}, recall {r['recall']:.3f}, n={r['support']})"
                for r in worst))
        if self.slices:
            lines.append("  worst slices:")
            key = self.settings.get("slice_metric", "recall")
            shown = sorted(self.slices, key=lambda s: (s.get("low_support", False),
                                                       _sortable(s.get(key))))[:max_slices]
            for s in shown:
                flag = "  (low support)" if s.get("low_support") else ""
                lines.append(f"    {s['column']}={s['value']}: {key} {_fmt(s.get(key), 3)} "
                             f"accuracy {_fmt(s.get('accuracy'), 3)} n={s['support']}{flag}")
        cal = self.calibration
        if cal:
            t = cal.get("temperature", 1.0)
            lines.append(f"  calibration: ECE {_fmt(cal.get('ece_before'), 3)} at T=1"
                         + (f", {_fmt(cal.get('ece_after'), 3)} at T={t:.2f} ({cal.get('source')})"
                            if cal.get("ece_after") is not None else ""))
        rb = self.robustness
        if rb:
            h = rb["headline"]
            lines.append(f"  robustness (rate {rb['rate']}): clean {h} {_fmt(rb['clean'][h], 3)}; " + ", ".join(
                f"{r['name']} {_fmt(r[h], 3)} ({r['delta']:+.3f})" for r in rb["perturbations"]))
        if self.gates:
            bad = self.failed_gates
            lines.append(f"  gates: {len(self.gates) - len(bad)}/{len(self.gates)} passed"
                         + ("" if not bad else " — FAILED:"))
            if bad:
                lines += ["    " + ln for ln in format_table(bad).splitlines()]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"EvaluationReport(model={self.model.get('name')!r}, n={self.data.get('n')}, "
                f"{self.headline_metric}={self.metrics.get(self.headline_metric, float('nan')):.4f}, "
                f"passed={self.passed})")

    def json(self) -> str:
        return dumps(self.to_dict())


def _sortable(v: Any) -> float:
    return float("inf") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
