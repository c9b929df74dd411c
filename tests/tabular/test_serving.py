"""Tables on the shared server: two tabular models as the arms of ``serve --ab`` (real uvicorn on loopback,
real SQLite), outcomes, ``abtest analyze`` over the shared prediction log, and per-arm rows read back from the
same log for drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from transferops.cli.main import main

pytestmark = pytest.mark.server
httpx = pytest.importorskip("httpx")

EXPERIMENT = "loans-ab"


@pytest.fixture(scope="module")
def trees_run(loans: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "trees"
    assert main(["-q", "train", "--data", str(loans), "--label-column", "default", "--time-column", "date",
                 "--models", "trees", "--no-split-comparison", "--out", str(out)]) == 0
    return out


def _rows(model_dir: Path) -> list[dict]:
    import transferops

    m = transferops.load(model_dir)
    return m.row_dicts(m.split("test"))


def test_ab_between_two_tabular_models(loans_run: Path, trees_run: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from server_testing import running
    from transferops.abtest.assignment import assign_arm
    from transferops.deploy.server import ServeSettings, create_app
    from transferops.tabular.monitoring import logged_rows

    monkeypatch.setenv("TRANSFEROPS_LOG_FLUSH_S", "0.05")
    db = tmp_path / "ab.db"
    settings = ServeSettings(ab={"control": str(loans_run), "treatment": str(trees_run)}, experiment=EXPERIMENT,
                             ab_key="header:X-User-Id", ab_split="50/50", db_url=f"sqlite:///{db}",
                             review_threshold=0.8)
    rows = _rows(loans_run)
    rng = np.random.default_rng(0)
    seen: dict[str, str] = {}
    with running(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        for u in range(120):
            user = f"user-{u}"
            r = c.post(f"/v1/experiments/{EXPERIMENT}/rows", json={"rows": [rows[u % len(rows)]]},
                       headers={"X-User-Id": user})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["arm"] == assign_arm(user, ["control", "treatment"], [0.5, 0.5])
            seen[user] = body["arm"]
            p = body["predictions"][0]
            assert p["label"] in {"No", "Yes"} and p["route"] == ("review" if p["confidence"] < 0.8 else "auto")
            if rng.random() < (0.45 if body["arm"] == "treatment" else 0.10):
                o = c.post("/v1/outcomes", json={"prediction_id": p["prediction_id"], "metric": "conversion",
                                                 "value": 1})
                assert o.status_code == 201, o.text
        # the same checks as the model route: a bad row is a 422 naming the column; texts are refused
        bad = c.post(f"/v1/experiments/{EXPERIMENT}/rows", json={"rows": [{**rows[0], "income": "lots"}]},
                     headers={"X-User-Id": "user-1"})
        assert bad.status_code == 422 and bad.json()["detail"].startswith("rows[0].income")
        t = c.post(f"/v1/experiments/{EXPERIMENT}/predict", json={"texts": ["a text"]}, headers={"X-User-Id": "u"})
        assert t.status_code == 422 and "/rows" in t.json()["detail"][0]["msg"]
        assert c.post(f"/v1/experiments/{EXPERIMENT}/rows", json={"rows": rows[:1]}).status_code == 422  # no key
        assert {m["name"] for m in c.get("/v1/models").json()["models"]} == {"control", "treatment"}

    assert set(seen.values()) == {"control", "treatment"}
    capsys.readouterr()
    assert main(["abtest", "analyze", "--db", f"sqlite:///{db}", "--experiment", EXPERIMENT, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {a["arm"]: a["n"] for a in d["arms"]} == {
        arm: sum(v == arm for v in seen.values()) for arm in ("control", "treatment")}
    assert d["comparisons"][0]["diff"] > 0.15
    # per-arm rows read back from the same log, for drift
    back = logged_rows(str(db), ["student", "balance", "income", "region"], model_name="treatment")
    assert len(back) == sum(v == "treatment" for v in seen.values()) and set(back["arm"]) == {"treatment"}

