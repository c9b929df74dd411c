"""The server, running for real under uvicorn on a loopback port."""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import transferops
from server_testing import server_process
from transferops.abtest.assignment import assign_arm
from transferops.deploy.onnx_runtime import OnnxModel
from transferops.deploy.server import ServeSettings, create_app
from transferops.errors import ConfigError

from .conftest import ADMIN_TOKEN
from .deploy_helpers import Collector, running

pytestmark = pytest.mark.server
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TEXTS = ["Shares rose sharply after the results", "The striker scored twice in the final",
         "The election campaign enters its last week", "A new phone with a faster chip",
         "The film won three awards", "Interest rates were left unchanged"]


def _broken_listener(records: list[dict[str, Any]]) -> None:
    raise RuntimeError("listener bug")


@pytest.fixture(scope="module")
def served(tiny_export: Path, tiny_run: Path, adapters_dir: Path) -> Iterator[dict[str, Any]]:
    settings = ServeSettings(models={"tiny": str(tiny_export), "pt": str(tiny_run)},
                             adapters=str(adapters_dir),
                             admin_token=ADMIN_TOKEN, max_wait_ms=10, max_batch_size=16,
                             ab={"control": str(tiny_export), "treatment": str(tiny_run)}, experiment="exp1",
                             ab_key="header:X-User-Id", review_threshold=0.2)
    app = create_app(settings)
    collector = Collector()
    app.state.prediction_listeners.extend([_broken_listener, collector])
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield {"url": url, "client": client, "app": app, "records": collector}


def _predict(client: httpx.Client, name: str, texts: list[str], **kw: Any) -> httpx.Response:
    return client.post(f"/v1/models/{name}/predict", json={"texts": texts, **kw})


# ---------------------------------------------------------------------- basics
def test_health_ready_docs_metrics(served: dict[str, Any]) -> None:
    c = served["client"]
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and set(ready.json()["models"]) >= {"tiny", "pt", "alpha", "control"}
    assert c.get("/docs").status_code == 200
    assert "/v1/models/{name}/predict" in c.get("/openapi.json").json()["paths"]
    _predict(c, "tiny", TEXTS[:2])
    text = c.get("/metrics").text
    for name in ("transferops_requests_total", "transferops_request_latency_seconds_bucket",
                 "transferops_batch_size_bucket", "transferops_queue_depth", "transferops_review_rate",
                 "transferops_inference_seconds_bucket"):
        assert name in text, name
    per_class = [ln for ln in text.splitlines() if ln.startswith("transferops_predictions_total{")]
    assert any('model="tiny"' in ln for ln in per_class)


def test_predictions_match_the_model(served: dict[str, Any], tiny_export: Path, tiny_run: Path) -> None:
    c = served["client"]
    r = _predict(c, "tiny", TEXTS, ids=list(range(len(TEXTS))))
    assert r.status_code == 200, r.text
    body = r.json()
    preds = body["predictions"]
    ref = OnnxModel(tiny_export).predict_proba(TEXTS)
    assert [p["id"] for p in preds] == list(range(len(TEXTS)))
    assert len({p["prediction_id"] for p in preds}) == len(TEXTS)
    labels = transferops.load(tiny_export).labels
    for p, row in zip(preds, ref, strict=True):
        assert p["label"] == labels[int(row.argmax())]
        np.testing.assert_allclose([p["probabilities"][lbl] for lbl in labels], row, atol=1e-5)
        assert p["confidence"] == pytest.approx(row.max(), abs=1e-5)
        assert p["route"] == ("review" if p["confidence"] < 0.2 else "auto")
    # the PyTorch runtime serves the artifact itself
    r = _predict(c, "pt", TEXTS)
    np.testing.assert_allclose([[p["probabilities"][lbl] for lbl in labels] for p in r.json()["predictions"]],
                               transferops.load(tiny_run).predict_proba(TEXTS), atol=1e-5)


def test_listeners_get_records_and_a_failing_one_is_harmless(served: dict[str, Any]) -> None:
    c = served["client"]
    before = len(served["records"].records)
    r = _predict(c, "tiny", TEXTS[:3])
    assert r.status_code == 200
    recs = served["records"].wait_for(before + 3)[before:]
    ids = {p["prediction_id"] for p in r.json()["predictions"]}
    mine = [x for x in recs if x["id"] in ids]
    assert len(mine) == 3
    keys = {"id", "ts", "model", "model_version", "arm", "experiment", "ab_key", "route", "label",
            "probabilities", "confidence", "latency_ms", "n_chars", "n_tokens", "unk_rate", "sketch", "text"}
    for rec in mine:
        assert keys <= set(rec)
        assert rec["model"] == "tiny" and len(rec["sketch"]) == 16 and rec["arm"] is None
        assert rec["n_chars"] == len(rec["text"]) and rec["n_tokens"] > 0
    assert 'transferops_listener_errors_total{kind="error"}' in c.get("/metrics").text


