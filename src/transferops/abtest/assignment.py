"""Deterministic arm assignment: the same key always lands in the same arm, on every replica and
after restarts (a hash, no state)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from transferops.errors import ConfigError


def parse_split(split: str, n_arms: int) -> list[float]:
    """``"50/50"`` or ``"90/10"`` → weights summing to 1."""
    try:
        parts = [float(x) for x in split.split("/")]
    except ValueError as exc:
        raise ConfigError(f"split: {split!r} must look like 50/50") from exc
    if len(parts) != n_arms or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ConfigError(f"split: {split!r} needs {n_arms} non-negative parts like 50/50")
    total = sum(parts)
    return [p / total for p in parts]


def assign_arm(key: str, arms: Sequence[str], weights: Sequence[float], *, salt: str = "transferops") -> str:
    """Map ``key`` to an arm: sha256(salt:key) as a uniform number in [0, 1), cut by cumulative weights.

    >>> assign_arm("user-42", ["control", "treatment"], [0.5, 0.5]) in ("control", "treatment")
    True
    """
    h = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    acc = 0.0
    for arm, w in zip(arms, weights, strict=True):
        acc += w
        if u < acc:
            return arm
    return arms[-1]
