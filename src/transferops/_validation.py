"""One declarative way to validate parameters (scikit-learn's ``Interval`` / ``StrOptions`` idea).

A config dataclass or estimator declares its constraints once, next to its fields, and validates them
in one call; cross-field rules (``retrain >= warn``) stay as plain code after it::

    @dataclass
    class SplitConfig:
        method: str = "stratified"
        test_size: float = 0.2

        _constraints: ClassVar[Constraints] = {
            "method": Options("stratified", "temporal", "group", "random"),
            "test_size": Interval(Real, 0, 1, closed="neither"),
        }

        def __post_init__(self) -> None:
            validate_params(self, self._constraints, prefix="split.")

A field's constraint is one constraint or a list of alternatives (any may hold); ``None`` in the list
allows ``None``. A failure is a :class:`~transferops.errors.ConfigError` that names the field, what was
expected and what was given: ``split.test_size: must be in (0, 1), got 1.5``, or
``strategy: 'big' is not one of 'auto', 'head', ...``. ``hints`` add the likely fix to a field's message.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from transferops.errors import ConfigError

Closed = Literal["both", "left", "right", "neither"]


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (``numbers.Real`` or ``numbers.Integral``) between ``left`` and ``right``
    (``None``: unbounded). Booleans, NaN and infinities never qualify."""

    kind: type
    left: float | None = None
    right: float | None = None
    closed: Closed = "both"

    def __post_init__(self) -> None:
        if self.kind not in (numbers.Real, numbers.Integral):
            raise TypeError("Interval kind must be numbers.Real or numbers.Integral")
        if self.closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed: {self.closed!r} is not one of both, left, right, neither")
        if self.left is not None and self.right is not None and self.left > self.right:
            raise ValueError(f"Interval: left {self.left} > right {self.right}")

    def type_ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        return math.isfinite(float(value))  # type: ignore[arg-type]  # a numbers.Real

    def is_satisfied_by(self, value: Any) -> bool:
        if not self.type_ok(value):
            return False
        lo_closed = self.closed in ("both", "left")
        hi_closed = self.closed in ("both", "right")
        if self.left is not None and (value < self.left or (not lo_closed and value == self.left)):
            return False
        return not (self.right is not None and (value > self.right or (not hi_closed and value == self.right)))

    def type_text(self) -> str:
        return "a whole number" if self.kind is numbers.Integral else "a number"

    def __str__(self) -> str:
        lo_closed = self.closed in ("both", "left")
        hi_closed = self.closed in ("both", "right")
        if self.left is not None and self.right is not None:
            return f"in {'[' if lo_closed else '('}{self.left:g}, {self.right:g}{']' if hi_closed else ')'}"
        if self.left is not None:
            return f"{'>=' if lo_closed else '>'} {self.left:g}"
        if self.right is not None:
            return f"{'<=' if hi_closed else '<'} {self.right:g}"
        return self.type_text()


@dataclass(frozen=True, init=False)
class Options:
    """One of a set of values (strings for choices, or any hashable). A single callable instead of
    the values is a registry read at validation time (e.g. the registered fine-tuning strategies,
    which a plug-in may extend after the config class is defined)."""

    source: tuple[Any, ...] | Callable[[], Sequence[Any]]

    def __init__(self, *options: Any) -> None:
        if len(options) == 1 and callable(options[0]):
            object.__setattr__(self, "source", options[0])
            return
        if len(options) == 1 and isinstance(options[0], (set, frozenset, list, tuple)):
            options = tuple(options[0])
        object.__setattr__(self, "source", tuple(options))

    @property
    def options(self) -> tuple[Any, ...]:
        return tuple(self.source()) if callable(self.source) else self.source

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return value in self.options
        except TypeError:  # an unhashable / incomparable value is simply not an option
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(map(repr, self.options))


#: scikit-learn's name for the same idea.
StrOptions = Options

Constraint = Interval | Options | None
Constraints = Mapping[str, Constraint | Sequence[Constraint]]


def _alternatives(spec: Constraint | Sequence[Constraint]) -> list[Constraint]:
    if isinstance(spec, (list, tuple)):
        return list(spec)
    return [spec]  # type: ignore[list-item]  # a single constraint (Interval / Options / None)


def check_param(name: str, value: Any, spec: Constraint | Sequence[Constraint], *, hint: str = "") -> None:
    """Validate one value against one field's constraint(s); the error names ``name``."""
    alts = _alternatives(spec)
    if value is None and None in alts:
        return
    real = [c for c in alts if c is not None]
    if any(c.is_satisfied_by(value) for c in real):
        return
    tail = f"; {hint}" if hint else ""
    intervals = [c for c in real if isinstance(c, Interval)]
    options = [c for c in real if isinstance(c, Options)]
    allow_none = " (or null)" if None in alts else ""
    if intervals and not options:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(float(value)):
            ranges = " or ".join(str(c) for c in intervals)
            raise ConfigError(f"{name}: must be a finite number ({ranges}){allow_none}, got {value!r}{tail}")
        if not any(c.type_ok(value) for c in intervals):
            expected = " or ".join(dict.fromkeys(c.type_text() for c in intervals))
            raise ConfigError(f"{name}: expected {expected}{allow_none}, got {type(value).__name__} {value!r}{tail}")
        ranges = " or ".join(str(c) for c in intervals)
        raise ConfigError(f"{name}: must be {ranges}{allow_none}, got {value!r}{tail}")
    if options and not intervals:
        choices = ", ".join(repr(o) for c in options for o in c.options)
        raise ConfigError(f"{name}: {value!r} is not one of {choices}{allow_none}{tail}")
    described = " or ".join(str(c) for c in real)
    raise ConfigError(f"{name}: must be {described}{allow_none}, got {value!r}{tail}")


def validate_params(obj: Any, constraints: Constraints, *, prefix: str = "",
                    hints: Mapping[str, str] | None = None) -> None:
    """Check every field named in ``constraints`` (attributes of ``obj``, or keys of a mapping) in
    declaration order; the first failure raises a :class:`ConfigError` naming ``prefix + field``."""
    hints = hints or {}
    for name, spec in constraints.items():
        value = obj[name] if isinstance(obj, Mapping) else getattr(obj, name)
        check_param(f"{prefix}{name}", value, spec, hint=hints.get(name, ""))


__all__ = ["Constraint", "Constraints", "Interval", "Options", "StrOptions", "check_param", "validate_params"]
