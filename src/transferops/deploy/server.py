"""The prediction server: FastAPI app factory with dynamic batching, review routing, A/B arms,
many LoRA adapters, admin endpoints and Prometheus metrics.

Nothing happens at import time: :func:`create_app` builds the app from :class:`ServeSettings`;
models load in the app's lifespan (so ``/readyz`` turns 200 once they are loaded and warmed).

Extension points used by other stages (monitoring, A/B analysis):

* ``app.state.hub`` — :class:`~transferops.deploy.hub.ModelHub` (``load(name, path)``, ``unload(name)``)
* ``app.state.metrics_registry`` — the app's Prometheus ``CollectorRegistry`` (served at ``/metrics``)
* ``app.state.prediction_listeners`` — callables receiving one record dict per text after each
  request; they run on a background thread, and their errors never reach the client
* ``app.state.startup_hooks`` / ``app.state.shutdown_hooks`` — callables ``(app) -> None | awaitable``
  run after models load / before they unload
* every module in :data:`SERVER_EXTENSIONS` that exists gets ``install(app, settings)``

>>> app = create_app(ServeSettings(models={"news": "runs/news-onnx"}))       # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                            # doctest: +SKIP
"""


import asyncio
import contextlib
import hmac
import importlib
import inspect
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transferops._extras import require
from transferops.errors import ConfigError, TransferOpsError

log = logging.getLogger(__name__)

#: Modules (written by other stages) that add routes/listeners to the app when they exist.
SERVER_EXTENSIONS: tuple[str, ...] = ("transferops.monitor.server_ext", "transferops.abtest.server_ext")
ADMIN_TOKEN_ENV = "TRANSFEROPS_ADMIN_TOKEN"
#: Tokens that are obviously placeholders are refused (FastAPI template habit).
PLACEHOLDER_TOKENS = {"changeme", "changethis", "secret", "password", "admin", "token", "test"}
#: Words that mark a token copied from documentation (compared on lower-case letters and digits).
PLACEHOLDER_WORDS = ("changeme", "changethis", "yourtoken", "tokenhere", "placeholder", "example",
                     "password", "xxxxxx", "123456789012")
MIN_TOKEN_CHARS = 16
MIN_TOKEN_DISTINCT = 8
LOG_MODES = ("durable", "async")
#: Optional request header: seconds the caller will wait (at most request_timeout_s).
TIMEOUT_HEADER = "X-Request-Timeout"
#: Keys of a model's info that only the admin listing shows.
PRIVATE_INFO_KEYS = ("path", "adapter_id")


def check_admin_token(token: str) -> None:
    """Refuse tokens without real entropy: short, whitespace, few distinct characters, placeholders.

    The rule (documented in docs/reliability.md): at least 16 characters, no whitespace, at least 8
    distinct characters, no placeholder word. ``secrets.token_urlsafe()`` always passes."""
    fix = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe())'`"
    squashed = "".join(ch for ch in token.lower() if ch.isalnum())
    if token.lower() in PLACEHOLDER_TOKENS or any(w in squashed for w in PLACEHOLDER_WORDS):
        raise ConfigError(f"admin_token: refusing a placeholder token; {fix}")
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"admin_token: contains whitespace (a copy-paste accident?); {fix}")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"admin_token: refusing a short token ({len(token)} < {MIN_TOKEN_CHARS} "
                          f"characters); {fix}")
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        raise ConfigError(f"admin_token: too little entropy ({len(set(token))} distinct characters, need "
                          f"{MIN_TOKEN_DISTINCT}); {fix}")
AB_KEY_SOURCES = ("header", "query", "id")


