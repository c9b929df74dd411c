"""The async prediction logger: batching, bounded buffer under a locked or unreachable database."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest
from monitor_synth import synthetic_records

from transferops.errors import ConfigError
from transferops.monitor.logger import PredictionLogger
from transferops.monitor.store import Store


def _wait(cond, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_logger_writes_everything_in_batches(store):
    lg = PredictionLogger(store, flush_interval=0.05, batch_size=64).start()
    recs = synthetic_records(500, seed=2)
    for i in range(0, 500, 25):
        lg.submit(recs[i:i + 25])
    assert _wait(lambda: lg.written == 500)
    lg.close()
    assert store.count_predictions() == 500
    s = lg.stats()
    assert s["dropped"] == 0 and s["errors"] == 0 and s["buffered"] == 0
    assert s["flushes"] >= 500 // 64  # batched, not one row per transaction


def test_close_flushes_the_tail(sqlite_store):
    lg = PredictionLogger(sqlite_store, flush_interval=1.0).start()
    lg.submit(synthetic_records(10))
    lg.close()
    assert sqlite_store.count_predictions() == 10


def test_bounded_buffer_while_database_is_locked(tmp_path, caplog):
    path = tmp_path / "locked.db"
    st = Store(path, busy_timeout_s=0.05)
    lg = PredictionLogger(st, flush_interval=0.05, max_buffer=300, batch_size=100, log_every_s=0.0).start()
    blocker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    recs = synthetic_records(1000, seed=3)
    with caplog.at_level(logging.WARNING, logger="transferops.monitor.logger"):
        for i in range(0, 1000, 50):
            lg.submit(recs[i:i + 50])  # must neither raise nor grow past the bound
            time.sleep(0.01)
        assert _wait(lambda: lg.errors > 0)
    assert lg.max_seen_buffer <= 300
    assert lg.buffered <= 300
    # Every record is accounted for once no batch is in flight (the flusher retries every 50 ms).
    assert _wait(lambda: lg.dropped + lg.buffered + lg.written == 1000)
    assert lg.dropped >= 700
    assert any("dropped" in r.getMessage() or "write failed" in r.getMessage() for r in caplog.records)
    blocker.execute("COMMIT")
    blocker.close()
    kept = lg.buffered + lg.written
    assert _wait(lambda: lg.buffered == 0)
    lg.close()
    assert st.count_predictions() == kept == lg.written
    assert st.integrity_ok()
    # Stored rows are the oldest accepted ones, not garbage.
    ids = set(st.read_predictions(columns=["id"])["id"])
    assert ids <= {r["id"] for r in recs}


def test_unreachable_database_never_raises(caplog):
    st = Store("postgresql://nobody@127.0.0.1:1/none", busy_timeout_s=1, create=False)
    lg = PredictionLogger(st, flush_interval=0.05, max_buffer=100, log_every_s=0.0).start()
    with caplog.at_level(logging.WARNING, logger="transferops.monitor.logger"):
        for _ in range(5):
            lg.submit(synthetic_records(50))
        assert _wait(lambda: lg.errors >= 1)
    lg.close(timeout=5)
    assert lg.written == 0 and lg.buffered <= 100 and lg.dropped >= 150
    assert "OperationalError" in (lg.last_error or "")


def test_duplicate_id_does_not_poison_the_buffer(sqlite_store):
    recs = synthetic_records(20)
    sqlite_store.insert_predictions(recs[:1])
    lg = PredictionLogger(sqlite_store, flush_interval=0.05).start()
    lg.submit(recs)  # the first one is already stored
    assert _wait(lambda: lg.buffered == 0)
    lg.close()
    assert sqlite_store.count_predictions() == 20 and lg.dropped == 1


def test_logger_config_is_validated(sqlite_store):
    with pytest.raises(ConfigError, match="flush_interval"):
        PredictionLogger(sqlite_store, flush_interval=5)
    with pytest.raises(ConfigError):
        PredictionLogger(sqlite_store, max_buffer=0)
