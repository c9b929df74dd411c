"""Monitor and retrain: prediction log, reference profile, drift, dashboard, label queue, registry,
champion/challenger retraining.

Imports are lazy so the training hook (:mod:`transferops.monitor.profile`) works without the
``monitor`` extra (SQLAlchemy) installed.

>>> from transferops.monitor import monitor, Store                  # doctest: +SKIP
>>> monitor("runs/news", db="transferops.db", window="1d").report.status   # doctest: +SKIP
"""

from __future__ import annotations

from transferops._lazy import lazy_exports

_EXPORTS = {
    "Store": "transferops.monitor.store",
    "PredictionLogger": "transferops.monitor.logger",
    "DriftConfig": "transferops.monitor.drift",
    "DriftMonitor": "transferops.monitor.drift",
    "DriftReport": "transferops.monitor.drift",
    "monitor": "transferops.monitor.api",
    "MonitorResult": "transferops.monitor.api",
    "build_profile": "transferops.monitor.profile",
    "load_profile": "transferops.monitor.profile",
    "profile_artifact": "transferops.monitor.profile",
    "label_queue": "transferops.monitor.active",
    "import_labels": "transferops.monitor.active",
    "Registry": "transferops.monitor.registry",
    "retrain": "transferops.monitor.retrain",
    "RetrainConfig": "transferops.monitor.retrain",
    "render_dashboard": "transferops.monitor.dashboard",
    "PredictionRecord": "transferops.monitor.records",
    "make_records": "transferops.monitor.records",
    "ReferenceProfile": "transferops.monitor.profile",
    "PreparedWindow": "transferops.monitor.window",
    "register_signal": "transferops.monitor.signals",
    "registered_signals": "transferops.monitor.signals",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