@dataclass
class ServeSettings:
    """Everything ``transferops serve`` accepts, validated in one place."""

    models: dict[str, str] = field(default_factory=dict,
                                   metadata={"help": "name -> export folder or artifact"})
    adapters: str | None = field(default=None, metadata={"help": "folder of LoRA artifacts, one model each"})
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    adaptive_wait: bool = field(default=True, metadata={"help": "skip max_wait_ms while requests come one "
                                                                "at a time"})
    queue_size: int = 4096
    max_texts_per_request: int = 1024
    max_chars_per_text: int = 20_000
    max_body_bytes: int = 4 * 1024 * 1024
    review_threshold: float | None = None
    target_auto_accuracy: float | None = None
    admin_token: str | None = None
    threads: int | None = None
    db_url: str | None = None
    ab: dict[str, str] | None = field(default=None, metadata={"help": "arm -> model folder"})
    ab_split: str = "50/50"
    ab_key: str = "header:X-User-Id"
    experiment: str | None = None
    variant: str | None = field(default=None, metadata={"help": "ONNX variant: int8 (default) or fp32"})
    model_roots: list[str] = field(default_factory=list,
                                   metadata={"help": "folders POST /admin/models may load from"})
    inference_workers: int = 1
    listener_queue: int = 1000
    request_timeout_s: float = field(default=30.0, metadata={"help": "a request still queued after this "
                                                                     "long is dropped (504), not computed"})
    max_header_bytes: int = field(default=16 * 1024, metadata={"help": "total size of request headers"})
    max_headers: int = field(default=100, metadata={"help": "number of request headers"})
    log_mode: str = field(default="durable", metadata={"help": "durable: a prediction is committed to the "
                                                               "log before its response; async: buffered"})

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name}: must be a positive number, got {v!r}")

        for n in ("max_batch_size", "queue_size", "max_texts_per_request", "max_chars_per_text",
                  "max_body_bytes", "inference_workers", "listener_queue", "request_timeout_s",
                  "max_header_bytes", "max_headers"):
            positive(n)
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port: {self.port!r} is not a TCP port")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms: must be >= 0, got {self.max_wait_ms!r}")
        if self.max_texts_per_request > self.queue_size:
            raise ConfigError(f"max_texts_per_request: {self.max_texts_per_request} exceeds queue_size "
                              f"{self.queue_size}; such a request could never be queued")
        if self.review_threshold is not None and self.target_auto_accuracy is not None:
            raise ConfigError("review_threshold and target_auto_accuracy: set one, not both")
        if self.review_threshold is not None and not 0 <= self.review_threshold <= 1:
            raise ConfigError(f"review_threshold: {self.review_threshold!r} must be in [0, 1]")
        if self.target_auto_accuracy is not None and not 0 < self.target_auto_accuracy <= 1:
            raise ConfigError(f"target_auto_accuracy: {self.target_auto_accuracy!r} must be in (0, 1]")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"threads: must be positive, got {self.threads!r}")
        if self.variant not in (None, "int8", "fp32"):
            raise ConfigError(f"variant: {self.variant!r} is not one of 'int8', 'fp32'")
        if self.admin_token is None:
            self.admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None
        if self.admin_token is not None:
            check_admin_token(self.admin_token)
        if self.log_mode not in LOG_MODES:
            raise ConfigError(f"log_mode: {self.log_mode!r} is not one of {', '.join(LOG_MODES)}")
        if self.ab:
            if len(self.ab) < 2:
                raise ConfigError("ab: an experiment needs at least two arms, e.g. "
                                  "control=runs/a,treatment=runs/b")
            clash = set(self.ab) & set(self.models)
            if clash:
                raise ConfigError(f"ab: arm names {sorted(clash)} clash with --model names; rename one")
            from transferops.abtest.assignment import parse_split

            parse_split(self.ab_split, len(self.ab))
            self.experiment = self.experiment or "default"
            src = self.ab_key.split(":", 1)[0]
            if src not in AB_KEY_SOURCES or (src != "id" and ":" not in self.ab_key):
                raise ConfigError(f"ab_key: {self.ab_key!r} must be header:NAME, query:NAME or id")
        if not self.models and not self.adapters and not self.ab:
            raise ConfigError("models: nothing to serve; pass --model PATH, --adapters DIR or --ab ...")

    @property
    def ab_weights(self) -> list[float]:
        from transferops.abtest.assignment import parse_split

        return parse_split(self.ab_split, len(self.ab or {}))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["admin_token"] = "***" if self.admin_token else None
        return d


class ListenerDispatcher:
    """Runs prediction listeners on one background thread; a bounded queue drops (and counts) records
    rather than slowing requests when a listener falls behind."""

    def __init__(self, listeners: list[Callable[[list[dict[str, Any]]], None]],
                 on_error: Callable[[str], None], maxsize: int = 1000) -> None:
        self.listeners = listeners
        self.on_error = on_error
        self._q: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._failed: set[int] = set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="transferops-listeners", daemon=True)
            self._thread.start()

    def submit(self, records: list[dict[str, Any]]) -> None:
        try:
            self._q.put_nowait(records)
        except queue.Full:
            self.on_error("dropped")

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            for fn in list(self.listeners):
                try:
                    fn(item)
                except Exception:
                    # a listener must never break serving: full traceback once, then only the counter
                    if id(fn) not in self._failed:
                        self._failed.add(id(fn))
                        log.exception("prediction listener %r failed (further failures are only counted "
                                      "in transferops_listener_errors_total)", fn)
                    self.on_error("error")

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._q.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None


PREDICT_SUFFIX = "/predict"


def _utf8_problem(body: bytes) -> str | None:
    """None if ``body`` is valid UTF-8, else a sentence naming the first bad byte."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = body[exc.start:exc.start + 4].hex(" ")
        try:
            body.decode("cp1252")
            hint = " (it looks like Latin-1/cp1252 text)"
        except UnicodeDecodeError:
            hint = ""
        return (f"body is not valid UTF-8: byte {exc.start} ({bad}) {exc.reason}{hint}; JSON must be sent "
                "encoded as UTF-8")
    return None


class BodyLimitMiddleware:
    """Pure ASGI, the server's edge: refuse too many or too large headers (431), bodies over
    ``max_bytes`` (413, by Content-Length or counted while read) and bodies that are not UTF-8 (422,
    naming the byte), before any parsing."""

    def __init__(self, app: Any, max_bytes: int, on_reject: Callable[[str], None],
                 max_header_bytes: int = 16 * 1024, max_headers: int = 100) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def _reply(self, send: Any, status: int, detail: Any) -> None:
        import json

        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope.get("headers") or []
        if len(raw_headers) > self.max_headers:
            self.on_reject("too_many_headers")
            await self._reply(send, 431, f"{len(raw_headers)} request headers; at most {self.max_headers} "
                              "(max_headers)")
            return
        header_bytes = sum(len(k) + len(v) for k, v in raw_headers)
        if header_bytes > self.max_header_bytes:
            self.on_reject("headers_too_large")
            await self._reply(send, 431, f"request headers total {header_bytes} bytes; at most "
                              f"{self.max_header_bytes} (max_header_bytes)")
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(raw_headers)
        cl = headers.get(b"content-length")
        too_big = (f"request body exceeds max_body_bytes={self.max_bytes}; split the texts into several "
                   "requests")
        if cl is not None:
            try:
                declared = int(cl)
            except ValueError:
                await self._reply(send, 400, "Content-Length header is not an integer")
                return
            if declared > self.max_bytes:
                self.on_reject("body_too_large")
                await self._reply(send, 413, too_big)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            part = msg.get("body", b"")
            total += len(part)
            if total > self.max_bytes:
                self.on_reject("body_too_large")
                await self._reply(send, 413, too_big)
                return
            chunks.append(part)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        ctype = headers.get(b"content-type", b"").lower()
        if body and not ctype.startswith((b"multipart/", b"application/x-www-form-urlencoded")):
            problem = _utf8_problem(body)
            if problem is not None:
                self.on_reject("invalid_encoding")
                await self._reply(send, 422, [{"loc": ["body"], "msg": problem, "type": "invalid_encoding"}])
                return
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestCounter:
    """Pure ASGI: every response to a predict route is counted in ``transferops_requests_total``
    by model and status — 200s, 4xx from validation or the edge, 5xx, and ``499`` for a client that
    went away before its answer. The handler names the model in ``scope["transferops.model"]``."""

    def __init__(self, app: Any, counter: Any, known: Callable[[str], bool]) -> None:
        self.app = app
        self.counter = counter
        self.known = known  # only served names become label values (bounded cardinality)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(PREDICT_SUFFIX):
            await self.app(scope, receive, send)
            return
        parts = scope["path"].strip("/").split("/")
        named = parts[2] if len(parts) == 4 and parts[:2] == ["v1", "models"] else None
        scope["transferops.model"] = named if named is not None and self.known(named) else "unknown"
        status: list[int] = []

        async def counting_send(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                status.append(int(msg["status"]))
            await send(msg)

        try:
            await self.app(scope, receive, counting_send)
        except BaseException:
            if not status:
                status.append(500)
            raise
        finally:
            model = scope.get("transferops.model") or "unknown"
            self.counter.labels(model, str(status[0] if status else 499)).inc()


def not_configured(app: Any, path: str, methods: list[str], message: str) -> None:
    """Replace the route at ``path`` with a 404 naming the flag that turns the feature on (kept out
    of the OpenAPI schema): a feature that is not configured is absent, not "unavailable" (503)."""
    from fastapi import HTTPException

    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != path]

    async def absent() -> None:
        raise HTTPException(404, detail=message)

    app.add_api_route(path, absent, methods=methods, include_in_schema=False)


def _under(root: Path, candidate: Path) -> bool:
    try:
        return candidate.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def _guard_openapi(app: Any, extension: str, first_route: int) -> None:
    """An extension must not take /docs down: if its routes break the OpenAPI schema (e.g. an
    annotation FastAPI cannot resolve), log it and leave those routes out of the schema."""
    try:
        app.openapi()
    except Exception as exc:
        log.error("server extension %s breaks the OpenAPI schema (%s: %s); its routes still work but are "
                  "left out of /docs", extension, type(exc).__name__, str(exc).splitlines()[0][:200])
        for route in app.router.routes[first_route:]:
            if hasattr(route, "include_in_schema"):
                route.include_in_schema = False
    finally:
        app.openapi_schema = None


def create_app(settings: ServeSettings) -> Any:
    """Build the FastAPI app (models load when it starts). See the module docstring."""
    fastapi = require("fastapi", "serve")
    from fastapi import Body, FastAPI, Header, HTTPException, Request
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    import transferops
    from transferops.cli.main import module_exists
    from transferops.deploy.batching import BatcherClosed, DeadlineExceeded, Overloaded
    from transferops.deploy.hub import ModelHub, check_name
    from transferops.deploy.metrics import ServerMetrics
    from transferops.deploy.schemas import (
        AdapterRequest,
        ModelRequest,
        PredictRequest,
        PredictResponse,
        unencodable_at,
    )

    metrics = ServerMetrics()
    executor = ThreadPoolExecutor(max_workers=settings.inference_workers,
                                  thread_name_prefix="transferops-infer")
    hub = ModelHub(executor=executor, metrics=metrics, threads=settings.threads,
                   max_batch_size=settings.max_batch_size, max_wait_ms=settings.max_wait_ms,
                   adaptive_wait=settings.adaptive_wait,
                   queue_size=settings.queue_size, review_threshold=settings.review_threshold,
                   target_auto_accuracy=settings.target_auto_accuracy, variant=settings.variant)
    listeners: list[Callable[[list[dict[str, Any]]], None]] = []
    dispatcher = ListenerDispatcher(listeners, lambda kind: metrics.listener_errors.labels(kind).inc(),
                                    maxsize=settings.listener_queue)
    adapters_root = Path(settings.adapters).resolve() if settings.adapters else None
    model_roots = [Path(r).resolve() for r in settings.model_roots]
    model_roots += [Path(p).resolve().parent
                    for p in (*settings.models.values(), *(settings.ab or {}).values())]
    if adapters_root is not None:
        model_roots.append(adapters_root)
    expected: set[str] = set()

    def load_all() -> None:
        for name, path in settings.models.items():
            hub.load(name, path)
            expected.add(name)
        for arm, path in (settings.ab or {}).items():
            hub.load(arm, path)
            expected.add(arm)
        if adapters_root is not None:
            if not adapters_root.is_dir():
                raise ConfigError(f"adapters: {adapters_root} is not a folder")
            for sub in sorted(adapters_root.iterdir()):
                if sub.is_symlink() and not _under(adapters_root, sub):
                    raise ConfigError(f"adapters: {sub.name!r} is a symlink out of the adapters folder "
                                      f"({adapters_root}); copy the adapter in or remove the link")
                if (sub / "transferops.json").exists():
                    if sub.name in hub:
                        raise ConfigError(f"adapters: {sub.name!r} clashes with a --model name; "
                                          "rename the folder")
                    hub.load_adapter(sub.name, sub)
                    expected.add(sub.name)

    async def run_hooks(hooks: list[Callable[[Any], Any]]) -> None:
        for hook in list(hooks):
            res = hook(app)
            if inspect.isawaitable(res):
                await res

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        dispatcher.start()
        try:
            await asyncio.to_thread(load_all)
        except Exception as exc:
            app.state.startup_error = exc  # `transferops serve` turns it into one line, rc 2
            dispatcher.stop()
            raise
        for info in hub.info():
            rv = info["review"]
            if rv["source"] == "derived":
                log.warning("model %s: review threshold %.4f reaches %.2f%% auto accuracy at a %.1f%% review "
                            "rate on %d validation texts%s", info["name"], rv["threshold"],
                            100 * (rv["auto_accuracy"] or 0), 100 * rv["review_rate"], rv["n"],
                            "" if rv["reached"] else " (target NOT reached: everything goes to review)")
        await run_hooks(app.state.startup_hooks)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await run_hooks(app.state.shutdown_hooks)
            hub.close()
            dispatcher.stop()
            executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="transferops", version=transferops.__version__, lifespan=lifespan,
                  description="Text classification with dynamic batching, human-review routing and A/B arms.")
    app.state.settings = settings
    app.state.hub = hub
    app.state.metrics = metrics
    app.state.metrics_registry = metrics.registry
    app.state.prediction_listeners = listeners
    #: set by the monitoring extension in durable log mode: records -> Future done once committed
    app.state.durable_log = None
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    app.state.ready = False
    app.state.startup_error = None
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       on_reject=lambda reason: metrics.rejected.labels(reason).inc(),
                       max_header_bytes=settings.max_header_bytes, max_headers=settings.max_headers)
    # outermost: counts the edge's answers (413, 431, 422 encoding) too
    app.add_middleware(RequestCounter, counter=metrics.requests, known=hub.__contains__)

    # ------------------------------------------------------------------ errors
    def field_error(status: int, loc: list[Any], msg: str, kind: str = "value_error") -> HTTPException:
        return HTTPException(status, detail=[{"loc": loc, "msg": msg, "type": kind}])

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.rejected.labels("invalid").inc()
        errors = []
        for e in exc.errors()[:20]:  # never echo inputs back: they can be megabytes
            loc, msg, kind = list(e.get("loc", ())), str(e.get("msg", "")), str(e.get("type", ""))
            # a key like "\ud800" is valid JSON but cannot be encoded back: escape it
            loc = [p.encode("utf-8", "backslashreplace").decode() if isinstance(p, str) else p for p in loc]
            if kind == "json_invalid":
                loc, msg = ["body"], f"malformed JSON near character {loc[1] if len(loc) > 1 else 0}"
            errors.append({"loc": loc, "msg": msg, "type": kind})
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors)
        ctype = request.headers.get("content-type", "")
        if "json" not in ctype:
            message += " (send the body as JSON with Content-Type: application/json)"
        return JSONResponse({"detail": errors, "message": message}, status_code=422)

    @app.exception_handler(TransferOpsError)
    async def on_ours(_: Request, exc: TransferOpsError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    # ------------------------------------------------------------------ health
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        missing = sorted(n for n in expected if n not in hub)
        ok = bool(app.state.ready) and not missing and bool(hub.names())
        return JSONResponse({"ready": ok, "models": hub.names(), "missing": missing},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def prom() -> Response:
        data, ctype = metrics.render()
        return Response(data, media_type=ctype)

    def public(info: dict[str, Any]) -> dict[str, Any]:
        # unauthenticated: names, versions, kinds and labels; never file paths (GET /admin/models has them)
        return {k: v for k, v in info.items() if k not in PRIVATE_INFO_KEYS}

    @app.get("/v1/models", tags=["predict"])
    async def list_models() -> dict[str, Any]:
        return {"models": [public(i) for i in hub.info()]}

    @app.get("/v1/models/{name}", tags=["predict"])
    async def model_info(name: str) -> dict[str, Any]:
        if name not in hub:
            raise HTTPException(404, detail=f"unknown model {name!r}; served: "
                                f"{', '.join(hub.names()) or 'none'}")
        return public(next(i for i in hub.info() if i["name"] == name))

    # ------------------------------------------------------------------ predict
    def check_texts(req: PredictRequest) -> None:
        """Edge validation: limits and text the tokenizer (and JSON encoder) can take, field named."""
        texts = req.texts
        if len(texts) > settings.max_texts_per_request:
            metrics.rejected.labels("too_many_texts").inc()
            raise field_error(422, ["body", "texts"], f"{len(texts)} texts; at most "
                              f"{settings.max_texts_per_request} per request (max_texts_per_request)")
        for i, t in enumerate(texts):
            if len(t) > settings.max_chars_per_text:
                metrics.rejected.labels("text_too_long").inc()
                raise field_error(422, ["body", "texts", i], f"{len(t)} characters; at most "
                                  f"{settings.max_chars_per_text} per text (max_chars_per_text)")
            pos = unencodable_at(t)
            if pos is not None:
                metrics.rejected.labels("invalid_text").inc()
                raise field_error(422, ["body", "texts", i], f"character {pos} is an unpaired surrogate "
                                  "(e.g. \\ud800), which is not text; send valid UTF-8", "invalid_text")
        if req.ids is not None:
            if len(req.ids) != len(texts):
                raise field_error(422, ["body", "ids"],
                                  f"{len(req.ids)} ids for {len(texts)} texts; give one per text")
            for i, cid in enumerate(req.ids):
                if isinstance(cid, str) and unencodable_at(cid) is not None:
                    metrics.rejected.labels("invalid_text").inc()
                    raise field_error(422, ["body", "ids", i], "contains an unpaired surrogate (e.g. "
                                      "\\ud800), which is not text; send valid UTF-8", "invalid_text")

    def timeout_for(request: Request) -> float:
        raw = request.headers.get(TIMEOUT_HEADER)
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

    async def predict(name: str, req: PredictRequest, request: Request, *, arm: str | None = None,
                      ab_key: str | None = None) -> Response:
        t0 = time.perf_counter()
        request.scope["transferops.model"] = name
        texts = req.texts
        check_texts(req)
        timeout_s = timeout_for(request)
        try:
            slot = hub.get(name)
        except KeyError:
            request.scope["transferops.model"] = "unknown"
            raise HTTPException(404, detail=f"unknown model {name!r}; served: "
                                f"{', '.join(hub.names()) or 'none'}") from None
        work = asyncio.ensure_future(slot.batcher.submit(texts, timeout_s=timeout_s))
        watch = asyncio.ensure_future(until_disconnect(request))
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if not work.done():  # the client went away: drop its queued texts, compute and log nothing
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            metrics.rejected.labels("client_gone").inc()
            return Response(status_code=499)
        try:
            chunks = work.result()
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
        latency_ms = (time.perf_counter() - t0) * 1000.0
        now = time.time()
        preds: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        durable = app.state.durable_log
        want_records = bool(listeners) or durable is not None
        n_review = 0
        version = ""
        i = 0
        for runner, res in chunks:
            labels = runner.labels
            version = runner.version
            for j in range(len(res)):
                conf = float(res.confidence[j])
                route = runner.review.route(conf)
                n_review += route == "review"
                probs = {lbl: float(p) for lbl, p in zip(labels, res.proba[j], strict=True)}
                pid = uuid.uuid4().hex
                label = res.labels[j]
                preds.append({"id": req.ids[i] if req.ids is not None else None, "prediction_id": pid,
                              "label": label, "probabilities": probs, "confidence": conf, "route": route,
                              "model_version": runner.version})
                for lbl in (label if isinstance(label, list) else [label]):
                    metrics.predictions.labels(name, str(lbl)).inc()
                if want_records:
                    records.append({
                        "id": pid, "ts": now, "model": name, "model_version": runner.version, "arm": arm,
                        "experiment": settings.experiment if arm is not None else None, "ab_key": ab_key,
                        "route": route, "label": label, "probabilities": probs, "confidence": conf,
                        "latency_ms": latency_ms, "n_chars": int(res.n_chars[j]),
                        "n_tokens": int(res.n_tokens[j]),
                        "unk_rate": float(res.unk_rate[j]), "sketch": [float(x) for x in res.sketch[j]],
                        "text": texts[i], "client_id": req.ids[i] if req.ids is not None else None,
                    })
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
        if records and listeners:
            dispatcher.submit(records)
        body: dict[str, Any] = {"model": name, "model_version": version, "predictions": preds}
        if arm is not None:
            body.update({"arm": arm, "experiment": settings.experiment})
        return JSONResponse(body)

    @app.post("/v1/models/{name}/predict", tags=["predict"], response_model=PredictResponse,
              responses={404: {"description": "unknown model"}, 413: {"description": "body too large"},
                         422: {"description": "invalid input (the field is named)"},
                         503: {"description": "queue full; see Retry-After"}})
    async def predict_model(name: str, req: PredictRequest, request: Request) -> Response:
        """Classify texts; each prediction says `auto` or `review` (confidence below the threshold)."""
        return await predict(name, req, request)

    @app.post("/v1/experiments/{experiment}/predict", tags=["predict"], response_model=PredictResponse)
    async def predict_experiment(experiment: str, req: PredictRequest, request: Request) -> Response:
        """Assign the caller to an arm by a stable key (hash), predict with that arm's model."""
        if not settings.ab or experiment != settings.experiment:
            running_now = f"; running: {settings.experiment!r}" if settings.ab else "; none running"
            raise HTTPException(404, detail=f"unknown experiment {experiment!r}{running_now}")
        from transferops.abtest.assignment import assign_arm

        src, _, key_name = settings.ab_key.partition(":")
        key: str | None
        if src == "header":
            key, loc = request.headers.get(key_name), ["header", key_name]
        elif src == "query":
            key, loc = request.query_params.get(key_name), ["query", key_name]
        else:
            key, loc = (str(req.ids[0]) if req.ids else None), ["body", "ids"]
        if not key:
            raise field_error(422, loc, f"experiment {experiment!r} assigns arms by {settings.ab_key}; "
                              "it is missing")
        arm = assign_arm(key, list(settings.ab), settings.ab_weights)
        return await predict(arm, req, request, arm=arm, ab_key=key)

    # ------------------------------------------------------------------ admin
    def require_admin(authorization: str | None, x_admin_token: str | None) -> None:
        if not settings.admin_token:
            raise HTTPException(403, detail="admin endpoints are disabled: start the server with "
                                f"--admin-token or {ADMIN_TOKEN_ENV}")
        given = x_admin_token
        if given is None and authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if not given:
            raise HTTPException(401, detail="admin token required (Authorization: Bearer TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
            raise HTTPException(403, detail="wrong admin token")

    async def run_admin(fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except TransferOpsError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise HTTPException(422, detail=f"could not load: {exc}") from exc

    def valid_name(name: str) -> str:
        try:
            return check_name(name)
        except ConfigError as exc:
            raise field_error(422, ["path", "name"], str(exc)) from exc

    @app.get("/admin/models", tags=["admin"])
    async def admin_list(authorization: str | None = Header(None),
                         x_admin_token: str | None = Header(None)) -> dict[str, Any]:
        require_admin(authorization, x_admin_token)
        pools = [{"base": k[0], "n_labels": k[1], "task": k[2], "adapters": v}
                 for k, v in hub.adapter_pools.items()]
        return {"models": hub.info(), "adapter_pools": pools, "settings": settings.to_dict()}

    @app.post("/admin/adapters/{name}", tags=["admin"])
    async def admin_load_adapter(name: str = PathParam(...), body: AdapterRequest | None = Body(None),
                                 authorization: str | None = Header(None),
                                 x_admin_token: str | None = Header(None)) -> dict[str, Any]:
        """Load (or replace) a LoRA adapter from a folder inside the adapters folder."""
        require_admin(authorization, x_admin_token)
        valid_name(name)
        if adapters_root is None:
            raise HTTPException(409, detail="no adapters folder: start the server with --adapters DIR")
        rel = (body.path if body and body.path else name)
        if Path(rel).is_absolute() or not _under(adapters_root, adapters_root / rel):
            raise field_error(403, ["body", "path"], f"{rel!r} escapes the adapters folder")
        target = (adapters_root / rel).resolve()
        if not target.is_dir():
            raise field_error(404, ["body", "path"], f"no adapter folder {rel!r} in the adapters folder")
        info = await run_admin(lambda: hub.load_adapter(name, target))
        return {"loaded": name, "model": info}

    @app.post("/admin/models/{name}", tags=["admin"])
    async def admin_load_model(model_req: ModelRequest, name: str = PathParam(...),
                               authorization: str | None = Header(None),
                               x_admin_token: str | None = Header(None)) -> dict[str, Any]:
        """Load or atomically replace a named model (champion swap); the path must lie in a model root."""
        require_admin(authorization, x_admin_token)
        valid_name(name)
        target = Path(model_req.path)
        if not any(_under(root, target) for root in model_roots):
            raise field_error(403, ["body", "path"], f"{model_req.path!r} is outside the allowed model "
                              f"folders ({', '.join(map(str, model_roots)) or 'none'}; see --model-root)")
        target = target.resolve()
        if not target.is_dir():
            raise field_error(404, ["body", "path"], f"{model_req.path!r} is not a folder")
        info = await run_admin(lambda: hub.load(name, target))
        return {"loaded": name, "model": info}

    @app.delete("/admin/models/{name}", tags=["admin"])
    @app.delete("/admin/adapters/{name}", tags=["admin"])
    async def admin_unload(name: str, authorization: str | None = Header(None),
                           x_admin_token: str | None = Header(None)) -> dict[str, Any]:
        require_admin(authorization, x_admin_token)
        try:
            hub.unload(name)
        except KeyError:
            raise HTTPException(404, detail=f"unknown model {name!r}") from None
        expected.discard(name)
        return {"unloaded": name}

    # ------------------------------------------------------------------ extensions
    for mod_name in SERVER_EXTENSIONS:
        if module_exists(mod_name):
            before = len(app.router.routes)
            importlib.import_module(mod_name).install(app, settings)
            _guard_openapi(app, mod_name, before)
    _ = fastapi  # imported for the extra check
    return app
