"""Deterministic arm assignment: the same key always lands in the same arm, on every replica and
after restarts (a hash, no state)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

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


#: Where the assignment key comes from: a request header, a query parameter, or the first client id.
KEY_SOURCES = ("header", "query", "id")


@dataclass
class ExperimentSettings:
    """One A/B experiment served by ``transferops serve --ab``: the arms (each served as a model
    named after the arm), the traffic split and where the assignment key comes from. Without
    ``ab`` no experiment runs and the experiments route is not mounted."""

    ab: dict[str, str] | None = field(default=None, metadata={"help": "arm -> model folder"})
    ab_split: str = "50/50"
    ab_key: str = "header:X-User-Id"
    experiment: str | None = None

    def __post_init__(self) -> None:
        if not self.ab:
            return
        if len(self.ab) < 2:
            raise ConfigError("ab: an experiment needs at least two arms, e.g. "
                              "control=runs/a,treatment=runs/b")
        parse_split(self.ab_split, len(self.ab))
        self.experiment = self.experiment or "default"
        src = self.ab_key.split(":", 1)[0]
        if src not in KEY_SOURCES or (src != "id" and ":" not in self.ab_key):
            raise ConfigError(f"ab_key: {self.ab_key!r} must be header:NAME, query:NAME or id")

    @property
    def enabled(self) -> bool:
        return bool(self.ab)

    @property
    def arms(self) -> list[str]:
        return list(self.ab or {})

    @property
    def weights(self) -> list[float]:
        return parse_split(self.ab_split, len(self.ab or {}))

    def assign(self, key: str) -> str:
        """The arm of ``key`` (stable: a hash, the same on every replica)."""
        return assign_arm(key, self.arms, self.weights)
