"""`transferops cost` and `transferops roi` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from transferops.cli.main import main

ROI_YAML = """
name: Customer support chatbot
one_time: {labeling: 15000, engineering: 48000, training_compute: 500}
recurring_monthly: {inference: 200, maintenance: 2000}
benefit: {units_per_month: 20000, rate: 0.4, value_per_unit: 8}
"""


def test_roi_markdown_html_json(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "roi.yaml"
    cfg.write_text(ROI_YAML)
    assert main(["roi", "--config", str(cfg)]) == 0
    md = capsys.readouterr().out
    assert "$89,900" in md and "754%" in md and "1.4 months" in md
    html = tmp_path / "roi.html"
    assert main(["roi", "--config", str(cfg), "--format", "html", "--out", str(html)]) == 0
    assert "<table" in html.read_text() and "$768,000" in html.read_text()
    capsys.readouterr()
    assert main(["roi", "--config", str(cfg), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["first_year_cost"] == 89_900 and round(d["roi_percent"]) == 754


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.pop("one_time"), "one_time"),
    (lambda d: d.pop("recurring_monthly"), "recurring_monthly"),
    (lambda d: d.pop("benefit"), "benefit_monthly"),
    (lambda d: d["one_time"].update(labeling=-5), "one_time.labeling"),
    (lambda d: d["benefit"].pop("value_per_unit"), "benefit.value_per_unit"),
    (lambda d: d["benefit"].update(rate=1.5), "benefit.rate"),
    (lambda d: d.update(horizon_months=0), "horizon_months"),
    (lambda d: d.update(typo=1), "typo"),
])
def test_roi_bad_config_names_the_key(tmp_path: Path, capsys, mutate, field: str) -> None:
    d = yaml.safe_load(ROI_YAML)
    mutate(d)
    cfg = tmp_path / "roi.yaml"
    cfg.write_text(yaml.safe_dump(d))
    assert main(["roi", "--config", str(cfg)]) == 2
    assert field in capsys.readouterr().err


def test_cost_from_inputs(capsys) -> None:
    assert main(["cost", "--train-hours", "2", "--price-per-hour", "3.06", "--labels", "10000",
                 "--minutes-per-label", "15", "--hourly-rate", "50", "--al-examples", "1200",
                 "--n-models", "40", "--full-size-mb", "440", "--adapter-size-mb", "2",
                 "--cost-per-prediction", "0.02", "--monthly-volume", "10000000", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["training"][0]["cost"] == pytest.approx(6.12)
    assert d["labeling"]["savings"] == pytest.approx(110_000)
    assert round(d["storage"]["reduction"] * 100, 1) == 99.5
    assert d["inference"]["monthly_cost"] == pytest.approx(200_000)


def test_cost_from_runs_markdown(tiny_run: Path, tiny_lora_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cost.md"
    assert main(["cost", "--run", str(tiny_run), "--run", str(tiny_lora_run), "--price-per-hour", "3.06",
                 "--n-models", "40", "--throughput", "100", "--monthly-volume", "1000000",
                 "--serve-bench", str(tmp_path / "none.json"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Training compute" in text and "Storage for 40 task models" in text and "per prediction" in text
    capsys.readouterr()


def test_cost_negative_price_exits_2(capsys) -> None:
    assert main(["cost", "--train-hours", "2", "--price-per-hour", "-3"]) == 2
    assert "price_per_hour" in capsys.readouterr().err


def test_roi_items_from_a_measured_run_and_the_serve_benchmark(tiny_run: Path, tmp_path: Path,
                                                               capsys) -> None:
    from transferops.economics import measure_artifact, read_serve_throughput

    bench = tmp_path / "serve_bench.json"
    bench.write_text(json.dumps({"transferops": {"throughput_rps": 80.0}}))
    cfg = tmp_path / "roi.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "measured",
        "one_time": {"training_compute": {"run": str(tiny_run), "price_per_hour": 3.06},
                     "labeling": {"examples": 2000, "price_per_label": 0.05}, "engineering": 10_000},
        "recurring_monthly": {"inference": {"serve_bench": "serve_bench.json", "price_per_hour": 0.8,
                                            "monthly_volume": 1_000_000}},
        "benefit_monthly": 5_000}))
    assert main(["roi", "--config", str(cfg), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    hours = measure_artifact(tiny_run).train_hours
    assert d["one_time"]["training_compute"] == pytest.approx(hours * 3.06)
    assert d["one_time"]["labeling"] == pytest.approx(100.0)
    assert read_serve_throughput(bench) == 80.0
    assert d["recurring_monthly"]["inference"] == pytest.approx(1_000_000 * 0.8 / (3600 * 80))
    assert any("recorded in" in n for n in d["notes"]) and any("serve_bench.json" in n for n in d["notes"])


def test_roi_never_pays_back_is_null_in_json(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "roi.yaml"
    cfg.write_text(yaml.safe_dump({"one_time": {"x": 1000}, "recurring_monthly": {"y": 500},
                                   "benefit_monthly": 400}))
    assert main(["roi", "--config", str(cfg), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["breakeven_months"] is None and d["roi"] < 0
    cfg.write_text(yaml.safe_dump({"one_time": {"x": {"hours": 2}}, "recurring_monthly": {},
                                   "benefit_monthly": 400}))
    assert main(["roi", "--config", str(cfg)]) == 2
    assert "one_time.x.price_per_hour" in capsys.readouterr().err
