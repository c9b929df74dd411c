"""Train↔test leakage for images: exact duplicates by file hash (the modality's leakage key) and
near-duplicates by perceptual hash (``imagehash.phash``, 64 bits; a pair within ``max_bits`` Hamming
distance is a near-duplicate — resized, recompressed or slightly edited copies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from transferops._extras import require
from transferops.modality.image import IMAGE


def phash_bits(images: Sequence[Any]) -> np.ndarray:
    """(n, 64) bool perceptual hashes of decoded images."""
    imagehash = require("imagehash", "image")
    return np.asarray([imagehash.phash(im).hash.ravel() for im in images], dtype=bool).reshape(len(images), 64)


def find_image_leakage(train_keys: Sequence[Any], test_keys: Sequence[Any], train_images: Sequence[Any],
                       test_images: Sequence[Any], *, max_bits: int = 4, max_pairs: int = 20) -> dict[str, Any]:
    """Counts and a few example pairs (train index, test index) of exact and near-duplicates."""
    tr_hash = {IMAGE.leakage_key(k): i for i, k in enumerate(train_keys)}
    exact = [(tr_hash[h], j) for j, k in enumerate(test_keys) if (h := IMAGE.leakage_key(k)) in tr_hash]
    near: list[tuple[int, int, int]] = []
    if train_images and test_images:
        a, b = phash_bits(train_images), phash_bits(test_images)
        exact_set = {j for _, j in exact}
        for s in range(0, len(b), 256):
            dist = (b[s:s + 256, None, :] != a[None, :, :]).sum(-1)
            for jj, row in enumerate(dist):
                j = s + jj
                i = int(row.argmin())
                if row[i] <= max_bits and j not in exact_set:
                    near.append((i, j, int(row[i])))
    return {"exact_duplicates": len(exact), "near_duplicates": len(near), "near_max_bits": max_bits,
            "exact_pairs": exact[:max_pairs], "near_pairs": near[:max_pairs]}


__all__ = ["find_image_leakage", "phash_bits"]
