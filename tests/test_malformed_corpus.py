"""The malformed-input corpus (issue 12): files given to the CLI and bodies sent to the server, each
with the exit code / HTTP status and a fragment of the message it must produce. Every entry must
be refused with a clear error: rc 2 (never a traceback), or a 4xx (never a 5xx).

Add a case by adding a row; ``file`` rows write ``content`` (bytes, or a callable that writes the
file) and run the command; ``http`` rows send ``body`` (bytes) to the tiny server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from server_testing import running
from transferops.cli.main import main
from transferops.deploy.server import ServeSettings, create_app

GOOD_ROWS = "text,label\n" + "".join(f"row {i} about {lab},{lab}\n" for i in range(6) for lab in ("a", "b"))
TOKEN = "corpus-admin-Xk3v9Q2pL7wz"


def _parquet_list(p: Path) -> None:
    pd.DataFrame({"text": [["Horror", "film", str(i)] for i in range(12)], "label": ["a", "b"] * 6}).to_parquet(p)


def _parquet_dupes(p: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table([pa.array(["x"] * 4), pa.array(["a", "b"] * 2), pa.array(["y"] * 4)], names=["text", "label", "text"])
    pq.write_table(t, p)


# (id, file name, content, extra args or "config"/"evaluate", rc, fragment)
FILE_CASES: list[tuple[str, str, Any, str, int, str]] = [
    ("semicolon-csv", "d.csv", b"text;label\nhello;a\nworld;b\n", "", 2, "semicolon"),
    ("pipe-csv", "d.csv", b"text|label\nhello|a\nworld|b\n", "", 2, "pipe"),
    ("duplicate-columns", "d.csv", b"text,label,text\nx,a,y\nz,b,w\n", "", 2, "appears twice"),
    ("duplicate-columns-parquet", "d.parquet", _parquet_dupes, "", 2, "appears twice"),
    ("parquet-list-text", "d.parquet", _parquet_list, "", 2, "not a text"),
    ("jsonl-list-text", "d.jsonl", b'{"text": ["a", "b"], "label": "a"}\n{"text": "c", "label": "b"}\n', "", 2,
     "not a text"),
    ("missing-file", "absent.csv", None, "", 2, "not found"),
    ("empty-file", "d.csv", b"", "", 2, "empty"),
    ("unsupported-suffix", "d.xlsx", b"PK\x03\x04", "", 2, "unsupported"),
    ("latin1-file", "d.csv", "text,label\ncafé crème,a\nthé,b\n".encode("latin-1"), "", 2, "latin-1"),
    ("no-text-column", "d.csv", b"body,label\nx,a\ny,b\n", "", 2, "text"),
    ("bad-jsonl-line", "d.jsonl", b'{"text": "a", "label": "a"}\n{oops\n', "", 2, "not valid JSON"),
    ("json-not-list", "d.json", b'"just a string"', "", 2, "JSON list"),
    ("one-class", "d.csv", b"text,label\nx,a\ny,a\nz,a\n", "", 2, "only one class"),
    ("empty-text", "d.csv", b"text,label\nx,a\n   ,b\nz,b\n", "", 2, "empty"),
    ("missing-label", "d.csv", b"text,label\nx,a\ny,\nz,b\n", "", 2, "missing label"),
    ("cfg-epochs-float", "c.yaml", b"epochs: 2.5\n", "config", 2, "epochs: expected a number (an integer)"),
    ("cfg-batch-float", "c.yaml", b"batch_size: 2.5\n", "config", 2, "batch_size: expected a number (an integer)"),
    ("cfg-seed-str", "c.yaml", b'seed: "abc"\n', "config", 2, "seed: expected a number (an integer)"),
    ("cfg-lora-list", "c.yaml", b"lora: [1, 2]\n", "config", 2, "lora: expected a mapping"),
    ("cfg-baseline-str", "c.yaml", b'baseline: "false"\n', "config", 2, "baseline: expected a boolean"),
    ("cfg-max-length-str", "c.yaml", b'max_length: "64"\n', "config", 2, "max_length: expected a number (an integer)"),
    ("cfg-metric-list", "c.yaml", b"metric: [a, b]\n", "config", 2, "metric: expected a string"),
    ("cfg-lora-r-float", "c.yaml", b"lora: {r: 2.5}\n", "config", 2, "lora.r: expected a number (an integer)"),
    ("cfg-unknown-key", "c.yaml", b"learning_rate: 0.1\n", "config", 2, "Did you mean 'lr'"),
    ("cfg-not-mapping", "c.yaml", b"- 1\n- 2\n", "config", 2, "must be a mapping"),
    ("cfg-invalid-yaml", "c.yaml", b"epochs: [1,\n", "config", 2, "not valid YAML"),
    ("cfg-bad-strategy", "c.yaml", b"strategy: bogus\n", "config", 2, "is not one of"),
    ("cfg-negative-lr", "c.yaml", b"lr: -1.0\n", "config", 2, "lr"),
    ("eval-nan-labels", "e.csv", b"text,label\nsome text,\nmore text,\n", "evaluate", 2, "no label"),
]

HTTP_CASES: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("surrogate-text", "/v1/models/m/predict", b'{"texts": ["abc \\ud800"]}', {}, 422, "surrogate"),
    ("surrogate-id", "/v1/models/m/predict", b'{"texts": ["a"], "ids": ["\\udfff"]}', {}, 422, "surrogate"),
    ("bool-id", "/v1/models/m/predict", b'{"texts": ["a"], "ids": [true]}', {}, 422, "ids"),
    ("int-text", "/v1/models/m/predict", b'{"texts": [1]}', {}, 422, "string"),
    ("texts-not-list", "/v1/models/m/predict", b'{"texts": "abc"}', {}, 422, "list"),
    ("no-texts", "/v1/models/m/predict", b'{"texts": []}', {}, 422, "texts"),
    ("extra-field", "/v1/models/m/predict", b'{"texts": ["a"], "x": 1}', {}, 422, "Extra"),
    ("ids-length", "/v1/models/m/predict", b'{"texts": ["a", "b"], "ids": [1]}', {}, 422, "one per text"),
    ("latin1-body", "/v1/models/m/predict", '{"texts": ["café"]}'.encode("latin-1"), {}, 422, "UTF-8"),
    ("invalid-utf8", "/v1/models/m/predict", b'{"texts": ["\xc3\x28"]}', {}, 422, "UTF-8"),
    ("malformed-json", "/v1/models/m/predict", b'{"texts": [', {}, 422, "malformed JSON"),
    ("empty-body", "/v1/models/m/predict", b"", {}, 422, "body"),
    ("not-json-ctype", "/v1/models/m/predict", b"texts=a", {"Content-Type": "text/plain"}, 422, "Content-Type"),
    ("too-many-texts", "/v1/models/m/predict", b'{"texts": [' + b",".join([b'"a"'] * 65) + b"]}", {}, 422,
     "max_texts_per_request"),
    ("text-too-long", "/v1/models/m/predict", b'{"texts": ["' + b"x" * 2000 + b'"]}', {}, 422, "max_chars_per_text"),
    ("body-too-large", "/v1/models/m/predict", b'{"texts": ["' + b"y" * 70_000 + b'"]}', {}, 413, "max_body_bytes"),
    ("unknown-model", "/v1/models/ghost/predict", b'{"texts": ["a"]}', {}, 404, "unknown model"),
    ("bad-timeout-header", "/v1/models/m/predict", b'{"texts": ["a"]}', {"X-Request-Timeout": "abc"}, 422,
     "X-Request-Timeout"),
    ("many-headers", "/v1/models/m/predict", b'{"texts": ["a"]}', {f"x-h{i}": "1" for i in range(300)}, 431,
     "max_headers"),
    ("huge-header", "/v1/models/m/predict", b'{"texts": ["a"]}', {"x-big": "z" * 40_000}, 431, "max_header_bytes"),
    ("nul-admin-path", "/admin/models/x", b'{"path": "/tmp/a\\u0000b"}', {"Authorization": f"Bearer {TOKEN}"},
     422, "NUL"),
    ("surrogate-admin-path", "/admin/adapters/x", b'{"path": "a\\ud800"}', {"Authorization": f"Bearer {TOKEN}"},
     422, "surrogate"),
    ("admin-no-token", "/admin/models/x", b'{"path": "/tmp"}', {}, 401, "token"),
    ("feedback-no-db", "/v1/feedback", b'{"prediction_id": "p", "label": "a"}', {}, 404, "--db"),
    ("outcomes-no-db", "/v1/outcomes", b'{"key": "u", "metric": "m", "value": 1}', {}, 404, "--db"),
]


@pytest.fixture(scope="module")
def corpus_server(tiny_run: Path) -> Iterator[str]:
    settings = ServeSettings(models={"m": str(tiny_run)}, admin_token=TOKEN, max_texts_per_request=64,
                             max_chars_per_text=1000, max_body_bytes=64 * 1024, max_headers=100,
                             max_header_bytes=16 * 1024)
    with running(create_app(settings)) as url:
        yield url


def _write(p: Path, content: Any) -> None:
    if content is None:
        return
    if isinstance(content, Callable):  # type: ignore[arg-type]
        content(p)
    else:
        p.write_bytes(content)


CASES = [pytest.param("file", c, id=f"file:{c[0]}") for c in FILE_CASES] + \
        [pytest.param("http", c, id=f"http:{c[0]}", marks=pytest.mark.server) for c in HTTP_CASES]


@pytest.mark.parametrize("kind, case", CASES)
def test_malformed_input_gives_a_clear_error(kind: str, case: tuple[Any, ...], request: pytest.FixtureRequest,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if kind == "http":
        _, path, body, headers, status, fragment = case
        url = request.getfixturevalue("corpus_server")
        hdrs = {"Content-Type": "application/json", **headers}
        r = httpx.post(f"{url}{path}", content=body, headers=hdrs, timeout=60)
        assert r.status_code == status, (r.status_code, r.text[:300])
        assert fragment in r.text, r.text[:300]
        return
    _, name, content, mode, rc, fragment = case
    tiny_bert = request.getfixturevalue("tiny_bert")
    f = tmp_path / name
    _write(f, content)
    if mode == "config":
        data = tmp_path / "good.csv"
        data.write_text(GOOD_ROWS)
        argv = ["train", "--data", str(data), "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_bert),
                "--config", str(f)]
    elif mode == "evaluate":
        argv = ["evaluate", "--model", str(request.getfixturevalue("tiny_run")), "--data", str(f)]
    else:
        argv = ["train", "--data", str(f), "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_bert)]
    got = main(argv)
    err = capsys.readouterr().err
    assert got == rc, err[-500:]
    assert fragment.lower() in err.lower(), err[-500:]
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err[-500:]
