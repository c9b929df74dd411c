"""Gates parse into dataclasses, reject malformed input naming the key, and pass/fail as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from transferops.errors import ConfigError, GateFailedError
from transferops.evaluate.gates import (
    BaselineGate,
    ClassGate,
    MetricGate,
    SliceGate,
    check_gates,
    format_table,
    load_gates,
    raise_if_failed,
)

YAML = """
macro_f1: ">= 0.85"
log_loss: 0.7
recall: {class: fraud, min: 0.9}
slices: {column: history, metric: recall, min: 0.8, min_support: 20}
beats_baseline_by: 0.05
"""


def report(**over: Any) -> dict[str, Any]:
    """A report in ``EvaluationReport.to_dict()`` shape (the hiring case of the source text)."""
    d: dict[str, Any] = {
        "metrics": {"macro_f1": 0.87, "log_loss": 0.5, "accuracy": 0.9},
        "per_class": [{"label": "fraud", "precision": 0.5, "recall": 0.92, "f1": 0.64, "support": 50},
                      {"label": "ok", "precision": 0.99, "recall": 0.97, "f1": 0.98, "support": 950}],
        "slices": [{"column": "history", "value": "linear", "support": 300, "recall": 0.94},
                   {"column": "history", "value": "career_change", "support": 60, "recall": 0.61},
                   {"column": "history", "value": "gap", "support": 7, "recall": 0.2}],
        "baseline": {"tfidf_logreg": {"metrics": {"macro_f1": 0.71}}},
    }
    d.update(over)
    return d


def test_yaml_parses_into_dataclasses(tmp_path: Path) -> None:
    f = tmp_path / "gates.yaml"
    f.write_text(YAML)
    g = load_gates(f)
    assert g.metrics == [MetricGate("macro_f1", ">=", 0.85), MetricGate("log_loss", "<=", 0.7)]
    assert g.classes == [ClassGate("recall", "fraud", 0.9)]
    assert g.slices == [SliceGate("history", 0.8, "recall", 20)]
    assert g.baseline == BaselineGate(0.05)
    assert load_gates(YAML).to_dict() == g.to_dict()  # a YAML string works too
    assert load_gates(g) is g


def test_hiring_case_fails_on_the_career_change_slice_only() -> None:
    results = check_gates(report(), YAML)
    by_name = {r.name: r for r in results}
    failed = [r.name for r in results if not r.passed]
    assert failed == ["slice history=career_change: recall"]
    assert by_name["slice history=career_change: recall"].observed == pytest.approx(0.61)
    gap = by_name["slice history=gap: recall"]
    assert gap.passed and gap.skipped and "min_support" in gap.detail  # reported, not gated
    assert by_name["macro_f1 beats tfidf_logreg by >= 0.05"].observed == pytest.approx(0.16)
    with pytest.raises(GateFailedError, match="career_change"):
        raise_if_failed(results)
    assert "FAIL" in format_table(results, only_failed=True)


def test_retrained_model_passes_every_gate() -> None:
    slices = [{"column": "history", "value": "linear", "support": 300, "recall": 0.94},
              {"column": "history", "value": "career_change", "support": 60, "recall": 0.83}]
    results = check_gates(report(slices=slices), YAML)
    assert all(r.passed for r in results)
    raise_if_failed(results)  # does not raise


@pytest.mark.parametrize(("gates", "bad"), [
    ({"macro_f1": ">= 0.95"}, "macro_f1 >= 0.95"),
    ({"log_loss": "< 0.4"}, "log_loss < 0.4"),
    ({"recall": {"class": "fraud", "min": 0.95}}, "recall[fraud]"),
    ({"precision": {"class": "*", "min": 0.6}}, "precision[fraud]"),
    ({"beats_baseline_by": 0.2}, "macro_f1 beats tfidf_logreg by >= 0.2"),
    ({"recall": {"class": "frod", "min": 0.5}}, "recall[frod]"),
])
def test_each_gate_kind_fails_as_written(gates: dict[str, Any], bad: str) -> None:
    failed = [r.name for r in check_gates(report(), gates) if not r.passed]
    assert failed == [bad]


def test_gates_never_pass_by_default_when_data_is_missing() -> None:
    flat = {"macro_f1": 0.9}  # a flat metrics mapping (e.g. from export parity) has no slices or baseline
    results = check_gates(flat, {"macro_f1": 0.85, "slices": {"column": "lang", "min": 0.5},
                                 "beats_baseline_by": 0.01, "accuracy": 0.5})
    status = {r.name: r.passed for r in results}
    assert status["macro_f1 >= 0.85"] is True
    assert status["accuracy >= 0.5"] is False
    assert not any(v for k, v in status.items() if k.startswith("slice") or "beats" in k)


def test_aggregate_recall_on_a_multiclass_report_explains_itself() -> None:
    (r,) = check_gates(report(), {"recall": ">= 0.9"})
    assert not r.passed and "recall: {class: NAME" in r.detail


def test_min_max_mapping_and_percent() -> None:
    g = load_gates({"accuracy": {"min": 0.8, "max": 0.99}, "macro_f1": "85%"})
    assert [m.name for m in g.metrics] == ["accuracy >= 0.8", "accuracy <= 0.99", "macro_f1 >= 0.85"]


def test_extra_metrics_for_other_stages() -> None:
    g = load_gates({"onnx_agreement": ">= 0.999"}, extra_metrics=["onnx_agreement"])
    assert check_gates({"onnx_agreement": 1.0}, g)[0].passed


@pytest.mark.parametrize(("src", "message"), [
    ({"macro_f": ">= 0.8"}, "unknown key 'macro_f'. Did you mean 'macro_f1'"),
    ({"macro_f1": ">> 0.8"}, "key 'macro_f1': cannot read '>> 0.8'"),
    ({"macro_f1": True}, "key 'macro_f1'"),
    ({"recall": {"class": "fraud"}}, "key 'recall': give min"),
    ({"recall": {"clas": "fraud", "min": 0.9}}, "key 'recall.clas'"),
    ({"slices": {"column": "lang", "metric": "recall"}}, "key 'slices' needs 'min'"),
    ({"slices": {"column": "lang", "min": 0.8, "metrc": "recall"}},
     "key 'slices.metrc' is not understood. Did you mean 'metric'"),
    ({"slices": {"column": "lang", "min": 0.8, "metric": "auc"}}, "key 'slices.metric'"),
    ({"slices": {"column": "lang", "min": 0.8, "min_support": "many"}}, "key 'slices.min_support'"),
    ({"slices": {"column": "lang", "min": 1.8}}, "key 'slices.min'"),
    ({"beats_baseline_by": "a lot"}, "key 'beats_baseline_by'"),
    ({"beats_baseline_by": {"margin": 0.05, "metric": "acc"}}, "key 'beats_baseline_by.metric'"),
    (["macro_f1"], "expected a mapping"),
])
def test_malformed_gates_name_the_key(src: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_gates(src)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "gates.yaml"
    f.write_text('macro_f1: ">= 0.8"\nslices: {column: lang, min: [0.8}\n')
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2"):
        load_gates(f)
    with pytest.raises(ConfigError, match="not found"):
        load_gates(tmp_path / "missing.yaml")
