"""Quality gates: a YAML of conditions parsed into dataclasses and checked against a report.

.. code-block:: yaml

    macro_f1: ">= 0.85"                  # any aggregate metric: ">= x", "> x", "<= x", "< x", or a number
    log_loss: "<= 0.6"                   # a bare number means >= (or <= for losses, ECE, Brier)
    recall: {class: fraud, min: 0.9}     # per-class precision / recall / f1 (class: "*" = every class)
    slices: {column: condition, metric: recall, min: 0.8, min_support: 20}   # or a list of these
    beats_baseline_by: 0.05              # headline metric minus the TF-IDF baseline's (or a mapping)

>>> gates = load_gates({"macro_f1": ">= 0.85", "beats_baseline_by": 0.05})
>>> [g.name for g in gates.all()]
['macro_f1 >= 0.85', 'macro_f1 beats tfidf_logreg by >= 0.05']

Reusable outside evaluation: ``check_gates`` accepts an :class:`EvaluationReport`, its ``to_dict()``
or a flat ``{metric: value}`` mapping (gates that need per-class/slice/baseline data then fail,
saying what was missing — a gate never passes by default).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from transferops.errors import ConfigError, GateFailedError

Op = Literal[">=", ">", "<=", "<"]
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_COND = re.compile(r"^\s*(>=|>|<=|<|=>|=<)?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(%?)\s*$")

#: Aggregate metrics a gate may name (see :mod:`transferops.evaluate.metrics`).
METRICS: tuple[str, ...] = (
    "accuracy", "macro_f1", "micro_f1", "weighted_f1", "balanced_accuracy", "precision", "recall", "f1",
    "specificity", "roc_auc", "pr_auc", "log_loss", "brier", "ece", "subset_accuracy", "hamming_loss",
    "micro_precision", "micro_recall",
)
CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1")
SLICE_METRICS: tuple[str, ...] = ("recall", "precision", "f1", "accuracy", "macro_f1")
SPECIAL_KEYS: tuple[str, ...] = ("slices", "beats_baseline_by")


def _lower_is_better(metric: str) -> bool:
    from transferops.evaluate.metrics import LOWER_IS_BETTER

    return metric in LOWER_IS_BETTER


def _num(key: str, v: Any, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"gates: key '{key}': expected a number, got {type(v).__name__} {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"gates: key '{key}': {v!r} is out of range [{lo}, {hi}]")
    return float(v)


def _suggest(key: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(names)}."


def _check_keys(where: str, d: Mapping[str, Any], allowed: tuple[str, ...], required: tuple[str, ...] = ()
                ) -> None:
    for k in d:
        if k not in allowed:
            raise ConfigError(f"gates: key '{where}.{k}' is not understood.{_suggest(str(k), allowed)}")
    for k in required:
        if k not in d:
            raise ConfigError(f"gates: key '{where}' needs '{k}' (e.g. {where}: {{{k}: ...}})")


def parse_condition(key: str, value: Any) -> tuple[Op, float]:
    """``">= 0.85"`` → (">=", 0.85); a bare number means >= (<= for lower-is-better metrics); "85%" → 0.85."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("<=" if _lower_is_better(key) else ">="), float(value)
    if isinstance(value, str):
        m = _COND.match(value)
        if m:
            op = {"=>": ">=", "=<": "<="}.get(m.group(1) or "", m.group(1) or "")
            num = float(m.group(2)) / (100.0 if m.group(3) else 1.0)
            return (op or ("<=" if _lower_is_better(key) else ">=")), num  # type: ignore[return-value]
    raise ConfigError(f"gates: key '{key}': cannot read {value!r} as a condition; write it like "
                      f"{key}: \">= 0.85\" (operators >=, >, <=, <)")


@dataclass(frozen=True)
class GateResult:
    """One checked condition: what was required, what was observed, and whether it passed."""

    name: str
    kind: Literal["metric", "class", "slice", "baseline"]
    passed: bool
    observed: float | None
    required: str
    detail: str = ""
    skipped: bool = False  # reported, not gated (e.g. a slice below min_support)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result(name: str, kind: Any, observed: float | None, op: str, threshold: float, detail: str = ""
            ) -> GateResult:
    ok = observed is not None and not math.isnan(observed) and bool(_OPS[op](observed, threshold))
    if observed is None or math.isnan(observed):
        detail = detail or "metric not available on this data"
    return GateResult(name, kind, ok, observed, f"{op} {threshold:g}", detail)


