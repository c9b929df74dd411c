"""The three commands through ``transferops.cli.main``: success paths and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from transferops.cli.main import main


def test_adapt_command(tmp_path: Path, tiny_bert: Path, bbc_small_csv: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ck"
    rc = main(["--quiet", "adapt", "--checkpoint", str(tiny_bert), "--unlabeled", str(bbc_small_csv),
               "--out", str(out), "--steps", "3", "--batch-size", "8", "--max-length", "32"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "adapted checkpoint saved" in text and "perplexity" in text
    assert json.loads((out / "adapt.json").read_text())["steps"] == 3


def test_adapt_command_tiny_pool(tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = tmp_path / "pool.csv"
    pd.DataFrame({"body": ["one text", "two texts"]}).to_csv(pool, index=False)
    rc = main(["--quiet", "adapt", "--checkpoint", str(tiny_bert), "--unlabeled", str(pool),
               "--text-column", "body", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "at least 50" in err


def test_distill_command(tmp_path: Path, toy_teacher: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--quiet", "distill", "--teacher", str(toy_teacher), "--layers", "1", "--epochs", "1",
               "--latency-texts", "3", "--out", str(tmp_path / "s"), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["distillation"]["comparison"]["student"]["params"] < doc["distillation"]["comparison"][
        "teacher"]["params"]
    assert main(["--quiet", "distill", "--teacher", str(toy_teacher), "--out", str(tmp_path / "t")]) == 2
