"""The image modality: what is image-specific in transferops, in one place.

* input check: a list of image paths, encoded bytes, ``PIL`` images or uint8 arrays, decoded with Pillow to
  8-bit RGB (:mod:`.decode`: bad files are one clear :class:`~transferops.errors.DataError`);
* leakage key: SHA-1 of the file's bytes (of the decoded pixels for in-memory images);
* size: pixel count (similar sizes batch together);
* preprocessor: the checkpoint's ``preprocessor_config.json`` → :class:`.preprocess.ImagePreprocessing`;
* encode: resize / centre-crop / normalise into ``pixel_values``;
* baseline: logistic regression on downsampled pixels + colour histograms (:mod:`.baseline`);
* automatic slice: ``image_brightness``, the mean-luma quartile of each image.

Pillow, numpy and scikit-learn only, imported inside the functions that need them (no torch here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import DataError
from transferops.modality.base import register_modality
from transferops.modality.image.decode import IMAGE_EXTENSIONS, MAX_PIXELS, decode_image, file_sha1

#: Automatic slice ``evaluate`` adds for image models.
BRIGHTNESS_SLICE = "image_brightness"
#: The statistics monitoring compares (input drift), one value per image.
STAT_NAMES = ("width", "height", "brightness", "contrast", "mean_r", "mean_g", "mean_b", "saturation")


def check_images(items: Sequence[Any]) -> list[Any]:
    """Decoded RGB ``PIL`` images, or a :class:`DataError` naming the first bad item (``images[3]: ...``)."""
    if isinstance(items, (str, bytes, Path)) or (hasattr(items, "size") and hasattr(items, "mode")):
        raise DataError("images: pass a list of images (paths, bytes or PIL images), not a single one (wrap it)")
    return [decode_image(it, f"images[{i}]") for i, it in enumerate(items)]


def image_stats(images: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-image statistics for input drift: size, brightness (mean luma), contrast (luma std), colour
    means and saturation, all of decoded RGB images (values in [0, 1] except the sizes)."""
    out: dict[str, list[float]] = {k: [] for k in STAT_NAMES}
    for im in images:
        w, h = im.size
        small = im.resize((64, 64)) if max(w, h) > 64 else im
        rgb = np.asarray(small, np.float32) / 255.0
        luma = rgb @ np.asarray([0.299, 0.587, 0.114], np.float32)
        out["width"].append(float(w))
        out["height"].append(float(h))
        out["brightness"].append(float(luma.mean()))
        out["contrast"].append(float(luma.std()))
        for c, k in enumerate(("mean_r", "mean_g", "mean_b")):
            out[k].append(float(rgb[..., c].mean()))
        mx, mn = rgb.max(-1), rgb.min(-1)
        out["saturation"].append(float(np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0).mean()))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


class ImageModality:
    """:class:`~transferops.modality.base.Modality` for images."""

    name = "image"
    auto_slice_names: tuple[str, ...] = (BRIGHTNESS_SLICE,)

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        return check_images(inputs)

    def leakage_key(self, item: Any) -> str:
        sha = file_sha1(item)
        if sha is not None:
            return sha
        return hashlib.sha1(np.asarray(decode_image(item)).tobytes()).hexdigest()

    def size(self, item: Any) -> int:
        if hasattr(item, "size") and isinstance(item.size, tuple):
            return int(item.size[0] * item.size[1])
        return int(np.prod(decode_image(item).size))

    def load_preprocessor(self, path: str | Path) -> Any:
        from transferops.modality.image.preprocess import ImagePreprocessing

        return ImagePreprocessing.from_folder(path)

    def encode(self, preprocessor: Any, items: Sequence[Any], *, max_length: int = 0,
               return_tensors: str = "pt") -> Mapping[str, Any]:
        images = items if all(hasattr(i, "mode") for i in items) else check_images(items)
        pv = preprocessor.pixels(list(images))
        if return_tensors == "pt":
            import torch

            return {"pixel_values": torch.from_numpy(pv)}
        return {"pixel_values": pv}

    def check_baseline_fits(self, items: Sequence[Any], n_classes: int) -> None:
        return None  # side² + 30 floats per image: small whatever the data

    def baseline(self, *, multilabel: bool = False, seed: int = 0, tune: bool = True, **kw: Any) -> Any:
        from transferops.modality.image.baseline import PixelBaseline

        return PixelBaseline(multilabel=multilabel, seed=seed, tune=tune, **kw)

    def auto_slices(self, items: Sequence[Any]) -> dict[str, list[str]]:
        import pandas as pd

        b = pd.Series(image_stats(check_images(items))["brightness"])
        if b.nunique() < 2:
            return {BRIGHTNESS_SLICE: ["all"] * len(b)}
        cats = pd.qcut(b, 4, duplicates="drop")
        names = {iv: f"Q{i + 1}: {iv.left:.2f}–{iv.right:.2f}" for i, iv in enumerate(cats.cat.categories)}
        return {BRIGHTNESS_SLICE: [names[c] for c in cats]}

    def __repr__(self) -> str:
        return "ImageModality()"


#: The shared instance (stateless).
IMAGE = register_modality(ImageModality())


class ImageServeHooks:
    """What the shared server asks of an image model (the modality hooks of :class:`~transferops.deploy.hub.ModelHub`
    and :class:`~transferops.deploy.runtime.Runner`): a grey image to warm up on, and no token features."""

    #: the server route that takes this model's input (``check_modality``'s hint on the other routes)
    serve_route = "images"

    def warmup_inputs(self) -> list[Any]:
        from PIL import Image

        return [Image.new("RGB", (64, 64), (127, 127, 127))]

    def serve_features(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        zeros = np.zeros(len(inputs))
        return {"n_tokens": zeros.astype(int), "n_chars": zeros.astype(int), "unk_rate": zeros}

__all__ = ["BRIGHTNESS_SLICE", "IMAGE", "IMAGE_EXTENSIONS", "MAX_PIXELS", "STAT_NAMES", "ImageModality",
           "ImageServeHooks", "check_images", "decode_image", "image_stats"]