# ---------------------------------------------------------------------- bad input: 4xx, never 500
@pytest.mark.parametrize(("body", "status", "field"), [
    (b'{"texts": ["a", ', 422, "JSON"),
    (b'{"texts": "one string"}', 422, "texts"),
    (b'{"texts": [1, 2]}', 422, "texts.0"),
    (b'{"texts": []}', 422, "texts"),
    (b'{"texts": ["a"], "ids": [1, 2]}', 422, "ids"),
    (b'{"texts": ["a"], "colour": "red"}', 422, "colour"),
    (b'["a", "b"]', 422, "body"),
    (b'', 422, "body"),
])
def test_malformed_requests(served: dict[str, Any], body: bytes, status: int, field: str) -> None:
    r = served["client"].post("/v1/models/tiny/predict", content=body,
                              headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert field in (r.json().get("message") or str(r.json()["detail"]))


def test_limits(served: dict[str, Any]) -> None:
    c = served["client"]
    r = _predict(c, "tiny", ["short text"] * 10_000)
    assert r.status_code == 422 and "max_texts_per_request" in r.text
    r = _predict(c, "tiny", ["x" * (1 << 20)])
    assert r.status_code == 422 and "max_chars_per_text" in r.text and r.json()["detail"][0]["loc"] == [
        "body", "texts", 0]
    big = b'{"texts": ["' + b"y" * (5 << 20) + b'"]}'
    r = c.post("/v1/models/tiny/predict", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.text
    r = _predict(c, "nope", ["a"])
    assert r.status_code == 404 and "tiny" in r.json()["detail"]
    r = c.post("/v1/models/tiny/predict", content=b'texts=a', headers={"Content-Type": "text/plain"})
    assert r.status_code == 422 and "Content-Type" in r.json()["message"]
    assert _predict(c, "tiny", ["still fine"]).status_code == 200


# ---------------------------------------------------------------------- load
def test_concurrent_load_zero_errors_and_batches_coalesce(served: dict[str, Any], tiny_export: Path,
                                                           tiny_run: Path) -> None:
    """8 clients, one text per request, on both runtimes: zero errors, every client gets its own
    text's answer back (PyTorch fp32 exactly; int8 loosely, its activation scales depend on the batch)."""
    url = served["url"]
    texts = [f"{t} number {i}" for i in range(10) for t in TEXTS]
    refs = {"pt": transferops.load(tiny_run).predict_proba(texts),
            "tiny": OnnxModel(tiny_export).predict_proba(texts)}
    atol = {"pt": 1e-5, "tiny": 2e-3}
    labels = OnnxModel(tiny_export).labels

    def worker(k: int) -> list[tuple[str, int, list[float]]]:
        out = []
        name = "pt" if k % 2 else "tiny"
        with httpx.Client(base_url=url, timeout=60) as cl:
            for j in range(k // 2, len(texts), 4):
                r = cl.post(f"/v1/models/{name}/predict", json={"texts": [texts[j]]})
                r.raise_for_status()
                p = r.json()["predictions"][0]["probabilities"]
                out.append((name, j, [p[lbl] for lbl in labels]))
        return out

    def batches(name: str) -> tuple[float, float]:
        m = served["client"].get("/metrics").text
        get = lambda key: float(next(ln.split()[-1] for ln in m.splitlines() if ln.startswith(key)))  # noqa: E731
        return (get(f'transferops_batch_size_count{{model="{name}"}}'),
                get(f'transferops_batch_size_sum{{model="{name}"}}'))

    before = {n: batches(n) for n in ("pt", "tiny")}
    with cf.ThreadPoolExecutor(8) as ex:
        results = [x for fut in [ex.submit(worker, k) for k in range(8)] for x in fut.result()]
    assert len(results) == 2 * len(texts)
    for name, j, probs in results:
        np.testing.assert_allclose(probs, refs[name][j], atol=atol[name])
    calls = 0.0
    for name in ("pt", "tiny"):
        n1, s1 = batches(name)
        assert s1 - before[name][1] == len(texts)
        calls += n1 - before[name][0]
    assert calls < 2 * len(texts)  # at least one model call served several requests


def test_overload_gives_503_then_recovers(tiny_export: Path) -> None:
    # A batch waits up to 300 ms to fill; the queue holds 8 texts; each request brings 5.
    settings = ServeSettings(models={"m": str(tiny_export)}, max_batch_size=8, queue_size=8,
                             max_texts_per_request=5, max_wait_ms=300, adaptive_wait=False)
    with running(create_app(settings)) as url:
        def call(_: int) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=60) as cl:
                return cl.post("/v1/models/m/predict", json={"texts": ["overload test"] * 5})

        with cf.ThreadPoolExecutor(16) as ex:
            codes = [r for r in ex.map(call, range(32))]
        statuses = [r.status_code for r in codes]
        assert set(statuses) <= {200, 503}
        assert 503 in statuses and 200 in statuses
        busy = next(r for r in codes if r.status_code == 503)
        assert int(busy.headers["Retry-After"]) >= 1 and "busy" in busy.json()["detail"]
        with httpx.Client(base_url=url, timeout=60) as cl:
            assert cl.post("/v1/models/m/predict", json={"texts": ["after"]}).status_code == 200
            assert 'transferops_rejected_total{reason="overloaded"}' in cl.get("/metrics").text


# ---------------------------------------------------------------------- admin & security
def test_admin_requires_token(served: dict[str, Any], tiny_export: Path) -> None:
    c = served["client"]
    assert c.get("/admin/models").status_code == 401
    assert c.get("/admin/models", headers={"Authorization": "Bearer wrong-token-123456"}).status_code == 403
    assert c.delete("/admin/models/tiny", headers={"X-Admin-Token": "nope"}).status_code == 403
    assert c.post("/admin/adapters/alpha").status_code == 401
    r = c.get("/admin/models", headers=AUTH)
    assert r.status_code == 200 and r.json()["settings"]["admin_token"] == "***"
    # a server without a token has admin switched off
    with running(create_app(ServeSettings(models={"m": str(tiny_export)}))) as url:
        r = httpx.get(f"{url}/admin/models", headers=AUTH)
        assert r.status_code == 403 and "disabled" in r.json()["detail"]
    with pytest.raises(ConfigError, match="admin_token"):
        ServeSettings(models={"m": str(tiny_export)}, admin_token="changeme")


def test_paths_cannot_escape_and_pickles_are_refused(served: dict[str, Any], adapters_dir: Path,
                                                     tmp_path: Path) -> None:
    c = served["client"]
    for path in ("../..", "/etc", "alpha/../../x"):
        r = c.post("/admin/adapters/evil", json={"path": path}, headers=AUTH)
        assert r.status_code == 403 and "escapes" in r.text, path
    outside = tmp_path / "outside"
    outside.mkdir()
    link = adapters_dir / "sneaky"
    link.symlink_to(outside, target_is_directory=True)
    try:
        r = c.post("/admin/adapters/sneaky", headers=AUTH)
        assert r.status_code == 403
    finally:
        link.unlink()
    assert c.post("/admin/models/tiny", json={"path": "/etc"}, headers=AUTH).status_code == 403
    assert c.post("/admin/adapters/bad name!", headers=AUTH).status_code in (404, 422)
    pickled = adapters_dir / "pickled"
    shutil.copytree(adapters_dir / "alpha", pickled)
    (pickled / "model" / "pytorch_model.bin").write_bytes(b"not really a pickle")
    try:
        r = c.post("/admin/adapters/pickled", headers=AUTH)
        assert r.status_code == 422 and "pickle" in r.json()["detail"]
        assert "pickled" not in c.get("/readyz").json()["models"]
    finally:
        shutil.rmtree(pickled)


def test_swap_model_under_load_without_errors(served: dict[str, Any], tiny_export: Path,
                                              tiny_run: Path) -> None:
    c = served["client"]
    url = served["url"]
    v0 = _predict(c, "tiny", ["x"]).json()["model_version"]
    stop = threading.Event()
    failures: list[str] = []
    versions: set[str] = set()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=60) as cl:
            while not stop.is_set():
                r = cl.post("/v1/models/tiny/predict", json={"texts": TEXTS[:2]})
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        r = c.post("/admin/models/tiny", json={"path": str(tiny_run)}, headers=AUTH)  # champion swap
        assert r.status_code == 200, r.text
        time.sleep(0.3)
        r = c.post("/admin/models/tiny", json={"path": str(tiny_export)}, headers=AUTH)
        assert r.status_code == 200, r.text
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert len(versions) >= 2
    assert _predict(c, "tiny", ["x"]).json()["model_version"] == v0


# ---------------------------------------------------------------------- adapters
def test_three_adapters_over_one_base_give_their_own_answers(served: dict[str, Any],
                                                             adapters_dir: Path) -> None:
    c = served["client"]
    texts = [*TEXTS, "Quarterly profits fell", "He won the tennis title"]
    answers = {}
    for name in ("alpha", "beta", "gamma"):
        r = _predict(c, name, texts)
        assert r.status_code == 200, r.text
        got = [p["label"] for p in r.json()["predictions"]]
        assert got == transferops.load(adapters_dir / name).predict(texts)  # same as loading it alone
        answers[name] = got
    assert answers["alpha"] != answers["beta"] != answers["gamma"] != answers["alpha"]
    pools = c.get("/admin/models", headers=AUTH).json()["adapter_pools"]
    assert len(pools) == 1
    assert sorted(a.rsplit("_", 1)[0] for a in pools[0]["adapters"]) == ["alpha", "beta", "gamma"]
    # unload and load back without a restart
    assert c.delete("/admin/adapters/beta", headers=AUTH).status_code == 200
    assert _predict(c, "beta", texts).status_code == 404
    assert _predict(c, "alpha", texts).json()["predictions"][0]["label"] == answers["alpha"][0]
    r = c.post("/admin/adapters/beta", json={"path": "beta"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert [p["label"] for p in _predict(c, "beta", texts).json()["predictions"]] == answers["beta"]


# ---------------------------------------------------------------------- A/B
def test_ab_assignment_is_sticky_and_recorded(served: dict[str, Any]) -> None:
    c = served["client"]
    seen = {}
    for user in [f"user-{i}" for i in range(12)]:
        arms = {c.post("/v1/experiments/exp1/predict", json={"texts": ["x"]}, headers={"X-User-Id": user}
                       ).json()["arm"] for _ in range(2)}
        assert len(arms) == 1
        seen[user] = arms.pop()
        assert seen[user] == assign_arm(user, ["control", "treatment"], [0.5, 0.5])
    assert set(seen.values()) == {"control", "treatment"}
    r = c.post("/v1/experiments/exp1/predict", json={"texts": ["x"]})
    assert r.status_code == 422 and "X-User-Id" in r.text
    assert c.post("/v1/experiments/other/predict", json={"texts": ["x"]},
                  headers={"X-User-Id": "u"}).status_code == 404
    r = c.post("/v1/experiments/exp1/predict", json={"texts": ["ab record"]}, headers={"X-User-Id": "user-3"})
    pid = r.json()["predictions"][0]["prediction_id"]
    rec = next(x for x in served["records"].wait_for(1) if x["id"] == pid) if any(
        x["id"] == pid for x in served["records"].wait_for(10_000, timeout=2)) else None
    assert rec is not None
    assert rec["arm"] == seen["user-3"] and rec["experiment"] == "exp1" and rec["ab_key"] == "user-3"


# ---------------------------------------------------------------------- review routing
def test_review_threshold_derived_from_validation(tiny_export: Path) -> None:
    val = OnnxModel(tiny_export).split("validation")
    texts = val["text"].tolist()
    settings = ServeSettings(models={"m": str(tiny_export)}, target_auto_accuracy=0.3)
    with running(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        info = c.get("/v1/models/m").json()["review"]
        assert info["source"] == "derived" and info["target_auto_accuracy"] == 0.3
        preds = c.post("/v1/models/m/predict", json={"texts": texts}).json()["predictions"]
    review = np.array([p["route"] == "review" for p in preds])
    correct = np.array([p["label"] == y for p, y in zip(preds, val["label"], strict=True)])
    assert all((p["confidence"] < info["threshold"]) == r for p, r in zip(preds, review, strict=True))
    assert review.mean() == pytest.approx(info["review_rate"])
    if info["reached"] and (~review).any():
        assert correct[~review].mean() >= 0.3
        assert correct[~review].mean() == pytest.approx(info["auto_accuracy"])


# ---------------------------------------------------------------------- CLI
def test_cli_serve_subprocess(tiny_export: Path) -> None:
    with server_process(["--model", f"news={tiny_export}", "--review-threshold", "0.5"],
                        env={"OMP_NUM_THREADS": "1"}) as (_, url):
        r = httpx.post(f"{url}/v1/models/news/predict", json={"texts": ["hello"]})
        assert r.status_code == 200 and r.json()["predictions"][0]["route"] == "review"
