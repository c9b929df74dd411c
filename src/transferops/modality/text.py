"""The text modality: what is text-specific in transferops, in one place.

* input check: a list of strings (``predict("one text")`` is the classic mistake: say so);
* leakage key: SHA-1 of the normalised text (NFKC, lower case, no punctuation, collapsed whitespace);
* size: characters (length-sorted batches pad less);
* preprocessor: the checkpoint's Hugging Face tokenizer, loaded from local files only;
* encode: tokenize with truncation at ``max_length`` and padding to the longest in the batch;
* baseline: the tuned TF-IDF (1–2 grams) + logistic regression of :mod:`transferops.baselines`;
* automatic slice: ``text_length``, the character-length quartile of each text.

Imports nothing heavy at module level (tokenizers and scikit-learn load inside the methods).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import DataError
from transferops.modality.base import register_modality

#: Name of the automatic character-length slice ``evaluate`` adds.
LENGTH_SLICE = "text_length"

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalise_text(text: str) -> str:
    """Lower-case, NFKC, drop punctuation and collapse whitespace."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _PUNCT.sub(" ", t)
    return _WS.sub(" ", t).strip()


def text_hash(text: str) -> str:
    return hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of strings, or a :class:`DataError` naming the first bad item."""
    if isinstance(texts, str):
        raise DataError("texts: pass a list of strings, not a single string (wrap it: [text])")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"texts[{i}]: expected a string, got {type(t).__name__}")
        out.append(t)
    return out


def length_quartiles(texts: Sequence[str]) -> list[str]:
    """Automatic slice: each text's character-length quartile, labelled with its range."""
    import pandas as pd

    lengths = pd.Series([len(t) for t in texts])
    if lengths.nunique() < 2:
        return ["all lengths"] * len(texts)
    cats = pd.qcut(lengths, 4, duplicates="drop")
    names = {}
    for i, iv in enumerate(cats.cat.categories):
        lo = max(int(np.floor(iv.left)) + 1, int(lengths.min()))
        names[iv] = f"Q{i + 1}: {lo}–{int(iv.right)} chars"
    return [names[c] for c in cats]


class TextModality:
    """:class:`~transferops.modality.base.Modality` for strings."""

    name = "text"
    auto_slice_names: tuple[str, ...] = (LENGTH_SLICE,)

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        return check_texts(inputs)

    def leakage_key(self, item: Any) -> str:
        return text_hash(item)

    def size(self, item: Any) -> int:
        return len(item)

    def load_preprocessor(self, path: str | Path) -> Any:
        from transformers import AutoTokenizer

        from transferops._hf import quiet_transformers

        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)

    def encode(self, preprocessor: Any, items: Sequence[Any], *, max_length: int,
               return_tensors: str = "pt") -> Mapping[str, Any]:
        from transferops.truncation import encode_texts  # head or head+tail, as the tokenizer says

        return encode_texts(preprocessor, items, max_length, padding=True,  # type: ignore[no-any-return]
                            return_tensors=return_tensors)

    def check_baseline_fits(self, items: Sequence[Any], n_classes: int) -> None:
        from transferops.baselines import TfidfBaseline, check_baseline_memory

        check_baseline_memory(list(items), n_classes, TfidfBaseline.max_features)

    def baseline(self, *, multilabel: bool = False, seed: int = 0, tune: bool = True, **kw: Any) -> Any:
        from transferops.baselines import TfidfBaseline

        return TfidfBaseline(multilabel=multilabel, seed=seed, tune=tune, **kw)

    def auto_slices(self, items: Sequence[Any]) -> dict[str, list[str]]:
        return {LENGTH_SLICE: length_quartiles(items)}

    def __repr__(self) -> str:
        return "TextModality()"


#: The shared instance (stateless).
TEXT = register_modality(TextModality())

__all__ = ["LENGTH_SLICE", "TEXT", "TextModality", "check_texts", "length_quartiles", "normalise_text",
           "text_hash"]
