"""`transferops abtest analyze` against a real SQLite store written through the monitoring Store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from transferops.cli.main import main

from .synth import make_experiment

pytest.importorskip("sqlalchemy")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get("TRANSFEROPS_TEST_PG_URL"):
        pytest.skip("TRANSFEROPS_TEST_PG_URL is not set (scripts/start_postgres.sh starts a server)")
    return str(request.param)


def _db(tmp_path: Path, backend: str = "sqlite", **kw) -> str:
    from transferops.monitor.store import Store

    preds, outs = make_experiment(**kw)
    if backend == "postgres":
        url = os.environ["TRANSFEROPS_TEST_PG_URL"]
        fresh = Store(url, create=False)
        fresh.metadata.drop_all(fresh.engine)  # a clean log for this test
        fresh.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'log.db'}"
    store = Store(url)
    store.insert_predictions(preds.to_dict("records"))
    # a second experiment in the same log must not leak into the first
    other, _ = make_experiment(300, experiment="other", seed=99)
    other["id"] = "o" + other["id"]
    store.insert_predictions(other.to_dict("records"))
    for pid, key in zip(other["id"], other["ab_key"], strict=True):
        store.add_outcome(pid, "conversion", 1.0)
        store.add_outcome(None, "conversion", 1.0, key=f"other-{key}")
    for o in outs.itertuples():
        store.add_outcome(o.prediction_id, o.metric, o.value, key=o.key, ts=o.ts)
    store.dispose()
    return url


def test_analyze_from_store(tmp_path: Path, backend: str, capsys) -> None:
    url = _db(tmp_path, backend, n_users=6_000, rates={"control": 0.10, "treatment": 0.14}, seed=3)
    assert main(["abtest", "analyze", "--db", url, "--experiment", "exp1"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: ship" in out and "two-proportion z" in out and "mSPRT" in out
    report = tmp_path / "ab.json"
    assert main(["abtest", "analyze", "--db", url, "--experiment", "exp1", "--json",
                 "--out", str(report)]) == 0
    d = json.loads(report.read_text())
    assert d["verdict"] == "ship"
    assert sum(a["n"] for a in d["arms"]) == 6_000  # the 'other' experiment is excluded
    assert d["comparisons"][0]["sequential"]["method"].startswith("mSPRT")
    # the loader returns only this experiment's outcomes (not the 'other' experiment's)
    from transferops.abtest.store import load_experiment

    preds, outs = load_experiment(url, "exp1")
    assert len(preds) == 6_000 and not outs["prediction_id"].astype(str).str.startswith("o").any()
    assert outs["prediction_id"].notna().all() and len(outs) == round(d["arms"][0]["total"] + d["arms"][1]["total"])


def test_analyze_continuous_metric_recorded_by_key(tmp_path: Path, capsys) -> None:
    url = _db(tmp_path, n_users=3_000, revenue={"control": 10.0, "treatment": 10.0}, seed=5)
    assert main(["abtest", "analyze", "--db", url, "--experiment", "exp1", "--metric", "revenue",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "continuous" and d["comparisons"][0]["test"] == "Welch t"
    assert d["arms"][0]["mean"] > 5


def test_analyze_errors(tmp_path: Path, capsys) -> None:
    url = _db(tmp_path, n_users=500, seed=6)
    assert main(["abtest", "analyze", "--db", url, "--experiment", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no predictions" in err and "exp1" in err and "other" in err
    assert main(["abtest", "analyze", "--db", str(tmp_path / "missing.db"), "--experiment", "exp1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["abtest", "analyze", "--db", url, "--experiment", "exp1", "--split", "50-50"]) == 2
    assert "split" in capsys.readouterr().err
