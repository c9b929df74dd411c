"""Server extension: ``POST /v1/outcomes`` records business outcomes (conversion 0/1, revenue...).

Installed by :func:`transferops.deploy.server.create_app` (``install(app, settings)``). Outcomes go
to the same store the prediction log uses (``settings.db_url``), table ``outcomes``; an outcome
names the prediction it follows (``prediction_id``, as returned by the predict endpoints) or the
assignment key (``key``, e.g. the user id the experiment hashed).

Request::

    POST /v1/outcomes  {"prediction_id": "3f2a...", "metric": "conversion", "value": 1}
    POST /v1/outcomes  {"key": "user-42", "metric": "revenue", "value": 19.99}

Responses: 201 ``{"recorded": ...}``; 422 naming the field (missing metric, non-finite value,
neither id nor key); 404 for a prediction id the log does not know; 503 when the server runs without
a store (start it with ``--db-url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator, model_validator

from transferops.errors import TransferOpsError

#: Predictions reach the log through a background writer (about half a second); an outcome posted
#: right after its prediction waits this long for the row before answering 404.
LOG_WAIT_S = 2.0
#: Tries at writing an outcome before answering 503 (SQLite: the log writer may hold the lock).
WRITE_ATTEMPTS = 5

log = logging.getLogger("transferops.abtest.server")


class OutcomeRequest(BaseModel):
    prediction_id: str | None = Field(None, min_length=1, max_length=64,
                                      description="id of the prediction this outcome follows")
    key: str | None = Field(None, min_length=1, max_length=200, description="assignment key (e.g. user id)")
    metric: str = Field(..., min_length=1, max_length=100, description="e.g. conversion, revenue")
    value: float = Field(..., allow_inf_nan=False, description="0/1 for conversions, an amount for revenue")
    ts: float | None = Field(None, description="UNIX seconds; now when omitted")

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("metric must be a non-empty name such as 'conversion'")
        return v.strip()

    @model_validator(mode="after")
    def _id_or_key(self) -> OutcomeRequest:
        if self.prediction_id is None and self.key is None:
            raise ValueError("prediction_id or key is required: name the prediction or the assignment key")
        return self


class OutcomeResponse(BaseModel):
    recorded: bool
    prediction_id: str | None
    key: str | None
    metric: str
    value: float


def _find_store(app: Any, settings: Any) -> Any:
    """Reuse the store the monitoring extension opened (``app.state.monitor.store``), else open one on
    ``settings.db_url``; None when the server runs without a database."""
    cached = getattr(app.state, "abtest_store", None)
    if cached is not None:
        return cached
    mon = getattr(app.state, "monitor", None)
    st = getattr(mon, "store", None)
    if st is None:
        url = getattr(settings, "db_url", None)
        if not url:
            return None
        from transferops.monitor.store import Store

        st = Store(url, create=False)
        app.state.abtest_owns_store = True
    if callable(getattr(st, "ensure_schema", None)):
        st.ensure_schema()  # the monitor opens its store lazily (create=False)
    app.state.abtest_store = st
    return st


def _flush_log(app: Any) -> None:
    for name in ("prediction_logger",):
        lg = getattr(app.state, name, None)
        if lg is not None and callable(getattr(lg, "flush", None)):
            # a failing flush must not turn a 404 into a 500
            with contextlib.suppress(Exception):
                lg.flush()


async def _retrying(fn: Any, *args: Any) -> Any:
    """Run a blocking store call off the event loop; retry briefly, then answer 503.

    SQLite allows one writer at a time: the prediction logger's batch may hold the lock past the
    store's busy timeout, so a failed call is retried with a short back-off.
    """
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return await run_in_threadpool(fn, *args)
        except (TransferOpsError, HTTPException):
            raise
        except Exception as exc:
            log.warning("outcome store call failed (attempt %d/%d): %s", attempt + 1, WRITE_ATTEMPTS, exc)
            if attempt == WRITE_ATTEMPTS - 1:
                raise HTTPException(503, detail=f"outcome store unavailable: {type(exc).__name__}; retry later",
                                    headers={"Retry-After": "1"}) from exc
            await asyncio.sleep(0.2 * (attempt + 1))
    return None  # pragma: no cover - the loop returns or raises


def install(app: FastAPI, settings: Any) -> None:
    """Add ``POST /v1/outcomes`` to ``app``."""

    def close_store(_: Any) -> None:
        st = getattr(app.state, "abtest_store", None)
        if st is not None and getattr(app.state, "abtest_owns_store", False):
            st.dispose()

    if hasattr(app.state, "shutdown_hooks"):
        app.state.shutdown_hooks.append(close_store)

    @app.post("/v1/outcomes", tags=["experiments"], status_code=201, response_model=OutcomeResponse,
              responses={404: {"description": "unknown prediction id"},
                         422: {"description": "invalid input (the field is named)"},
                         503: {"description": "the server runs without a store (--db-url)"}})
    async def post_outcome(req: OutcomeRequest) -> OutcomeResponse:
        """Record a business outcome for an A/B analysis (`transferops abtest analyze`)."""
        from transferops.abtest.store import record_outcome

        store = await _retrying(_find_store, app, settings)
        if store is None:
            raise HTTPException(503, detail="outcomes need the prediction log: start the server with "
                                "--db-url (outcomes are stored next to the predictions)")
        if req.prediction_id is not None:
            deadline = time.monotonic() + LOG_WAIT_S
            while not await _retrying(store.has_prediction, req.prediction_id):
                if time.monotonic() > deadline:
                    raise HTTPException(404, detail=[{
                        "loc": ["body", "prediction_id"], "type": "not_found",
                        "msg": f"unknown prediction id {req.prediction_id!r}; use the prediction_id "
                               "returned by a predict endpoint of this server"}])
                await run_in_threadpool(_flush_log, app)
                await asyncio.sleep(0.1)
        value = float(req.value)

        def write() -> None:
            record_outcome(store, metric=req.metric, value=value, prediction_id=req.prediction_id,
                           key=req.key, ts=req.ts)

        await _retrying(write)
        return OutcomeResponse(recorded=True, prediction_id=req.prediction_id, key=req.key, metric=req.metric,
                               value=value)

    if not getattr(settings, "db_url", None) and getattr(app.state, "abtest_store", None) is None:
        from transferops.deploy.server import not_configured

        not_configured(app, "/v1/outcomes", ["POST"], "/v1/outcomes needs the prediction log: start the server "
                       "with --db URL (alias --db-url); outcomes are stored next to the predictions")
