"""CLI side of issue 12: global options after the command, one name for the database flag, no
progress bars under --quiet, the baseline memory guard, one-line start-up errors for serve."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from transferops.cli.main import build_parser, main


def test_global_options_before_or_after_the_command() -> None:
    p = build_parser()
    for argv in (["--quiet", "train", "--data", "d", "--out", "o"], ["train", "--data", "d", "--out", "o", "--quiet"],
                 ["train", "-q", "--data", "d", "--out", "o"]):
        assert p.parse_args(argv).quiet is True, argv
    assert p.parse_args(["train", "--data", "d", "--out", "o", "--verbose"]).verbose is True
    assert p.parse_args(["train", "--data", "d", "--out", "o"]).quiet is False


def test_db_flag_has_one_name_with_the_old_spelling_as_alias() -> None:
    p = build_parser()
    assert p.parse_args(["serve", "--model", "m", "--db", "x.db"]).db_url == "x.db"
    assert p.parse_args(["serve", "--model", "m", "--db-url", "x.db"]).db_url == "x.db"
    assert p.parse_args(["monitor", "--model", "m", "--db-url", "y.db"]).db == "y.db"
    assert p.parse_args(["serve", "--model", "m"]).log_mode == "durable"


def test_quiet_train_prints_no_progress_bars(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--data", str(bbc_small_csv), "--out", str(tmp_path / "q"), "--checkpoint", str(tiny_bert),
               "--strategy", "head", "--epochs", "1", "--quiet"])
    out, err = capfd.readouterr()
    assert rc == 0, err[-500:]
    assert "Writing model shards" not in err + out and "it/s" not in err + out


def test_many_labels_few_rows_is_a_clear_error_before_training(tiny_bert: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "many.csv"
    pd.DataFrame({"text": [f"document {i} about topic {i % 10000} with words" for i in range(50_000)],
                  "label": [f"l{i % 10000}" for i in range(50_000)]}).to_csv(f, index=False)
    rc = main(["train", "--data", str(f), "--out", str(tmp_path / "o"), "--checkpoint", str(tiny_bert)])
    err = capsys.readouterr().err
    assert rc == 2 and "TF-IDF baseline" in err and "10,000 labels" in err and "baseline: false" in err
    assert not (tmp_path / "o" / "model").exists()


def test_serve_adapters_with_a_non_lora_folder_is_one_line_rc_2(tiny_run: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ad = tmp_path / "adapters"
    ad.mkdir()
    shutil.copytree(tiny_run, ad / "full-model")
    assert main(["serve", "--adapters", str(ad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not lora" in err
    shutil.rmtree(ad / "full-model")
    outside = tmp_path / "outside"
    outside.mkdir()
    (ad / "link").symlink_to(outside, target_is_directory=True)
    assert main(["serve", "--adapters", str(ad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symlink out of the adapters folder" in err


@pytest.mark.server
def test_serve_startup_failure_is_one_line_rc_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "transferops.json").write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "transferops", "serve", "--model", f"m={bad}", "--port", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-1000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: start-up failed"), r.stderr[-1000:]
    assert "Traceback" not in r.stderr
