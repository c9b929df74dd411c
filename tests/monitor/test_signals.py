"""Drift signals are found by name (one file each) and a new one joins every report and the timeline;
the typed reference profile round-trips its JSON form."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from monitor_synth import synthetic_profile, synthetic_records

from transferops.errors import ArtifactError, ConfigError
from transferops.monitor.drift import DRIFT_COLUMNS, DriftMonitor
from transferops.monitor.profile import Histogram, ReferenceProfile, load_profile, save_profile
from transferops.monitor.signals import (
    Signal,
    SignalContext,
    grade,
    register_signal,
    registered_signals,
    unregister_signal,
)
from transferops.monitor.window import PreparedWindow


def _frame(recs: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(recs)[list(DRIFT_COLUMNS)]


def test_every_builtin_signal_is_one_discovered_file():
    import transferops.monitor.signals as pkg

    specs = {s.name: s for s in registered_signals()}
    assert list(specs) == ["class_psi", "confidence_psi", "feature_psi", "embedding", "accuracy_drop"]
    files = {p.stem for p in Path(pkg.__file__).parent.glob("*.py")} - {"__init__", "base"}
    assert {s.compute.__module__.rsplit(".", 1)[1] for s in specs.values()} == files


@pytest.fixture
def review_shift() -> Iterator[str]:
    """A signal from outside the package: the review rate against a fixed expectation of 10 %."""

    @register_signal("review_shift", order=60)
    def review_shift(ctx: SignalContext) -> Iterator[Signal]:
        if ctx.review_rate is not None:
            v = abs(ctx.review_rate - 0.1)
            yield Signal("review_shift", v, grade(v, 0.05, 0.2), 0.05, 0.2, {"n": ctx.window.n})

    yield "review_shift"
    unregister_signal("review_shift")


def test_a_registered_signal_joins_report_status_and_timeline(review_shift):
    mon = DriftMonitor().fit(synthetic_profile())
    frame = _frame(synthetic_records(600, seed=3, review_below=0.8))  # ~ 45 % routed to review
    rep = mon.calculate(frame)
    sig = rep.signal(review_shift)
    assert rep.signals[-1] is sig and sig.value == pytest.approx(abs(rep.review_rate - 0.1))
    assert sig.status == "retrain" and rep.status == "retrain" and review_shift in rep.triggered
    assert len(mon.timeline(frame, buckets=4)) == 4
    unregister_signal(review_shift)
    assert review_shift not in [s.name for s in mon.calculate(frame).signals]


def test_a_taken_signal_name_is_refused():
    with pytest.raises(ConfigError, match="class_psi.*already registered"):
        register_signal("class_psi")(lambda ctx: iter(()))


def test_prepared_window_slices_and_empty():
    prof = ReferenceProfile.from_dict(synthetic_profile())
    win = PreparedWindow.from_frame(_frame(synthetic_records(100, seed=4, ts0=time.time())), prof)
    part = win.slice(slice(10, 30))
    assert part.n == 20 and part.n_represented == 20 and part.features["n_chars"].bins.shape == (20,)
    assert win.slice(slice(None)) is win and win.n_represented == 100
    assert DriftMonitor().fit(prof).calculate(PreparedWindow.empty(len(prof.labels))).status == "unknown"


def test_reference_profile_round_trip_and_mapping(tmp_path):
    raw = synthetic_profile()
    prof = ReferenceProfile.from_dict(raw)
    assert prof.confidence.edges == tuple(raw["confidence"]["edges"]) and prof.labels[0] == "business"
    assert prof["confidence"]["counts"] == raw["confidence"]["counts"] and prof == raw
    assert isinstance(prof.confidence, Histogram) and prof.sketch_array.shape == (400, 16)
    with pytest.warns(UserWarning, match="version 99"):
        save_profile(tmp_path, {**raw, "from_the_future": {"x": 1}, "version": 99})
    with pytest.warns(UserWarning, match="version 99"):
        back = load_profile(tmp_path)
    assert back.extra == {"from_the_future": {"x": 1}}
    assert json.loads((tmp_path / "reference_profile.json").read_text())["from_the_future"] == {"x": 1}
    with pytest.raises(ArtifactError, match="'confidence' is missing"):
        ReferenceProfile.from_dict({k: v for k, v in raw.items() if k != "confidence"})
    with pytest.raises(ArtifactError, match="edges"):
        Histogram(edges=(0.5,), counts=(1, 2, 3))
    assert np.isclose(sum(prof["confidence"]["counts"]), raw["n"])
