"""The predict fast path (``deploy/fastpath.py``) answers exactly as the FastAPI route, and the served ONNX
path tokenises each batch once (``deploy/encoding.py``) with the same logged features."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server_testing import post_and_hang_up
from transferops.deploy.encoding import TextEncoder
from transferops.deploy.fastpath import parse_predict_body
from transferops.deploy.runtime import open_runner
from transferops.deploy.schemas import PredictRequest
from transferops.deploy.server import ServeSettings, create_app
from transferops.truncation import encode_texts, set_truncation

from .deploy_helpers import running

TEXTS = ["Shares rose sharply after the results", "The striker scored twice in the final",
         "The election campaign enters its last week", "A new phone with a faster chip"]
ODD = ["", " ", "héllo wörld 🙂 zzqxjv ☃ 東京", "word " * 300, "\u200b\u00a0x", "[UNK] [SEP] [CLS]"]


# ---------------------------------------------------------------------- one tokenisation
@pytest.mark.parametrize("mode", ["head", "head_tail"])
def test_text_encoder_gives_the_tokenizers_inputs_and_untruncated_ids(tiny_bert: Path, bbc_small: Any,
                                                                       mode: str) -> None:
    from transferops.modeling import load_tokenizer

    tok = set_truncation(load_tokenizer(tiny_bert), mode)
    texts = [str(t) for t in bbc_small["text"][:40]] + ODD
    for max_length in (16, 128):
        enc = TextEncoder(tok, max_length)
        for batch in (texts[:1], texts[-6:], texts):
            inputs, raw = enc.encode(batch)
            want = encode_texts(tok, batch, max_length, padding=True, return_tensors="np")
            assert set(inputs) == set(want)
            for k in want:
                np.testing.assert_array_equal(inputs[k], want[k], err_msg=f"{mode} {max_length} {k}")
            ref = tok(batch, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
            assert raw == [list(r) for r in ref]


def test_served_onnx_logs_the_same_features_from_one_tokenisation(tiny_export: Path, bbc_small: Any) -> None:
    runner = open_runner("m", tiny_export)
    assert runner.forward_ids is not None
    twice = dataclasses.replace(runner, forward_ids=None)  # the old path: model call + a second tokenizer call
    texts = [str(t) for t in bbc_small["text"][:20]] + ODD
    a, b = runner.infer(texts), twice.infer(texts)
    np.testing.assert_array_equal(a.n_tokens, b.n_tokens)
    np.testing.assert_array_equal(a.unk_rate, b.unk_rate)
    np.testing.assert_array_equal(a.n_chars, b.n_chars)
    assert a.labels == b.labels
    np.testing.assert_allclose(a.proba, b.proba, atol=1e-6)
    np.testing.assert_allclose(a.sketch, b.sketch, atol=1e-5)
    assert a.n_tokens.max() > runner.model.max_length  # the logged count is the untruncated one
    # one batch (no length sort) and several length-sorted batches give the same rows, in input order (up
    # to int8's per-batch activation scales: batches of other texts quantise slightly differently)
    one = runner.model.session.run_with_ids(texts)
    many = runner.model.session.run_with_ids(texts, batch_size=4)
    assert one[2] == many[2]
    np.testing.assert_allclose(one[0], many[0], atol=5e-3)
    np.testing.assert_allclose(one[1], many[1], atol=5e-2)
    assert a.unk_rate.max() > 0  # the [UNK] rate is really computed (zzqxjv, ☃ ...)


# ---------------------------------------------------------------------- the parser vs the schema
BODIES = [b'{"texts": ["a"]}', b'{"texts": ["a", "b"], "ids": [1, "x"]}', b'{"texts": ["a"], "ids": null}',
          b'{"ids": [7], "texts": ["a"]}', b'{"texts": ["a"], "ids": []}', b' {"texts":["\\u00e9"]} ',
          b'{"texts": []}', b'{"texts": "a"}', b'{"texts": [1]}', b'{"texts": [null]}', b'{"texts": ["a"], "x": 1}',
          b'{"texts": ["a"], "ids": [true]}', b'{"texts": ["a"], "ids": [1.5]}', b'{"texts": ["a"], "ids": "1"}',
          b'{"texts": ["a"], "ids": [[1]]}', b'{"ids": [1]}', b'["a"]', b'null', b'', b'{"texts": ["a"]',
          b'{"texts": ["a"], "texts": ["b"]}', b'{"texts": [["a"]]}', b'{"texts": ["a"], "ids": [1], "y": 2}',
          b'{"texts": ["a"], "ids": [12345678901234567890123]}', b'{"texts": {"0": "a"}}', b'{"texts": [NaN]}']


@pytest.mark.parametrize("body", BODIES)
def test_fast_parser_takes_only_what_the_schema_takes_as_is(body: bytes) -> None:
    parsed = parse_predict_body(body)
    try:
        req: PredictRequest | None = PredictRequest.model_validate(json.loads(body))
    except Exception:
        req = None
    if parsed is not None:
        assert req is not None and parsed == (req.texts, req.ids)
    if body in BODIES[:6]:
        assert parsed is not None, body


# ---------------------------------------------------------------------- a fast and a plain server
@pytest.fixture(scope="module")
def pair(tiny_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The same model behind the fast path and behind the FastAPI route only, each logging to SQLite."""
    out: dict[str, Any] = {}
    tmp = tmp_path_factory.mktemp("fastpath")
    kw: dict[str, Any] = {"models": {"m": str(tiny_export)}, "max_wait_ms": 5, "max_batch_size": 16,
                          "max_chars_per_text": 2000}
    fast_app = create_app(ServeSettings(**kw, db_url=f"sqlite:///{tmp / 'fast.db'}"))
    plain_app = create_app(ServeSettings(**kw, db_url=f"sqlite:///{tmp / 'plain.db'}", fast_path=False))
    with running(fast_app) as fast_url, running(plain_app) as url, \
            httpx.Client(base_url=fast_url, timeout=60) as fast, httpx.Client(base_url=url, timeout=60) as plain:
        out.update(fast=fast, plain=plain, fast_url=fast_url, fast_app=fast_app, db=f"sqlite:///{tmp / 'fast.db'}")
        yield out


