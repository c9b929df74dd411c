"""What every router of the server shares: dependencies as ``Annotated`` aliases, the error shape,
the exception handlers, and the 404 that names the flag of a feature that is not mounted.

Routers read the app's state only through these dependencies (``HubDep``, ``MetricsDep``,
``SettingsDep``, ``AdminDep``), so a route's signature says what it uses::

    @router.delete("/admin/models/{name}")
    async def unload(name: str, _: AdminDep, hub: HubDep) -> dict[str, Any]: ...
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from transferops.deploy.hub import ModelHub
from transferops.deploy.metrics import ServerMetrics
from transferops.deploy.settings import ADMIN_TOKEN_ENV, ServeSettings
from transferops.errors import TransferOpsError


def field_error(status: int, loc: list[Any], msg: str, kind: str = "value_error") -> HTTPException:
    """An error in FastAPI's validation shape, naming the field (``loc``)."""
    return HTTPException(status, detail=[{"loc": loc, "msg": msg, "type": kind}])


def under(root: Path, candidate: Path) -> bool:
    """``candidate`` resolves (symlinks included) to a path inside ``root``."""
    try:
        return candidate.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


# ---------------------------------------------------------------------- dependencies
def get_hub(request: Request) -> ModelHub:
    return request.app.state.hub  # type: ignore[no-any-return]


def get_metrics(request: Request) -> ServerMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None,
                  x_admin_token: Annotated[str | None, Header()] = None) -> None:
    """``Authorization: Bearer TOKEN`` or ``X-Admin-Token``, compared in constant time. 403 when the
    server has no token (admin disabled) or the token is wrong, 401 when none was sent."""
    token = get_settings(request).admin.admin_token
    if not token:
        raise HTTPException(403, detail="admin endpoints are disabled: start the server with "
                            f"--admin-token or {ADMIN_TOKEN_ENV}")
    given = x_admin_token
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given:
        raise HTTPException(401, detail="admin token required (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(403, detail="wrong admin token")


HubDep = Annotated[ModelHub, Depends(get_hub)]
MetricsDep = Annotated[ServerMetrics, Depends(get_metrics)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
#: Put ``_: AdminDep`` in an admin route's signature; the check runs before the body is parsed.
AdminDep = Annotated[None, Depends(require_admin)]


# ---------------------------------------------------------------------- errors
async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's ``detail`` list (inputs never echoed) and a one-line ``message``."""
    assert isinstance(exc, RequestValidationError)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
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
    if "json" not in request.headers.get("content-type", ""):
        message += " (send the body as JSON with Content-Type: application/json)"
    return JSONResponse({"detail": errors, "message": message}, status_code=422)


async def on_transferops_error(_: Request, exc: Exception) -> JSONResponse:
    """Our own errors are about the input (a bad artifact, a bad value): 422 with the one line."""
    return JSONResponse({"detail": str(exc)}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(TransferOpsError, on_transferops_error)


# ---------------------------------------------------------------------- features not mounted
def not_mounted(app: FastAPI, path: str, hint: str) -> None:
    """``path`` belongs to a feature this server was started without: its route is not mounted (no
    handler, not in OpenAPI); a request to it gets the router's 404 with ``hint`` naming the flag
    that turns the feature on, instead of a bare "Not Found"."""
    hints: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "absent_routes", None)
    if hints is None:
        hints = app.state.absent_routes = []
        app.add_exception_handler(404, _not_found)
    hints.append((compile_path(path)[0], hint))


async def _not_found(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    if exc.detail == "Not Found":  # no route matched (our routes' own 404s always say more)
        for pattern, hint in getattr(request.app.state, "absent_routes", []):
            if pattern.match(request.scope["path"]):
                return JSONResponse({"detail": hint}, status_code=404)
    return await http_exception_handler(request, exc)
