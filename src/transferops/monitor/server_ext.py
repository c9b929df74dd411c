"""The monitoring router of ``transferops serve`` (owned by monitor): prediction log, feedback,
dashboard, drift gauges and champion pickup. :func:`transferops.deploy.server.create_app` calls
:func:`mount`; settings: :class:`~transferops.monitor.settings.MonitorSettings`.

With ``--db URL`` (``MonitorSettings.db_url``):

* every prediction record goes to a :class:`~transferops.monitor.logger.PredictionLogger` (batched
  on a background thread every 0.5 s, bounded buffer, drops counted; never blocks a response);
* ``POST /v1/feedback {prediction_id, label}`` stores ground truth (404 unknown id, 422 bad label);
* ``GET /dashboard`` renders the monitoring page for a served model (``?model=&window=&last=``);
* drift gauges are refreshed on the app's Prometheus registry every ``TRANSFEROPS_DRIFT_INTERVAL_S``
  seconds (default 60) and whenever the dashboard is rendered;
* the served model whose folder is the registry's ``champion`` (or the name in
  ``TRANSFEROPS_CHAMPION_NAME``) follows the alias: a poller (``TRANSFEROPS_CHAMPION_POLL_S``, default
  5 s) or ``POST /admin/champion`` swaps the new champion in with ``hub.load`` (atomic; in-flight
  batches finish on the old model).

Without a database none of these routes is mounted: a request to one gets 404 naming ``--db URL``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from transferops.constants import EXPORT_MANIFEST, REFERENCE_PROFILE
from transferops.deploy.http import AdminDep, not_mounted
from transferops.deploy.settings import ServeSettings
from transferops.errors import ConfigError
from transferops.monitor.settings import MonitorSettings

log = logging.getLogger("transferops.monitor.server")

STATUS_VALUE = {"unknown": -1, "ok": 0, "warn": 1, "retrain": 2}
DEFAULT_LAST = 10_000


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def profile_dir_for(path: str | Path) -> Path | None:
    """Folder holding the reference profile of a served model (artifact, or an export's source)."""
    p = Path(path)
    if (p / REFERENCE_PROFILE).exists():
        return p
    exp = p / EXPORT_MANIFEST
    if exp.exists():
        try:
            src = json.loads(exp.read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError):
            src = None
        if src and (Path(src) / REFERENCE_PROFILE).exists():
            return Path(src)
    return None


class FeedbackRequest(BaseModel):
    """Ground truth for one logged prediction."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(min_length=1, max_length=64, description="prediction_id from a predict response")
    label: str | list[str] = Field(description="the true label (a list for multi-label models)")


class MonitorExtension:
    """State shared by the routes and background threads of the monitoring extension."""

    def __init__(self, app: Any, settings: MonitorSettings) -> None:
        self.app = app
        self.settings = settings
        self.store: Any = None
        self.logger: Any = None
        self.champion_name: str | None = os.environ.get("TRANSFEROPS_CHAMPION_NAME") or None
        self.champion_version: str | None = None
        self.champion_poll_s = _env_float("TRANSFEROPS_CHAMPION_POLL_S", 5.0)
        self.drift_interval_s = _env_float("TRANSFEROPS_DRIFT_INTERVAL_S", 60.0)
        self.flush_interval_s = min(max(_env_float("TRANSFEROPS_LOG_FLUSH_S", 0.5), 0.01), 1.0)
        self.max_buffer = int(_env_float("TRANSFEROPS_LOG_MAX_BUFFER", 100_000))
        self.swaps = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gauges: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup
    def setup_store(self) -> None:
        from transferops.monitor.logger import PredictionLogger
        from transferops.monitor.store import Store

        url = self.settings.db_url
        if not url:
            raise ConfigError("db_url: monitoring needs the prediction log; start the server with --db URL")
        # create=False: an unreachable database must not stop the server from starting; the
        # logger creates the tables on its first successful flush.
        self.store = Store(url, busy_timeout_s=1.0, create=False)
        self.logger = PredictionLogger(self.store, flush_interval=self.flush_interval_s, max_buffer=self.max_buffer)
        if self.settings.log_mode == "durable":
            # the server awaits the commit before it answers (acknowledged means durable)
            self.app.state.durable_log = self.logger.commit
        else:
            self.app.state.prediction_listeners.append(self.logger.submit)
        self.app.state.prediction_logger = self.logger

    def setup_metrics(self) -> None:
        from prometheus_client import Gauge
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        reg = self.app.state.metrics_registry
        self._gauges = {
            "signal": Gauge("transferops_drift_value", "Drift signal value (PSI, embedding score, accuracy drop)",
                            ["model", "signal"], registry=reg),
            "status": Gauge("transferops_drift_status", "Drift status: -1 unknown, 0 ok, 1 warn, 2 retrain",
                            ["model"], registry=reg),
            "high": Gauge("transferops_high_confidence_share", "Share of predictions with confidence >= 0.9",
                          ["model"], registry=reg),
            "review": Gauge("transferops_monitor_review_rate", "Share routed to review in the drift window",
                            ["model"], registry=reg),
            "accuracy": Gauge("transferops_feedback_accuracy", "Accuracy on predictions with feedback",
                              ["model"], registry=reg),
            "window": Gauge("transferops_drift_window_predictions", "Predictions in the drift window",
                            ["model"], registry=reg),
        }
        ext = self

        class LogCollector:
            def collect(self) -> Any:
                s = ext.logger.stats() if ext.logger is not None else {}
                for key in ("written", "dropped", "errors"):
                    c = CounterMetricFamily(f"transferops_prediction_log_{key}", f"Prediction log records {key}")
                    c.add_metric([], float(s.get(key, 0)))
                    yield c
                g = GaugeMetricFamily("transferops_prediction_log_buffered", "Records waiting to be written")
                g.add_metric([], float(s.get("buffered", 0)))
                yield g

        reg.register(LogCollector())

    # ------------------------------------------------------------------ lifecycle
    def start(self, _app: Any = None) -> None:
        if self.logger is not None:
            self.logger.start()
        self._bind_champion()
        for target, name in ((self._drift_loop, "transferops-drift"), (self._champion_loop, "transferops-champion")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, _app: Any = None) -> None:
        self._stop.set()
        if self.logger is not None:
            self.logger.close(timeout=5.0)

    # ------------------------------------------------------------------ drift
    def served(self) -> dict[str, Path]:
        hub = self.app.state.hub
        out = {}
        for info in hub.info():
            out[info["name"]] = Path(info["path"])
        return out

    def compute(self, name: str, *, window: str | None = None, last: int | None = None,
                buckets: int = 24) -> Any:
        from transferops.monitor.api import monitor
        from transferops.monitor.profile import load_profile

        path = self.served().get(name)
        if path is None:
            raise KeyError(name)
        pdir = profile_dir_for(path)
        if pdir is None:
            raise FileNotFoundError(f"model {name!r} ({path}) has no {REFERENCE_PROFILE}; build it with "
                                    f"`transferops monitor --model ARTIFACT --build-profile`")
        if window is None and last is None:
            last = DEFAULT_LAST
        self.store.ensure_schema()  # a fresh database has no tables before the first prediction
        res = monitor(pdir, db=self.store, window=window, last=last, buckets=buckets, model_name=name,
                      profile=load_profile(pdir))
        self.publish(name, res.report)
        return res

    def publish(self, name: str, report: Any) -> None:
        if not self._gauges:
            return
        g = self._gauges
        g["status"].labels(name).set(STATUS_VALUE.get(report.status, -1))
        g["window"].labels(name).set(report.n)
        for s in report.signals:
            if s.value is not None:
                g["signal"].labels(name, s.name).set(s.value)
        if report.high_confidence_share is not None:
            g["high"].labels(name).set(report.high_confidence_share)
        if report.review_rate is not None:
            g["review"].labels(name).set(report.review_rate)
        if report.accuracy is not None:
            g["accuracy"].labels(name).set(report.accuracy)

    def refresh_all(self) -> None:
        for name, path in self.served().items():
            if profile_dir_for(path) is None:
                continue
            try:
                self.compute(name)
            except Exception as exc:  # monitoring must never take the server down
                log.warning("drift refresh for %s failed: %s", name, exc)

    def _drift_loop(self) -> None:
        while not self._stop.wait(self.drift_interval_s):
            self.refresh_all()

    # ------------------------------------------------------------------ champion
    def _registry(self) -> Any:
        from transferops.monitor.registry import Registry

        return Registry(self.store)

    def _bind_champion(self) -> None:
        """Which served name follows the champion alias: explicit, or the one serving its folder."""
        if self.store is None:
            return
        try:
            reg = self._registry()
            v = reg.alias("champion")
            if v is None:
                return
            champ = reg.get(v)
        except Exception as exc:
            log.info("no model registry to follow (%s)", exc)
            return
        if self.champion_name is None:
            target = Path(champ.path).resolve()
            for name, path in self.served().items():
                src = profile_dir_for(path)
                if path.resolve() == target or (src is not None and src.resolve() == target):
                    self.champion_name = name
                    break
        if self.champion_name is not None and self.champion_version is None:
            served = self.served().get(self.champion_name)
            if served is not None and (served.resolve() == Path(champ.path).resolve()
                                       or (profile_dir_for(served) or Path("/nonexistent")).resolve()
                                       == Path(champ.path).resolve()):
                self.champion_version = champ.version

    def check_champion(self) -> dict[str, Any]:
        """Swap the champion in if the alias moved; returns what happened."""
        with self._lock:
            if self.store is None:
                return {"swapped": False, "reason": "no database"}
            if self.champion_name is None:
                self._bind_champion()
            if self.champion_name is None:
                return {"swapped": False, "reason": "no served model follows the champion alias"}
            reg = self._registry()
            v = reg.alias("champion")
            if v is None or v == self.champion_version:
                return {"swapped": False, "name": self.champion_name, "version": v}
            mv = reg.get(v)
            info = self.app.state.hub.load(self.champion_name, mv.path)
            previous, self.champion_version = self.champion_version, v
            self.swaps += 1
            log.warning("champion %s → %s: %s now serves %s", previous, v, self.champion_name, mv.path)
            return {"swapped": True, "name": self.champion_name, "version": v, "previous": previous,
                    "model": info}

    def _champion_loop(self) -> None:
        while not self._stop.wait(self.champion_poll_s):
            try:
                self.check_champion()
            except Exception as exc:
                log.warning("champion check failed: %s", exc)


def get_monitor(request: Request) -> MonitorExtension:
    return request.app.state.monitor  # type: ignore[no-any-return]


MonitorDep = Annotated[MonitorExtension, Depends(get_monitor)]
router = APIRouter(tags=["monitor"])
#: The routes of this router (all need the prediction log), for the 404 when it is not mounted.
ROUTES = ("/v1/feedback", "/dashboard", "/v1/monitor/{name}", "/admin/champion")


@router.post("/v1/feedback", responses={404: {"description": "unknown prediction id"},
                                        422: {"description": "invalid label"},
                                        503: {"description": "prediction log unavailable"}})
async def feedback(req: FeedbackRequest, ext: MonitorDep) -> dict[str, Any]:
    """Attach ground truth to a logged prediction (used for accuracy monitoring and retraining)."""
    labels = req.label if isinstance(req.label, list) else [req.label]
    if not labels or any(not str(x).strip() for x in labels):
        raise HTTPException(422, detail=[{"loc": ["body", "label"], "msg": "label must be non-empty",
                                          "type": "value_error"}])

    def record() -> int:
        probs = _prediction_labels(ext, req.prediction_id)
        if probs is None:
            return 404
        unknown = [x for x in labels if x not in probs]
        if probs and unknown:
            return 422
        ext.store.add_feedback(req.prediction_id, req.label, check=False)
        return 200

    try:
        code = await asyncio.to_thread(record)
    except Exception as exc:
        raise HTTPException(503, detail=f"prediction log unavailable: {type(exc).__name__}") from exc
    if code == 404:
        raise HTTPException(404, detail=f"unknown prediction_id {req.prediction_id!r} (ids come from "
                            "the predict response's prediction_id)")
    if code == 422:
        raise HTTPException(422, detail=[{"loc": ["body", "label"], "type": "value_error",
                                          "msg": f"{req.label!r} is not a label of the model that made "
                                                 "this prediction"}])
    return {"prediction_id": req.prediction_id, "label": req.label, "recorded": True}


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(ext: MonitorDep, model: str | None = Query(None), window: str | None = Query(None),
                    last: int | None = Query(None, ge=1, le=5_000_000),
                    buckets: int = Query(24, ge=2, le=500)) -> HTMLResponse:
    """Monitoring dashboard (PSI, confidence, class mix, accuracy, review rate, status)."""
    from transferops.monitor.dashboard import render_dashboard

    served = ext.served()
    name = model or next((n for n, p in sorted(served.items()) if profile_dir_for(p) is not None), None)
    if name is None or name not in served:
        raise HTTPException(404, detail=f"unknown or unprofiled model {model!r}; served: {sorted(served)}")
    if window is not None and last is not None:
        raise HTTPException(422, detail=[{"loc": ["query", "window"], "msg": "give window or last, not both",
                                          "type": "value_error"}])
    try:
        res = await asyncio.to_thread(ext.compute, name, window=window, last=last, buckets=buckets)
    except FileNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, detail=[{"loc": ["query"], "msg": str(exc), "type": "value_error"}]) from exc
    return HTMLResponse(render_dashboard(res.to_dict(), title=f"transferops monitor — {name}", refresh_s=30))


@router.get("/v1/monitor/{name}")
async def drift_json(name: str, ext: MonitorDep, window: str | None = Query(None),
                     last: int | None = Query(None, ge=1, le=5_000_000)) -> dict[str, Any]:
    """The drift report of a served model as JSON (same numbers as the dashboard)."""
    try:
        res = await asyncio.to_thread(ext.compute, name, window=window, last=last)
    except KeyError:
        raise HTTPException(404, detail=f"unknown model {name!r}") from None
    except FileNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except ValueError as exc:  # a bad window: the validation-error shape the schema declares
        raise HTTPException(422, detail=[{"loc": ["query"], "msg": str(exc), "type": "value_error"}]) from exc
    return res.report.to_dict()  # type: ignore[no-any-return]


@router.post("/admin/champion", tags=["admin"])
async def admin_champion(_: AdminDep, ext: MonitorDep) -> dict[str, Any]:
    """Swap in the registry's champion now (instead of waiting for the poller)."""
    return await asyncio.to_thread(ext.check_champion)


def mount(app: FastAPI, settings: ServeSettings) -> None:
    """With a prediction log: the logger, gauges, background threads and the routes; without one
    the routes are not mounted (404 naming ``--db``)."""
    if not settings.monitoring.enabled:
        for path in ROUTES:
            not_mounted(app, path, f"{path} needs the prediction log: start the server with "
                        "--db URL (alias --db-url), e.g. --db sqlite:///monitor.db")
        return
    ext = MonitorExtension(app, settings.monitoring)
    app.state.monitor = ext
    ext.setup_store()
    ext.setup_metrics()
    app.state.startup_hooks.append(ext.start)
    app.state.shutdown_hooks.append(ext.stop)
    app.include_router(router)


def _prediction_labels(ext: MonitorExtension, prediction_id: str) -> list[str] | None:
    """Label names of a logged prediction (None if unknown); waits for a pending flush if needed."""
    import sqlalchemy as sa

    st = ext.store
    p = st.table("predictions")

    def lookup() -> Any:
        st.ensure_schema()
        with st.engine.connect() as conn:
            return conn.execute(sa.select(p.c.probabilities).where(p.c.id == prediction_id)).first()

    row = lookup()
    if row is None and ext.logger is not None:
        # Feedback can arrive before the record is written (it passes the server's listener queue,
        # then waits for the next flush): flush it through, for at most about one flush interval.
        deadline = time.monotonic() + ext.logger.flush_interval + 0.5
        while row is None and time.monotonic() < deadline:
            if any(r.get("id") == prediction_id for r in list(ext.logger._buf)):
                ext.logger.flush()
            else:
                time.sleep(0.05)
            row = lookup()
    if row is None:
        return None
    try:
        return list(json.loads(row[0] or "{}"))
    except ValueError:
        return []


__all__ = ["MonitorExtension", "mount", "profile_dir_for", "router"]
