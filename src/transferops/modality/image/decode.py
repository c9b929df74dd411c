"""Decoding one image safely with Pillow: every bad file is one clear :class:`DataError`, never a crash.

An image input is a file path (``str``/``Path``), encoded bytes, a ``PIL.Image.Image`` or an ``(h, w)`` /
``(h, w, 3)`` uint8 array. Policy (decisions where the issue is silent):

* not an image / unreadable / truncated → ``DataError`` (training with ``--skip-bad-rows`` writes it to
  ``rejects.csv`` instead);
* larger than :data:`MAX_PIXELS` (decompression bombs, giant scans) → ``DataError`` before decoding;
* CMYK, palette, grayscale (``L``/``LA``), ``RGBA`` → converted to RGB (alpha over white);
  16-bit (``I;16``) and 32-bit (``I``/``F``) → rescaled to 8 bit by their own range, then RGB.
  The conversion is the policy, not an error: these are common in real folders (scans, PNGs).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import DataError

#: Largest accepted image (width × height): 8,192 × 8,192. Pillow's own bomb guard warns at ~89 M pixels.
MAX_PIXELS = 8192 * 8192
#: Smallest accepted side, in pixels.
MIN_SIDE = 8
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _open(item: Any, where: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        arr = item
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise DataError(f"{where}: an image array must be uint8 (h, w) or (h, w, 3), got {arr.dtype} "
                            f"{arr.shape}")
        return Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    if isinstance(item, (bytes, bytearray, memoryview)):
        src: Any = io.BytesIO(bytes(item))
        label = "the uploaded file"
    elif isinstance(item, (str, Path)):
        p = Path(item)
        if not p.is_file():
            raise DataError(f"{where}: image file {p} not found")
        src, label = p, str(p)
    else:
        raise DataError(f"{where}: expected an image path, bytes, a PIL image or a uint8 array, got "
                        f"{type(item).__name__}")
    try:
        im = Image.open(src)  # reads the header only; the size is checked before decoding
    except UnidentifiedImageError:
        raise DataError(f"{where}: {label} is not an image Pillow can read (JPEG, PNG, BMP, GIF, TIFF, WebP)"
                        ) from None
    except Image.DecompressionBombError:
        raise DataError(f"{where}: {label} is too large to decode safely (over {MAX_PIXELS:,} pixels); "
                        "downscale it") from None
    except OSError as exc:
        raise DataError(f"{where}: {label} could not be opened: truncated or corrupt ({exc})") from None
    return im


def to_rgb(im: Any, where: str = "image") -> Any:
    """Fully decode ``im`` and return an 8-bit RGB ``PIL.Image`` (see the module policy)."""
    from PIL import Image

    w, h = im.size
    if w * h > MAX_PIXELS:
        raise DataError(f"{where}: {w}×{h} is over the {MAX_PIXELS:,}-pixel limit; downscale it")
    if min(w, h) < MIN_SIDE:
        raise DataError(f"{where}: {w}×{h} is smaller than {MIN_SIDE} px on a side; not a usable image")
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: the image is truncated or corrupt ({exc})") from None
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(arr.round().astype(np.uint8))
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return im.convert("RGB") if im.mode != "RGB" else im


def decode_image(item: Any, where: str = "image") -> Any:
    """``item`` (path, bytes, PIL image or uint8 array) → an 8-bit RGB ``PIL.Image``, or a one-line
    :class:`DataError` naming ``where`` and the fix."""
    im = _open(item, where)
    try:
        return to_rgb(im, where)
    except DataError:
        raise
    except Exception as exc:  # Pillow raises many types on hostile files; all are the file's fault
        raise DataError(f"{where}: the image could not be decoded ({type(exc).__name__}: {exc})") from None


def file_sha1(item: Any) -> str | None:
    """SHA-1 of the file's bytes (a path or bytes), None for in-memory images."""
    import hashlib

    if isinstance(item, (str, Path)) and Path(item).is_file():
        return hashlib.sha1(Path(item).read_bytes()).hexdigest()
    if isinstance(item, (bytes, bytearray)):
        return hashlib.sha1(bytes(item)).hexdigest()
    return None


__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "MIN_SIDE", "decode_image", "file_sha1", "to_rgb"]
