"""The typed prediction record: the server's dicts and PredictionRecord go through the same row
conversion into the store (SQLite and PostgreSQL), through the logger too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transferops.errors import DataError
from transferops.monitor.logger import PredictionLogger
from transferops.monitor.records import PREDICTION_COLUMNS, PredictionRecord, to_row


def _server_dict(pid: str, ts: float) -> dict:
    """The record exactly as deploy/server.py builds it today (client_id included)."""
    return {"id": pid, "ts": ts, "model": "news", "model_version": "abc", "arm": None, "experiment": None,
            "ab_key": None, "route": "auto", "label": ["sport", "tech"], "probabilities": {"sport": 0.91, "tech": 0.7},
            "confidence": 0.7, "latency_ms": 3.5, "n_chars": 12, "n_tokens": 4, "unk_rate": 0.0,
            "sketch": [0.1] * 16, "text": "hello world!", "client_id": "c-1"}


def test_record_and_dict_store_the_same_row(store):
    d = _server_dict("p1", 100.0)
    rec = PredictionRecord.from_mapping({**d, "id": "p2", "ts": 101.0, "an_unknown_key": 1})
    assert rec.client_id == "c-1" and rec.label == ["sport", "tech"]
    assert {k: v for k, v in to_row(rec).items() if k not in ("id", "ts")} == \
        {k: v for k, v in to_row(d).items() if k not in ("id", "ts")}
    assert "client_id" not in PREDICTION_COLUMNS and set(to_row(rec)) == set(PREDICTION_COLUMNS)
    assert store.insert_predictions([d, rec]) == 2
    df = store.read_predictions()
    assert list(df["id"]) == ["p1", "p2"]
    assert df["label"][1] == '["sport", "tech"]' and df["probabilities"][1] == {"sport": 0.91, "tech": 0.7}
    assert df["confidence"][0] == df["confidence"][1] == pytest.approx(0.7)


def test_logger_takes_records_in_both_modes(sqlite_store):
    log = PredictionLogger(sqlite_store, flush_interval=0.05).start()
    try:
        assert log.commit([PredictionRecord(id="a", ts=1.0, label="sport", confidence=float("nan"))]).result(5) == 1
        log.submit([_server_dict("b", 2.0)])
    finally:
        log.close()
    df = sqlite_store.read_predictions(columns=["id", "label", "confidence"])
    assert list(df["id"]) == ["a", "b"] and df["confidence"].isna().tolist() == [True, False]


def test_bad_records_name_the_field():
    with pytest.raises(DataError, match="'id' is required"):
        to_row(PredictionRecord(id="", ts=1.0))
    with pytest.raises(DataError, match="'id' is required"):
        PredictionRecord.from_mapping({"ts": 1.0})
    with pytest.raises(DataError, match="ts:"):
        to_row({"id": "x", "ts": "yesterday-ish"})


def test_store_module_imports_without_the_extra():
    """No require() at import: the module loads without SQLAlchemy; Store() names the extra."""
    code = ("import sys; sys.modules['sqlalchemy'] = None\n"
            "import transferops.monitor.store as s\n"
            "assert s.parse_window('1h') == 3600\n"
            "try:\n    s.Store(':memory:')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingExtraError") and "transferops[monitor]" in out
