"""Every stage's command is wired into one CLI and answers --help; import has no side effects."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transferops.cli.main import build_parser, main

EXPECTED = {"checkpoints", "advise", "select", "train", "lr-find", "predict", "evaluate", "calibrate", "export",
            "serve", "monitor", "label-queue", "label-import", "retrain", "abtest", "cost", "roi", "adapt",
            "distill", "ensemble", "demo", "learning-curve"}


def test_every_stage_command_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = EXPECTED - set(sub.choices)  # type: ignore[arg-type]
    assert not missing, f"commands not wired: {sorted(missing)}"


@pytest.mark.parametrize("cmd", sorted(EXPECTED))
def test_help_works(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: transferops" in capsys.readouterr().out


def test_import_is_cheap_and_side_effect_free() -> None:
    code = ("import sys, os; before = dict(os.environ); import transferops; "
            "assert 'torch' not in sys.modules, 'torch imported at import time'; "
            "assert dict(os.environ) == before, 'environment changed at import'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
