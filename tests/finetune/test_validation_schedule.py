"""Validation inside an epoch (issue 18, time to quality): the ``auto`` schedule is a pure function of the
split sizes, bad values are refused naming the field, and a real run records mid-epoch points, the
schedule and its reason (validation in the training precision: test_precision.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from transferops.errors import ConfigError
from transferops.finetune.config import TrainConfig
from transferops.finetune.trainer import plan_validation


def test_auto_schedule_is_a_pure_function_of_the_split_sizes() -> None:
    # issue 18's BBC split: 1,050 training rows, 200 validation rows, 66 steps an epoch -> twice an epoch
    every, why = plan_validation("auto", n_train=1050, n_val=200, steps_per_epoch=66)
    assert every == 33 and "2 validations of 200 rows" in why
    assert plan_validation("auto", n_train=1050, n_val=200, steps_per_epoch=66) == (every, why)
    # many training rows per validation row: at most 4 an epoch
    assert plan_validation("auto", n_train=20_000, n_val=500, steps_per_epoch=1250)[0] == 313
    # a validation split as large as a quarter of the training split: epoch ends only, and why
    every, why = plan_validation("auto", n_train=400, n_val=100, steps_per_epoch=25)
    assert every is None and "epoch ends" in why and "100 rows" in why
    assert plan_validation(None, n_train=1050, n_val=200, steps_per_epoch=66) == (None, "at epoch ends")
    assert plan_validation(10, n_train=1050, n_val=200, steps_per_epoch=66)[0] == 10
    every, why = plan_validation(100, n_train=1050, n_val=200, steps_per_epoch=66)
    assert every is None and "100 >= the 66 steps" in why


@pytest.mark.parametrize("bad", [0, -3, "often", True, 2.5])
def test_bad_eval_every_is_refused_naming_the_field(bad: Any) -> None:
    with pytest.raises(ConfigError, match="eval_every"):
        TrainConfig(eval_every=bad)


def test_eval_every_config_and_flag() -> None:
    assert TrainConfig().eval_every == "auto"
    assert TrainConfig.from_dict({"eval_every": None}).eval_every is None
    with pytest.raises(ConfigError, match="Did you mean 'eval_every'"):
        TrainConfig.from_dict({"eval_steps": 50})  # the transformers name
    import argparse

    from transferops.finetune.cli import _add_train_args, config_from_args

    p = argparse.ArgumentParser()
    _add_train_args(p)
    assert config_from_args(p.parse_args(["--eval-every", "none"])).eval_every is None
    assert config_from_args(p.parse_args(["--eval-every", "AUTO"])).eval_every == "auto"
    assert config_from_args(p.parse_args(["--eval-every", "25"])).eval_every == 25
    for bad in ("often", "0"):
        with pytest.raises(SystemExit):
            p.parse_args(["--eval-every", bad])


def test_cli_error_for_a_bad_eval_every_is_one_line(tmp_path: Path, bbc_small_csv: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(bbc_small_csv), "--eval-every", "often", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--eval-every" in err and "'often'" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_real_run_records_mid_epoch_points(tmp_path: Path, bbc_small_csv: Path, tiny_bert: Path) -> None:
    import transferops

    transferops.train(bbc_small_csv, out=tmp_path / "m", checkpoint=str(tiny_bert), strategy="full", epochs=2,
                      max_length=32, batch_size=16, baseline=False, check_near_duplicates=False,
                      early_stopping_patience=None, eval_every=3, search=False)
    m = json.loads((tmp_path / "m" / "transferops.json").read_text())
    points = [h for h in m["history"] if "epoch" in h]
    assert [h["epoch"] for h in points if isinstance(h["epoch"], int)] == [1, 2]
    mid = [h for h in points if isinstance(h["epoch"], float)]
    assert mid and all(0 < h["epoch"] < 2 for h in mid) and all(h["step"] % 3 == 0 for h in mid)
    assert all("val_macro_f1" in h and "train_seconds" in h for h in points)
    v = m["training"]["validation"]
    assert v["every"] == 3 and v["evaluations"] == len(points) and "every 3 optimiser steps" in v["reason"]
    assert 1 <= m["training"]["best_epoch"] <= 2 and m["training"]["best_step"] >= 1
    assert m["config"]["eval_every"] == 3
