"""Cost of a transfer-learned model: training compute, labeling, storage, inference.

Each function takes plain numbers (so it can be checked against the source text's worked figures);
:func:`measure_artifact` and :func:`read_serve_throughput` supply those numbers from a real run:
the manifest's recorded training time, the ``model/`` folder's size on disk (a full model or a LoRA
adapter), and the throughput the serve benchmark measured.

Sizes use decimal units (1 GB = 1000 MB), as the source text does ("40 x 440MB = 17.6GB").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path
from typing import Any

from transferops._util import dir_size, read_json
from transferops._validation import Interval, check_param
from transferops.constants import MANIFEST_NAME, MODEL_DIR
from transferops.errors import ArtifactError, ConfigError, DataError

MB = 1_000_000
GB = 1_000_000_000


_NON_NEGATIVE = [None, Interval(Real, 0.0, None)]
_POSITIVE = [None, Interval(Real, 0.0, None, closed="neither")]


def _non_negative(name: str, value: float | None) -> None:
    check_param(name, value, _NON_NEGATIVE)


def _positive(name: str, value: float | None) -> None:
    check_param(name, value, _POSITIVE)


# ----------------------------------------------------------------------------------------- compute

def training_cost(hours: float, price_per_hour: float) -> float:
    """Wall-clock hours × instance price.

    >>> [round(training_cost(h, 3.06), 2) for h in (2, 18, 1.5)]
    [6.12, 55.08, 4.59]
    """
    _non_negative("hours", hours)
    _non_negative("price_per_hour", price_per_hour)
    return float(hours) * float(price_per_hour)


# ---------------------------------------------------------------------------------------- labeling

@dataclass(frozen=True)
class LabelingCost:
    examples: int
    cost: float
    active_learning_examples: int | None
    active_learning_cost: float | None
    savings: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def labeling_cost(examples: int, *, price_per_label: float | None = None,
                  minutes_per_label: float | None = None, hourly_rate: float | None = None,
                  active_learning_examples: int | None = None,
                  active_learning_reduction: float | None = None) -> LabelingCost:
    """Annotation cost: ``examples × price_per_label`` or ``examples × minutes/60 × hourly_rate``.

    Active learning (label only the examples the model is unsure about) is given either as the number
    of examples it needs or as a reduction fraction (0.88 = 88 % fewer labels).

    >>> labeling_cost(10_000, minutes_per_label=15, hourly_rate=50, active_learning_examples=1_200).savings
    110000.0
    """
    _non_negative("examples", examples)
    _non_negative("price_per_label", price_per_label)
    _non_negative("minutes_per_label", minutes_per_label)
    _non_negative("hourly_rate", hourly_rate)
    _non_negative("active_learning_examples", active_learning_examples)
    if price_per_label is not None:
        unit = float(price_per_label)
    elif minutes_per_label is not None and hourly_rate is not None:
        unit = float(minutes_per_label) / 60.0 * float(hourly_rate)
    else:
        raise ConfigError("price_per_label: give a price per label, or minutes_per_label and hourly_rate")
    if active_learning_examples is not None and active_learning_reduction is not None:
        raise ConfigError("active_learning_reduction: give it or active_learning_examples, not both")
    if active_learning_reduction is not None:
        if not 0 <= active_learning_reduction < 1:
            raise ConfigError(f"active_learning_reduction: {active_learning_reduction!r} must be in [0, 1)")
        active_learning_examples = round(examples * (1 - active_learning_reduction))
    cost = examples * unit
    al_cost = active_learning_examples * unit if active_learning_examples is not None else None
    return LabelingCost(examples=int(examples), cost=float(cost),
                        active_learning_examples=active_learning_examples,
                        active_learning_cost=None if al_cost is None else float(al_cost),
                        savings=None if al_cost is None else float(cost - al_cost))


# ----------------------------------------------------------------------------------------- storage

@dataclass(frozen=True)
class StorageCost:
    """Storage of ``n_models`` task models as full copies vs adapters.

    ``reduction`` compares adapters alone with full copies (the source text's 99.5 %);
    ``reduction_with_base`` adds the one shared base model the adapters need at serving time.
    """

    n_models: int
    full_bytes_each: int
    adapter_bytes_each: int
    base_bytes: int
    full_total_bytes: int
    adapters_total_bytes: int
    adapters_with_base_bytes: int
    reduction: float
    reduction_with_base: float
    monthly_cost_full: float | None
    monthly_cost_adapters: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def storage_cost(n_models: int, full_bytes: float, adapter_bytes: float, *, base_bytes: float | None = None,
                 price_per_gb_month: float | None = None) -> StorageCost:
    """Bytes (and optionally $/month) to keep ``n_models`` full models vs ``n_models`` adapters.

    >>> s = storage_cost(40, 440 * MB, 2 * MB)
    >>> s.full_total_bytes / GB, s.adapters_total_bytes / MB, round(s.reduction * 100, 1)
    (17.6, 80.0, 99.5)
    """
    _positive("n_models", n_models)
    _positive("full_bytes", full_bytes)
    _non_negative("adapter_bytes", adapter_bytes)
    _non_negative("price_per_gb_month", price_per_gb_month)
    base = int(full_bytes if base_bytes is None else base_bytes)
    full_total = round(n_models * full_bytes)
    ad_total = round(n_models * adapter_bytes)
    price = price_per_gb_month
    return StorageCost(
        n_models=int(n_models), full_bytes_each=int(full_bytes), adapter_bytes_each=int(adapter_bytes),
        base_bytes=base, full_total_bytes=full_total, adapters_total_bytes=ad_total,
        adapters_with_base_bytes=ad_total + base, reduction=1 - ad_total / full_total,
        reduction_with_base=1 - (ad_total + base) / full_total,
        monthly_cost_full=None if price is None else full_total / GB * price,
        monthly_cost_adapters=None if price is None else (ad_total + base) / GB * price,
    )


# --------------------------------------------------------------------------------------- inference

@dataclass(frozen=True)
class InferenceCost:
    throughput_per_second: float | None
    price_per_hour: float | None
    utilization: float
    cost_per_prediction: float
    monthly_volume: float | None
    monthly_cost: float | None
    cost_per_1k: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def inference_cost(*, throughput_per_second: float | None = None, price_per_hour: float | None = None,
                   cost_per_prediction: float | None = None, monthly_volume: float | None = None,
                   utilization: float = 1.0) -> InferenceCost:
    """Cost per prediction from measured throughput and instance price, × monthly volume.

    ``utilization`` is the share of paid instance time spent serving (1.0 = saturated; a server idle
    half the time doubles the cost per prediction). Or give ``cost_per_prediction`` directly.

    >>> inference_cost(cost_per_prediction=0.02, monthly_volume=10_000_000).monthly_cost
    200000.0
    """
    _non_negative("monthly_volume", monthly_volume)
    if not 0 < utilization <= 1:
        raise ConfigError(f"utilization: {utilization!r} must be in (0, 1]")
    if cost_per_prediction is not None:
        _non_negative("cost_per_prediction", cost_per_prediction)
        cpp = float(cost_per_prediction)
    else:
        if throughput_per_second is None or price_per_hour is None:
            raise ConfigError("throughput_per_second: give measured throughput (predictions/s) and "
                              "price_per_hour, or cost_per_prediction")
        _positive("throughput_per_second", throughput_per_second)
        _non_negative("price_per_hour", price_per_hour)
        cpp = float(price_per_hour) / (3600.0 * float(throughput_per_second) * utilization)
    monthly = None if monthly_volume is None else cpp * float(monthly_volume)
    return InferenceCost(throughput_per_second=throughput_per_second, price_per_hour=price_per_hour,
                         utilization=utilization, cost_per_prediction=cpp, monthly_volume=monthly_volume,
                         monthly_cost=monthly, cost_per_1k=cpp * 1000)


# ------------------------------------------------------------------------------------ measurements

@dataclass(frozen=True)
class ArtifactMeasurement:
    """What a trained artifact says about its own cost."""

    path: str
    name: str
    strategy: str
    train_seconds: float
    model_bytes: int
    is_adapter: bool
    base_name: str | None
    base_bytes: int | None

    @property
    def train_hours(self) -> float:
        return self.train_seconds / 3600.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train_hours"] = self.train_hours
        return d


def measure_artifact(path: str | Path) -> ArtifactMeasurement:
    """Read ``timings.train_seconds`` from the manifest and measure ``model/`` on disk.

    For a LoRA artifact ``model/`` is the adapter folder; the shared base checkpoint is measured too
    when its folder is still where the manifest says.
    """
    p = Path(path)
    mf = p / MANIFEST_NAME
    if not mf.exists():
        raise ArtifactError(f"{p}: {MANIFEST_NAME} is missing; pass a folder written by `transferops train`")
    from transferops.artifacts.manifest import read_manifest

    m = read_manifest(p)
    try:
        secs = float(m["timings"]["train_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{mf}: timings.train_seconds is missing; cannot cost training from this run "
                        "(give --train-hours instead)") from exc
    mdir = p / MODEL_DIR
    if not mdir.is_dir():
        raise ArtifactError(f"{p}: the {MODEL_DIR}/ folder is missing")
    strategy = m.strategy_name or "unknown"
    is_adapter = m.is_adapter or (mdir / "adapter_config.json").exists()
    base = m.get("base") or {}
    base_path = base.get("path")
    base_bytes = None
    if base_path and Path(base_path).is_dir():
        base_bytes = sum(f.stat().st_size for f in Path(base_path).rglob("*")
                         if f.is_file() and f.suffix in (".safetensors", ".bin"))
    return ArtifactMeasurement(path=str(p), name=str(m.get("name", p.name)), strategy=strategy,
                               train_seconds=secs, model_bytes=_weights_bytes(mdir), is_adapter=is_adapter,
                               base_name=base.get("name"), base_bytes=base_bytes)


def _weights_bytes(folder: Path) -> int:
    """Bytes of the weight files (``*.safetensors``/``*.bin``); the whole folder if it has none.

    Tokenizer files are the same for every task model and stay with the base, so they are not
    counted against each stored model.
    """
    w = [f for f in folder.rglob("*") if f.is_file() and f.suffix in (".safetensors", ".bin")]
    return sum(f.stat().st_size for f in w) if w else dir_size(folder)


_THROUGHPUT_KEYS = ("throughput_per_second", "throughput_rps", "requests_per_second", "texts_per_second",
                    "predictions_per_second", "throughput", "rps")


def read_serve_throughput(path: str | Path, system: str | None = None) -> float:
    """Predictions per second from the serve benchmark's JSON (``benchmarks/results/serve_bench.json``).

    See :func:`find_serve_throughput` for which figure is taken.
    """
    return find_serve_throughput(path, system)[0]


def find_serve_throughput(path: str | Path, system: str | None = None) -> tuple[float, str]:
    """``(throughput, where)``: the best throughput reported for ``system`` (default: the transferops
    server, e.g. ``/transferops/short_c8``), trying the key names a benchmark may use in turn.

    The best figure is the saturated one (highest concurrency), which is what an instance that is
    kept busy delivers; ``--utilization`` scales it down for idle time.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no serve benchmark results; run benchmarks/serve_bench.py or pass "
                        "--throughput")
    found: list[tuple[str, float]] = []

    def walk(obj: Any, trail: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in _THROUGHPUT_KEYS and isinstance(v, (int, float)) and v > 0:
                    found.append((trail, float(v)))
                else:
                    walk(v, f"{trail}/{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                name = v.get("system") or v.get("name") if isinstance(v, dict) else None
                walk(v, f"{trail}/{name if name else i}")

    walk(read_json(p), "")
    if not found:
        raise DataError(f"{p}: no throughput figure found (looked for {', '.join(_THROUGHPUT_KEYS)}); "
                        "pass --throughput")
    want = (system or "transferops").lower()
    chosen = [(t, v) for t, v in found if want in t.lower()] or found
    trail, value = max(chosen, key=lambda tv: tv[1])
    return value, trail or "/"