@dataclass(frozen=True)
class MetricGate:
    """An aggregate metric condition, e.g. ``macro_f1 >= 0.85``."""

    metric: str
    op: Op
    value: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"gates: key '{self.metric}': operator {self.op!r} is not one of >=, >, <=, <")

    @property
    def name(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def check(self, view: dict[str, Any]) -> list[GateResult]:
        v = view["metrics"].get(self.metric)
        missing = f"'{self.metric}' is not in the report"
        if v is None and self.metric in CLASS_METRICS:
            missing += (f" (aggregate {self.metric} exists for binary models only; gate one class with "
                        f"{self.metric}: {{class: NAME, min: X}}, or use macro_f1 / balanced_accuracy)")
        return [_result(self.name, "metric", None if v is None else float(v), self.op, self.value,
                        "" if v is not None else missing)]


@dataclass(frozen=True)
class ClassGate:
    """A per-class condition: ``recall`` of class ``fraud`` >= 0.9 (``cls="*"``: every class)."""

    metric: Literal["precision", "recall", "f1"]
    cls: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in CLASS_METRICS:
            raise ConfigError(f"gates: per-class metric {self.metric!r} is not one of {CLASS_METRICS}")
        if self.min is None and self.max is None:
            raise ConfigError(f"gates: key '{self.metric}': give min (or max), e.g. "
                              f"{self.metric}: {{class: {self.cls}, min: 0.9}}")

    @property
    def name(self) -> str:
        return f"{self.metric}[{self.cls}]"

    def check(self, view: dict[str, Any]) -> list[GateResult]:
        rows = {str(r["label"]): r for r in view.get("per_class") or []}
        if not rows:
            return [GateResult(self.name, "class", False, None, self._req(),
                               "no per-class metrics in the report")]
        targets = list(rows) if self.cls == "*" else [self.cls]
        out = []
        for c in targets:
            if c not in rows:
                out.append(GateResult(f"{self.metric}[{c}]", "class", False, None, self._req(),
                                      f"class {c!r} is not one of the model's labels ({', '.join(rows)})"))
                continue
            out.extend(self._check_value(f"{self.metric}[{c}]", float(rows[c][self.metric])))
        return out

    def _req(self) -> str:
        return " and ".join(p for p in (f">= {self.min:g}" if self.min is not None else "",
                                        f"<= {self.max:g}" if self.max is not None else "") if p)

    def _check_value(self, name: str, v: float) -> list[GateResult]:
        ok = not math.isnan(v) and (self.min is None or v >= self.min) and (self.max is None or v <= self.max)
        return [GateResult(name, "class", ok, v, self._req())]


@dataclass(frozen=True)
class SliceGate:
    """Every slice of ``column`` (or the one named ``value``) must reach ``min`` on ``metric``.

    Slices with fewer than ``min_support`` rows are reported but not gated (too few to judge).
    ``cls`` gates one class's recall inside each slice instead of the slice-level metric.
    """

    column: str
    min: float
    metric: str = "recall"
    min_support: int = 20
    cls: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in SLICE_METRICS:
            raise ConfigError(f"gates: key 'slices.metric': {self.metric!r} is not one of "
                              f"{', '.join(SLICE_METRICS)}")
        if self.cls is not None and self.metric != "recall":
            raise ConfigError("gates: key 'slices.class': per-class slice gates support metric: recall only")
        if self.min_support < 0:
            raise ConfigError(f"gates: key 'slices.min_support': must be >= 0, got {self.min_support}")

    @property
    def name(self) -> str:
        what = f"recall[{self.cls}]" if self.cls else self.metric
        return f"slice {self.column}{'=' + self.value if self.value else ''}: {what} >= {self.min:g}"

    def check(self, view: dict[str, Any]) -> list[GateResult]:
        rows = [s for s in view.get("slices") or [] if s.get("column") == self.column
                and (self.value is None or str(s.get("value")) == str(self.value))]
        if not rows:
            return [GateResult(self.name, "slice", False, None, f">= {self.min:g}",
                               f"no slices of column '{self.column}' in the report (evaluate with "
                               f"--slice {self.column})")]
        out = []
        for s in rows:
            what = f"recall[{self.cls}]" if self.cls else self.metric
            name = f"slice {self.column}={s['value']}: {what}"
            support = int(s.get("support", 0))
            if self.cls is not None:
                support = int((s.get("class_support") or {}).get(self.cls, 0))
                v = (s.get("class_recall") or {}).get(self.cls)
            else:
                v = s.get(self.metric)
            if support < self.min_support:
                out.append(GateResult(name, "slice", True, None if v is None else float(v),
                                      f">= {self.min:g}",
                                      f"not gated: support {support} < min_support {self.min_support}",
                                      skipped=True))
                continue
            out.append(_result(name, "slice", None if v is None else float(v), ">=", self.min,
                               f"support {support}"))
        return out


@dataclass(frozen=True)
class BaselineGate:
    """The model's ``metric`` must beat the stored baseline's by at least ``margin`` (Mistake 1)."""

    margin: float
    metric: str = "macro_f1"
    baseline: str = "tfidf_logreg"

    @property
    def name(self) -> str:
        return f"{self.metric} beats {self.baseline} by >= {self.margin:g}"

    def check(self, view: dict[str, Any]) -> list[GateResult]:
        base = (view.get("baseline") or {}).get(self.baseline)
        bm = (base or {}).get("metrics", base) if isinstance(base, Mapping) else None
        model_v = view["metrics"].get(self.metric)
        if not bm or bm.get(self.metric) is None or model_v is None:
            return [GateResult(self.name, "baseline", False, None, f">= {self.margin:g}",
                               f"no '{self.baseline}' baseline {self.metric} recorded for this model")]
        gap = float(model_v) - float(bm[self.metric])
        sign = -1.0 if _lower_is_better(self.metric) else 1.0
        return [_result(self.name, "baseline", sign * gap, ">=", self.margin,
                        f"model {float(model_v):.4f} vs baseline {float(bm[self.metric]):.4f}")]


@dataclass
class Gates:
    """A parsed gate file."""

    metrics: list[MetricGate] = field(default_factory=list)
    classes: list[ClassGate] = field(default_factory=list)
    slices: list[SliceGate] = field(default_factory=list)
    baseline: BaselineGate | None = None

    def all(self) -> list[MetricGate | ClassGate | SliceGate | BaselineGate]:
        out: list[Any] = [*self.metrics, *self.classes, *self.slices]
        return out + ([self.baseline] if self.baseline else [])

    def __len__(self) -> int:
        return len(self.all())

    def slice_columns(self) -> list[str]:
        return list(dict.fromkeys(s.column for s in self.slices))

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": [asdict(g) for g in self.metrics], "classes": [asdict(g) for g in self.classes],
                "slices": [asdict(g) for g in self.slices],
                "baseline": asdict(self.baseline) if self.baseline else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, extra_metrics: Iterable[str] = ()) -> Gates:
        if not isinstance(d, Mapping):
            raise ConfigError(f"gates: expected a mapping of conditions (e.g. macro_f1: \">= 0.85\"), "
                              f"got {type(d).__name__}")
        metrics_ok = (*METRICS, *extra_metrics)
        g = cls()
        for key, val in d.items():
            key = str(key)
            if key == "slices":
                items = val if isinstance(val, list) else [val]
                g.slices.extend(_slice_gate(i, item) for i, item in enumerate(items))
            elif key == "beats_baseline_by":
                g.baseline = _baseline_gate(val)
            elif key in CLASS_METRICS and isinstance(val, (Mapping, list)):
                items = val if isinstance(val, list) else [val]
                g.classes.extend(_class_gate(key, item) for item in items)
            elif key in metrics_ok:
                if isinstance(val, Mapping):
                    _check_keys(key, val, ("min", "max"))
                    if "min" in val:
                        g.metrics.append(MetricGate(key, ">=", _num(f"{key}.min", val["min"])))
                    if "max" in val:
                        g.metrics.append(MetricGate(key, "<=", _num(f"{key}.max", val["max"])))
                    if not val:
                        raise ConfigError(f"gates: key '{key}': give min or max")
                else:
                    op, num = parse_condition(key, val)
                    g.metrics.append(MetricGate(key, op, num))
            else:
                raise ConfigError(f"gates: unknown key '{key}'.{_suggest(key, (*metrics_ok, *SPECIAL_KEYS))}")
        return g


