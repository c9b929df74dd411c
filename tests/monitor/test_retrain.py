"""Champion/challenger retraining with a promotion gate, and rollback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops.cli.main import main
from transferops.errors import ConfigError, DataError
from transferops.monitor.registry import Registry
from transferops.monitor.retrain import RetrainConfig, _check_gates, collect_new_rows, decide, retrain
from transferops.monitor.store import Store


def test_decide_needs_margin_and_passing_gates():
    cfg = RetrainConfig(margin=0.02)
    champ, chal = {"macro_f1": 0.80}, {"macro_f1": 0.81}
    assert decide(champ, chal, cfg)[0] is False  # wins, but by less than the margin
    assert decide(champ, {"macro_f1": 0.85}, cfg)[0] is True
    assert decide(champ, {"macro_f1": 0.70}, cfg)[0] is False
    failed = [{"name": "macro_f1 >= 0.9", "passed": False, "skipped": False}]
    ok, reason = decide(champ, {"macro_f1": 0.85}, cfg, failed)
    assert not ok and "macro_f1 >= 0.9" in reason


def test_gates_from_evaluate_apply_to_holdout_metrics():
    pytest.importorskip("transferops.evaluate.gates")
    res = _check_gates({"macro_f1": 0.7, "accuracy": 0.8, "margin": 0.05},
                       {"macro_f1": ">= 0.75", "margin": 0.01})
    by = {r["name"]: r["passed"] for r in res}
    assert by == {"macro_f1 >= 0.75": False, "margin >= 0.01": True}


def test_retrain_config_validates():
    with pytest.raises(ConfigError, match="metric"):
        RetrainConfig(metric="auc")
    with pytest.raises(ConfigError, match="holdout_fraction"):
        RetrainConfig(holdout_fraction=0.99)


def test_new_rows_from_file_and_feedback_window(tmp_path):
    st = Store(tmp_path / "m.db")
    st.insert_predictions([{"id": "a", "ts": 10**10, "label": "sport", "text": "goal!"},
                           {"id": "b", "ts": 10**10, "label": "tech", "text": "chips"}])
    st.add_feedback("a", "sport")
    f = tmp_path / "new.csv"
    pd.DataFrame({"text": ["x", "y", "z"], "label": ["tech", "", "sport"]}).to_csv(f, index=False)
    rows = collect_new_rows(st, f, "36500d")
    assert list(rows["label"]) == ["tech", "sport", "sport"]  # blank label skipped, feedback appended
    with pytest.raises(ConfigError, match="new-data"):
        collect_new_rows(st, None, None)
    g = tmp_path / "bad.csv"
    pd.DataFrame({"body": ["x"]}).to_csv(g, index=False)
    with pytest.raises(DataError, match="'text' is missing"):
        collect_new_rows(st, g, None)


@pytest.fixture(scope="module")
def bbc_stream() -> tuple[pd.DataFrame, pd.DataFrame]:
    """30 old articles of two classes only, and 240 newer ones of all five classes with timestamps."""
    from transferops.data.bundled import load_bbc

    df = load_bbc()
    df["text"] = df["text"].str.slice(0, 200)
    idx = np.random.default_rng(0).permutation(len(df))
    old = df.iloc[idx[:200]]
    old = old[old["label"].isin(["business", "sport"])].head(30)[["text", "label"]].reset_index(drop=True)
    new = df.iloc[idx[200:440]][["text", "label"]].reset_index(drop=True)
    new["ts"] = 1_700_000_000 + np.arange(len(new)) * 60.0
    return old, new


@pytest.mark.slow
def test_better_challenger_promoted_worse_not_and_rollback(tmp_path, bbc_stream, capsys):
    """Real MiniLM, frozen (head strategy), 32 tokens: traffic now has classes the champion never saw."""
    old, new = bbc_stream
    champ = transferops.train(old, out=tmp_path / "champ", checkpoint="minilm-l6", strategy="head",
                              max_length=32, check_near_duplicates=False, baseline=False)
    db = str(tmp_path / "registry.db")
    st = Store(db)
    reg = Registry(st)
    v1 = reg.register(champ.path)
    reg.promote(v1.version)
    new_csv = tmp_path / "labeled.csv"
    new.sample(frac=1.0, random_state=1).to_csv(new_csv, index=False)  # file order != time order

    # Better: the champion's config on old + new data → promoted.
    code = main(["retrain", "--db", db, "--model", "champion", "--new-data", str(new_csv),
                 "--out", str(tmp_path / "chal1"), "--json"])
    captured = capsys.readouterr()
    assert captured.out, captured.err
    res = json.loads(captured.out)
    assert code == 0 and res["promoted"], res["reason"]
    assert res["holdout_size"] == 72 and res["train_new_rows"] == 168
    assert res["challenger_metrics"]["macro_f1"] >= res["champion_metrics"]["macro_f1"] + 0.2
    assert reg.alias("champion") == res["challenger_version"] == "v2"
    assert reg.get("v2").parent == "v1"
    # The holdout is the newest 30% by time, never trained on.
    chal = transferops.load(tmp_path / "chal1")
    chal_train = pd.concat([chal.split(s) for s in ("train", "validation", "test")])
    newest = set(new.sort_values("ts")["text"].iloc[-72:])
    assert not newest & set(chal_train["text"])
    assert chal.manifest["config"]["strategy"] == "head" and chal.manifest["config"]["max_length"] == 32

    # Worse: a challenger that barely trains is rejected on the same kind of holdout.
    bad = retrain(st, model="champion", new_data=new_csv, out=tmp_path / "chal2",
                  overrides={"epochs": 1, "lr": 1e-6})
    assert not bad.promoted and bad.exit_code == 3
    assert bad.challenger_metrics["macro_f1"] < bad.champion_metrics["macro_f1"]
    assert reg.alias("champion") == "v2" and reg.alias("challenger") == "v3"

    # Rollback restores the previous champion.
    assert main(["registry", "rollback", "--db", db]) == 0
    assert reg.alias("champion") == "v1"
    capsys.readouterr()
    assert main(["registry", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in listed] == ["v1", "v2", "v3"]
    assert Path(listed[0]["path"]) == Path(champ.path).resolve()


def test_if_drift_skips_when_there_is_no_drift(tiny_run, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    assert main(["registry", "register", str(tiny_run), "--db", db, "--promote"]) == 0
    capsys.readouterr()
    code = main(["retrain", "--db", db, "--if-drift", "--new-data", "unused.csv", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["skipped"] and out["drift_status"] == "unknown"
