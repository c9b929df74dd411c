"""Add a class, keep the old ones (``train --init-from``): a tiny random BERT trained on 3 BBC classes,
then continued on a 4th; the forgetting gate fails a run that forgets and passes one that replays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

import transferops
from transferops.cli.main import main
from transferops.errors import ConfigError
from transferops.finetune.continual import ContinualConfig, replay_sample

OLD = ["business", "sport", "tech"]
NEW = "politics"
COMMON = dict(max_length=32, batch_size=8, check_near_duplicates=False, baseline=False, seed=0)


@pytest.fixture(scope="module")
def frames(bbc_small: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (bbc_small[bbc_small.label.isin(OLD)].reset_index(drop=True),
            bbc_small[bbc_small.label == NEW].reset_index(drop=True))


@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, frames: tuple) -> Path:
    out = tmp_path_factory.mktemp("cont") / "old"
    transferops.train(frames[0], out=out, checkpoint=str(tiny_bert), strategy="full", epochs=8, lr=2e-3,
                      early_stopping_patience=None, **COMMON)
    return out


@pytest.fixture(scope="module")
def forgetful(tmp_path_factory: pytest.TempPathFactory, old_run: Path, frames: tuple) -> Path:
    """No replay, many epochs of the new class alone at a high lr, last epoch kept: it forgets."""
    out = tmp_path_factory.mktemp("cont") / "forgetful"
    transferops.train(frames[1], out=out, init_from=old_run, replay=0.0, epochs=8, lr=5e-3, select_best=False,
                      early_stopping_patience=None, tune_decision=False, **COMMON)
    return out


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, old_run: Path, frames: tuple) -> Path:
    out = tmp_path_factory.mktemp("cont") / "replayed"
    transferops.train(frames[1], out=out, init_from=old_run, replay=1.0, l2_to_old=1e-3, epochs=3, lr=1e-3,
                      early_stopping_patience=None, **COMMON)
    return out


def _cont(path: Path) -> dict:
    return json.loads((path / "transferops.json").read_text())["continual"]


def test_head_extended_old_rows_copied(old_run: Path) -> None:
    from transferops.finetune.continual import extend_classifier

    model = extend_classifier(old_run / "model", [*OLD, NEW], "multiclass")
    old = load_file(str(old_run / "model" / "model.safetensors"))
    sd = model.state_dict()
    assert sd["classifier.weight"].shape[0] == 4
    assert np.array_equal(sd["classifier.weight"][:3].numpy(), old["classifier.weight"].numpy())
    assert np.array_equal(sd["classifier.bias"][:3].numpy(), old["classifier.bias"].numpy())
    assert not np.array_equal(sd["classifier.weight"][3].numpy(), np.zeros(32))  # freshly initialised
    enc = "bert.encoder.layer.0.attention.self.query.weight"
    assert np.array_equal(sd[enc].numpy(), old[enc].numpy())
    assert model.config.id2label == {0: "business", 1: "sport", 2: "tech", 3: "politics"}


def test_lineage_and_report_recorded(replayed: Path, old_run: Path) -> None:
    m = transferops.artifacts.manifest.read_manifest(replayed)
    c = m["continual"]
    assert m.labels == [*OLD, NEW]
    assert c["init_from"] == str(old_run) and c["replay"] == 1.0 and c["l2_to_old"] == 1e-3
    old_train = pd.read_parquet(old_run / "data" / "train.parquet")
    assert c["replay_rows"] == len(old_train)
    assert m.lineage["init_from"] == str(old_run)
    rep = c["report"]
    assert rep["old_labels"] == OLD and rep["new_labels"] == [NEW]
    assert rep["old_model"]["new_classes_macro_f1"] == 0.0  # the old model cannot predict the new class
    # The test split holds the old run's test rows (old classes) and the new data's test rows.
    test = pd.read_parquet(replayed / "data" / "test.parquet")
    old_test = pd.read_parquet(old_run / "data" / "test.parquet")
    assert set(old_test.text) <= set(test.text) and (test.label == NEW).sum() > 0
    assert rep["test_rows"] == len(test)
    assert "continued from" in transferops.finetune.api.TrainResult(replayed, m).summary()
    train = pd.read_parquet(replayed / "data" / "train.parquet")
    assert set(train.label) == {*OLD, NEW}


def test_forgetting_gate_fails_a_forgetful_run_and_passes_replay(forgetful: Path, replayed: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = _cont(forgetful), _cont(replayed)
    assert bad["replay_rows"] == 0
    # Trained on the new class only, it predicts it for (nearly) everything: the old classes are forgotten.
    assert bad["report"]["forgetting"] > 0.15
    assert good["report"]["forgetting"] < bad["report"]["forgetting"] - 0.1
    from transferops.errors import GateFailedError
    from transferops.finetune.continual import format_report, raise_if_forgot

    threshold = (good["report"]["forgetting"] + bad["report"]["forgetting"]) / 2
    for rep, ok in ((bad["report"], False), (good["report"], True)):
        rep = {**rep, "gate": {"max_forgetting": threshold, "observed": rep["forgetting"],
                               "passed": rep["forgetting"] <= threshold}}
        table = format_report(rep)
        assert ("PASS" in table) is ok and ("FAIL" in table) is not ok
        if ok:
            raise_if_forgot(rep, "x")
        else:
            with pytest.raises(GateFailedError, match="forgetting"):
                raise_if_forgot(rep, "x")


def test_cli_gate_exit_codes(tmp_path: Path, old_run: Path, frames: tuple, capsys: pytest.CaptureFixture[str]
                             ) -> None:
    new_csv = tmp_path / "new.csv"
    frames[1].to_csv(new_csv, index=False)
    base = ["train", "--data", str(new_csv), "--init-from", str(old_run), "--epochs", "6", "--lr", "5e-3",
            "--max-length", "32", "--batch-size", "8", "--no-near-duplicates", "--seed", "0"]
    # replay 0 and many epochs on the new class alone: the gate (0.02) fails -> exit 1 with the table
    rc = main([*base, "--replay", "0", "--max-forgetting", "0.02", "--out", str(tmp_path / "bad")])
    out = capsys.readouterr()
    assert rc == 1, out.err
    assert "old-class macro-F1" in out.out and "FAIL" in out.out
    assert "gate failed: forgetting" in out.err
    # the same forgetful run with a loose gate passes (exit 0): the gate reads the threshold
    rc = main([*base, "--replay", "0", "--max-forgetting", "1.0", "--out", str(tmp_path / "loose")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "PASS" in out.out


@pytest.mark.parametrize("kwargs, match", [
    ({"init_from": "no/such/run"}, "init_from: .* not a trained run folder"),
    ({"label_column": "text2"}, "label_column: the old run"),
    ({"replay": 1.5}, "replay"),
    ({"search": True}, "search: --init-from"),
])
def test_bad_input_one_line(tmp_path: Path, old_run: Path, frames: tuple, kwargs: dict, match: str) -> None:
    df = frames[1].assign(text2=frames[1].text)
    kw = {"init_from": old_run, **kwargs}
    if "label_column" in kw:
        df = df.assign(text2=df.label)
    with pytest.raises(ConfigError, match=match) as exc:
        transferops.train(df, out=tmp_path / "x", **kw, **COMMON)
    assert "\n" not in str(exc.value)


def test_multilabel_old_run_refused(tmp_path: Path, old_run: Path) -> None:
    fake = tmp_path / "ml"
    fake.mkdir()
    m = json.loads((old_run / "transferops.json").read_text())
    (fake / "transferops.json").write_text(json.dumps({**m, "task": "multilabel"}))
    with pytest.raises(ConfigError, match="multi-label model"):
        transferops.train(pd.DataFrame({"text": ["a b", "c d"], "label": ["x", "x"]}), out=tmp_path / "o",
                          init_from=fake)


def test_cli_bad_init_from_exit_2(tmp_path: Path, frames: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    new_csv = tmp_path / "new.csv"
    frames[1].to_csv(new_csv, index=False)
    rc = main(["train", "--data", str(new_csv), "--init-from", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: init_from:") and err.count("\n") == 1


def test_replay_sample_and_config() -> None:
    df = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": ["a"] * 20 + ["b"] * 10})
    s = replay_sample(df, 0.25, seed=0)
    assert s.label.value_counts().to_dict() == {"a": 5, "b": 2}  # round(2.5) = 2
    assert replay_sample(df, 0.01, seed=0).label.value_counts().to_dict() == {"a": 1, "b": 1}
    assert len(replay_sample(df, 0.0, seed=0)) == 0
    assert replay_sample(df, 0.5, seed=3).equals(replay_sample(df, 0.5, seed=3))
    with pytest.raises(ConfigError, match="max_forgetting"):
        ContinualConfig("x", max_forgetting=-1)


def test_retrain_add_classes_continues_the_champion(tmp_path: Path, old_run: Path, frames: tuple) -> None:
    """``retrain --add-classes``: the champion is continued on the new rows (train --init-from); the
    forgetting gate joins the promotion gates and an absurdly tight one blocks promotion."""
    from transferops.monitor.retrain import RetrainConfig, retrain
    from transferops.monitor.store import Store

    cfg = RetrainConfig(add_classes=True, replay=0.0, max_forgetting=0.0, margin=-0.5)
    res = retrain(Store(tmp_path / "m.db"), model=str(old_run), new_data=frames[1], out=tmp_path / "chal",
                  config=cfg, overrides={"epochs": 3, "lr": 5e-3, "select_best": False, "baseline": False,
                                         "check_near_duplicates": False})
    c = _cont(tmp_path / "chal")
    assert c["init_from"] == str(old_run) and c["replay_rows"] == 0
    assert len(pd.read_parquet(tmp_path / "chal" / "data" / "train.parquet")) + res.holdout_size <= len(frames[1])
    (fg,) = [g for g in res.gates if g["name"] == "forgetting"]
    assert fg["passed"] is (c["report"]["forgetting"] <= 0.0)
    if not fg["passed"]:
        assert not res.promoted and "forgetting" in res.reason and res.exit_code == 3
    with pytest.raises(ConfigError, match="add-classes"):
        RetrainConfig(replay=0.5)


def test_forgetting_is_scored_on_the_old_class_rows(old_run: Path, frames: tuple) -> None:
    """A new model that keeps every old-row prediction of the old model has forgotten nothing (0), although
    over all rows its old-class macro-F1 is higher than the old model's (the old model must file the new
    class's rows under old classes): the all-rows number read as negative forgetting and hid real
    forgetting (benchmarks/new_class_bench.py). Giving old rows to the new class is forgetting (> 0)."""
    from transferops.finetune.continual import forgetting_report, load_old_run

    old = load_old_run(old_run, label_column="label")
    labels = [*OLD, NEW]
    old_test = pd.read_parquet(old_run / "data" / "test.parquet")
    texts = old_test.text.tolist() + frames[1].text.tolist()[:10]
    y = np.asarray([labels.index(v) for v in old_test.label] + [labels.index(NEW)] * 10)
    old_pred = np.asarray([labels.index(p) for p in transferops.load(old_run).predict(texts)])
    same = np.where(y == labels.index(NEW), y, old_pred)  # old rows as before, new rows right
    rep = forgetting_report(old, y, same, texts, labels, 0.0)
    assert rep["forgetting"] == 0.0 and rep["gate"]["passed"] and rep["forgetting_on"] == "old-class rows"
    assert rep["old_class_rows"] == len(old_test)
    all_rows = rep["old_model"]["old_classes_macro_f1_all_rows"] - rep["new_model"]["old_classes_macro_f1_all_rows"]
    assert all_rows < 0  # the old definition
    on_old = np.flatnonzero(y != labels.index(NEW))
    worse = same.copy()
    worse[on_old[old_pred[on_old] == y[on_old]][:3]] = labels.index(NEW)  # 3 correctly filed old rows → new class
    rep2 = forgetting_report(old, y, worse, texts, labels, 0.0)
    assert rep2["forgetting"] > 0 and not rep2["gate"]["passed"]
