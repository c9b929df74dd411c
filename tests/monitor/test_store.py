"""Storage layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from monitor_synth import synthetic_records

from transferops.errors import ConfigError, DataError
from transferops.monitor.registry import Registry
from transferops.monitor.store import Store, normalise_url, parse_window, to_epoch


def test_url_normalisation(tmp_path):
    assert normalise_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert normalise_url("postgresql://u@h:5/d") == "postgresql+psycopg://u@h:5/d"
    assert normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalise_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    with pytest.raises(ConfigError, match="not supported"):
        normalise_url("mysql://u@h/d")


def test_parse_window_and_times():
    assert parse_window("90d") == 90 * 86400
    assert parse_window("30m") == 1800
    with pytest.raises(ConfigError, match="window"):
        parse_window("soon")
    assert to_epoch("1970-01-01T00:01:00Z") == 60.0
    assert to_epoch(12.5) == 12.5
    with pytest.raises(DataError):
        to_epoch("yesterday-ish")


def test_sqlite_uses_wal(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"


def test_insert_and_read_roundtrip(store):
    recs = synthetic_records(50, ts0=1000.0)
    assert store.insert_predictions(recs) == 50
    assert store.count_predictions() == 50
    df = store.read_predictions()
    assert list(df["id"]) == [r["id"] for r in recs]  # time order
    assert df["probabilities"][0] == pytest.approx(recs[0]["probabilities"], abs=1e-6)
    assert len(df["sketch"][3]) == 16
    # Only the requested columns; the newest N, still in time order.
    last = store.read_predictions(columns=["label", "confidence"], last=10)
    assert list(last.columns) == ["label", "confidence"]
    assert list(last["label"]) == [r["label"] for r in recs[-10:]]
    lo, hi = store.time_range()
    assert lo == pytest.approx(1000.0) and hi == pytest.approx(recs[-1]["ts"])
    win = store.read_predictions(columns=["id"], since=recs[20]["ts"], until=recs[30]["ts"])
    assert list(win["id"]) == [r["id"] for r in recs[20:30]]
    counts = store.class_counts()
    assert sum(counts.values()) == 50
    with pytest.raises(ConfigError, match="unknown prediction column"):
        store.read_predictions(columns=["nope"])


def test_duplicate_id_is_rejected_as_a_batch(store):
    recs = synthetic_records(3)
    store.insert_predictions(recs)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.insert_predictions([recs[0]])
    assert store.count_predictions() == 3


def test_feedback_join_latest_wins_and_unknown_id(store):
    recs = synthetic_records(5)
    store.insert_predictions(recs)
    store.add_feedback(recs[0]["id"], "sport")
    store.add_feedback(recs[0]["id"], "tech")  # corrected label
    store.add_feedback(recs[1]["id"], recs[1]["label"])
    with pytest.raises(KeyError):
        store.add_feedback("no-such-id", "sport")
    fb = store.read_feedback_joined(with_text=True)
    assert len(fb) == 2
    row = fb.set_index("id").loc[recs[0]["id"]]
    assert row["true"] == "tech" and row["predicted"] == recs[0]["label"] and row["text"] == recs[0]["text"]


def test_outcomes_join_prediction_arm(store):
    recs = synthetic_records(2)
    recs[0].update(arm="treatment", experiment="exp1", ab_key="user-1")
    store.insert_predictions(recs)
    store.add_outcome(recs[0]["id"], "click", 1.0, key="user-1")
    store.add_outcome(None, "conversion", 0.0, key="user-9")
    out = store.read_outcomes(metric="click")
    assert len(out) == 1 and out["arm"][0] == "treatment" and out["value"][0] == 1.0
    assert len(store.read_outcomes(experiment="exp1")) == 1
    assert len(store.read_outcomes()) == 2


def test_concurrent_writers_lose_nothing(store):
    def write(seed: int) -> None:
        for k in range(5):
            store.insert_predictions(synthetic_records(40, seed=seed * 100 + k))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_predictions() == 4 * 5 * 40
    assert store.integrity_ok()


def test_registry_roundtrip(store, tiny_run):
    reg = Registry(store)
    v1 = reg.register(tiny_run)
    v2 = reg.register(tiny_run, parent=v1.version, note="retrain")
    assert (v1.version, v2.version) == ("v1", "v2")
    assert v2.parent == "v1" and v2.data_fingerprint and v2.base_checkpoint
    assert "test" in v2.metrics
    reg.promote("v1")
    reg.set_alias("challenger", "v2")
    assert reg.resolve("champion").version == "v1"
    assert reg.resolve("challenger").version == "v2"
    reg.promote("v2")
    assert reg.alias("challenger") is None  # a promoted challenger is no longer a challenger
    assert reg.rollback().version == "v1"
    assert reg.alias("champion") == "v1"
    with pytest.raises(ConfigError, match="no earlier champion"):
        reg.rollback()
    with pytest.raises(ConfigError, match="not in the registry"):
        reg.get("v9")
    assert [v.version for v in reg.list()] == ["v1", "v2"]


def test_store_reopens_existing_tables(tmp_path):
    a = Store(tmp_path / "m.db")
    a.insert_predictions(synthetic_records(3))
    a.dispose()
    b = Store(f"sqlite:///{tmp_path / 'm.db'}")
    assert b.count_predictions() == 3
    time.sleep(0)
