"""Training-time image augmentation from a kept library (kornia 0.9, pure torch; no torchvision).

Presets (``augment`` in :class:`~transferops.vision.train.ImageTrainConfig`):

* ``standard`` — random resized crop (scale 0.7–1), horizontal flip, colour jitter (brightness, contrast,
  saturation 0.2, hue 0.02);
* ``geometry_preserving`` — brightness and contrast only (the retinopathy case: lesion position and shape
  must not move).

Applied to the training split's cropped uint8 images, per batch, seeded by ``(seed, epoch, batch)``;
never to validation or test. With ``head`` (cached features) augmentation does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from transferops._extras import require

PRESETS = ("standard", "geometry_preserving")


def build_pipeline(preset: str, size: int) -> Any:
    """The kornia ``AugmentationSequential`` of ``preset`` for ``size`` × ``size`` images."""
    require("kornia", "image")
    import kornia.augmentation as K

    if preset == "standard":
        return K.AugmentationSequential(
            K.RandomResizedCrop((size, size), scale=(0.7, 1.0), p=1.0),
            K.RandomHorizontalFlip(p=0.5),
            K.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.8))
    if preset == "geometry_preserving":
        return K.AugmentationSequential(K.ColorJitter(brightness=0.2, contrast=0.2, p=0.9))
    from transferops.errors import ConfigError

    raise ConfigError(f"augment: {preset!r} is not one of {', '.join(PRESETS)}")


def make_augmenter(preset: str | None) -> Callable[..., np.ndarray] | None:
    """``f(crops_uint8 (n, h, w, 3), seed=...) -> float array (n, h, w, 3) in [0, 255]``, or None."""
    if preset is None:
        return None
    pipes: dict[int, Any] = {}

    def apply(crops: np.ndarray, *, seed: Any = 0) -> np.ndarray:
        import torch

        size = crops.shape[1]
        if size not in pipes:
            pipes[size] = build_pipeline(preset, size)
        g = torch.get_rng_state()
        torch.manual_seed(int(np.random.default_rng(seed).integers(2**31)))
        try:
            x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
            y = pipes[size](x).clamp(0, 1)
        finally:
            torch.set_rng_state(g)
        return (y.permute(0, 2, 3, 1).numpy() * 255.0).astype(np.float32)

    return apply


__all__ = ["PRESETS", "build_pipeline", "make_augmenter"]
