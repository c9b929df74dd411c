"""Multi-task (issue 17, item 4): one tiny random BERT with three heads (topic: multi-class, length: binary
with labels missing on a quarter of the rows, tags: multi-label), trained once by the CLI from a YAML config;
then one forward pass for every task, predict / evaluate / export / serve / monitor per task, and the
one-line errors for bad --tasks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

import transferops
from transferops.cli.main import main
from transferops.errors import ConfigError
from transferops.finetune.multitask import MultiTaskLoss, parse_task_weights, parse_tasks

COMMON = ["--max-length", "32", "--batch-size", "16", "--no-near-duplicates", "--seed", "0"]


def _frame(bbc_small: pd.DataFrame) -> pd.DataFrame:
    df = bbc_small.copy()
    words = df["text"].str.split().str.len()
    df["length"] = np.where(words > words.median(), "long", "short")
    df.loc[df.index % 4 == 0, "length"] = None  # a quarter of the rows carry no length label
    low = df["text"].str.lower()
    tags = [[t for t, hit in (("uk", "uk" in s or "brit" in s), ("money", "£" in s or "$" in s or "market" in s))
             if hit] for s in low]
    df["tags"] = ["|".join(t) if t else None for t in tags]
    return df


@pytest.fixture(scope="module")
def mt_csv(bbc_small: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("mt-data") / "news.csv"
    _frame(bbc_small).to_csv(p, index=False)
    return p


@pytest.fixture(scope="module")
def mt_run(mt_csv: Path, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mt") / "run"
    cfg = out.parent / "mt.yaml"
    cfg.write_text("tasks:\n  topic: label\n  length: length\n  tags: {column: tags, task: multilabel, sep: '|'}\n"
                   "task_weights: {length: 0.5}\nbaseline: false\nepochs: 1\nlr: 0.005\n")
    rc = main(["-q", "train", "--data", str(mt_csv), "--config", str(cfg), "--checkpoint", str(tiny_bert),
               "--strategy", "full", "--out", str(out), *COMMON])
    assert rc == 0
    return out


def test_manifest_lists_tasks_types_labels_and_rules(mt_run: Path) -> None:
    m = transferops.artifacts.manifest.read_manifest(mt_run)
    assert m.kind == "multitask"
    tasks = {t["name"]: t for t in m["tasks"]}
    assert list(tasks) == ["topic", "length", "tags"]
    assert tasks["topic"]["task"] == "multiclass" and len(tasks["topic"]["labels"]) == 5
    assert tasks["length"]["task"] == "binary" and tasks["length"]["labels"] == ["long", "short"]
    assert tasks["tags"]["task"] == "multilabel" and tasks["tags"]["labels"] == ["money", "uk"]
    assert tasks["tags"]["thresholds"] == {"money": 0.5, "uk": 0.5}
    assert [t["weight"] for t in m["tasks"]] == [1.0, 0.5, 1.0]
    assert tasks["length"]["rows_labelled"] == 150  # 50 of 200 rows have no length label
    assert m.labels == [f"{n}:{lbl}" for n, t in tasks.items() for lbl in t["labels"]]
    for t in m["tasks"]:
        assert t["metrics"]["test"]["n"] > 0 and 0.0 <= t["metrics"]["test"]["macro_f1"] <= 1.0
    test = mt_run / "data" / "test.parquet"
    assert not os.stat(test).st_mode & stat.S_IWUSR  # write-once, as single-task
    split = pd.read_parquet(test)
    assert {"label__topic", "label__length", "label__tags"} <= set(split.columns)
    assert (mt_run / "model" / "heads.safetensors").exists()
    assert not list((mt_run / "model").glob("*.bin"))
    assert (mt_run / "reference_profile.json").exists()
    for name in tasks:
        assert (mt_run / f"reference_profile.task-{name}.json").exists()


def test_one_forward_pass_gives_every_task(mt_run: Path, bbc_small: pd.DataFrame) -> None:
    model = transferops.load(mt_run)
    texts = bbc_small["text"].tolist()[:12]
    net = model.torch_model
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    try:
        proba = model.predict_proba(texts)
    finally:
        handle.remove()
    assert len(calls) == 1  # one pass through the backbone, every head
    assert {k: v.shape for k, v in proba.items()} == {"topic": (12, 5), "length": (12, 2), "tags": (12, 2)}
    assert np.allclose(proba["topic"].sum(1), 1) and np.allclose(proba["length"].sum(1), 1)
    assert not np.allclose(proba["tags"].sum(1), 1)  # sigmoid per label
    preds = model.predict(texts)
    for i, p in enumerate(preds):
        assert p["topic"] == model.tasks["topic"]["labels"][int(proba["topic"][i].argmax())] or \
            model.manifest["tasks"][0]["decision"]
        assert p["length"] == ["long", "short"][int(proba["length"][i].argmax())]
        assert p["tags"] == [lbl for j, lbl in enumerate(["money", "uk"]) if proba["tags"][i, j] >= 0.5]
    # the task view decides as the full model, from the same pass
    view = model.task_view("length")
    assert np.allclose(view.predict_proba(texts), proba["length"], atol=1e-6)
    assert view.predict(texts) == [p["length"] for p in preds]
    flat_labels, conf = model.decision_rule.apply(model.proba_from_logits(model.logits(texts)))
    assert all(len([x for x in row if x.startswith("topic:")]) == 1 for row in flat_labels)
    assert np.all(conf <= np.asarray([proba["length"][i].max() for i in range(12)]) + 1e-9)


def test_masked_rows_and_weights_in_the_loss() -> None:
    blocks = [(slice(0, 3), False, 1.0), (slice(3, 5), False, 0.5)]
    z = torch.randn(4, 5)
    y0, m0 = torch.tensor([0, 1, 2, 0]), torch.ones(4, dtype=torch.bool)
    y1, m1 = torch.tensor([1, 0, -1, -1]), torch.tensor([True, True, False, False])
    loss = MultiTaskLoss(blocks, cached=True)
    full, n = loss.loss(lambda f: f, (z, y0, m0, y1, m1))
    ce = torch.nn.functional.cross_entropy
    assert n == 4
    assert torch.isclose(full, ce(z[:, :3], y0) + 0.5 * ce(z[:2, 3:], y1[:2]))
    # a masked row's target does not matter; a task with no labelled row adds nothing
    y1b = torch.tensor([1, 0, 1, 0])
    assert torch.isclose(full, loss.loss(lambda f: f, (z, y0, m0, y1b, m1))[0])
    none = loss.loss(lambda f: f, (z, y0, m0, y1, torch.zeros(4, dtype=torch.bool)))[0]
    assert torch.isclose(none, ce(z[:, :3], y0))


def test_parse_tasks_and_weights() -> None:
    tasks = parse_tasks("topic=label,tags=tags:multilabel", label_sep="|")
    assert [(t.name, t.column, t.task, t.label_sep) for t in tasks] == [("topic", "label", "auto", None),
                                                                       ("tags", "tags", "multilabel", "|")]
    assert [t.weight for t in parse_task_weights("tags=0.25", tasks)] == [1.0, 0.25]
    with pytest.raises(ConfigError, match="appears twice"):
        parse_tasks("a=x,a=y")
    with pytest.raises(ConfigError, match="unknown task 'tag'.*Did you mean 'tags'"):
        parse_task_weights({"tag": 1}, tasks)
    with pytest.raises(ConfigError, match="positive number"):
        parse_task_weights("tags=-1", tasks)


def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_bad_tasks_are_one_line_errors(mt_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["train", "--data", str(mt_csv), "--out", str(tmp_path / "o")]
    assert "no column 'lenght'" in _err(capsys, [*base, "--tasks", "topic=label,length=lenght"])
    assert "Did you mean 'length'" in _err(capsys, [*base, "--tasks", "topic=label,length=lenght"])
    assert "task name 'topic' appears twice" in _err(capsys, [*base, "--tasks", "topic=label,topic=length"])
    one = tmp_path / "one.csv"
    pd.read_csv(mt_csv).assign(priority="high").to_csv(one, index=False)
    msg = _err(capsys, ["train", "--data", str(one), "--out", str(tmp_path / "o"), "--tasks",
                        "topic=label,urgency=priority"])
    assert "urgency=priority" in msg and "only one class ('high')" in msg
    assert "unknown task 'lenght'" in _err(capsys, [*base, "--tasks", "topic=label,length=length",
                                                   "--task-weights", "lenght=0.5"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tasks: {topic: label}\ntask_weights: {topik: 2}\n")
    assert "task_weights: unknown task 'topik'" in _err(capsys, [*base, "--config", str(cfg)])
    assert "not available with --tasks" in _err(capsys, [*base, "--tasks", "topic=label", "--strategy", "lora"])
    assert not (tmp_path / "o" / "transferops.json").exists()


def test_head_strategy_cached_features(mt_csv: Path, tiny_bert: Path, tmp_path: Path) -> None:
    from transferops.finetune.multitask import train_multitask

    res = train_multitask(mt_csv, out=tmp_path / "head", tasks="topic=label,length=length", checkpoint=str(tiny_bert),
                          strategy="head", epochs=3, max_length=32, batch_size=32, check_near_duplicates=False,
                          baseline=False)
    s = res.manifest["strategy"]
    assert s["name"] == "head" and s["trainable_params"] == 32 * 5 + 5 + 32 * 2 + 2  # the two heads only
    before = transferops.load(tmp_path / "head").torch_model.base_model.state_dict()
    from safetensors.torch import load_file

    saved = load_file(str(tiny_bert / "model.safetensors"))
    k = "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(before[k], saved["bert." + k])  # the backbone did not move
    assert "multi-task model saved" in res.summary()


def test_predict_cli_writes_every_task(mt_run: Path, mt_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    assert main(["-q", "predict", "--model", str(mt_run), "--input", str(mt_csv), "--output", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 200
    for task in ("topic", "length", "tags"):
        assert f"{task}_label" in df.columns and f"{task}_confidence" in df.columns
    assert {"p_topic:sport", "p_length:long", "p_tags:uk"} <= set(df.columns)
    model = transferops.load(mt_run)
    first = model.predict(df["text"].tolist()[:1] if "text" in df else pd.read_csv(mt_csv)["text"].tolist()[:1])[0]
    assert df["topic_label"].iloc[0] == first["topic"]


def test_evaluate_per_task_report(mt_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rep, js = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["-q", "evaluate", "--model", str(mt_run), "--report", str(rep), "--json", str(js),
                 "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "== task topic" in out and "== task length" in out and "== task tags" in out
    page = rep.read_text()
    for task in ("topic", "length", "tags"):
        assert f'id="task-{task}"' in page and f'id="{task}-per-class"' in page and f'id="{task}-confusion"' in page
    d = json.loads(js.read_text())
    m = transferops.artifacts.manifest.read_manifest(mt_run)
    n_length = int(pd.read_parquet(mt_run / "data" / "test.parquet")["label__length"].notna().sum())
    assert d["tasks"]["length"]["data"]["n"] == n_length
    assert d["tasks"]["topic"]["metrics"]["macro_f1"] == pytest.approx(m["tasks"][0]["metrics"]["test"]["macro_f1"],
                                                                       abs=1e-9)
    assert d["tasks"]["tags"]["task"] == "multilabel"
    # a gate applies to each task; the CLI exits 1 when one fails
    from transferops.evaluate.multitask import evaluate_multitask

    ev = evaluate_multitask(mt_run, gates={"macro_f1": ">= 0.999"}, n_bootstrap=0, calibration_preview=False,
                            auto_slices=False, record=False)
    assert not ev.passed and len(ev.gates) == 3
    from transferops.errors import GateFailedError
    from transferops.evaluate.gates import raise_if_failed

    with pytest.raises(GateFailedError):
        raise_if_failed(ev.gates)


def test_export_refuses_with_the_reason(mt_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = _err(capsys, ["export", "--model", str(mt_run), "--out", str(tmp_path / "x")])
    assert "multi-task" in msg and "serve the PyTorch artifact" in msg


@pytest.mark.server
def test_serve_per_task_predictions_logged_and_monitored(mt_run: Path, bbc_small: pd.DataFrame, tmp_path: Path
                                                        ) -> None:
    from server_testing import running
    from transferops.deploy.server import ServeSettings, create_app
    from transferops.monitor.multitask import monitor_tasks
    from transferops.monitor.store import Store

    db = f"sqlite:///{tmp_path / 'log.db'}"
    texts = bbc_small["text"].tolist()[:30]
    model = transferops.load(mt_run)
    with running(create_app(ServeSettings(models={"mt": str(mt_run)}, db_url=db))) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        info = c.get("/v1/models/mt").json()
        assert info["tasks"]["tags"] == {"task": "multilabel", "labels": ["money", "uk"]}
        r = c.post("/v1/models/mt/predict", json={"texts": texts})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        local = model.predict(texts)
        proba = model.predict_proba(texts)
        for i, p in enumerate(preds):
            assert set(p["tasks"]) == {"topic", "length", "tags"}
            assert {k: v["label"] for k, v in p["tasks"].items()} == local[i]
            assert p["tasks"]["length"]["probabilities"]["long"] == pytest.approx(proba["length"][i, 0], abs=1e-5)
            assert p["confidence"] == pytest.approx(min(t["confidence"] for t in p["tasks"].values()), abs=1e-9)
            assert f"topic:{local[i]['topic']}" in p["label"]
        schema = c.get("/openapi.json").json()["components"]["schemas"]
        assert "TaskPrediction" in schema and "tasks" in schema["Prediction"]["properties"]
        for bad in ({"texts": []}, {"texts": [1]}, {"texts": ["a"], "extra": 1}, {"text": "a"}):
            assert c.post("/v1/models/mt/predict", json=bad).status_code == 422
        assert c.post("/v1/models/mt/predict", content=b"{not json", headers={"content-type": "application/json"}
                      ).status_code == 422
    store = Store(db)
    df = store.read_predictions()
    assert len(df) == 30
    row = df.set_index("id").loc[preds[0]["prediction_id"]]
    assert set(row["probabilities"]) == set(model.labels)  # every task's probabilities are in the log
    reports = monitor_tasks(mt_run, db=db)
    assert set(reports) == {"topic", "length", "tags"}
    assert reports["length"].n == 30
    assert set(reports["topic"].class_share) <= set(model.tasks["topic"]["labels"]) | {"<other>"}
    assert sum(reports["topic"].class_share.values()) == pytest.approx(1.0)
    assert reports["tags"].n == 30 and set(reports["tags"].class_share) <= {"money", "uk", "<other>"}


def test_monitor_cli_per_task(mt_run: Path, bbc_small: pd.DataFrame, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.monitor.records import make_records
    from transferops.monitor.store import Store

    db = tmp_path / "m.db"
    model = transferops.load(mt_run)
    Store(f"sqlite:///{db}").insert_predictions(make_records(model, bbc_small["text"].tolist()[:25], model_name="mt"))
    rc = main(["-q", "monitor", "--model", str(mt_run), "--db", str(db), "--per-task", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc in (0, 3, 4) and set(out["tasks"]) == {"topic", "length", "tags"}
    assert out["n"] == 25 and out["tasks"]["length"]["n"] == 25
    rc = main(["monitor", "--model", str(mt_run), "--db", str(db), "--per-task"])
    assert "task length:" in capsys.readouterr().out


@pytest.mark.server
def test_schemathesis_predict_on_multitask(mt_run: Path) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    from server_testing import running
    from transferops.deploy.server import ServeSettings, create_app

    with running(create_app(ServeSettings(models={"mt": str(mt_run)}))) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        op = schema["/v1/models/{name}/predict"]["POST"]

        @settings(max_examples=5, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: object) -> None:
            case.path_parameters = {"name": "mt"}  # type: ignore[attr-defined]
            case.call_and_validate(base_url=url, timeout=30,  # type: ignore[attr-defined]
                                   checks=[not_a_server_error, response_schema_conformance])

        run()