def _class_gate(metric: str, item: Any) -> ClassGate:
    if not isinstance(item, Mapping):
        raise ConfigError(f"gates: key '{metric}': expected {{class: NAME, min: 0.9}}, got {item!r}")
    _check_keys(metric, item, ("class", "min", "max"), ("class",))
    return ClassGate(metric, str(item["class"]),  # type: ignore[arg-type]
                     _num(f"{metric}.min", item["min"], lo=0, hi=1) if "min" in item else None,
                     _num(f"{metric}.max", item["max"], lo=0, hi=1) if "max" in item else None)


def _slice_gate(i: int, item: Any) -> SliceGate:
    if not isinstance(item, Mapping):
        raise ConfigError(f"gates: key 'slices[{i}]': expected {{column: NAME, metric: recall, min: 0.8}}, "
                          f"got {item!r}")
    _check_keys("slices", item, ("column", "metric", "min", "min_support", "class", "value"),
                ("column", "min"))
    ms = item.get("min_support", 20)
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise ConfigError(f"gates: key 'slices.min_support': expected an integer, got {ms!r}")
    return SliceGate(column=str(item["column"]), min=_num("slices.min", item["min"], lo=0, hi=1),
                     metric=str(item.get("metric", "recall")), min_support=ms,
                     cls=None if item.get("class") is None else str(item["class"]),
                     value=None if item.get("value") is None else str(item["value"]))


