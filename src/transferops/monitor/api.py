"""``monitor``: read a window of the prediction log and compare it with the reference profile.

>>> result = monitor("runs/news", db="runs/monitor.db", window="1d")          # doctest: +SKIP
>>> result.report.status, result.report.triggered                             # doctest: +SKIP
('retrain', ['class_psi', 'embedding'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from transferops.errors import ConfigError
from transferops.monitor import fastread
from transferops.monitor.drift import DRIFT_COLUMNS, DriftConfig, DriftMonitor, DriftReport, read_sketches
from transferops.monitor.profile import ReferenceProfile, load_profile
from transferops.monitor.store import Store, parse_window
from transferops.monitor.window import PreparedWindow


@dataclass
class MonitorResult:
    """The current window's report plus the per-bucket series for the dashboard."""

    report: DriftReport
    timeline: pd.DataFrame
    model_path: str
    window: str | None
    last: int | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tl = self.timeline.astype(object).where(self.timeline.notna(), None)
        return {"model": self.model_path, "window": self.window, "last": self.last,
                "seconds": round(self.seconds, 3), "generated": time.time(), **self.report.to_dict(),
                "timeline": tl.to_dict(orient="records"), **self.extra}


def resolve_model_path(model: str | Path, store: Store | None) -> Path:
    """A folder path, or a registry alias/version (``champion``, ``v3``) looked up in ``store``."""
    p = Path(model)
    if p.exists():
        return p
    if store is not None:
        from transferops.monitor.registry import Registry

        return Path(Registry(store).resolve(str(model)).path)
    raise ConfigError(f"model: {model!r} is neither a model folder nor a registry alias (pass --db to use aliases)")


def window_bounds(window: str | None, now: float | None = None) -> tuple[float | None, float | None]:
    if window is None:
        return None, None
    if now is None:
        return time.time() - parse_window(window), None
    return now - parse_window(window), now


def monitor(model: str | Path, *, db: str | Path | Store, window: str | None = None, last: int | None = None,
            config: DriftConfig | None = None, buckets: int = 24, model_name: str | None = None,
            now: float | None = None, profile: ReferenceProfile | dict[str, Any] | None = None
            ) -> MonitorResult:
    """Drift report of the newest predictions (``window`` like ``1d``, or the ``last`` N) vs the profile."""
    t0 = time.perf_counter()
    if window is not None and last is not None:
        raise ConfigError("window and last: give one of them, not both")
    if last is not None and last < 1:
        raise ConfigError(f"last: must be >= 1, got {last}")
    store = db if isinstance(db, Store) else Store(db)
    path = resolve_model_path(model, store)
    prof = ReferenceProfile.from_dict(profile) if profile is not None else load_profile(path)
    cfg = config or DriftConfig()
    since, until = window_bounds(window, now)
    mon = DriftMonitor(cfg).fit(prof)
    frame: Any = None
    n_rows = fastread.count_window(store, since=since, until=until, model=model_name)
    if min(n_rows, last or n_rows) > fastread.FAST_MIN_ROWS and fastread.supported(prof, buckets):
        # Millions of rows: bin them in the database (same signals, one integer per row fetched).
        # With --last, the window starts at the N-th newest timestamp (ties included).
        if last is not None and last < n_rows:
            since = fastread.nth_newest_ts(store, last, since=since, until=until, model=model_name)
        frame = fastread.binned_window(store, prof, since=since, until=until, model=model_name, buckets=buckets,
                                       grouped=fastread.grouped_default(store))
    else:
        frame = store.read_predictions(columns=list(DRIFT_COLUMNS), since=since, until=until, last=last,
                                       model=model_name)
        if last is not None and len(frame):
            since = float(frame["ts"].min())
    feedback = store.read_feedback_joined(since=since, until=until, model=model_name)
    sketches = read_sketches(store, since=since, until=until, last=last, sample=cfg.embedding_sample,
                             model=model_name) if cfg.embedding else None
    report = mon.calculate(frame, feedback=feedback, sketches=sketches)
    timeline = mon.timeline(frame, buckets=buckets, feedback=feedback)
    return MonitorResult(report, timeline, str(path), window, last, time.perf_counter() - t0,
                         extra={"binned_in_database": isinstance(frame, PreparedWindow)})


__all__ = ["MonitorResult", "monitor", "resolve_model_path", "window_bounds"]