def _app_of(pair: dict[str, Any]) -> Any:
    return pair["fast_app"]


def _rejected(metrics: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'transferops_rejected_total\{reason="([^"]+)"\} ([0-9.e+]+)', metrics)}


def _requests(metrics: str) -> dict[tuple[str, str], float]:
    return {(m.group(1), m.group(2)): float(m.group(3)) for m in
            re.finditer(r'transferops_requests_total\{model="([^"]+)",status="([^"]+)"\} ([0-9.e+]+)', metrics)}


@pytest.mark.server
def test_fast_path_answers_as_the_route_and_logs_to_sqlite(pair: dict[str, Any]) -> None:
    from transferops.monitor.store import Store

    fast, plain = pair["fast"], pair["plain"]
    body = {"texts": TEXTS, "ids": [1, "b", 3, "d"]}
    answered0 = getattr(pair["fast_app"].state, "fast_path_answered", 0)
    a, b = fast.post("/v1/models/m/predict", json=body), plain.post("/v1/models/m/predict", json=body)
    assert getattr(pair["fast_app"].state, "fast_path_answered", 0) == answered0 + 1  # it took the fast path
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
    ja, jb = a.json(), b.json()
    assert list(ja) == list(jb) and ja["model"] == jb["model"] and ja["model_version"] == jb["model_version"]
    for pa, pb in zip(ja["predictions"], jb["predictions"], strict=True):
        assert list(pa) == list(pb)
        for k in pa:
            if k == "prediction_id":
                assert re.fullmatch(r"[0-9a-f]{32}", pa[k]) and pa[k] != pb[k]
            elif k in ("probabilities", "confidence"):
                assert pa[k] == pytest.approx(pb[k], abs=1e-5)
            else:
                assert pa[k] == pb[k], k
    # logged through the fast path, in the durable log (the answer left after the commit)
    store = Store(pair["db"])
    df = store.read_predictions().set_index("id")
    for p, text in zip(ja["predictions"], TEXTS, strict=True):
        row = df.loc[p["prediction_id"]]
        assert row["text"] == text and row["label"] == p["label"] and row["model"] == "m"
        assert row["n_chars"] == len(text) and row["n_tokens"] > 0 and len(row["sketch"]) == 16
        assert row["probabilities"] == pytest.approx(p["probabilities"], abs=1e-5)
    assert 'transferops_requests_total{model="m",status="200"}' in fast.get("/metrics").text


