"""``transferops evaluate`` / ``calibrate`` exit codes and output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from transferops.artifacts import read_manifest
from transferops.cli.main import main


def test_evaluate_cli_passes_and_writes_json_and_html(run_copy: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    m = read_manifest(run_copy)["metrics"]["test"]["macro_f1"]
    gates = tmp_path / "gates.yaml"
    gates.write_text(f'macro_f1: ">= {m - 0.01:.4f}"\n')
    rc = main(["-q", "evaluate", "--model", str(run_copy), "--gates", str(gates), "--json",
               str(tmp_path / "r.json"), "--report", str(tmp_path / "r.html"), "--bootstrap", "50"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "macro_f1" in out and "gates: 1/1 passed" in out
    assert (tmp_path / "r.json").stat().st_size > 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_evaluate_cli_exits_1_with_a_failure_table(run_copy: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text('macro_f1: ">= 0.99"\nbeats_baseline_by: 0.05\n')
    rc = main(["-q", "evaluate", "--model", str(run_copy), "--gates", str(gates), "--bootstrap", "0"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "FAIL" in cap.out and "macro_f1 >= 0.99" in cap.out and "beats tfidf_logreg" in cap.out
    assert "gate failed: 2 gate(s) failed" in cap.err


def test_evaluate_cli_bad_input_exits_2_naming_the_problem(run_copy: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text('macro_f1: ">= 0.9"\nrecal: {class: sport, min: 0.9}\n')
    assert main(["-q", "evaluate", "--model", str(run_copy), "--gates", str(gates)]) == 2
    assert "unknown key 'recal'. Did you mean 'recall'" in capsys.readouterr().err

    data = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a b c", "d e f"], "category": ["sport", "tech"]}).to_csv(data, index=False)
    assert main(["-q", "evaluate", "--model", str(run_copy), "--data", str(data)]) == 2
    assert "no label column 'label'" in capsys.readouterr().err

    pd.DataFrame({"text": ["a b c", "d e f"], "label": ["sport", "cooking"]}).to_csv(data, index=False)
    assert main(["-q", "evaluate", "--model", str(run_copy), "--data", str(data)]) == 2
    assert "'cooking'" in capsys.readouterr().err
    assert main(["-q", "evaluate", "--model", str(run_copy), "--data", str(data), "--ignore-unknown-labels",
                 "--bootstrap", "0", "--no-auto-slices"]) == 0


def test_calibrate_cli(binary_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-q", "calibrate", "--model", str(binary_copy), "--target", "recall>=0.9",
               "--positive", "sport"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "temperature" in out and "for recall>=0.9" in out and "test" in out
    assert read_manifest(binary_copy)["threshold_target"] == "recall>=0.9"
    assert main(["-q", "calibrate", "--model", str(binary_copy), "--target", "recall<0.9"]) == 2
