"""The perturbation registry and the seeded augmenter (text).

A perturbation is a function ``fn(text, rng, rate, context) -> text`` registered under a name with
:func:`register_perturbation`. ``rate`` is the share of words it touches (at least one word of a
non-empty text); ``rng`` is a :class:`random.Random` seeded per row, so the same seed, rate and
texts always give the same output. ``context`` carries what a perturbation may need from the data
(the training vocabulary for ``token_replace``).

A new perturbation is one file with the decorator plus one import line in ``__init__.py``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import ClassVar

from transferops._validation import Constraints, Interval, validate_params
from transferops.errors import ConfigError

PerturbFn = Callable[[str, random.Random, float, "AugmentContext"], str]

_REGISTRY: dict[str, PerturbFn] = {}
#: Words: runs of letters/digits (apostrophes inside kept); everything else is kept as it is.
WORD = re.compile(r"\w+(?:'\w+)*")


@dataclass
class AugmentContext:
    """What perturbations may read: a vocabulary of frequent training words, the mask token."""

    vocab: list[str] = field(default_factory=list)
    mask_token: str = "[MASK]"


def register_perturbation(name: str) -> Callable[[PerturbFn], PerturbFn]:
    """Decorator: make ``fn`` available as ``name`` to ``train --augment`` and ``evaluate --robustness``."""
    def deco(fn: PerturbFn) -> PerturbFn:
        _REGISTRY[name] = fn
        return fn
    return deco


def perturbation_names() -> list[str]:
    return sorted(_REGISTRY)


def get_perturbation(name: str) -> PerturbFn:
    if name not in _REGISTRY:
        raise ConfigError(f"augment_perturbations: '{name}' is not one of {', '.join(map(repr, perturbation_names()))}")
    return _REGISTRY[name]


def check_perturbations(names: Sequence[str] | None, field_name: str = "augment_perturbations") -> list[str]:
    """The names, validated (``None``: every registered perturbation)."""
    if names is None:
        return perturbation_names()
    if isinstance(names, str) or not names:
        raise ConfigError(f"{field_name}: expected a non-empty list of names from "
                          f"{', '.join(perturbation_names())}, got {names!r}")
    for n in names:
        if n not in _REGISTRY:
            raise ConfigError(f"{field_name}: '{n}' is not one of {', '.join(map(repr, perturbation_names()))}")
    return list(names)


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD.finditer(text)]


def pick(spans: list[tuple[int, int]], rng: random.Random, rate: float) -> list[tuple[int, int]]:
    """``rate`` of the spans (at least one when there are any), in text order."""
    if not spans:
        return []
    k = max(1, round(rate * len(spans)))
    return sorted(rng.sample(spans, min(k, len(spans))))


def edit_words(text: str, rng: random.Random, rate: float, edit: Callable[[str, random.Random], str],
               *, min_len: int = 1) -> str:
    """Apply ``edit`` to ``rate`` of the words (of at least ``min_len`` characters)."""
    spans = [s for s in word_spans(text) if s[1] - s[0] >= min_len]
    out, last = [], 0
    for a, b in pick(spans, rng, rate):
        out += [text[last:a], edit(text[a:b], rng)]
        last = b
    out.append(text[last:])
    return "".join(out)


@dataclass
class TextAugmenter:
    """Seeded, deterministic text perturbations (scikit-learn style: ``fit`` learns the vocabulary).

    >>> aug = TextAugmenter(["leetspeak"], rate=0.2, seed=0).fit(train_texts)   # doctest: +SKIP
    >>> aug.perturb(["i hate this"], "leetspeak")                               # doctest: +SKIP
    ['i h@te this']
    """

    perturbations: list[str] | None = None
    rate: float = 0.15
    seed: int = 0
    vocab_size: int = 2000

    _parameter_constraints: ClassVar[Constraints] = {
        "rate": Interval(Real, 0.0, 1.0, closed="right"),
        "seed": Interval(Integral, 0, None),
        "vocab_size": Interval(Integral, 1, None),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints, prefix="augment.")
        self.perturbations = check_perturbations(self.perturbations)
        self.context_ = AugmentContext()

    def fit(self, texts: Sequence[str]) -> TextAugmenter:
        counts: Counter[str] = Counter(w.lower() for t in texts for w in WORD.findall(t) if len(w) > 2)
        self.context_ = AugmentContext(vocab=[w for w, _ in counts.most_common(self.vocab_size)])
        return self

    def _rng(self, name: str, i: int, copy: int) -> random.Random:
        return random.Random(f"{self.seed}:{name}:{i}:{copy}")  # str seeds are stable across runs

    def perturb(self, texts: Sequence[str], name: str, *, copy: int = 0) -> list[str]:
        """Every text under one perturbation (``evaluate --robustness``)."""
        fn = get_perturbation(name)
        return [fn(t, self._rng(name, i, copy), self.rate, self.context_) for i, t in enumerate(texts)]

    def augment(self, texts: Sequence[str], *, copy: int = 0, ids: Sequence[int] | None = None
                ) -> tuple[list[str], list[str]]:
        """One augmented version of every text, each under a perturbation drawn per row; returns
        (texts, the perturbation used for each). ``ids`` (default: positions) seed each row, so a
        row's copy does not depend on which other rows are augmented with it."""
        names = list(self.perturbations or [])
        out, used = [], []
        for i, t in zip(ids if ids is not None else range(len(texts)), texts, strict=True):
            name = random.Random(f"{self.seed}:pick:{i}:{copy}").choice(names)
            out.append(get_perturbation(name)(t, self._rng(name, i, copy), self.rate, self.context_))
            used.append(name)
        return out, used


def parse_slice(spec: str) -> tuple[str, str]:
    """``"career=change"`` → ``("career", "change")``."""
    if not isinstance(spec, str) or "=" not in spec or spec.startswith("=") or spec.endswith("="):
        raise ConfigError(f"augment_slice: expected COLUMN=VALUE (e.g. career=change), got {spec!r}")
    col, value = spec.split("=", 1)
    return col.strip(), value.strip()


__all__ = ["AugmentContext", "PerturbFn", "TextAugmenter", "check_perturbations", "edit_words",
           "get_perturbation", "parse_slice", "perturbation_names", "pick", "register_perturbation",
           "word_spans"]
