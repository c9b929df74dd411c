"""Character-level perturbations: typos, keyboard slips and leetspeak ("h@te")."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from transferops.modality.augment.base import AugmentContext, edit_words, register_perturbation

_LETTERS = string.ascii_lowercase

#: QWERTY neighbours (same row and the rows above/below), lower case.
_ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"]
KEYBOARD: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = []
        for _dr in (-1, 0, 1):
            if 0 <= _r + _dr < len(_ROWS):
                other = _ROWS[_r + _dr]
                near += [other[j] for j in (_c - 1, _c, _c + 1) if 0 <= j < len(other) and other[j] != _ch]
        KEYBOARD[_ch] = "".join(near)

#: Leetspeak / obfuscation substitutions seen in moderation data.
LEET: dict[str, str] = {"a": "@4", "e": "3", "i": "1!", "o": "0", "s": "$5", "t": "7", "l": "1", "g": "9",
                        "b": "8"}


def _case(src: str, new: str) -> str:
    return new.upper() if src.isupper() else new


@register_perturbation("char_insert")
def char_insert(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Insert a random letter inside the word."""
    def edit(w: str, r: random.Random) -> str:
        i = r.randrange(1, len(w) + 1) if len(w) > 1 else 1
        return w[:i] + r.choice(_LETTERS) + w[i:]
    return edit_words(text, rng, rate, edit, min_len=2)


@register_perturbation("char_delete")
def char_delete(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Delete one letter (never the first, so the word stays recognisable)."""
    def edit(w: str, r: random.Random) -> str:
        i = r.randrange(1, len(w))
        return w[:i] + w[i + 1:]
    return edit_words(text, rng, rate, edit, min_len=3)


@register_perturbation("char_substitute")
def char_substitute(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Replace one letter by a different random letter."""
    def edit(w: str, r: random.Random) -> str:
        i = r.randrange(len(w))
        new = r.choice([c for c in _LETTERS if c != w[i].lower()])
        return w[:i] + _case(w[i], new) + w[i + 1:]
    return edit_words(text, rng, rate, edit, min_len=2)


@register_perturbation("char_swap")
def char_swap(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Swap two adjacent letters (a transposition typo)."""
    def edit(w: str, r: random.Random) -> str:
        i = r.randrange(len(w) - 1)
        return w[:i] + w[i + 1] + w[i] + w[i + 2:] if w[i] != w[i + 1] else w[:i] + w[i] + w[i + 2:] + w[i + 1]
    return edit_words(text, rng, rate, edit, min_len=3)


def _replace_one(table: dict[str, str], keep_case: bool) -> Callable[[str, random.Random], str]:
    """A word edit: one character found in ``table`` becomes one of its replacements."""
    def edit(w: str, r: random.Random) -> str:
        idx = [i for i, c in enumerate(w) if c.lower() in table]
        if not idx:
            return w
        i = r.choice(idx)
        new = r.choice(table[w[i].lower()])
        return w[:i] + (_case(w[i], new) if keep_case else new) + w[i + 1:]
    return edit


@register_perturbation("keyboard")
def keyboard(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Replace one character by a QWERTY neighbour ("hate" → "hare")."""
    return edit_words(text, rng, rate, _replace_one(KEYBOARD, keep_case=True), min_len=2)


@register_perturbation("leetspeak")
def leetspeak(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Replace one letter by its look-alike symbol ("hate" → "h@te")."""
    return edit_words(text, rng, rate, _replace_one(LEET, keep_case=False), min_len=2)
