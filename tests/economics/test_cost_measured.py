"""Costs read from real artifacts (recorded training time, model/ size on disk) and the serve benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transferops._util import read_json
from transferops.economics import CostInputs, build_cost_report, measure_artifact, read_serve_throughput
from transferops.errors import ArtifactError, ConfigError, DataError


def _weights(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


def test_measure_full_and_lora(tiny_run: Path, tiny_lora_run: Path) -> None:
    full = measure_artifact(tiny_run)
    assert full.train_seconds == read_json(tiny_run / "transferops.json")["timings"]["train_seconds"]
    assert full.model_bytes == _weights(tiny_run / "model") and not full.is_adapter
    lora = measure_artifact(tiny_lora_run)
    assert lora.is_adapter and lora.strategy == "lora"
    assert lora.model_bytes == _weights(tiny_lora_run / "model")
    assert lora.model_bytes < full.model_bytes / 5  # an adapter is a small fraction of the full copy


def test_report_from_runs(tiny_run: Path, tiny_lora_run: Path) -> None:
    rep = build_cost_report(CostInputs(runs=[tiny_run, tiny_lora_run], price_per_hour=3.06, n_models=40,
                                       throughput=120.0, monthly_volume=10_000_000))
    full, lora = measure_artifact(tiny_run), measure_artifact(tiny_lora_run)
    assert rep.training[0]["cost"] == pytest.approx(full.train_seconds / 3600 * 3.06)
    assert rep.storage is not None
    assert rep.storage.full_total_bytes == 40 * full.model_bytes
    assert rep.storage.adapters_total_bytes == 40 * lora.model_bytes
    assert rep.inference is not None
    assert rep.inference.monthly_cost == pytest.approx(10_000_000 * 3.06 / (3600 * 120))
    md = rep.to_markdown()
    assert "Storage for 40 task models" in md and "lora" in md
    json.dumps(rep.to_dict())


def test_throughput_from_serve_benchmark(tmp_path: Path) -> None:
    bench = tmp_path / "serve_bench.json"
    bench.write_text(json.dumps({"systems": [
        {"system": "naive", "throughput_rps": 40.0},
        {"system": "transferops", "throughput_rps": 95.5, "p95_ms": 60},
        {"system": "in-process ceiling", "throughput_rps": 130.0}]}))
    assert read_serve_throughput(bench) == 95.5
    rep = build_cost_report(CostInputs(serve_bench=bench, price_per_hour=1.0, monthly_volume=1e6))
    assert rep.inference is not None and rep.inference.throughput_per_second == 95.5
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(DataError, match="throughput"):
        read_serve_throughput(empty)


def test_bad_inputs(tmp_path: Path, tiny_run: Path) -> None:
    with pytest.raises(ConfigError, match="price_per_hour"):
        CostInputs(price_per_hour=-1.0)
    with pytest.raises(ConfigError, match="price_per_label"):
        build_cost_report(CostInputs(labels=100, price_per_label=-0.05))
    with pytest.raises(ConfigError, match="price_per_label"):
        build_cost_report(CostInputs(labels=100))  # no price at all
    with pytest.raises(ConfigError, match="price_per_hour"):
        build_cost_report(CostInputs(throughput=10.0))
    with pytest.raises(ArtifactError, match=r"transferops\.json"):
        measure_artifact(tmp_path)


def test_throughput_from_the_serve_benchmark_layout(tmp_path: Path) -> None:
    # the layout benchmarks/serve_bench.py writes: system → "<text kind>_c<concurrency>" → figures
    from transferops.economics import find_serve_throughput

    bench = tmp_path / "serve_bench.json"
    bench.write_text(json.dumps({
        "transferops": {"rss_mb": 300.0, "short_c1": {"throughput_rps": 60.0, "p95_ms": 9.0},
                        "short_c8": {"throughput_rps": 210.0}, "long_c8": {"throughput_rps": 55.0}},
        "naive": {"short_c8": {"throughput_rps": 40.0}},
        "raw_ort": {"short": {"throughput_tps": 260.0}},
        "targets": [{"target": "x", "measured": "y", "met": True}]}))
    assert find_serve_throughput(bench) == (210.0, "/transferops/short_c8")
    assert find_serve_throughput(bench, "naive") == (40.0, "/naive/short_c8")
