"""Row prediction route (issue 16), for models whose modality is ``tabular``:

``POST /v1/models/{name}/rows`` with ``{"rows": [{"income": 52000, "student": "No", ...}], "ids": [...]}``.

Rows are checked against the model's schema before anything is queued (the model's ``schema.coerce``): a
missing, extra or wrongly typed column is a 422 naming ``rows[i].column``. Checked rows go through the same
path as texts: the model's dynamic batcher (:func:`~transferops.deploy.routers.predict._infer`), the review
route, the metrics, the prediction log and the listeners (:func:`~transferops.deploy.routers.predict.respond`).
The logged ``text`` of a row is the row as JSON (its feature columns and the id column), which
``monitor`` reads back for per-feature drift. The JSON text route answers 422 for a tabular model, this
route 422 for a text model. :func:`predict_rows` is also what the experiments router calls (``--ab``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from transferops.deploy.http import field_error
from transferops.deploy.routers.predict import (
    Assignment,
    _infer,
    check_modality,
    get_predict_settings,
    respond,
    timeout_for,
    unknown_model,
)
from transferops.deploy.schemas import PredictResponse, unencodable_at

router = APIRouter(tags=["predict"])
MODALITY = "tabular"


class PredictRowsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]] = Field(..., min_length=1,
                                       description="one object per row: column -> value (null = missing)")
    ids: list[StrictStr | StrictInt] | None = Field(None, description="your id of each row, answered back")


async def predict_rows(request: Request, name: str, req: PredictRowsRequest, *,
                       assignment: Assignment | None = None) -> Response:
    """Predict ``req.rows`` with tabular model ``name``, log them, answer."""
    t0 = time.perf_counter()
    state = request.app.state
    hub, metrics, settings = state.hub, state.metrics, get_predict_settings(request)
    request.scope["transferops.model"] = name
    if name not in hub:
        raise unknown_model(name, hub)
    check_modality(hub, name, MODALITY)
    rows = req.rows
    if len(rows) > settings.max_texts_per_request:
        metrics.rejected.labels("too_many_texts").inc()
        raise field_error(422, ["body", "rows"], f"{len(rows)} rows; at most {settings.max_texts_per_request} "
                          "per request (max_texts_per_request); split the request")
    if req.ids is not None and len(req.ids) != len(rows):
        raise field_error(422, ["body", "ids"], f"{len(req.ids)} ids for {len(rows)} rows; give one per row")
    for i, cid in enumerate(req.ids or []):
        if isinstance(cid, str) and unencodable_at(cid) is not None:
            raise field_error(422, ["body", "ids", i], "contains an unpaired surrogate (e.g. \\ud800), which is "
                              "not text; send valid UTF-8", "invalid_text")
    model = hub.get(name).runner.model
    model.schema.coerce(rows, where="rows")  # DataError -> 422 naming rows[i].column, before anything is queued
    logged = [model.logged_input(r) for r in rows]
    chunks = await _infer(request, name, rows, timeout_for(request, settings), hub, metrics)  # type: ignore[arg-type]
    if chunks is None:
        metrics.rejected.labels("client_gone").inc()
        return Response(status_code=499)
    return await respond(request, name, chunks, t0=t0, logged=logged, ids=req.ids, assignment=assignment)


@router.post("/v1/models/{name}/rows", response_model=PredictResponse,
             responses={404: {"description": "unknown model"}, 413: {"description": "body too large"},
                        422: {"description": "a missing / extra / wrongly typed column (rows[i].column named)"},
                        503: {"description": "queue full; see Retry-After"}})
async def predict_model_rows(name: str, req: PredictRowsRequest, request: Request) -> Response:
    """Classify table rows; each prediction says `auto` or `review` (confidence below the threshold)."""
    return await predict_rows(request, name, req)


__all__ = ["MODALITY", "PredictRowsRequest", "predict_rows", "router"]
