"""The experiments router of ``transferops serve`` (owned by abtest; mounted by
:func:`transferops.deploy.server.create_app` through :func:`mount`):

* ``POST /v1/experiments/{experiment}/predict`` (with ``--ab``): assigns the caller to an arm by a
  stable hash of the key (:class:`~transferops.abtest.assignment.ExperimentSettings`) and predicts
  with that arm's model through the predict router's one request path;
  ``/v1/experiments/{experiment}/rows`` does the same for tabular arms (the rows router's path);
* ``POST /v1/outcomes`` (with ``--db``) records business outcomes (conversion 0/1, revenue...) in
  the store the prediction log uses, table ``outcomes``; an outcome names the prediction it follows
  (``prediction_id``, as returned by the predict endpoints) or the assignment key (``key``, e.g. the
  user id the experiment hashed).

Request::

    POST /v1/outcomes  {"prediction_id": "3f2a...", "metric": "conversion", "value": 1}
    POST /v1/outcomes  {"key": "user-42", "metric": "revenue", "value": 19.99}

Responses: 201 ``{"recorded": ...}``; 422 naming the field (missing metric, non-finite value,
neither id nor key); 404 for a prediction id the log does not know; 503 (+ ``Retry-After``) when the
store stays unavailable. A route whose feature is not configured is not mounted: 404 naming the flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator, model_validator

from transferops.abtest.assignment import ExperimentSettings
from transferops.deploy.http import field_error, not_mounted
from transferops.deploy.routers.predict import Assignment, predict
from transferops.deploy.routers.tables import PredictRowsRequest, predict_rows
from transferops.deploy.schemas import PredictRequest, PredictResponse
from transferops.deploy.settings import ServeSettings
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


def _find_store(app: Any) -> Any:
    """Reuse the store the monitoring router opened (``app.state.monitor.store``), else open one on
    the prediction log's URL (this router then owns it and disposes of it at shutdown)."""
    cached = getattr(app.state, "abtest_store", None)
    if cached is not None:
        return cached
    mon = getattr(app.state, "monitor", None)
    st = getattr(mon, "store", None)
    if st is None:
        from transferops.monitor.store import Store

        st = Store(app.state.abtest_db_url, create=False)
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


# ---------------------------------------------------------------------- experiments
def get_experiment(request: Request) -> ExperimentSettings:
    return request.app.state.settings.experiments  # type: ignore[no-any-return]


ExperimentDep = Annotated[ExperimentSettings, Depends(get_experiment)]
experiments_router = APIRouter(tags=["predict"])


@experiments_router.post("/v1/experiments/{experiment}/predict", response_model=PredictResponse)
async def predict_experiment(experiment: str, req: PredictRequest, request: Request,
                             exp: ExperimentDep) -> Response:
    """Assign the caller to an arm by a stable key (hash), predict with that arm's model."""
    a = assign(request, experiment, exp, req.ids)
    return await predict(request, a.arm, req, assignment=a)


@experiments_router.post("/v1/experiments/{experiment}/rows", response_model=PredictResponse)
async def predict_experiment_rows(experiment: str, req: PredictRowsRequest, request: Request,
                                  exp: ExperimentDep) -> Response:
    """Table rows (arms are tabular models): assign the caller to an arm, predict with that arm's model."""
    a = assign(request, experiment, exp, req.ids)
    return await predict_rows(request, a.arm, req, assignment=a)


def assign(request: Request, experiment: str, exp: ExperimentSettings, ids: list[Any] | None) -> Assignment:
    """The caller's arm, by the experiment's key (header, query parameter or the first id)."""
    if experiment != exp.experiment:
        raise HTTPException(404, detail=f"unknown experiment {experiment!r}; running: {exp.experiment!r}")
    src, _, key_name = exp.ab_key.partition(":")
    key: str | None
    if src == "header":
        key, loc = request.headers.get(key_name), ["header", key_name]
    elif src == "query":
        key, loc = request.query_params.get(key_name), ["query", key_name]
    else:
        key, loc = (str(ids[0]) if ids else None), ["body", "ids"]
    if not key:
        raise field_error(422, loc, f"experiment {experiment!r} assigns arms by {exp.ab_key}; it is missing")
    arm = exp.assign(key)
    return Assignment(arm=arm, experiment=experiment, key=key)


# ---------------------------------------------------------------------- outcomes
outcomes_router = APIRouter(tags=["experiments"])


@outcomes_router.post("/v1/outcomes", status_code=201, response_model=OutcomeResponse,
                      responses={404: {"description": "unknown prediction id"},
                                 422: {"description": "invalid input (the field is named)"},
                                 503: {"description": "the outcome store is unavailable; see Retry-After"}})
async def post_outcome(req: OutcomeRequest, request: Request) -> OutcomeResponse:
    """Record a business outcome for an A/B analysis (`transferops abtest analyze`)."""
    from transferops.abtest.store import record_outcome

    app = request.app
    store = await _retrying(_find_store, app)
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


# ---------------------------------------------------------------------- mounting
def mount_experiments(app: FastAPI, settings: ExperimentSettings) -> None:
    """The experiment route with ``--ab``; else not mounted (404 naming the flags)."""
    if settings.enabled:
        app.include_router(experiments_router)
    else:
        not_mounted(app, "/v1/experiments/{experiment}/predict", "no experiment is running: start the "
                    "server with --ab control=PATH,treatment=PATH (and --experiment NAME)")
        not_mounted(app, "/v1/experiments/{experiment}/rows", "no experiment is running: start the "
                    "server with --ab control=PATH,treatment=PATH (and --experiment NAME)")


def mount_outcomes(app: FastAPI, db_url: str | None) -> None:
    """``POST /v1/outcomes`` when the server has a prediction log; else not mounted (404 naming it)."""
    if not db_url:
        not_mounted(app, "/v1/outcomes", "/v1/outcomes needs the prediction log: start the server "
                    "with --db URL (alias --db-url); outcomes are stored next to the predictions")
        return
    app.state.abtest_db_url = db_url

    def close_store(_: Any) -> None:
        st = getattr(app.state, "abtest_store", None)
        if st is not None and getattr(app.state, "abtest_owns_store", False):
            st.dispose()

    if hasattr(app.state, "shutdown_hooks"):
        app.state.shutdown_hooks.append(close_store)
    app.include_router(outcomes_router)


def mount(app: FastAPI, settings: ServeSettings) -> None:
    """Mount what abtest serves, each part only when configured."""
    mount_experiments(app, settings.experiments)
    mount_outcomes(app, settings.monitoring.db_url)


def install(app: FastAPI, settings: Any) -> None:
    """``POST /v1/outcomes`` on any FastAPI app; ``settings`` needs only ``db_url``."""
    mount_outcomes(app, getattr(settings, "db_url", None))
