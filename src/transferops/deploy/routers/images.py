"""Image prediction routes (issue 15), for models whose modality is ``image``:

* ``POST /v1/models/{name}/images`` — multipart upload, one or more ``files`` parts;
* ``POST /v1/models/{name}/images/base64`` — JSON ``{"images": ["<base64>", ...], "ids": [...]}``.

Each image is decoded with Pillow at the edge (:func:`transferops.modality.image.decode_image`): a bad one
is a 422 naming its index (never a 5xx), a text model answers 422 too. Decoded images go through the
model's dynamic batcher (batched with other requests), the review route, the metrics and the prediction
log exactly like texts (the logged ``text`` is ``image:sha1:<hash of the bytes>``; image bytes are not
stored). The JSON text route refuses image models (it would read server paths).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from transferops.deploy.http import field_error
from transferops.deploy.routers.predict import _infer, check_modality, get_predict_settings, respond, unknown_model
from transferops.errors import DataError

router = APIRouter(tags=["images"])


class ImagesBase64Request(BaseModel):
    images: list[str] = Field(..., min_length=1, description="base64-encoded image files (JPEG, PNG, ...)")
    ids: list[str | int] | None = None


def is_image_model(hub: Any, name: str) -> bool:
    try:
        return getattr(hub.get(name).runner.model, "modality", "text") == "image"
    except (KeyError, AttributeError):
        return False


def _decode_all(blobs: list[bytes], loc: list[Any]) -> list[Any]:
    from transferops.modality.image import decode_image

    out = []
    for i, b in enumerate(blobs):
        try:
            out.append(decode_image(b, f"images[{i}]"))
        except DataError as exc:
            raise field_error(422, [*loc, i], str(exc), "invalid_image") from None
    return out


async def _predict_images(request: Request, name: str, blobs: list[bytes], ids: list[Any] | None,
                          loc: list[Any]) -> Response:
    t0 = time.perf_counter()
    state = request.app.state
    hub, metrics, settings = state.hub, state.metrics, get_predict_settings(request)
    request.scope["transferops.model"] = name
    if name not in hub:
        raise unknown_model(name, hub)
    check_modality(hub, name, "image")
    if not blobs:
        raise field_error(422, loc, "no images; send at least one")
    if len(blobs) > settings.max_texts_per_request:
        raise field_error(422, loc, f"{len(blobs)} images; at most {settings.max_texts_per_request} per request")
    if ids is not None and len(ids) != len(blobs):
        raise field_error(422, ["body", "ids"], f"{len(ids)} ids for {len(blobs)} images; give one per image")
    images = _decode_all(blobs, loc)
    keys = ["image:sha1:" + hashlib.sha1(b).hexdigest() for b in blobs]
    chunks = await _infer(request, name, images, settings.request_timeout_s, hub, metrics)
    if chunks is None:
        return Response(status_code=499)
    # the texts' one path from results to the answer: review route, log (503 when it is down), metrics
    return await respond(request, name, chunks, t0=t0, logged=keys, ids=ids)


@router.post("/v1/models/{name}/images",
             responses={404: {"description": "unknown model"}, 422: {"description": "a bad image (index named)"}})
async def predict_upload(name: str, request: Request) -> Response:
    """Classify uploaded image files (multipart form, field ``files``, repeatable)."""
    try:
        form = await request.form()
    except Exception as exc:  # a malformed multipart body is the client's
        raise field_error(422, ["body"], f"not a multipart form ({type(exc).__name__}); send files=@img.jpg"
                          ) from None
    files = form.getlist("files")
    blobs = []
    for i, f in enumerate(files):
        if isinstance(f, str) or not hasattr(f, "read"):
            raise field_error(422, ["body", "files", i], "expected a file part (files=@img.jpg), got a text field")
        blobs.append(await f.read())
    return await _predict_images(request, name, blobs, None, ["body", "files"])


@router.post("/v1/models/{name}/images/base64",
             responses={404: {"description": "unknown model"}, 422: {"description": "a bad image (index named)"}})
async def predict_base64(name: str, req: ImagesBase64Request, request: Request) -> Response:
    """Classify base64-encoded images sent as JSON."""
    blobs = []
    for i, s in enumerate(req.images):
        try:
            blobs.append(base64.b64decode(s.split(",", 1)[-1] if s.startswith("data:") else s, validate=True))
        except (binascii.Error, ValueError):
            raise field_error(422, ["body", "images", i], "not valid base64") from None
    return await _predict_images(request, name, blobs, req.ids, ["body", "images"])


__all__ = ["ImagesBase64Request", "is_image_model", "router"]
