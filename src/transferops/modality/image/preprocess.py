"""Preprocessing from the checkpoint's own config: resize (shortest edge), centre crop, rescale to [0, 1],
normalise with the checkpoint's mean/std — "match the normalization statistics used during pretraining".

:class:`ImagePreprocessing` is read from a folder's ``preprocessor_config.json`` (transformers' image
processor format) and recorded in the manifest under ``image.preprocessing``; the model folder keeps the
same file, and a loader that finds them different refuses the folder (:func:`check_same`).

One deliberate override: ``crop`` (the resolution), for CPU budgets (e.g. 96 px instead of 224); the
resize edge keeps the checkpoint's resize/crop ratio. The normalisation statistics cannot be overridden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import ArtifactError, ConfigError


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize the shortest edge to ``resize``, centre-crop ``crop`` × ``crop``, then ``(x/255 - mean) / std``."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if not (8 <= self.crop <= 1024) or self.resize < self.crop:
            raise ConfigError(f"image.crop: must be in [8, 1024] and not above resize ({self.resize}), "
                              f"got {self.crop}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError(f"image.mean/std: need 3 values each and std > 0, got {self.mean} / {self.std}")

    @classmethod
    def from_folder(cls, path: str | Path) -> ImagePreprocessing:
        from transferops._util import read_json

        f = Path(path) / "preprocessor_config.json"
        if not f.exists():
            raise ArtifactError(f"{path}: preprocessor_config.json is missing (the image size and "
                                "normalisation statistics of the checkpoint)")
        return cls.from_hf(read_json(f))

    @classmethod
    def from_hf(cls, doc: dict[str, Any]) -> ImagePreprocessing:
        def side(v: Any, default: int) -> int:
            if isinstance(v, dict):
                for k in ("shortest_edge", "height", "width"):
                    if k in v:
                        return int(v[k])
                return default
            return int(v) if v is not None else default

        crop = side(doc.get("crop_size"), 0) if doc.get("do_center_crop", "crop_size" in doc) else 0
        resize = side(doc.get("size"), 224)
        if not crop:
            crop = resize
        mean = tuple(float(x) for x in doc.get("image_mean", (0.5, 0.5, 0.5)))
        std = tuple(float(x) for x in doc.get("image_std", (0.5, 0.5, 0.5)))
        return cls(resize=max(resize, crop), crop=crop, mean=mean, std=std)  # type: ignore[arg-type]

    def at_size(self, crop: int | None) -> ImagePreprocessing:
        """The same statistics at another resolution (resize edge scaled by the checkpoint's ratio)."""
        if crop is None or crop == self.crop:
            return self
        ratio = self.resize / self.crop
        return ImagePreprocessing(resize=int(round(crop * ratio)), crop=int(crop), mean=self.mean, std=self.std)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePreprocessing:
        return cls(resize=int(d["resize"]), crop=int(d["crop"]), mean=tuple(d["mean"]),  # type: ignore[arg-type]
                   std=tuple(d["std"]))  # type: ignore[arg-type]

    def to_hf(self) -> dict[str, Any]:
        return {"image_processor_type": "MobileNetV2ImageProcessor", "do_resize": True,
                "size": {"shortest_edge": self.resize}, "do_center_crop": True,
                "crop_size": {"height": self.crop, "width": self.crop}, "do_rescale": True,
                "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(self.mean),
                "image_std": list(self.std), "resample": 2}

    def save(self, folder: str | Path) -> None:
        from transferops._util import write_json

        write_json(Path(folder) / "preprocessor_config.json", self.to_hf())

    # ------------------------------------------------------------------ pixels
    def crop_image(self, im: Any) -> Any:
        """Shortest-edge resize (bilinear) + centre crop of an RGB ``PIL.Image``."""
        from PIL import Image

        w, h = im.size
        s = self.resize / min(w, h)
        nw, nh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
        im = im.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - self.crop) // 2, (nh - self.crop) // 2
        return im.crop((left, top, left + self.crop, top + self.crop))

    def normalise(self, arr: np.ndarray) -> np.ndarray:
        """(n, h, w, 3) uint8 or float in [0, 255] → (n, 3, h, w) float32 normalised."""
        mean = np.asarray(self.mean, np.float32) * np.float32(255.0)
        std = np.asarray(self.std, np.float32) * np.float32(255.0)
        x: np.ndarray = (arr.astype(np.float32) - mean) / std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)

    def pixels(self, images: Sequence[Any]) -> np.ndarray:
        """Decoded RGB images → the model's ``pixel_values`` (n, 3, crop, crop) float32."""
        if not images:
            return np.zeros((0, 3, self.crop, self.crop), np.float32)
        return self.normalise(np.stack([np.asarray(self.crop_image(im)) for im in images]))


def check_same(recorded: ImagePreprocessing, folder: ImagePreprocessing, where: str) -> None:
    """The manifest's preprocessing must equal the model folder's: a mismatch is an error, not a guess."""
    if recorded != folder:
        raise ArtifactError(
            f"{where}: image preprocessing mismatch: the manifest records {recorded.to_dict()} but "
            f"model/preprocessor_config.json says {folder.to_dict()}; the model would see inputs normalised "
            "differently from training. Restore the folder's preprocessor_config.json or retrain")


__all__ = ["ImagePreprocessing", "check_same"]
