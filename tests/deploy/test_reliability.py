"""Reliability of the server under hostile input (issue 12): one poisoned request fails alone, the
edge refuses what the model cannot take (named field, 4xx), deadlines and disconnects drop queued
work, every response is counted. A real uvicorn server on loopback, the tiny ONNX int8 export."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from server_testing import post_and_hang_up
from transferops.deploy.batching import DynamicBatcher
from transferops.deploy.runtime import open_runner
from transferops.deploy.server import ServeSettings, create_app
from transferops.errors import ConfigError

from .conftest import ADMIN_TOKEN
from .deploy_helpers import Collector, running

pytestmark = pytest.mark.server
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
POISON = "abc \ud800"  # an unpaired surrogate: valid JSON (\ud800), not encodable text
GOOD = ["Shares rose sharply after the results", "The striker scored twice in the final",
        "The election campaign enters its last week", "A new phone with a faster chip"]


@pytest.fixture(scope="module")
def server(tiny_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("roots")
    settings = ServeSettings(models={"m": str(tiny_export)}, admin_token=ADMIN_TOKEN, max_wait_ms=5,
                             max_batch_size=16, model_roots=[str(root)])
    app = create_app(settings)
    collector = Collector()
    app.state.prediction_listeners.append(collector)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield {"url": url, "client": client, "app": app, "records": collector, "root": root}


def _post_raw(url: str, body: str) -> httpx.Response:
    # httpx would refuse to encode a lone surrogate: send the JSON escape itself, as a client could
    return httpx.post(f"{url}/v1/models/m/predict", content=body.encode("ascii"),
                      headers={"Content-Type": "application/json"}, timeout=60)


def _count(metrics: str, model: str, status: str) -> float:
    m = re.search(rf'transferops_requests_total{{model="{model}",status="{status}"}} ([0-9.e+]+)', metrics)
    return float(m.group(1)) if m else 0.0


# ---------------------------------------------------------------------- isolation
def test_poisoned_requests_under_load_fail_alone(server: dict[str, Any]) -> None:
    """32 clients; 20 poisoned requests among them: every good request gets 200, each poisoned
    one 422 naming the index, and every response is in transferops_requests_total."""
    url, c = server["url"], server["client"]
    before = c.get("/metrics").text

    def good(k: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as hc:
            codes = [hc.post("/v1/models/m/predict", json={"texts": [GOOD[(k + i) % 4]] * (1 + k % 3)}).status_code
                     for i in range(6)]
        return sum(code != 200 for code in codes)

    def bad(_: int) -> httpx.Response:
        return _post_raw(url, '{"texts": ["fine text", "abc \\ud800"]}')

    with cf.ThreadPoolExecutor(32) as ex:
        goods = [ex.submit(good, k) for k in range(28)]
        bads = [ex.submit(bad, k) for k in range(20)]
        failures = sum(f.result() for f in goods)
        bad_responses = [f.result() for f in bads]
    assert failures == 0
    for r in bad_responses:
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "texts", 1] and "surrogate" in r.text
    after = c.get("/metrics").text
    assert _count(after, "m", "422") - _count(before, "m", "422") == 20
    assert _count(after, "m", "200") - _count(before, "m", "200") == 28 * 6


def test_a_failing_batch_is_retried_request_by_request(tiny_export: Path) -> None:
    """Past the edge (straight into the batcher), the surrogate crashes the real tokenizer for the
    whole batch; its batch-mates are rerun alone and succeed, only the poisoned request fails."""
    runner = open_runner("m", tiny_export)

    async def go() -> list[Any]:
        with ThreadPoolExecutor(1) as ex:
            b = DynamicBatcher(_Slot(runner), executor=ex, max_batch_size=32, max_wait_ms=50, adaptive_wait=False)
            jobs = [b.submit([GOOD[0]]), b.submit([POISON]), b.submit(GOOD[1:3])]
            out = await asyncio.gather(*jobs, return_exceptions=True)
            assert b.isolated_failures == 1
            b.close()
            return out

    ok1, poisoned, ok2 = asyncio.run(go())
    assert isinstance(poisoned, Exception)
    assert len(ok1[0][1]) == 1 and len(ok2[0][1]) == 2


class _Slot:
    def __init__(self, runner: Any) -> None:
        self.runner = runner


# ---------------------------------------------------------------------- the edge
@pytest.mark.parametrize("body, loc, fragment", [
    ('{"texts": ["ok"], "ids": ["x\\udc00"]}', ["body", "ids", 0], "surrogate"),
    ('{"texts": ["ok", "ok"], "ids": [true, 2]}', ["body", "ids", 0], "int"),
    ('{"texts": [1]}', ["body", "texts", 0], "string"),
    ('{"texts": ["ok"], "\\ud800": 1}', ["body"], "unicode"),
])
def test_strict_types_and_unencodable_text(server: dict[str, Any], body: str, loc: list[Any],
                                           fragment: str) -> None:
    r = _post_raw(server["url"], body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:len(loc)] == loc and fragment in r.text  # (+ the union member)


@pytest.mark.parametrize("body, fragment", [
    (b'{"texts": ["caf\xe9"]}', "Latin-1"),               # Latin-1 é
    (b'{"texts": ["\xff\xfe"]}', "not valid UTF-8"),
    (b'{"texts": ["\xed\xa0\x80"]}', "not valid UTF-8"),  # a surrogate encoded as raw bytes
])
def test_invalid_encodings_are_422_naming_the_byte(server: dict[str, Any], body: bytes, fragment: str) -> None:
    r = server["client"].post("/v1/models/m/predict", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and fragment in r.text and "byte" in r.text, r.text
    assert "There was an error parsing the body" not in r.text


def test_header_size_and_count_are_limited(server: dict[str, Any]) -> None:
    url = server["url"]
    r = httpx.get(f"{url}/healthz", headers={f"x-h{i}": "1" for i in range(2000)})
    assert r.status_code == 431 and "max_headers" in r.text
    r = httpx.get(f"{url}/healthz", headers={"x-big": "a" * (64 * 1024)})
    assert r.status_code == 431 and "max_header_bytes" in r.text
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_admin_path_with_nul_byte_is_422(server: dict[str, Any]) -> None:
    c = server["client"]
    for route in ("/admin/models/x", "/admin/adapters/x"):
        r = c.post(route, json={"path": f"{server['root']}/a\x00b"}, headers=AUTH)
        assert r.status_code == 422 and "NUL" in r.text, (route, r.text)


def test_public_model_listing_has_no_file_paths(server: dict[str, Any], tiny_export: Path) -> None:
    c = server["client"]
    for info in (c.get("/v1/models").json()["models"][0], c.get("/v1/models/m").json()):
        assert {"name", "version", "kind"} <= set(info) and "path" not in info
        assert str(tiny_export) not in str(info) and str(tiny_export.parent) not in str(info)
    admin = c.get("/admin/models", headers=AUTH).json()["models"][0]
    assert Path(admin["path"]) == tiny_export.resolve() or Path(admin["path"]) == tiny_export


# ---------------------------------------------------------------------- deadlines and disconnects
def _busy(url: str, n: int = 1024, k: int = 3) -> list[cf.Future[httpx.Response]]:
    """``k`` large requests that keep the model busy for many batches (queued ahead of the next one)."""
    ex = cf.ThreadPoolExecutor(k)
    futs = [ex.submit(lambda: httpx.post(f"{url}/v1/models/m/predict", json={"texts": [GOOD[0]] * n}, timeout=120))
            for _ in range(k)]
    ex.shutdown(wait=False)
    return futs


def _wait_queued(app: Any, n: int) -> None:
    t0 = time.monotonic()
    while app.state.hub.get("m").batcher.depth < n and time.monotonic() - t0 < 30:
        time.sleep(0.002)


def test_request_past_its_deadline_is_dropped_not_computed(server: dict[str, Any]) -> None:
    url, app, rec = server["url"], server["app"], server["records"]
    busy = _busy(url)
    _wait_queued(app, 1500)
    marker = "deadline marker text"
    r = httpx.post(f"{url}/v1/models/m/predict", json={"texts": [marker]}, timeout=60,
                   headers={"X-Request-Timeout": "0.001"})
    assert r.status_code == 504 and "not computed" in r.text
    assert [f.result().status_code for f in busy] == [200, 200, 200]
    assert app.state.hub.get("m").batcher.dropped["deadline"] >= 1
    time.sleep(0.3)  # the listener thread hands records over asynchronously
    assert not any(x["text"] == marker for x in rec.records)
    assert _count(server["client"].get("/metrics").text, "m", "504") >= 1
    bad = server["client"].post("/v1/models/m/predict", json={"texts": ["x"]}, headers={"X-Request-Timeout": "-1"})
    assert bad.status_code == 422 and "X-Request-Timeout" in bad.text


def test_disconnected_client_is_dropped_from_the_queue(server: dict[str, Any]) -> None:
    url, app, rec = server["url"], server["app"], server["records"]
    batcher = app.state.hub.get("m").batcher
    cancelled0 = batcher.dropped["cancelled"]
    busy = _busy(url)
    _wait_queued(app, 1500)
    marker = "disconnect marker text"
    post_and_hang_up(url, "/v1/models/m/predict", {"texts": [marker]})  # send, then hang up at once
    assert [f.result().status_code for f in busy] == [200, 200, 200]
    t0 = time.monotonic()
    while batcher.dropped["cancelled"] == cancelled0 and time.monotonic() - t0 < 10:
        time.sleep(0.02)
    assert batcher.dropped["cancelled"] > cancelled0
    time.sleep(0.3)
    assert not any(x["text"] == marker for x in rec.records)
    assert _count(server["client"].get("/metrics").text, "m", "499") >= 1


# ---------------------------------------------------------------------- monitoring routes without a database
def test_monitoring_routes_without_a_database_are_404_naming_the_flag(server: dict[str, Any]) -> None:
    c = server["client"]
    for method, path in (("GET", "/dashboard"), ("GET", "/v1/monitor/m"), ("POST", "/v1/feedback"),
                         ("POST", "/v1/outcomes")):
        r = c.request(method, path, json={"prediction_id": "x", "label": "a"} if method == "POST" else None)
        assert r.status_code == 404 and "--db" in r.text, (path, r.status_code, r.text)
    paths = c.get("/openapi.json").json()["paths"]
    assert not {"/dashboard", "/v1/feedback", "/v1/outcomes"} & set(paths)


def test_unmounted_features_answer_404_naming_their_flag(server: dict[str, Any]) -> None:
    """Issue 13: without --ab / --db the routes do not exist (not in OpenAPI); the 404 says how to
    turn them on, and a real unknown path still gets the plain 404."""
    c = server["client"]
    r = c.post("/v1/experiments/exp/predict", json={"texts": ["x"]}, headers={"X-User-Id": "u"})
    assert r.status_code == 404 and "--ab" in r.json()["detail"], r.text
    r = c.post("/admin/champion", headers=AUTH)
    assert r.status_code == 404 and "--db" in r.json()["detail"], r.text
    paths = c.get("/openapi.json").json()["paths"]
    assert not {"/v1/experiments/{experiment}/predict", "/admin/champion", "/v1/monitor/{name}"} & set(paths)
    r = c.get("/no/such/route")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_admin_token_is_checked_before_the_body(server: dict[str, Any]) -> None:
    """AdminDep runs before the body is validated: an anonymous caller learns nothing about the schema
    (only JSON that does not parse is refused first, 422, by FastAPI before any dependency)."""
    c = server["client"]
    assert c.post("/admin/models/x", json={"path": 1}).status_code == 401
    assert c.post("/admin/models/x", json={"path": 1}, headers={"X-Admin-Token": "wrong-token-0123456"}
                  ).status_code == 403
    assert c.post("/admin/models/x", json={"path": 1}, headers=AUTH).status_code == 422


def test_dashboard_on_a_fresh_database_is_not_500(tiny_run: Path, tmp_path: Path) -> None:
    settings = ServeSettings(models={"m": str(tiny_run)}, db_url=f"sqlite:///{tmp_path / 'fresh.db'}")
    with running(create_app(settings)) as url:
        for path in ("/dashboard", "/v1/monitor/m"):
            r = httpx.get(f"{url}{path}", timeout=60)
            assert r.status_code < 500, (path, r.status_code, r.text[:300])


# ---------------------------------------------------------------------- admin hardening
@pytest.mark.parametrize("token", [" " * 12, "a" * 12, "a" * 40, "your-token-here", "changemechangeme",
                                   "abcdefgh ijklmnopq", "Ab3$xY9!", "ababababababababab"])
def test_weak_admin_tokens_are_refused(tiny_export: Path, token: str) -> None:
    with pytest.raises(ConfigError, match="admin_token"):
        ServeSettings(models={"m": str(tiny_export)}, admin_token=token)


def test_strong_token_accepted(tiny_export: Path) -> None:
    import secrets

    ServeSettings(models={"m": str(tiny_export)}, admin_token=secrets.token_urlsafe())


def test_pickle_check_recurses_into_subfolders(server: dict[str, Any], tiny_export: Path) -> None:
    target = server["root"] / "sneaky-model"
    shutil.copytree(tiny_export, target)
    (target / "extra").mkdir()
    (target / "extra" / "weights.pkl").write_bytes(b"not really a pickle")
    r = server["client"].post("/admin/models/sneaky", json={"path": str(target)}, headers=AUTH)
    assert r.status_code == 422 and "pickle" in r.text and "weights.pkl" in r.text
    assert "sneaky" not in server["client"].get("/readyz").json()["models"]
