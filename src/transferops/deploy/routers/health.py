"""``GET /healthz`` (alive), ``/readyz`` (models loaded and warmed), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from transferops.deploy.http import HubDep, MetricsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, hub: HubDep) -> JSONResponse:
    """200 once every model configured at start is loaded and warmed (and while it stays loaded)."""
    missing = sorted(n for n in request.app.state.expected if n not in hub)
    ok = bool(request.app.state.ready) and not missing and bool(hub.names())
    return JSONResponse({"ready": ok, "models": hub.names(), "missing": missing}, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def prom(metrics: MetricsDep) -> Response:
    data, ctype = metrics.render()
    return Response(data, media_type=ctype)
