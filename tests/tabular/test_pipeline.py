"""The issue's path end to end on real data (ISLR Default): train → evaluate → export → serve (real uvicorn on
loopback, real SQLite log) → monitor; pretraining → fine-tuning; bad input is one line, exit 2 / HTTP 422."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops.cli.main import main

pytestmark = pytest.mark.server


def test_train_records_schema_search_and_both_splits(loans_run: Path) -> None:
    m = json.loads((loans_run / "transferops.json").read_text())
    assert m["kind"] == "tabular" and m["modality"] == "tabular" and m["labels"] == ["No", "Yes"]
    assert {f["name"]: f["type"] for f in m["schema"]["features"]} == {
        "student": "categorical", "balance": "numeric", "income": "numeric", "region": "categorical"}
    assert m["schema"]["time_column"] == "date" and m["splits"]["method"] == "temporal"
    assert m["splits"]["train_until"] <= m["splits"]["test_from"]
    assert set(m["search"]["candidates"]) == {"trees", "transformer", "stack"}
    assert m["model"] == max(m["search"]["candidates"], key=lambda k: m["search"]["candidates"][k]["val_score"])
    assert set(m["split_comparison"]) >= {"random", "temporal"} and "f1" in m["split_comparison"]["random"]
    assert 0 < m["decision_threshold"] < 1
    for f in ("trees.skops", "transformer.safetensors", "stack.json", "encoder.json", "reference.json"):
        assert (loans_run / f).exists()
    assert not list(loans_run.rglob("*.pkl")) and not list(loans_run.rglob("*.pt"))
    model = transferops.load(loans_run)
    test = model.split("test")
    preds = model.predict(test[model.schema.names])
    assert set(preds) <= {"No", "Yes"} and len(preds) == len(test)


def test_evaluate_report(loans_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-q", "evaluate", "--model", str(loans_run), "--json", str(tmp_path / "e.json"),
               "--report", str(tmp_path / "e.md")])
    assert rc == 0
    res = json.loads((tmp_path / "e.json").read_text())
    assert set(res["per_class"]) == {"No", "Yes"} and 0 <= res["calibration"]["ece"] <= 1
    assert "recall>=0.89" in res["thresholds"]["oracle_on_this_data"]
    assert set(res["slices"]["region"]) == {"north", "south", "east"}
    md = (tmp_path / "e.md").read_text()
    assert "Random split vs time split" in md and "| random |" in md and "| temporal |" in md


def test_export_serve_log_monitor(loans_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    from server_testing import running
    from transferops.deploy.server import ServeSettings, create_app

    out = tmp_path / "onnx"
    assert main(["-q", "export", "--model", str(loans_run), "--out", str(out)]) == 0
    exp = json.loads((out / "transferops.json").read_text())["export"]
    if (loans_run / "transformer.json").exists():
        assert (out / "transformer.onnx").exists() and exp["parity"]["max_abs_diff"] <= 1e-4
        assert exp["parity"]["label_agreement"] == 1.0
    onnx_model, torch_model = transferops.load(out), transferops.load(loans_run)
    test = torch_model.split("test")[torch_model.schema.names]
    assert np.abs(onnx_model.predict_proba(test) - torch_model.predict_proba(test)).max() < 1e-4

    db = tmp_path / "log.db"
    app = create_app(ServeSettings(models={"loans": str(out)}, db_url=str(db), review_threshold=0.9,
                                   max_batch_size=16))
    rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in test.to_dict("records")]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        info = c.get("/v1/models").json()["models"][0]
        assert info["runtime"] == "onnx" and info["features"]["income"] == "numeric"
        r = c.post("/v1/models/loans/rows", json={"rows": rows})
        assert r.status_code == 200
        preds = r.json()["predictions"]
        assert len(preds) == len(rows) and {p["route"] for p in preds} <= {"auto", "review"}
        assert all((p["route"] == "review") == (p["confidence"] < 0.9) for p in preds)
        assert [p["label"] for p in preds] == onnx_model.predict(test)
        for bad, where in (({**rows[0], "income": "lots"}, "rows[0].income"), ({**rows[0], "zip": 1}, "rows[0].zip"),
                           ({k: v for k, v in rows[0].items() if k != "balance"}, "rows[0].balance")):
            e = c.post("/v1/models/loans/rows", json={"rows": [bad]})
            assert e.status_code == 422 and e.json()["detail"].startswith(where)
        assert c.post("/v1/models/loans/rows", json={"rows": []}).status_code == 422
        assert c.post("/v1/models/nope/rows", json={"rows": rows[:1]}).status_code == 404
        t = c.post("/v1/models/loans/predict", json={"texts": ["a text"]})  # the text route refuses a table model
        assert t.status_code == 422 and "POST /v1/models/loans/rows" in t.json()["detail"][0]["msg"]
        r2 = c.post("/v1/models/loans/rows", json={"rows": rows[:2], "ids": ["a", "b"]})
        assert [p["id"] for p in r2.json()["predictions"]] == ["a", "b"]
        assert c.post("/v1/models/loans/rows", json={"rows": rows[:2], "ids": ["a"]}).status_code == 422
        assert 'model="loans"' in c.get("/metrics").text  # Prometheus counts table predictions too
        shifted = [{**row, "income": None if row["income"] is None else row["income"] * 0.5} for row in rows]
        assert c.post("/v1/models/loans/rows", json={"rows": shifted}).status_code == 200

    from transferops.monitor.store import Store
    from transferops.tabular.monitoring import logged_rows

    store = Store(str(db))
    logged = store.read_predictions(model="loans")  # the shared prediction log, the row as JSON in `text`
    store.dispose()
    assert len(logged) == 2 * len(rows) + 2 and rows[0] in [json.loads(t) for t in logged["text"]]
    back = logged_rows(str(db), list(onnx_model.schema.names))
    assert len(back) == 2 * len(rows) + 2 and back.attrs["model"] == "loans"
    capsys.readouterr()
    rc = main(["-q", "monitor", "--model", str(out), "--db", str(db), "--last", str(len(rows)), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 4 and rep["status"] == "retrain" and rep["most_drifted"][0] == "income"
    assert rep["features"]["income"]["psi"] > 0.25 and "kl" in rep["features"]["income"]
    assert set(rep["prediction_rate"]["reference"]) == {"No", "Yes"}


def test_pretrain_then_finetune(loans: Path, tmp_path: Path) -> None:
    unl = tmp_path / "unlabeled.parquet"
    pd.read_parquet(loans).to_parquet(unl)
    pre = tmp_path / "pre"
    assert main(["-q", "adapt", "--modality", "tabular", "--unlabeled", str(unl), "--drop-columns", "default,date",
                 "--out", str(pre), "--steps", "10"]) == 0
    doc = json.loads((pre / "pretrained.json").read_text())
    assert doc["summary"]["objective"] == "replaced-feature detection" and (pre / "pretrained.safetensors").exists()
    out = tmp_path / "ft"
    assert main(["-q", "train", "--data", str(loans), "--label-column", "default", "--time-column", "date",
                 "--checkpoint", str(pre), "--models", "transformer", "--epochs", "1", "--no-split-comparison",
                 "--out", str(out)]) == 0
    m = json.loads((out / "transferops.json").read_text())
    assert m["pretrained"]["objective"] == "replaced-feature detection"
    assert m["pretrained"]["tensors_loaded"] > 10


@pytest.mark.parametrize("argv, msg", [
    (["--label-column", "nope"], "label_column: 'nope' is not a column"),
    (["--label-column", "default", "--models", "forest"], "models: 'forest'"),
    (["--label-column", "default", "--threshold-target", "recall>=5"], "target"),
    (["--label-column", "default", "--checkpoint", "/no/such"], "--checkpoint"),
    (["--label-column", "default", "--feature-columns", "balance,zzz"], "feature_columns: 'zzz'"),
])
def test_bad_train_input_is_one_line_exit_2(loans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str], msg: str) -> None:
    rc = main(["-q", "train", "--data", str(loans), "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err and err.count("\n") == 1


def test_retrain_champion_challenger(loans_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.monitor.registry import Registry
    from transferops.monitor.store import Store

    from .conftest import loans_frame

    new = loans_frame(n_pos=40, n_neg=120, seed=1)
    new["date"] = new["date"] + pd.Timedelta(days=400)  # newer than everything the champion saw
    new.to_parquet(tmp_path / "new.parquet", index=False)
    db = tmp_path / "reg.db"
    capsys.readouterr()
    rc = main(["-q", "retrain", "--model", str(loans_run), "--new-data", str(tmp_path / "new.parquet"), "--db",
               str(db), "--out", str(tmp_path / "chal"), "--epochs", "1", "--margin", "-1", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["winner"] == "challenger" and res["promoted"] and res["holdout_rows"] == 48
    assert set(res["champion"]["holdout"]) >= {"pr_auc", "f1"}
    # the challenger is searched as the champion was: the same candidates and options (epochs overridden)
    champ_cfg, chal_cfg = (json.loads((p / "transferops.json").read_text())["config"]
                           for p in (loans_run, tmp_path / "chal"))
    assert chal_cfg["models"] == champ_cfg["models"] == ["trees", "transformer", "stack"]
    assert chal_cfg["folds"] == champ_cfg["folds"] == 2 and chal_cfg["epochs"] == 1
    reg = Registry(Store(str(db)))
    champ = reg.resolve("champion")
    assert champ.path == str((tmp_path / "chal").resolve()) and champ.parent == res["registry"]["champion"]
    rc = main(["-q", "retrain", "--model", str(loans_run), "--new-data", str(tmp_path / "new.parquet"),
               "--out", str(tmp_path / "chal2"), "--epochs", "1", "--margin", "5"])
    assert rc == 3 and "champion wins" in capsys.readouterr().out