MALFORMED: list[tuple[str, bytes, dict[str, str]]] = [
    ("/v1/models/m/predict", b'{"texts": ["a", ', {}),
    ("/v1/models/m/predict", b'{"texts": "one string"}', {}),
    ("/v1/models/m/predict", b'{"texts": [1, 2]}', {}),
    ("/v1/models/m/predict", b'{"texts": []}', {}),
    ("/v1/models/m/predict", b'{"texts": ["a"], "ids": [1, 2]}', {}),
    ("/v1/models/m/predict", b'{"texts": ["a"], "colour": "red"}', {}),
    ("/v1/models/m/predict", b'{"texts": ["a"], "ids": [true]}', {}),
    ("/v1/models/m/predict", b'["a", "b"]', {}),
    ("/v1/models/m/predict", b'', {}),
    ("/v1/models/m/predict", json.dumps({"texts": ["x"] * 1025}).encode(), {}),
    ("/v1/models/m/predict", json.dumps({"texts": ["x" * 2001]}).encode(), {}),
    ("/v1/models/m/predict", b'{"texts": ["abc \\ud800"]}', {}),
    ("/v1/models/m/predict", b'{"texts": ["a"], "ids": ["\\udc00"]}', {}),
    ("/v1/models/m/predict", b'{"texts": ["caf\xe9"]}', {}),
    ("/v1/models/m/predict", b'{"texts": ["a"]}', {"X-Request-Timeout": "-1"}),
    ("/v1/models/m/predict", b'{"texts": ["a"]}', {"X-Request-Timeout": "soon"}),
    ("/v1/models/m/predict", b'{"texts": ["a"]}', {"Content-Type": "text/plain"}),
    ("/v1/models/ghost/predict", b'{"texts": ["a"]}', {}),
    ("/v1/experiments/exp/predict", b'{"texts": ["a"]}', {}),
]


@pytest.mark.server
def test_malformed_requests_fall_through_to_the_same_answers(pair: dict[str, Any]) -> None:
    fast, plain = pair["fast"], pair["plain"]
    fast_app = _app_of(pair)
    before = getattr(fast_app.state, "fast_path_answered", 0)
    rej0 = (_rejected(fast.get("/metrics").text), _rejected(plain.get("/metrics").text))
    for path, body, headers in MALFORMED:
        h = {"Content-Type": "application/json", **headers}
        a, b = fast.post(path, content=body, headers=h), plain.post(path, content=body, headers=h)
        assert 400 <= a.status_code < 500 and a.status_code == b.status_code, (path, body, a.text)
        assert a.json() == b.json(), (body, a.text, b.text)
        assert a.headers.get("retry-after") == b.headers.get("retry-after")
    assert getattr(fast_app.state, "fast_path_answered", 0) == before  # every one fell through
    rej1 = (_rejected(fast.get("/metrics").text), _rejected(plain.get("/metrics").text))
    delta = [{k: v - r0.get(k, 0.0) for k, v in r1.items()} for r0, r1 in zip(rej0, rej1, strict=True)]
    assert delta[0] == delta[1] and delta[0].get("invalid", 0) >= 5  # counted once, as by the route
    # the request counter saw the same statuses on both
    ra, rb = _requests(fast.get("/metrics").text), _requests(plain.get("/metrics").text)
    assert {k for k in ra if k[1] != "200"} == {k for k in rb if k[1] != "200"}
    # and the OpenAPI document is the route's
    assert fast.get("/openapi.json").json() == plain.get("/openapi.json").json()


@pytest.mark.server
def test_fast_path_drops_a_gone_client_and_logs_nothing(pair: dict[str, Any]) -> None:
    from transferops.monitor.store import Store

    fast_app, url = _app_of(pair), pair["fast_url"]
    batcher = fast_app.state.hub.get("m").batcher
    cancelled0, answered0 = batcher.dropped["cancelled"], getattr(fast_app.state, "fast_path_answered", 0)
    ex = cf.ThreadPoolExecutor(3)
    busy = [ex.submit(httpx.post, f"{url}/v1/models/m/predict", json={"texts": [TEXTS[0]] * 1024}, timeout=120)
            for _ in range(3)]
    t0 = time.monotonic()
    while batcher.depth < 1500 and time.monotonic() - t0 < 30:
        time.sleep(0.002)
    marker = "fast path disconnect marker"
    post_and_hang_up(url, "/v1/models/m/predict", {"texts": [marker]})  # send, then hang up at once
    assert [f.result().status_code for f in busy] == [200, 200, 200]
    ex.shutdown()
    t0 = time.monotonic()
    while getattr(fast_app.state, "fast_path_answered", 0) < answered0 + 4 and time.monotonic() - t0 < 10:
        time.sleep(0.02)
    assert getattr(fast_app.state, "fast_path_answered", 0) == answered0 + 4  # the 3 busy ones and the 499
    assert batcher.dropped["cancelled"] > cancelled0
    assert marker not in set(Store(pair["db"]).read_predictions()["text"])
    assert _requests(pair["fast"].get("/metrics").text).get(("m", "499"), 0) >= 1
