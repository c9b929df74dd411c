"""Return on investment: one-time and recurring costs against a monthly benefit.

Definitions (those of the source text's chatbot example, which they reproduce exactly):

* first-year cost = one-time + 12 × recurring per month  (``horizon_months`` replaces 12);
* benefit over the horizon = horizon × monthly benefit;
* ROI = (benefit − cost) / cost;
* payback months = first-year cost / monthly benefit (the text's "1.4 months" for the chatbot).

We also report ``breakeven_months`` = one-time cost / (monthly benefit − monthly recurring), the month
in which cumulative net savings first cover the up-front spend (1.03 for the chatbot): a stricter
reading of "payback" that the text does not use.

A config file (YAML or JSON)::

    name: Customer support chatbot
    horizon_months: 12
    one_time: {labeling: 15000, engineering: 48000, training_compute: 500}
    recurring_monthly: {inference: 200, maintenance: 2000}
    benefit_monthly: 64000        # or: benefit: {units_per_month: 20000, rate: 0.4, value_per_unit: 8}
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from transferops._validation import Interval, check_param
from transferops.errors import ConfigError

_DOLLARS = Interval(Real, 0.0, None)

REQUIRED_KEYS = ("one_time", "recurring_monthly")


def _money(name: str, v: Any) -> float:
    check_param(name, v, _DOLLARS, hint="dollars")
    return float(v)


@dataclass(frozen=True)
class Benefit:
    """Monthly benefit as ``units_per_month × rate × value_per_unit`` (the chatbot: 20,000 tickets ×
    40 % automated × $8)."""

    units_per_month: float
    value_per_unit: float
    rate: float = 1.0

    def __post_init__(self) -> None:
        _money("benefit.units_per_month", self.units_per_month)
        _money("benefit.value_per_unit", self.value_per_unit)
        check_param("benefit.rate", self.rate, Interval(Real, 0.0, 1.0), hint="a share")

    @property
    def monthly(self) -> float:
        return self.units_per_month * self.rate * self.value_per_unit


@dataclass(frozen=True)
class ROIConfig:
    """Costs and benefit of one model; validated on construction (errors name the key)."""

    one_time: Mapping[str, float]
    recurring_monthly: Mapping[str, float]
    benefit_monthly: float
    horizon_months: int = 12
    name: str = "model"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for section in ("one_time", "recurring_monthly"):
            items = getattr(self, section)
            if not isinstance(items, Mapping):
                raise ConfigError(f"{section}: must be a mapping of item name to dollars, e.g. "
                                  "{labeling: 15000}")
            for k, v in items.items():
                _money(f"{section}.{k}", v)
        _money("benefit_monthly", self.benefit_monthly)
        check_param("horizon_months", self.horizon_months, Interval(Integral, 1, None))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | Path | None = None) -> ROIConfig:
        """Build from plain data; cost items may be measured (see :func:`resolve_item`)."""
        if not isinstance(d, Mapping):
            raise ConfigError("roi config: the top level must be a mapping with one_time, recurring_monthly "
                              "and benefit_monthly (or benefit)")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if "benefit_monthly" not in d and "benefit" not in d:
            missing.append("benefit_monthly (or benefit)")
        if missing:
            raise ConfigError(f"roi config: missing key(s) {', '.join(missing)}")
        known = {"name", "horizon_months", "one_time", "recurring_monthly", "benefit_monthly", "benefit"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"roi config: unknown key(s) {unknown}; expected some of {sorted(known)}")
        for section in REQUIRED_KEYS:
            if d[section] is not None and not isinstance(d[section], Mapping):
                raise ConfigError(f"{section}: must be a mapping of item name to dollars, e.g. "
                                  "{labeling: 15000}")
        if "benefit_monthly" in d and "benefit" in d:
            raise ConfigError("benefit: give benefit_monthly or benefit, not both")
        if "benefit" in d:
            b = d["benefit"]
            if not isinstance(b, Mapping):
                raise ConfigError("benefit: must be a mapping {units_per_month, value_per_unit, rate}")
            for k in ("units_per_month", "value_per_unit"):
                if k not in b:
                    raise ConfigError(f"benefit.{k}: missing")
            extra = sorted(set(b) - {"units_per_month", "value_per_unit", "rate"})
            if extra:
                raise ConfigError(f"benefit: unknown key(s) {extra}")
            monthly = Benefit(**{k: b[k] for k in b}).monthly
        else:
            monthly = d["benefit_monthly"]
        notes: list[str] = []
        sections: dict[str, dict[str, float]] = {}
        for section in REQUIRED_KEYS:
            sections[section] = {}
            for k, v in dict(d[section] or {}).items():
                amount, note = resolve_item(f"{section}.{k}", v, recurring=section == "recurring_monthly",
                                            base_dir=base_dir)
                sections[section][str(k)] = amount
                if note:
                    notes.append(f"{section}.{k}: {note}")
        return cls(one_time=sections["one_time"], recurring_monthly=sections["recurring_monthly"],
                   benefit_monthly=float(_money("benefit_monthly", monthly)),
                   horizon_months=d.get("horizon_months", 12),
                   name=str(d.get("name", "model")), notes=notes)

    @classmethod
    def from_file(cls, path: str | Path) -> ROIConfig:
        import yaml

        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config: {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
        return cls.from_dict(data or {}, base_dir=p.parent)


_MEASURED_KEYS = {"run", "hours", "price_per_hour", "examples", "price_per_label", "minutes_per_label",
                  "hourly_rate", "cost_per_prediction", "throughput", "serve_bench", "monthly_volume",
                  "utilization"}


def _path(value: Any, base_dir: str | Path | None) -> Path:
    p = Path(str(value))
    if not p.exists() and base_dir is not None and (Path(base_dir) / p).exists():
        return Path(base_dir) / p
    return p


def resolve_item(name: str, value: Any, *, recurring: bool = False,
                 base_dir: str | Path | None = None) -> tuple[float, str | None]:
    """A cost item in dollars, plus a note saying where a measured figure came from.

    An item is a number, or a mapping that computes it from a measured run or from its inputs:

    * ``{run: runs/a, price_per_hour: 3.06}`` → recorded training hours × price (one-time);
    * ``{hours: 2, price_per_hour: 3.06}`` → training compute;
    * ``{examples: 10000, price_per_label: 1.5}`` (or ``minutes_per_label`` + ``hourly_rate``) → labeling;
    * ``{cost_per_prediction: 0.002, monthly_volume: 100000}`` or ``{throughput: 120 | serve_bench: FILE,
      price_per_hour: 0.8, monthly_volume: 100000}`` → inference per month (recurring).
    """
    from transferops.economics.cost import (
        find_serve_throughput,
        inference_cost,
        labeling_cost,
        measure_artifact,
        training_cost,
    )

    if not isinstance(value, Mapping):
        return _money(name, value), None
    unknown = sorted(set(value) - _MEASURED_KEYS)
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {unknown}; a computed item uses some of "
                          f"{sorted(_MEASURED_KEYS)}")
    v = dict(value)
    for k in ("hours", "price_per_hour", "examples", "price_per_label", "minutes_per_label", "hourly_rate",
              "cost_per_prediction", "throughput", "monthly_volume"):
        if k in v:
            _money(f"{name}.{k}", v[k])
    if "run" in v or "hours" in v:
        if "price_per_hour" not in v:
            raise ConfigError(f"{name}.price_per_hour: missing (needed to price training hours)")
        if "run" in v:
            m = measure_artifact(_path(v["run"], base_dir))
            return training_cost(m.train_hours, v["price_per_hour"]), (
                f"{m.train_seconds:.1f} s recorded in {m.path} × ${v['price_per_hour']}/h")
        return training_cost(v["hours"], v["price_per_hour"]), None
    if "examples" in v:
        lab = labeling_cost(int(v["examples"]), price_per_label=v.get("price_per_label"),
                            minutes_per_label=v.get("minutes_per_label"), hourly_rate=v.get("hourly_rate"))
        return lab.cost, None
    if "monthly_volume" in v:
        if not recurring:
            raise ConfigError(f"{name}: an inference cost per month belongs under recurring_monthly")
        note = None
        tp = v.get("throughput")
        if tp is None and "serve_bench" in v and "cost_per_prediction" not in v:
            bench = _path(v["serve_bench"], base_dir)
            tp, where = find_serve_throughput(bench)
            note = f"throughput {tp:,.1f}/s measured in {bench} ({where})"
        inf = inference_cost(throughput_per_second=tp, price_per_hour=v.get("price_per_hour"),
                             cost_per_prediction=v.get("cost_per_prediction"),
                             monthly_volume=v["monthly_volume"], utilization=float(v.get("utilization", 1.0)))
        assert inf.monthly_cost is not None
        return inf.monthly_cost, note
    raise ConfigError(f"{name}: a computed item needs run/hours + price_per_hour, examples + a price, or "
                      "monthly_volume + cost_per_prediction/throughput")


@dataclass(frozen=True)
class ROIResult:
    name: str
    horizon_months: int
    one_time: dict[str, float]
    recurring_monthly: dict[str, float]
    one_time_total: float
    recurring_monthly_total: float
    first_year_cost: float
    benefit_monthly: float
    annual_benefit: float
    net_benefit: float
    roi: float
    payback_months: float
    breakeven_months: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["roi_percent"] = self.roi * 100
        # "never pays back" is infinite; strict JSON has no Infinity, so it becomes null
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    def _rows(self) -> list[tuple[str, str]]:
        h = self.horizon_months
        rows = [(f"one-time: {k}", _usd(v)) for k, v in self.one_time.items()]
        rows += [(f"recurring/month: {k}", _usd(v)) for k, v in self.recurring_monthly.items()]
        rows += [
            ("one-time total", _usd(self.one_time_total)),
            ("recurring per month", _usd(self.recurring_monthly_total)),
            (f"cost over {h} months" if h != 12 else "first-year cost", _usd(self.first_year_cost)),
            ("benefit per month", _usd(self.benefit_monthly)),
            (f"benefit over {h} months" if h != 12 else "annual benefit", _usd(self.annual_benefit)),
            ("net benefit", _usd(self.net_benefit)),
            ("ROI", f"{self.roi:.0%}"),
            ("payback (cost / monthly benefit)", f"{self.payback_months:.1f} months"),
            ("break-even (one-time / net monthly)", _months(self.breakeven_months)),
        ]
        return rows

    def to_markdown(self) -> str:
        lines = [f"## ROI: {self.name}", "", "| item | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self._rows()]
        lines += ["", *[f"> {n}" for n in self.notes]] if self.notes else []
        return "\n".join(lines)

    def to_html(self) -> str:
        body = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{html.escape(v)}</td></tr>"
                       for k, v in self._rows())
        return ("<!doctype html><html><head><meta charset='utf-8'><title>ROI: "
                f"{html.escape(self.name)}</title></head><body><h2>ROI: {html.escape(self.name)}</h2>"
                f"<table border='1' cellpadding='4'><tr><th>item</th><th>value</th></tr>{body}</table>"
                "</body></html>")


def _usd(v: float) -> str:
    return f"${v:,.2f}" if abs(v) < 100 and v != int(v) else f"${v:,.0f}"


def _months(v: float) -> str:
    return "never (recurring cost ≥ benefit)" if math.isinf(v) else f"{v:.2f} months"


def compute_roi(config: ROIConfig | Mapping[str, Any]) -> ROIResult:
    """First-year cost, annual benefit, ROI and payback.

    >>> r = compute_roi({"one_time": {"labeling": 15000, "engineering": 48000, "compute": 500},
    ...                  "recurring_monthly": {"inference": 200, "maintenance": 2000},
    ...                  "benefit": {"units_per_month": 20000, "rate": 0.4, "value_per_unit": 8}})
    >>> r.first_year_cost, round(r.roi * 100), round(r.payback_months, 1)
    (89900.0, 754, 1.4)
    """
    cfg = config if isinstance(config, ROIConfig) else ROIConfig.from_dict(config)
    h = cfg.horizon_months
    one = float(sum(cfg.one_time.values()))
    rec = float(sum(cfg.recurring_monthly.values()))
    cost = one + h * rec
    benefit = h * cfg.benefit_monthly
    net_monthly = cfg.benefit_monthly - rec
    return ROIResult(
        name=cfg.name, horizon_months=h, one_time={k: float(v) for k, v in cfg.one_time.items()},
        recurring_monthly={k: float(v) for k, v in cfg.recurring_monthly.items()}, one_time_total=one,
        recurring_monthly_total=rec, first_year_cost=cost, benefit_monthly=cfg.benefit_monthly,
        annual_benefit=benefit, net_benefit=benefit - cost,
        roi=(benefit - cost) / cost if cost > 0 else math.inf,
        payback_months=cost / cfg.benefit_monthly if cfg.benefit_monthly > 0 else math.inf,
        breakeven_months=one / net_monthly if net_monthly > 0 else math.inf, notes=list(cfg.notes),
    )