def _baseline_gate(val: Any) -> BaselineGate:
    if isinstance(val, Mapping):
        _check_keys("beats_baseline_by", val, ("margin", "metric", "baseline"), ("margin",))
        metric = str(val.get("metric", "macro_f1"))
        if metric not in METRICS:
            raise ConfigError(f"gates: key 'beats_baseline_by.metric': {metric!r} is not a metric."
                              f"{_suggest(metric, METRICS)}")
        return BaselineGate(_num("beats_baseline_by.margin", val["margin"], lo=-1, hi=1), metric,
                            str(val.get("baseline", "tfidf_logreg")))
    return BaselineGate(_num("beats_baseline_by", val, lo=-1, hi=1))


def load_gates(source: str | Path | Mapping[str, Any] | Gates | None, *,
               extra_metrics: Iterable[str] = ()) -> Gates:
    """Gates from a YAML file path, a YAML string, a mapping, or an existing :class:`Gates` (returned as is).

    ``extra_metrics`` lets other stages (export parity, promotion) gate on metric names of their own.
    """
    if source is None:
        return Gates()
    if isinstance(source, Gates):
        return source
    if isinstance(source, Mapping) or not isinstance(source, (str, Path)):
        return Gates.from_dict(source, extra_metrics=extra_metrics)
    import yaml

    text: str
    where = str(source)
    p = Path(source) if isinstance(source, Path) or "\n" not in str(source) else None
    if p is not None and p.exists():
        text = p.read_text(encoding="utf-8")
    elif isinstance(source, Path) or (p is not None and str(source).endswith((".yaml", ".yml", ".json"))):
        raise ConfigError(f"gates: file {source} not found")
    else:
        text, where = str(source), "<string>"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"gates: {where} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return Gates()
    return Gates.from_dict(data, extra_metrics=extra_metrics)


def _view(report: Any) -> dict[str, Any]:
    d = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    if "metrics" in d and isinstance(d["metrics"], Mapping):
        return {"metrics": dict(d["metrics"]), "per_class": d.get("per_class"), "slices": d.get("slices"),
                "baseline": d.get("baseline")}
    return {"metrics": d, "per_class": None, "slices": None, "baseline": None}


def check_gates(report: Any, gates: Gates | Mapping[str, Any] | str | Path | None) -> list[GateResult]:
    """Check every gate against a report (EvaluationReport, its dict, or a flat metrics mapping)."""
    g = load_gates(gates)
    view = _view(report)
    out: list[GateResult] = []
    for gate in g.all():
        out.extend(gate.check(view))
    return out


def failures(results: Iterable[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]


def format_table(results: Iterable[GateResult], *, only_failed: bool = False) -> str:
    """A fixed-width table of gate results (the CLI prints the failures)."""
    rows = [r for r in results if (not only_failed or not r.passed)]
    if not rows:
        return "(no gates)"
    head = ("gate", "observed", "required", "status", "detail")
    body = [(r.name, "—" if r.observed is None else f"{r.observed:.4f}", r.required,
             "skip" if r.skipped else ("PASS" if r.passed else "FAIL"), r.detail) for r in rows]
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in body]
    return "\n".join(line.rstrip() for line in lines)


def raise_if_failed(results: list[GateResult]) -> None:
    """Raise :class:`GateFailedError` listing the failed gates (the CLI turns it into exit code 1)."""
    bad = failures(results)
    if bad:
        names = "; ".join(f"{r.name} (observed {'n/a' if r.observed is None else f'{r.observed:.4f}'}, "
                          f"required {r.required})" for r in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise GateFailedError(f"{len(bad)} gate(s) failed: {names}{more}")


__all__ = ["BaselineGate", "ClassGate", "GateResult", "Gates", "MetricGate", "SliceGate", "check_gates",
           "failures", "format_table", "load_gates", "parse_condition", "raise_if_failed"]
