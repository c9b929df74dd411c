"""One cost report from measured runs and/or typed-in numbers (what ``transferops cost`` prints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferops.economics.cost import (
    GB,
    MB,
    ArtifactMeasurement,
    InferenceCost,
    LabelingCost,
    StorageCost,
    _non_negative,
    find_serve_throughput,
    inference_cost,
    labeling_cost,
    measure_artifact,
    storage_cost,
    training_cost,
)
from transferops.errors import ConfigError


@dataclass(frozen=True)
class CostInputs:
    """Everything ``transferops cost`` accepts; ``None`` means "not asked for"."""

    runs: Sequence[str | Path] = ()
    price_per_hour: float | None = None
    train_hours: float | None = None
    labels: int | None = None
    price_per_label: float | None = None
    minutes_per_label: float | None = None
    hourly_rate: float | None = None
    active_learning_examples: int | None = None
    active_learning_reduction: float | None = None
    n_models: int | None = None
    full_size_mb: float | None = None
    adapter_size_mb: float | None = None
    storage_price_gb_month: float | None = None
    throughput: float | None = None
    serve_bench: str | Path | None = None
    cost_per_prediction: float | None = None
    monthly_volume: float | None = None
    utilization: float = 1.0

    def __post_init__(self) -> None:
        for name in ("price_per_hour", "train_hours", "labels", "price_per_label", "minutes_per_label",
                     "hourly_rate", "active_learning_examples", "n_models", "full_size_mb", "adapter_size_mb",
                     "storage_price_gb_month", "throughput", "cost_per_prediction", "monthly_volume"):
            _non_negative(name, getattr(self, name))


@dataclass
class CostReport:
    training: list[dict[str, Any]] = field(default_factory=list)
    labeling: LabelingCost | None = None
    storage: StorageCost | None = None
    inference: InferenceCost | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"training": self.training,
                "labeling": self.labeling.to_dict() if self.labeling else None,
                "storage": self.storage.to_dict() if self.storage else None,
                "inference": self.inference.to_dict() if self.inference else None,
                "notes": self.notes}

    def to_markdown(self) -> str:
        out: list[str] = ["## Cost report"]
        if self.training:
            out += ["", "### Training compute", "",
                    "| run | strategy | hours | $/hour | cost | stored size |", "|---|---|---|---|---|---|"]
            for t in self.training:
                price = "n/a" if t["price_per_hour"] is None else f"${t['price_per_hour']:,.2f}"
                cost = "n/a" if t["cost"] is None else f"${t['cost']:,.4f}".rstrip("0").rstrip(".")
                size = "n/a" if t.get("model_bytes") is None else _size(t["model_bytes"])
                out.append(f"| {t['run']} | {t['strategy']} | {t['hours']:.4g} | {price} | {cost} | {size} |")
        if self.labeling:
            lb = self.labeling
            out += ["", "### Labeling", "", f"- {lb.examples:,} examples: ${lb.cost:,.2f}"]
            if lb.active_learning_cost is not None:
                out.append(f"- with active learning, {lb.active_learning_examples:,} examples: "
                           f"${lb.active_learning_cost:,.2f} (saves ${lb.savings:,.2f})")
        if self.storage:
            s = self.storage
            out += ["", f"### Storage for {s.n_models} task models", "",
                    f"- full copies: {s.n_models} × {_size(s.full_bytes_each)} = {_size(s.full_total_bytes)}",
                    f"- adapters: {s.n_models} × {_size(s.adapter_bytes_each)} = "
                    f"{_size(s.adapters_total_bytes)} "
                    f"({s.reduction:.1%} less)",
                    f"- adapters + one shared base ({_size(s.base_bytes)}): "
                    f"{_size(s.adapters_with_base_bytes)} "
                    f"({s.reduction_with_base:.1%} less)"]
            if s.monthly_cost_full is not None and s.monthly_cost_adapters is not None:
                out.append(f"- per month: ${s.monthly_cost_full:,.2f} full vs "
                           f"${s.monthly_cost_adapters:,.2f} adapters + base")
        if self.inference:
            i = self.inference
            out += ["", "### Inference", ""]
            if i.throughput_per_second is not None:
                out.append(f"- measured throughput {i.throughput_per_second:,.1f} predictions/s at "
                           f"${i.price_per_hour:,.2f}/hour (utilization {i.utilization:.0%})")
            out.append(f"- ${i.cost_per_prediction:.3g} per prediction (${i.cost_per_1k:.3g} per 1,000)")
            if i.monthly_cost is not None and i.monthly_volume is not None:
                out.append(f"- × {i.monthly_volume:,.0f} predictions/month = ${i.monthly_cost:,.2f}/month")
        if self.notes:
            out += ["", *[f"> {n}" for n in self.notes]]
        return "\n".join(out)


def _size(b: float) -> str:
    if b >= GB:
        return f"{b / GB:.2f} GB"
    if b >= MB:
        return f"{b / MB:.2f} MB"
    return f"{b / 1000:.1f} KB"


def build_cost_report(inp: CostInputs) -> CostReport:
    """Fill each section for which there are enough inputs; say in ``notes`` what was skipped."""
    rep = CostReport()
    measured: list[ArtifactMeasurement] = [measure_artifact(r) for r in inp.runs]
    for m in measured:
        rep.training.append({"run": m.name, "path": m.path, "strategy": m.strategy, "hours": m.train_hours,
                             "train_seconds": m.train_seconds, "price_per_hour": inp.price_per_hour,
                             "cost": None if inp.price_per_hour is None else
                             training_cost(m.train_hours, inp.price_per_hour),
                             "model_bytes": m.model_bytes, "is_adapter": m.is_adapter})
    if inp.train_hours is not None:
        if inp.price_per_hour is None:
            raise ConfigError("price_per_hour: needed to cost --train-hours (e.g. 3.06 for a p3.2xlarge)")
        rep.training.append({"run": "(input)", "path": None, "strategy": "-", "hours": inp.train_hours,
                             "train_seconds": inp.train_hours * 3600, "price_per_hour": inp.price_per_hour,
                             "cost": training_cost(inp.train_hours, inp.price_per_hour), "model_bytes": None,
                             "is_adapter": None})
    if measured and inp.price_per_hour is None:
        rep.notes.append("no --price-per-hour: training hours shown without a dollar cost")

    if inp.labels is not None:
        rep.labeling = labeling_cost(inp.labels, price_per_label=inp.price_per_label,
                                     minutes_per_label=inp.minutes_per_label, hourly_rate=inp.hourly_rate,
                                     active_learning_examples=inp.active_learning_examples,
                                     active_learning_reduction=inp.active_learning_reduction)

    full = inp.full_size_mb * MB if inp.full_size_mb is not None else None
    adapter = inp.adapter_size_mb * MB if inp.adapter_size_mb is not None else None
    base = None
    for m in measured:
        if m.is_adapter and adapter is None:
            adapter = m.model_bytes
            base = m.base_bytes
        elif not m.is_adapter and full is None:
            full = m.model_bytes
    if inp.n_models is not None:
        if full is None or adapter is None:
            rep.notes.append("storage skipped: needs a full and an adapter size (one full and one LoRA "
                             "--run, or --full-size-mb and --adapter-size-mb)")
        else:
            rep.storage = storage_cost(inp.n_models, full, adapter, base_bytes=base,
                                       price_per_gb_month=inp.storage_price_gb_month)

    throughput = inp.throughput
    if throughput is None and inp.cost_per_prediction is None and inp.price_per_hour is not None \
            and inp.serve_bench is not None and Path(inp.serve_bench).exists():
        throughput, where = find_serve_throughput(inp.serve_bench)
        rep.notes.append(f"throughput {throughput:,.1f}/s read from {inp.serve_bench} ({where})")
    if inp.cost_per_prediction is not None:
        rep.inference = inference_cost(cost_per_prediction=inp.cost_per_prediction,
                                       monthly_volume=inp.monthly_volume)
    elif throughput is not None:
        if inp.price_per_hour is None:
            raise ConfigError("price_per_hour: needed to turn throughput into a cost per prediction")
        rep.inference = inference_cost(throughput_per_second=throughput, price_per_hour=inp.price_per_hour,
                                       monthly_volume=inp.monthly_volume, utilization=inp.utilization)
    elif inp.monthly_volume is not None:
        rep.notes.append("inference skipped: give --throughput and --price-per-hour, --cost-per-prediction, "
                         "or run the serve benchmark (benchmarks/results/serve_bench.json)")
    return rep
