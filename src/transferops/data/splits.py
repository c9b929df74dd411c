"""Train / validation / test splits: stratified (default), temporal, or group."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import ClassVar, Literal

import numpy as np

from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.constants import LABEL_COL
from transferops.data.loading import LabeledData
from transferops.errors import ConfigError, DataError

SplitMethod = Literal["stratified", "temporal", "group", "random"]


@dataclass
class SplitConfig:
    """How to split. Fractions are of the whole data set."""

    method: SplitMethod = "stratified"
    validation_size: float = 0.1
    test_size: float = 0.2
    seed: int = 0

    _parameter_constraints: ClassVar[Constraints] = {
        "method": Options("stratified", "temporal", "group", "random"),
        "validation_size": Interval(Real, 0.0, 1.0, closed="neither"),
        "test_size": Interval(Real, 0.0, 1.0, closed="neither"),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints, prefix="split.")
        if self.validation_size + self.test_size >= 0.9:
            raise ConfigError("split: validation_size + test_size must leave at least 10% for training")


@dataclass
class Splits:
    train: LabeledData
    validation: LabeledData
    test: LabeledData

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def _strat_key(data: LabeledData) -> np.ndarray:
    if data.task == "multilabel":
        # Stratify on the rarest label each row carries; good enough to keep rare labels on both sides.
        counts = data.label_counts()
        keys = []
        for row in data.y:
            keys.append(min(row, key=lambda lbl: counts[lbl]) if row else "__none__")
        return np.asarray(keys)
    return np.asarray(data.frame[LABEL_COL].tolist())


def _stratified_indices(keys: np.ndarray, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-class split taking ``round(frac * n_c)`` (at least 1 when n_c >= 2) for the holdout."""
    hold, rest = [], []
    for k in np.unique(keys):
        idx = np.flatnonzero(keys == k)
        rng.shuffle(idx)
        n_h = int(round(frac * len(idx)))
        if len(idx) >= 2:
            n_h = min(max(n_h, 1), len(idx) - 1)
        else:
            n_h = 0
        hold.append(idx[:n_h])
        rest.append(idx[n_h:])
    return np.sort(np.concatenate(hold)), np.sort(np.concatenate(rest))


def make_splits(data: LabeledData, config: SplitConfig | None = None) -> Splits:
    """Split ``data`` deterministically (fixed seed).

    >>> splits = make_splits(data, SplitConfig(method="temporal"))   # doctest: +SKIP
    """
    cfg = config or SplitConfig()
    n = len(data)
    rng = np.random.default_rng(cfg.seed)
    if n < 10:
        raise DataError(f"{data.source}: only {n} usable rows; at least 10 are needed to split into "
                        "train, validation and test")
    if cfg.method == "temporal":
        col = data.columns.time
        if not col:
            raise ConfigError("split.method=temporal needs a time column (--time-column NAME)")
        order = np.argsort(data.frame[col].to_numpy(), kind="stable")
        n_test = max(1, int(round(cfg.test_size * n)))
        n_val = max(1, int(round(cfg.validation_size * n)))
        train_i = order[: n - n_test - n_val]
        val_i = order[n - n_test - n_val: n - n_test]
        test_i = order[n - n_test:]
    elif cfg.method == "group":
        col = data.columns.group
        if not col:
            raise ConfigError("split.method=group needs a group column (--group-column NAME)")
        groups = data.frame[col].astype(str).to_numpy()
        uniq = np.unique(groups)
        if len(uniq) < 3:
            raise DataError(f"{data.source}: column '{col}' has {len(uniq)} groups; a group split needs >= 3")
        rng.shuffle(uniq)
        # Greedily fill test, then validation, by row count so sizes track the requested fractions.
        sizes = {g: int(c) for g, c in zip(*np.unique(groups, return_counts=True), strict=True)}
        test_g: set[str] = set()
        val_g: set[str] = set()
        acc_t = acc_v = 0
        for g in uniq:
            if acc_t < cfg.test_size * n and len(test_g) < len(uniq) - 2:
                test_g.add(g)
                acc_t += sizes[g]
            elif acc_v < cfg.validation_size * n and len(val_g) < len(uniq) - len(test_g) - 1:
                val_g.add(g)
                acc_v += sizes[g]
        test_i = np.flatnonzero(np.isin(groups, list(test_g)))
        val_i = np.flatnonzero(np.isin(groups, list(val_g)))
        train_i = np.flatnonzero(~np.isin(groups, list(test_g | val_g)))
    elif cfg.method == "random":
        perm = rng.permutation(n)
        n_test = max(1, int(round(cfg.test_size * n)))
        n_val = max(1, int(round(cfg.validation_size * n)))
        test_i, val_i, train_i = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    else:
        keys = _strat_key(data)
        test_i, rest = _stratified_indices(keys, cfg.test_size, rng)
        val_frac = cfg.validation_size / (1.0 - cfg.test_size)
        val_rel, train_rel = _stratified_indices(keys[rest], val_frac, rng)
        val_i, train_i = rest[val_rel], rest[train_rel]
    if len(train_i) == 0 or len(val_i) == 0 or len(test_i) == 0:
        raise DataError(f"{data.source}: split left an empty part ({len(train_i)}/{len(val_i)}/{len(test_i)} "
                        "train/validation/test); add data or change the split sizes")
    return Splits(data.subset(np.sort(train_i)), data.subset(np.sort(val_i)), data.subset(np.sort(test_i)))
