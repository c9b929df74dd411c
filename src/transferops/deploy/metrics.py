"""Prometheus metrics of one server app, in its own registry (several apps can live in one process).

Under ``serve --processes N`` (``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor before the process
started) ``prometheus_client`` keeps the values in files shared by the processes, and :meth:`render` sums
them: counters and histograms over every process that served, ``queue_depth`` over the live ones;
``models_loaded`` is the largest live value and ``review_rate`` the most recent one a process set.
"""

from __future__ import annotations

import os
from typing import Any

from transferops._extras import require

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Requests, latency, batch sizes, queue depth, review rate, per-class predictions."""

    def __init__(self) -> None:
        pc = require("prometheus_client", "serve")
        self.registry: Any = pc.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = pc.Counter("transferops_requests", "Prediction requests by model and HTTP status",
                                   ["model", "status"], registry=r)
        self.latency = pc.Histogram("transferops_request_latency_seconds", "End-to-end prediction latency",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = pc.Histogram("transferops_batch_size", "Texts per model call (dynamic batching)",
                                       ["model"], buckets=BATCH_BUCKETS, registry=r)
        self.inference = pc.Histogram("transferops_inference_seconds", "Time of one model call",
                                      ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = pc.Gauge("transferops_queue_depth", "Texts waiting for a batch", ["model"],
                                    registry=r, multiprocess_mode="livesum")
        self.predictions = pc.Counter("transferops_predictions", "Predicted labels", ["model", "label"],
                                      registry=r)
        self.routes = pc.Counter("transferops_routes", "Predictions by route (auto/review)",
                                 ["model", "route"], registry=r)
        self.review_rate = pc.Gauge("transferops_review_rate", "Share of predictions routed to human review "
                                    "since start", ["model"], registry=r, multiprocess_mode="mostrecent")
        self.rejected = pc.Counter("transferops_rejected", "Requests refused before inference",
                                   ["reason"], registry=r)
        self.listener_errors = pc.Counter("transferops_listener_errors",
                                          "Prediction listener failures or drops", ["kind"], registry=r)
        self.models_loaded = pc.Gauge("transferops_models_loaded", "Named models being served", registry=r,
                                      multiprocess_mode="livemax")
        self._routes: dict[str, list[int]] = {}

    def observe_routes(self, model: str, n_review: int, n_total: int) -> None:
        if n_total == 0:
            return
        self.routes.labels(model, "review").inc(n_review)
        self.routes.labels(model, "auto").inc(n_total - n_review)
        acc = self._routes.setdefault(model, [0, 0])
        acc[0] += n_review
        acc[1] += n_total
        self.review_rate.labels(model).set(acc[0] / acc[1])

    def render(self) -> tuple[bytes, str]:
        pc = require("prometheus_client", "serve")
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = pc.CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return pc.generate_latest(merged), pc.CONTENT_TYPE_LATEST
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST
