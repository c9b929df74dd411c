"""``POST /v1/models/{name}/predict`` and the model listing (``GET /v1/models``, ``/v1/models/{name}``).

:func:`predict` is the one request path from texts to logged predictions; the experiments router
(:mod:`transferops.abtest.server_ext`) calls it with the caller's :class:`Assignment`:

1. edge checks of the texts (:func:`check_texts`; limits from :class:`PredictSettings`),
2. the model's batcher queues them (deadline from ``X-Request-Timeout``), watching for disconnects,
3. one :func:`_record` per text: what the prediction log and the listeners receive,
4. durable log mode: the response waits until the log committed the records,
5. metrics, then the records go to the listeners (background thread), then the response.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from transferops.deploy.batching import BatcherClosed, DeadlineExceeded, Overloaded
from transferops.deploy.http import HubDep, MetricsDep, field_error
from transferops.deploy.hub import ModelHub
from transferops.deploy.metrics import ServerMetrics
from transferops.deploy.runtime import InferResult, Runner
from transferops.deploy.schemas import PredictRequest, PredictResponse, unencodable_at
from transferops.deploy.settings import PredictSettings
from transferops.monitor.records import PredictionRecord

log = logging.getLogger("transferops.deploy.server")

#: Optional request header: seconds the caller will wait (at most request_timeout_s).
TIMEOUT_HEADER = "X-Request-Timeout"
#: Keys of a model's info that only the admin listing shows.
PRIVATE_INFO_KEYS = ("path", "adapter_id")


def get_predict_settings(request: Request) -> PredictSettings:
    return request.app.state.settings.predict  # type: ignore[no-any-return]


PredictSettingsDep = Annotated[PredictSettings, Depends(get_predict_settings)]
router = APIRouter(tags=["predict"])


@dataclass(frozen=True)
class Assignment:
    """The request was routed by an A/B experiment: which arm, which experiment, by which key."""

    arm: str
    experiment: str
    key: str


# ---------------------------------------------------------------------- listing
def public(info: dict[str, Any]) -> dict[str, Any]:
    # unauthenticated: names, versions, kinds and labels; never file paths (GET /admin/models has them)
    return {k: v for k, v in info.items() if k not in PRIVATE_INFO_KEYS}


def unknown_model(name: str, hub: ModelHub) -> HTTPException:
    return HTTPException(404, detail=f"unknown model {name!r}; served: {', '.join(hub.names()) or 'none'}")


@router.get("/v1/models")
async def list_models(hub: HubDep) -> dict[str, Any]:
    return {"models": [public(i) for i in hub.info()]}


@router.get("/v1/models/{name}")
async def model_info(name: str, hub: HubDep) -> dict[str, Any]:
    if name not in hub:
        raise unknown_model(name, hub)
    return public(next(i for i in hub.info() if i["name"] == name))


# ---------------------------------------------------------------------- predict
@router.post("/v1/models/{name}/predict", response_model=PredictResponse,
             responses={404: {"description": "unknown model"}, 413: {"description": "body too large"},
                        422: {"description": "invalid input (the field is named)"},
                        503: {"description": "queue full; see Retry-After"}})
async def predict_model(name: str, req: PredictRequest, request: Request) -> Response:
    """Classify texts; each prediction says `auto` or `review` (confidence below the threshold)."""
    return await predict(request, name, req)


def check_texts(req: PredictRequest, settings: PredictSettings, metrics: ServerMetrics) -> None:
    """Edge validation: limits and text the tokenizer (and JSON encoder) can take, field named."""
    problem = texts_problem(req.texts, req.ids, settings)
    if problem is not None:
        reason, exc = problem
        if reason is not None:
            metrics.rejected.labels(reason).inc()
        raise exc


def texts_problem(texts: list[str], ids: list[Any] | None, settings: PredictSettings
                  ) -> tuple[str | None, HTTPException] | None:
    """The first edge problem of ``texts`` / ``ids`` (already of the request schema's types): its
    ``transferops_rejected_total`` reason (None: not counted) and the 422 naming the field; None when
    there is none. No side effect: the fast path (:mod:`transferops.deploy.fastpath`) asks it too."""
    if len(texts) > settings.max_texts_per_request:
        return "too_many_texts", field_error(422, ["body", "texts"], f"{len(texts)} texts; at most "
                                             f"{settings.max_texts_per_request} per request (max_texts_per_request)")
    max_chars = settings.max_chars_per_text
    for i, t in enumerate(texts):
        if len(t) > max_chars:
            return "text_too_long", field_error(422, ["body", "texts", i], f"{len(t)} characters; at most "
                                                f"{max_chars} per text (max_chars_per_text)")
        pos = unencodable_at(t)
        if pos is not None:
            return "invalid_text", field_error(422, ["body", "texts", i], f"character {pos} is an unpaired "
                                               "surrogate (e.g. \\ud800), which is not text; send valid UTF-8",
                                               "invalid_text")
    if ids is not None:
        if len(ids) != len(texts):
            return None, field_error(422, ["body", "ids"], f"{len(ids)} ids for {len(texts)} texts; give one per text")
        for i, cid in enumerate(ids):
            if isinstance(cid, str) and unencodable_at(cid) is not None:
                return "invalid_text", field_error(422, ["body", "ids", i], "contains an unpaired surrogate "
                                                   "(e.g. \\ud800), which is not text; send valid UTF-8",
                                                   "invalid_text")
    return None


def timeout_for(request: Request, settings: PredictSettings) -> float:
    return parse_timeout(request.headers.get(TIMEOUT_HEADER), settings)


def parse_timeout(raw: str | None, settings: PredictSettings) -> float:
    """Seconds to wait for the batcher: the ``X-Request-Timeout`` header's value (``raw``) capped at
    ``request_timeout_s``, or ``request_timeout_s`` without the header; 422 naming the header if bad."""
    if raw is None:
        return settings.request_timeout_s
    try:
        v = float(raw)
    except ValueError:
        v = float("nan")
    if not v > 0:
        raise field_error(422, ["header", TIMEOUT_HEADER], f"{raw!r} must be a positive number of seconds")
    return min(v, settings.request_timeout_s)


async def until_disconnect(request: Request) -> None:
    """Returns when the client closes the connection (the body was already read)."""
    while True:
        msg = await request.receive()
        if msg["type"] == "http.disconnect":
            return


async def _infer(request: Request, name: str, texts: list[str], timeout_s: float, hub: ModelHub,
                 metrics: ServerMetrics) -> list[tuple[Runner, InferResult]] | None:
    """Queue ``texts`` on model ``name``; None when the client went away first (nothing computed)."""
    try:
        slot = hub.get(name)
    except KeyError:
        request.scope["transferops.model"] = "unknown"
        raise unknown_model(name, hub) from None
    # One watcher task per request (ASGI says "disconnected" only through receive()); the submit runs in
    # this task, which the watcher cancels when the client leaves first: one task and no asyncio.wait
    # fewer per request than watching both (issue 18). The texts still queued are then dropped unrun.
    me = asyncio.current_task()
    gone, watching = False, True

    def on_watch_done(w: asyncio.Task[None]) -> None:
        nonlocal gone
        if w.cancelled():
            return
        w.exception()  # retrieved: a failing receive counts as a departed client, as before
        if watching and me is not None:
            gone = True
            me.cancel()

    watch = asyncio.ensure_future(until_disconnect(request))
    watch.add_done_callback(on_watch_done)
    try:
        return await slot.batcher.submit(texts, timeout_s=timeout_s)
    except asyncio.CancelledError:
        if not gone or me is None:
            raise
        me.uncancel()  # our own cancellation: the client went away, compute and log nothing
        return None
    except Overloaded as exc:
        metrics.rejected.labels("overloaded").inc()
        raise HTTPException(503, detail="server busy: the prediction queue is full; retry later",
                            headers={"Retry-After": str(max(1, round(exc.retry_after)))}) from None
    except DeadlineExceeded:
        metrics.rejected.labels("deadline").inc()
        raise HTTPException(504, detail=f"not computed: still queued after {timeout_s:g}s "
                            f"(request_timeout_s or the {TIMEOUT_HEADER} header); retry later",
                            headers={"Retry-After": "1"}) from None
    except BatcherClosed:
        raise HTTPException(404, detail=f"model {name!r} was unloaded") from None
    except Exception as exc:
        # only this request failed (the batcher retried its batch-mates on their own)
        log.warning("model %s: inference failed for one request: %s: %s", name, type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "")
        raise HTTPException(500, detail=f"model {name!r} could not classify these texts "
                            f"({type(exc).__name__}); other requests are unaffected") from None
    finally:
        watching = False
        watch.cancel()


def _record(*, pid: str, name: str, runner: Runner, res: InferResult, j: int, text: str, client_id: Any,
            route: str, probs: dict[str, float], latency_ms: float, ts: float,
            assignment: Assignment | None) -> PredictionRecord:
    """The log record of text ``j`` of ``res``: what the prediction log and every listener receive."""
    return PredictionRecord(
        id=pid, ts=ts, model=name, model_version=runner.version,
        arm=assignment.arm if assignment else None,
        experiment=assignment.experiment if assignment else None,
        ab_key=assignment.key if assignment else None,
        route=route, label=res.labels[j], probabilities=probs, confidence=float(res.confidence[j]),
        latency_ms=latency_ms, n_chars=int(res.n_chars[j]), n_tokens=int(res.n_tokens[j]),
        unk_rate=float(res.unk_rate[j]), sketch=[float(x) for x in res.sketch[j]],
        text=text, client_id=client_id,
    )


async def predict(request: Request, name: str, req: PredictRequest, *,
                  assignment: Assignment | None = None) -> Response:
    """Predict ``req.texts`` with model ``name``, log them, answer (see the module docstring)."""
    t0 = time.perf_counter()
    state = request.app.state
    hub, metrics, settings = state.hub, state.metrics, get_predict_settings(request)
    request.scope["transferops.model"] = name
    check_texts(req, settings, metrics)
    check_modality(hub, name, "text")  # a non-text model names its own route (images, rows)
    timeout_s = timeout_for(request, settings)
    return await predict_checked(request, name, req.texts, req.ids, timeout_s=timeout_s, t0=t0,
                                 assignment=assignment)


async def predict_checked(request: Request, name: str, texts: list[str], ids: list[Any] | None, *,
                          timeout_s: float, t0: float, assignment: Assignment | None = None) -> Response:
    """Steps 2–5 for texts that passed the edge checks (:func:`check_texts`, :func:`check_modality`):
    the one path of :func:`predict` and of the fast path (:mod:`transferops.deploy.fastpath`)."""
    metrics = request.app.state.metrics
    request.scope["transferops.model"] = name
    chunks = await _infer(request, name, texts, timeout_s, request.app.state.hub, metrics)
    if chunks is None:
        metrics.rejected.labels("client_gone").inc()
        return Response(status_code=499)
    return await respond(request, name, chunks, t0=t0, logged=texts, ids=ids, assignment=assignment)


async def respond(request: Request, name: str, chunks: list[tuple[Runner, InferResult]], *, t0: float,
                  logged: list[str], ids: list[Any] | None, assignment: Assignment | None = None) -> Response:
    """From the batcher's results to the answer, for every input route (texts, rows, ...): review route,
    one :func:`_record` per input (``logged[i]`` is its logged ``text``), durable log, metrics, listeners."""
    state = request.app.state
    metrics, settings = state.metrics, get_predict_settings(request)
    latency_ms = (time.perf_counter() - t0) * 1000.0
    now = time.time()
    durable = state.durable_log
    want_records = bool(state.prediction_listeners) or durable is not None
    preds: list[dict[str, Any]] = []
    records: list[PredictionRecord] = []
    n_review, version, i = 0, "", 0
    for runner, res in chunks:
        version = runner.version
        # a multi-task model (artifacts/multitask.py): each task's answer, from the same probabilities
        per_task = getattr(runner.decision_rule, "per_task", None)
        for j in range(len(res)):
            conf = float(res.confidence[j])
            route = runner.review.route(conf)
            n_review += route == "review"
            probs = {lbl: float(p) for lbl, p in zip(runner.labels, res.proba[j], strict=True)}
            pid = uuid.uuid4().hex
            label = res.labels[j]
            client_id = ids[i] if ids is not None else None
            preds.append({"id": client_id, "prediction_id": pid, "label": label, "probabilities": probs,
                          "confidence": conf, "route": route, "model_version": runner.version})
            if per_task is not None:
                preds[-1]["tasks"] = per_task(probs)
            for lbl in (label if isinstance(label, list) else [label]):
                metrics.predictions.labels(name, str(lbl)).inc()
            if want_records:
                records.append(_record(pid=pid, name=name, runner=runner, res=res, j=j, text=logged[i],
                                       client_id=client_id, route=route, probs=probs, latency_ms=latency_ms,
                                       ts=now, assignment=assignment))
            i += 1
    if durable is not None and records:
        # acknowledged means durable: the response leaves only after the log committed it
        try:
            await asyncio.wait_for(asyncio.wrap_future(durable(records)), settings.request_timeout_s)
        except Exception as exc:
            metrics.rejected.labels("log_unavailable").inc()
            raise HTTPException(503, detail="prediction log unavailable, predictions not acknowledged "
                                f"({type(exc).__name__}); retry later, or serve with --log-mode async "
                                "to answer without the log", headers={"Retry-After": "1"}) from None
    metrics.observe_routes(name, n_review, len(preds))
    metrics.latency.labels(name).observe(latency_ms / 1000.0)
    if records and state.prediction_listeners:
        state.listener_dispatcher.submit(records)
    body: dict[str, Any] = {"model": name, "model_version": version, "predictions": preds}
    if assignment is not None:
        body.update({"arm": assignment.arm, "experiment": assignment.experiment})
    return JSONResponse(body)


def check_modality(hub: ModelHub, name: str, want: str) -> None:
    """422 when model ``name`` takes another input than this route's ``want`` (the model's ``modality``;
    its ``serve_route`` names the route that takes its input)."""
    if name not in hub:
        return  # the route answers 404 itself
    model = hub.get(name).runner.model
    have = getattr(model, "modality", "text")
    if have != want:
        route = getattr(model, "serve_route", "predict" if have == "text" else "")
        hint = f": POST /v1/models/{name}/{route}" if route else ""
        raise field_error(422, ["path", "name"], f"model {name!r} takes {have} input, not {want}{hint}",
                          "wrong_modality")


__all__ = ["Assignment", "MetricsDep", "PredictSettingsDep", "check_modality", "check_texts", "parse_timeout",
           "predict", "predict_checked", "respond", "router", "texts_problem"]
