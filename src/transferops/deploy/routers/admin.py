"""Admin routes (``AdminDep`` on each): list, load or replace, and unload models and adapters.

Paths sent over HTTP are confined: ``POST /admin/models`` loads only from the server's model roots
(:attr:`~transferops.deploy.settings.ServeSettings.model_roots`), ``POST /admin/adapters`` only from
inside the adapters folder (symlinks resolved).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi import Path as PathParam

from transferops.deploy.http import AdminDep, HubDep, SettingsDep, field_error, under
from transferops.deploy.hub import check_name
from transferops.deploy.schemas import AdapterRequest, ModelRequest
from transferops.errors import ConfigError, TransferOpsError

router = APIRouter(prefix="/admin", tags=["admin"])


async def run_admin(fn: Callable[[], Any]) -> Any:
    """Run a blocking load off the event loop; what cannot be loaded is the caller's input: 422."""
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


@router.get("/models")
async def admin_list(_: AdminDep, hub: HubDep, settings: SettingsDep) -> dict[str, Any]:
    pools = [{"base": k[0], "n_labels": k[1], "task": k[2], "peft_type": k[3], "adapters": v}
             for k, v in hub.adapter_pools.items()]
    return {"models": hub.info(), "adapter_pools": pools, "settings": settings.to_dict()}


@router.post("/adapters/{name}")
async def admin_load_adapter(_: AdminDep, hub: HubDep, settings: SettingsDep, name: str = PathParam(...),
                             body: Annotated[AdapterRequest | None, Body()] = None) -> dict[str, Any]:
    """Load (or replace) a LoRA adapter from a folder inside the adapters folder."""
    valid_name(name)
    root = settings.adapters_root
    if root is None:
        raise HTTPException(409, detail="no adapters folder: start the server with --adapters DIR")
    rel = body.path if body and body.path else name
    if Path(rel).is_absolute() or not under(root, root / rel):
        raise field_error(403, ["body", "path"], f"{rel!r} escapes the adapters folder")
    target = (root / rel).resolve()
    if not target.is_dir():
        raise field_error(404, ["body", "path"], f"no adapter folder {rel!r} in the adapters folder")
    info = await run_admin(lambda: hub.load_adapter(name, target))
    return {"loaded": name, "model": info}


@router.post("/models/{name}")
async def admin_load_model(_: AdminDep, hub: HubDep, settings: SettingsDep, model_req: ModelRequest,
                           name: str = PathParam(...)) -> dict[str, Any]:
    """Load or atomically replace a named model (champion swap); the path must lie in a model root."""
    valid_name(name)
    roots = settings.model_roots
    target = Path(model_req.path)
    if not any(under(root, target) for root in roots):
        raise field_error(403, ["body", "path"], f"{model_req.path!r} is outside the allowed model folders "
                          f"({', '.join(map(str, roots)) or 'none'}; see --model-root)")
    target = target.resolve()
    if not target.is_dir():
        raise field_error(404, ["body", "path"], f"{model_req.path!r} is not a folder")
    info = await run_admin(lambda: hub.load(name, target))
    return {"loaded": name, "model": info}


@router.delete("/models/{name}")
@router.delete("/adapters/{name}")
async def admin_unload(name: str, _: AdminDep, hub: HubDep, request: Request) -> dict[str, Any]:
    try:
        hub.unload(name)
    except KeyError:
        raise HTTPException(404, detail=f"unknown model {name!r}") from None
    request.app.state.expected.discard(name)
    return {"unloaded": name}
