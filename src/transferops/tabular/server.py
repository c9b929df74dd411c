"""HTTP serving of tabular models: JSON rows in, labels + probabilities + review route out.

``POST /v1/models/{name}/predict`` with ``{"rows": [{"income": 52000, "student": "No", ...}, ...]}``. Rows are
checked against the model's schema before they are queued: a missing, extra or wrongly typed column is a
422 naming ``rows[i].column``. Rows of concurrent requests are coalesced by the server's
:class:`~transferops.deploy.batching.DynamicBatcher` (the same batcher the text server uses). A
prediction whose confidence (the probability of the decided label, :class:`~transferops.decision.DecisionRule`)
is below ``review_threshold`` is routed to ``review``. With ``db_url`` every prediction is committed to the
log (:class:`~transferops.tabular.log.TabularLog`) before the response (durable).

Also ``/healthz``, ``/readyz``, ``/v1/models``, ``/v1/models/{name}``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import transferops
from transferops.deploy.batching import DeadlineExceeded, DynamicBatcher, Overloaded
from transferops.errors import ConfigError, DataError, TransferOpsError
from transferops.tabular.artifact import TabularModel


class PredictRows(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]] = Field(..., description="one object per row: column -> value (null = missing)")


@dataclass
class RowsResult:
    labels: list[Any]
    proba: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def slice(self, a: int, b: int) -> RowsResult:
        return RowsResult(self.labels[a:b], self.proba[a:b], self.confidence[a:b])


class RowsRunner:
    def __init__(self, model: TabularModel) -> None:
        self.model = model
        self.rule = model.decision_rule

    def infer(self, rows: list[dict[str, Any]]) -> RowsResult:
        p = self.model.predict_proba(rows)
        labels, conf = self.rule.apply(p)
        return RowsResult(labels, p, conf)


class _Slot:
    def __init__(self, runner: RowsRunner) -> None:
        self.runner = runner


@dataclass
class TabularServeSettings:
    models: dict[str, str]
    db_url: str | None = None
    review_threshold: float | None = None
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    queue_size: int = 8192
    max_rows_per_request: int = 1024
    threads: int | None = None
    request_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("--model: give at least one tabular model folder")
        if self.review_threshold is not None and not 0 <= self.review_threshold <= 1:
            raise ConfigError(f"--review-threshold: {self.review_threshold} must be in [0, 1]")
        for name, path in self.models.items():
            if not Path(path).is_dir():
                raise ConfigError(f"--model {name}: {path} is not a folder")


def create_tabular_app(settings: TabularServeSettings) -> FastAPI:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tabular-infer")
    state: dict[str, Any] = {"models": {}, "batchers": {}, "log": None, "ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, path in settings.models.items():
            model = TabularModel(path, threads=settings.threads)
            model.predict_proba(model.split("validation").head(2)[model.schema.names])  # load and warm up
            state["models"][name] = model
            state["batchers"][name] = DynamicBatcher(_Slot(RowsRunner(model)),  # type: ignore[arg-type]
                                                     executor=executor, max_batch_size=settings.max_batch_size,
                                                     max_wait_ms=settings.max_wait_ms, queue_size=settings.queue_size)
        if settings.db_url:
            from transferops.tabular.log import TabularLog

            state["log"] = TabularLog(settings.db_url)
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            for b in state["batchers"].values():
                b.close()
            if state["log"] is not None:
                state["log"].close()
            executor.shutdown(wait=False)

    app = FastAPI(title="transferops (tables)", version=transferops.__version__, lifespan=lifespan,
                  description="Tabular classification: JSON rows, dynamic batching, review routing, logging.")
    app.state.tabular = state

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(TransferOpsError)
    async def _tops_error(request: Request, exc: TransferOpsError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    def info(name: str) -> dict[str, Any]:
        m: TabularModel = state["models"][name]
        return {"name": name, "model": m.chosen, "runtime": "onnx" if m.exported else "pytorch/sklearn",
                "labels": m.labels, "features": m.schema.types,
                "decision_threshold": m.manifest.get("decision_threshold"),
                "review_threshold": settings.review_threshold, "created": m.manifest.get("created")}

    def get_model(name: str) -> TabularModel:
        if name not in state["models"]:
            raise HTTPException(404, detail=f"model {name!r} is not loaded (loaded: {', '.join(state['models'])})")
        return state["models"][name]  # type: ignore[no-any-return]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ok = state["ready"]
        return JSONResponse(status_code=200 if ok else 503, content={"ready": ok})

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"models": [info(n) for n in state["models"]]}

    @app.get("/v1/models/{name}")
    async def model_info(name: str) -> dict[str, Any]:
        get_model(name)
        return info(name)

    @app.post("/v1/models/{name}/predict")
    async def predict(name: str, req: PredictRows) -> dict[str, Any]:
        model = get_model(name)
        t0 = time.perf_counter()
        if not req.rows:
            raise DataError("rows: send at least one row")
        if len(req.rows) > settings.max_rows_per_request:
            raise DataError(f"rows: {len(req.rows)} rows exceed --max-rows-per-request "
                            f"({settings.max_rows_per_request}); split the request")
        model.schema.coerce(req.rows)  # 422 naming the column, before anything is queued
        try:
            parts = await state["batchers"][name].submit(req.rows, timeout_s=settings.request_timeout_s)
        except Overloaded as exc:
            raise HTTPException(503, detail="server overloaded", headers={"Retry-After": str(int(exc.retry_after))}
                                ) from exc
        except DeadlineExceeded as exc:
            raise HTTPException(504, detail="request waited too long in the queue") from exc
        labels: list[Any] = []
        probas: list[np.ndarray] = []
        confs: list[float] = []
        for _runner, res in parts:
            labels += list(res.labels)
            probas += list(res.proba)
            confs += [float(c) for c in res.confidence]
        latency = (time.perf_counter() - t0) * 1000
        rt = settings.review_threshold
        preds, records = [], []
        id_col = model.schema.id_column
        for row, lbl, p, c in zip(req.rows, labels, probas, confs, strict=True):
            pid = str(uuid.uuid4())
            route = "review" if rt is not None and c < rt else "auto"
            pr = {lbl_: round(float(v), 6) for lbl_, v in zip(model.labels, p, strict=True)}
            preds.append({"id": pid, "label": lbl, "probabilities": pr, "confidence": round(c, 6), "route": route})
            records.append({"id": pid, "ts": time.time(), "model": name,
                            "version": str(model.manifest.get("created", "")),
                            "row": {k: row[k] for k in model.schema.names}, "label": lbl, "proba": pr, "confidence": c,
                            "route": route, "latency_ms": latency,
                            "row_id": str(row.get(id_col)) if id_col and id_col in row else None})
        if state["log"] is not None:
            try:
                await asyncio.to_thread(state["log"].write, records)
            except Exception as exc:  # an unlogged prediction is not acknowledged
                raise HTTPException(503, detail=f"prediction log unavailable: {type(exc).__name__}") from exc
        return {"model": name, "predictions": preds, "latency_ms": round(latency, 2)}

    return app


__all__ = ["PredictRows", "RowsResult", "RowsRunner", "TabularServeSettings", "create_tabular_app"]
