"""The prediction server: a FastAPI app factory over one router per concern.

Nothing happens at import time: :func:`create_app` builds the app from :class:`ServeSettings`;
models load in the app's lifespan (so ``/readyz`` turns 200 once they are loaded and warmed).

==========================================  ===============================================
router                                      routes
==========================================  ===============================================
:mod:`transferops.deploy.routers.health`    ``/healthz``, ``/readyz``, ``/metrics``
:mod:`transferops.deploy.routers.predict`   ``/v1/models``, ``/v1/models/{name}[/predict]``
:mod:`transferops.deploy.routers.admin`     ``/admin/models``, ``/admin/adapters`` (``AdminDep``)
:mod:`transferops.deploy.routers.tables`    ``/v1/models/{name}/rows`` (tabular models)
:mod:`transferops.abtest.server_ext`        ``/v1/experiments/{experiment}/predict`` (``--ab``),
                                            ``/v1/outcomes`` (``--db``)
:mod:`transferops.monitor.server_ext`       ``/v1/feedback``, ``/dashboard``, ``/v1/monitor/{name}``,
                                            ``/admin/champion`` (``--db``)
==========================================  ===============================================

A feature that is not configured has no routes: a request to one gets 404 naming the flag.

State on the app, for routers and tests: ``app.state.hub`` (:class:`~transferops.deploy.hub.ModelHub`),
``app.state.settings``, ``app.state.metrics`` / ``metrics_registry`` (served at ``/metrics``),
``app.state.prediction_listeners`` (callables receiving the records of each request on a background
thread; their errors never reach the client), ``app.state.durable_log`` (set by monitoring in durable
log mode), ``app.state.startup_hooks`` / ``shutdown_hooks`` (``(app) -> None | awaitable``, run after
models load / before they unload).

>>> app = create_app(ServeSettings(models={"news": "runs/news-onnx"}))       # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                            # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

import transferops
from transferops.abtest import server_ext as experiments
from transferops.deploy.edge import BodyLimitMiddleware, RequestCounter
from transferops.deploy.http import install_error_handlers, under
from transferops.deploy.hub import ModelHub
from transferops.deploy.listeners import ListenerDispatcher
from transferops.deploy.metrics import ServerMetrics
from transferops.deploy.routers import admin, health, predict
from transferops.deploy.settings import ADMIN_TOKEN_ENV, ServeSettings, check_admin_token
from transferops.errors import ConfigError
from transferops.monitor import server_ext as monitoring
from transferops.monitor.records import PredictionRecord

log = logging.getLogger(__name__)

__all__ = ["ADMIN_TOKEN_ENV", "BodyLimitMiddleware", "ListenerDispatcher", "RequestCounter", "ServeSettings",
           "check_admin_token", "create_app"]


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the FastAPI app (models load when it starts). See the module docstring."""
    metrics = ServerMetrics()
    hub = ModelHub(settings.hub, metrics=metrics)
    listeners: list[Callable[[list[PredictionRecord]], None]] = []
    dispatcher = ListenerDispatcher(listeners, lambda kind: metrics.listener_errors.labels(kind).inc(),
                                    maxsize=settings.predict.listener_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dispatcher.start()
        try:
            app.state.expected.update(await asyncio.to_thread(load_configured, hub, settings))
        except Exception as exc:
            app.state.startup_error = exc  # `transferops serve` turns it into one line, rc 2
            dispatcher.stop()
            raise
        _log_review_policies(hub)
        await _run_hooks(app, app.state.startup_hooks)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await _run_hooks(app, app.state.shutdown_hooks)
            hub.close()
            dispatcher.stop()

    app = FastAPI(title="transferops", version=transferops.__version__, lifespan=lifespan,
                  description="Text classification with dynamic batching, human-review routing and A/B arms.")
    state = app.state
    state.settings, state.hub, state.metrics, state.metrics_registry = settings, hub, metrics, metrics.registry
    state.prediction_listeners, state.listener_dispatcher = listeners, dispatcher
    state.durable_log = None  # monitoring in durable log mode: records -> Future done once committed
    state.startup_hooks, state.shutdown_hooks = [], []
    state.expected = set()  # names loaded at start; /readyz wants them all (an admin unload forgets one)
    state.ready, state.startup_error = False, None
    edge = settings.edge
    if settings.predict.fast_path:  # innermost of ours: the edge limits and the request counter run first
        from transferops.deploy.fastpath import PredictFastPath

        app.add_middleware(PredictFastPath)
    app.add_middleware(BodyLimitMiddleware, max_bytes=edge.max_body_bytes,
                       on_reject=lambda reason: metrics.rejected.labels(reason).inc(),
                       max_header_bytes=edge.max_header_bytes, max_headers=edge.max_headers)
    # outermost: counts the edge's answers (413, 431, 422 encoding) too
    app.add_middleware(RequestCounter, counter=metrics.requests, known=hub.__contains__)
    install_error_handlers(app)
    for router in (health.router, predict.router, admin.router):
        app.include_router(router)
    from transferops.deploy.routers import images  # image models (issue 15): multipart / base64 uploads

    app.include_router(images.router)
    monitoring.mount(app, settings)  # before experiments: outcomes reuse the monitor's store
    experiments.mount(app, settings)
    from transferops.deploy.routers import tables  # tabular models (issue 16): JSON rows

    app.include_router(tables.router)
    return app


def load_configured(hub: ModelHub, settings: ServeSettings) -> set[str]:
    """Load the models, A/B arms and adapters given at start; returns their names."""
    loaded: set[str] = set()
    for name, path in settings.served.items():
        hub.load(name, path)
        loaded.add(name)
    root = settings.adapters_root
    if root is None:
        return loaded
    if not root.is_dir():
        raise ConfigError(f"adapters: {root} is not a folder")
    for sub in sorted(root.iterdir()):
        if sub.is_symlink() and not under(root, sub):
            raise ConfigError(f"adapters: {sub.name!r} is a symlink out of the adapters folder ({root}); "
                              "copy the adapter in or remove the link")
        if (sub / "transferops.json").exists():
            if sub.name in hub:
                raise ConfigError(f"adapters: {sub.name!r} clashes with a --model name; rename the folder")
            hub.load_adapter(sub.name, sub)
            loaded.add(sub.name)
    return loaded


def _log_review_policies(hub: ModelHub) -> None:
    for info in hub.info():
        rv = info["review"]
        if rv["source"] == "derived":
            log.warning("model %s: review threshold %.4f reaches %.2f%% auto accuracy at a %.1f%% review "
                        "rate on %d validation texts%s", info["name"], rv["threshold"],
                        100 * (rv["auto_accuracy"] or 0), 100 * rv["review_rate"], rv["n"],
                        "" if rv["reached"] else " (target NOT reached: everything goes to review)")


async def _run_hooks(app: FastAPI, hooks: list[Callable[[Any], Any]]) -> None:
    for hook in list(hooks):
        res = hook(app)
        if inspect.isawaitable(res):
            await res

