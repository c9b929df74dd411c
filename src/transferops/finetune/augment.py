"""``train --augment``: perturbed copies of TRAINING rows (never validation or test).

``augment=RATE`` adds ``RATE`` augmented copies per training row on average (0.5: half the rows get
one copy, chosen with the seed; 2: two copies each). ``augment_slice=["career=change"]`` adds
``augment_slice_copies`` copies of every training row of that slice (oversampling by augmentation).
Each copy takes one perturbation from ``augment_perturbations`` drawn per row, at
``augment_strength`` (the share of words touched). What was added is recorded under
``manifest["augmentation"]``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from transferops.constants import TEXT_COL
from transferops.data import LabeledData
from transferops.errors import ConfigError
from transferops.finetune.config import TrainConfig

#: Marks augmented rows in the training frame (dropped before the frame is used elsewhere).
AUGMENTED_COL = "_augmented"


def augment_train(train: LabeledData, cfg: TrainConfig) -> tuple[LabeledData, dict[str, Any]]:
    """``train`` plus its augmented copies, and the manifest entry (``{}`` when nothing is asked)."""
    if not cfg.augment and not cfg.augment_slice:
        return train, {}
    from transferops.modality.augment import TextAugmenter, parse_slice

    aug = TextAugmenter(cfg.augment_perturbations, rate=cfg.augment_strength, seed=cfg.seed).fit(train.texts)
    frame = train.frame
    n = len(frame)
    rng = np.random.default_rng(cfg.seed)
    # copies per row from the global rate: floor for everyone, one more for a seeded share of rows
    whole, frac = int(math.floor(cfg.augment)), cfg.augment - math.floor(cfg.augment)
    copies = np.full(n, whole, dtype=np.int64)
    if frac > 0 and n:
        extra = rng.choice(n, size=int(round(frac * n)), replace=False)
        copies[extra] += 1
    slices: list[dict[str, Any]] = []
    for spec in cfg.augment_slice or []:
        col, value = parse_slice(spec)
        if col not in frame.columns:
            raise ConfigError(f"augment_slice: column '{col}' is not in the training data; pass "
                              f"--slice-column {col} so it is kept with the splits")
        mask = (frame[col].astype("string") == value).fillna(False).to_numpy(dtype=bool)
        if not mask.any():
            seen = sorted(frame[col].astype("string").dropna().unique().tolist())[:10]
            raise ConfigError(f"augment_slice: no training row has {col}={value!r}; values seen: {seen}")
        copies[mask] += cfg.augment_slice_copies
        slices.append({"column": col, "value": value, "train_rows": int(mask.sum()),
                       "rows_added": int(mask.sum()) * cfg.augment_slice_copies})

    parts, used = [], Counter[str]()
    texts = frame[TEXT_COL].tolist()
    for c in range(int(copies.max()) if n else 0):
        idx = np.flatnonzero(copies > c)
        new, names = aug.augment([texts[i] for i in idx], copy=c, ids=idx.tolist())
        part = frame.iloc[idx].copy()
        part[TEXT_COL] = new
        parts.append(part)
        used.update(names)
    added = sum(len(p) for p in parts)
    out = LabeledData(pd.concat([frame, *parts], ignore_index=True), train.task, train.labels, train.columns,
                      train.source)
    entry = {"applied_to": "train", "rate": cfg.augment, "strength": cfg.augment_strength, "seed": cfg.seed,
             "perturbations": list(aug.perturbations or []), "train_rows": n, "rows_added": added,
             "by_perturbation": dict(sorted(used.items())), "slices": slices,
             "note": "validation and test rows are never augmented"}
    return out, entry


__all__ = ["augment_train"]
