"""A lean path for the common ``POST /v1/models/{name}/predict``: well-formed JSON, a served text model.

With short texts the FastAPI stack around the route (exception and exit-stack middleware, router
matching over the included routers, dependency solving, pydantic body validation) cost the event loop
more than the model call per text (issue 18, ``docs/deploy.md``). :class:`PredictFastPath` is a pure
ASGI layer, innermost of the server's own middleware — so the request counter
(:class:`~transferops.deploy.edge.RequestCounter`) and the edge limits
(:class:`~transferops.deploy.edge.BodyLimitMiddleware`: header and body sizes, UTF-8) run for it
exactly as before — that answers the request itself when, and only when, nothing about it can fail
before the model is called:

* ``POST /v1/models/{name}/predict`` (no ``root_path``), ``Content-Type: application/json``,
* the body parses with :func:`json.loads` (what Starlette's ``Request.json`` runs) to an object with
  ``texts`` (a non-empty list of strings) and optionally ``ids`` (null, or a list of strings and integers,
  not booleans) and no other key — :class:`~transferops.deploy.schemas.PredictRequest`'s rules,
* ``name`` is served and takes text, the texts pass the edge checks
  (:func:`~transferops.deploy.routers.predict.texts_problem`) and ``X-Request-Timeout``, when sent,
  is valid.

Then it runs the route's own code from there on
(:func:`~transferops.deploy.routers.predict.predict_checked`: batcher, disconnect watch, 499, review
route, metrics, durable or async log, listeners, the same ``JSONResponse``); an exception it raises
(503 queue full, 504 deadline, 500, 503 log unavailable, ...) is answered by the app's own exception
handler for it, as the route's would be. **Anything else falls through** to the FastAPI app with the
body replayed untouched, so every error answer, status code and the OpenAPI document stay the route's:
invalid or unusual bodies, unknown models, non-text models, A/B experiments, other routes.
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from transferops.deploy.routers.predict import (
    TIMEOUT_HEADER,
    parse_timeout,
    predict_checked,
    texts_problem,
)

PREFIX, SUFFIX = "/v1/models/", "/predict"
_TIMEOUT_KEY = TIMEOUT_HEADER.lower().encode()
_JSON = b"application/json"


def parse_predict_body(body: bytes) -> tuple[list[str], list[Any] | None] | None:
    """``(texts, ids)`` when ``body`` is a JSON object :class:`PredictRequest` accepts as it is, else None
    (the caller falls through to the route, which names the problem)."""
    try:
        obj = json.loads(body)
    except Exception:  # malformed JSON, too deep, ...: the route answers it
        return None
    if type(obj) is not dict or "texts" not in obj or len(obj) > 2 or (len(obj) == 2 and "ids" not in obj):
        return None
    texts, ids = obj["texts"], obj.get("ids")
    if type(texts) is not list or not texts or any(type(t) is not str for t in texts):
        return None
    if ids is not None and (type(ids) is not list or any(type(x) is not str and type(x) is not int for x in ids)):
        return None  # type() is exact: True is a bool here, as StrictInt says
    return texts, ids


def _is_json(ctype: bytes) -> bool:
    c = ctype.strip().lower()
    return c == _JSON or c.startswith(_JSON + b";")


def exception_handler(app: Any, exc: Exception) -> Any:
    """The app's handler for ``exc``, looked up as Starlette's exception middleware does (the status code
    of an HTTP exception first, then the exception's classes); None for what only the server-error
    middleware handles (500 / ``Exception``: the exception then propagates as it would from the route)."""
    handlers = getattr(app, "exception_handlers", {}) or {}
    if isinstance(exc, StarletteHTTPException) and exc.status_code in handlers and exc.status_code != 500:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls in handlers and cls is not Exception:
            return handlers[cls]
    return None


class PredictFastPath:
    """Pure ASGI: answers well-formed predict requests for served text models through the route's own
    code without the FastAPI stack; everything else goes to ``app`` (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (scope.get("method") != "POST" or not path.startswith(PREFIX) or not path.endswith(SUFFIX)
                or scope.get("root_path")):
            await self.app(scope, receive, send)
            return
        name = path[len(PREFIX):-len(SUFFIX)]
        app = scope.get("app")
        state: Any = getattr(app, "state", None)
        hub = getattr(state, "hub", None)
        if not name or "/" in name or state is None or hub is None or name not in hub:
            await self.app(scope, receive, send)
            return
        ctype, timeout_raw = None, None
        for k, v in scope.get("headers") or ():
            if k == b"content-type" and ctype is None:
                ctype = v
            elif k == _TIMEOUT_KEY and timeout_raw is None:
                timeout_raw = v
        if ctype is None or not _is_json(ctype):
            await self.app(scope, receive, send)
            return
        seen: list[Any] = []  # the messages read, replayed as they came when the request falls through
        while True:  # the edge middleware hands over the whole body in one message
            msg = await receive()
            seen.append(msg)
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in seen if m["type"] == "http.request")
        t0 = time.perf_counter()
        request = Request(scope, receive)
        parsed = parse_predict_body(body) if seen[-1]["type"] == "http.request" else None
        timeout_s = self._checked(state, hub, name, parsed, timeout_raw)
        if parsed is None or timeout_s is None:
            await self.app(scope, _replay(seen, receive), send)
            return
        texts, ids = parsed
        try:
            response = await predict_checked(request, name, texts, ids, timeout_s=timeout_s, t0=t0)
        except Exception as exc:
            handler = exception_handler(app, exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        state.fast_path_answered = getattr(state, "fast_path_answered", 0) + 1  # tests and docs read it
        await response(scope, receive, send)

    @staticmethod
    def _checked(state: Any, hub: Any, name: str, parsed: tuple[list[str], list[Any] | None] | None,
                 timeout_raw: bytes | None) -> float | None:
        """The request's timeout when every check before the model passes, else None (fall through)."""
        if parsed is None:
            return None
        settings = state.settings.predict
        if texts_problem(parsed[0], parsed[1], settings) is not None:
            return None
        model = hub.get(name).runner.model
        if getattr(model, "modality", "text") != "text":
            return None
        try:
            return parse_timeout(None if timeout_raw is None else timeout_raw.decode("latin-1"), settings)
        except StarletteHTTPException:
            return None


def _replay(messages: list[Any], receive: Any) -> Any:
    """A ``receive`` that gives ``messages`` again, then the connection's own."""
    pending = list(messages)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


__all__ = ["PredictFastPath", "exception_handler", "parse_predict_body"]
