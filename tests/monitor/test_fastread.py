"""Binning in the database gives exactly the signals computed from the fetched rows."""

from __future__ import annotations

import time

import numpy as np
import pytest
from monitor_synth import synthetic_profile, synthetic_records

from transferops.monitor import fastread
from transferops.monitor.api import monitor
from transferops.monitor.drift import DRIFT_COLUMNS, DriftMonitor
from transferops.monitor.profile import save_profile


@pytest.fixture
def mixed(store):
    recs = synthetic_records(3000, seed=1) + synthetic_records(
        2000, seed=2, class_p=[0.05, 0.05, 0.05, 0.8, 0.05], conf_beta=(2, 3), chars_mean=700,
        ts0=time.time() - 300)
    recs[5]["label"] = "weather"  # a class the reference never saw
    recs[6]["confidence"] = None
    recs[7]["route"] = None
    recs[8]["n_chars"] = None
    store.insert_predictions(recs)
    return store


@pytest.mark.parametrize("grouped", [False, True], ids=["per-row", "group-by"])
def test_binned_window_equals_row_path(mixed, grouped):
    """Per-row bins or COUNT(*) GROUP BY in the database: the same signals as the Python path."""
    prof = synthetic_profile()
    mon = DriftMonitor().fit(prof)
    frame = mixed.read_predictions(columns=list(DRIFT_COLUMNS))
    binned = fastread.binned_window(mixed, prof, since=None, until=None, model=None, buckets=12, grouped=grouped)
    if grouped:
        assert binned.step == 1 and binned.n == 5000  # every row counted, none fetched
    a, b = mon.calculate(frame), mon.calculate(binned)
    assert [s.name for s in a.signals] == [s.name for s in b.signals]
    for sa_, sb in zip(a.signals, b.signals, strict=True):
        assert sa_.value == pytest.approx(sb.value, abs=1e-9), sa_.name
    assert a.class_share == b.class_share and a.n == b.n == 5000
    assert a.high_confidence_share == pytest.approx(b.high_confidence_share)
    assert a.review_rate == pytest.approx(b.review_rate)
    ta, tb = mon.timeline(frame, buckets=12), mon.timeline(binned, buckets=12)
    cols = ["n", "class_psi", "confidence_psi", "feature_psi_max", "high_confidence_share", "review_rate"]
    assert np.allclose(ta[cols].to_numpy(float), tb[cols].to_numpy(float))


def test_monitor_switches_to_database_binning_for_big_windows(mixed, tmp_path, monkeypatch):
    save_profile(tmp_path, synthetic_profile())
    slow = monitor(tmp_path, db=mixed, last=4000)
    monkeypatch.setattr(fastread, "FAST_MIN_ROWS", 100)
    fast = monitor(tmp_path, db=mixed, last=4000)
    assert fast.extra["binned_in_database"] and not slow.extra["binned_in_database"]
    assert fast.report.n == slow.report.n == 4000
    assert fast.report.signal("class_psi").value == pytest.approx(slow.report.signal("class_psi").value)
    assert fast.report.status == slow.report.status


def test_sampled_binning_is_close_to_all_rows(mixed):
    prof = synthetic_profile()
    mon = DriftMonitor().fit(prof)
    full = mon.calculate(fastread.binned_window(mixed, prof, since=None, until=None, model=None, buckets=6))
    part = fastread.binned_window(mixed, prof, since=None, until=None, model=None, buckets=6, max_rows=2500)
    assert part.step == 2 and 1800 < part.n < 3200  # every 2nd row (hash-based on PostgreSQL)
    rep = mon.calculate(part)
    assert rep.sampled_every == 2 and rep.n == 5000
    for a, b in zip(full.signals, rep.signals, strict=True):
        assert b.value == pytest.approx(a.value, abs=0.08), a.name
    assert rep.status == full.status
    assert len(mon.timeline(part, buckets=6)) == 6


def test_monitor_group_by_opt_in_counts_every_row_in_sql(mixed, tmp_path, monkeypatch):
    save_profile(tmp_path, synthetic_profile())
    slow = monitor(tmp_path, db=mixed, last=4000)
    monkeypatch.setattr(fastread, "FAST_MIN_ROWS", 100)
    monkeypatch.setenv("TRANSFEROPS_DRIFT_GROUP_BY", "1")
    fast = monitor(tmp_path, db=mixed, last=4000)
    assert fast.extra["binned_in_database"] and fast.report.sampled_every == 1
    assert fast.report.n == slow.report.n == 4000
    for a, b in zip(slow.report.signals, fast.report.signals, strict=True):
        if a.name != "embedding":
            assert a.value == pytest.approx(b.value, abs=1e-9), a.name
