"""The modality seam: everything that depends on *what an input is* (a text today; an image or a table
row next) behind one small protocol, so that a new input type is one new folder, not ``if modality ==``
branches through the stages.

A modality answers what the stages ask about an input:

* ``check_inputs`` — every ``predict``/``predict_proba``: bad input is one clear
  :class:`~transferops.errors.DataError` naming the item (text: a list of strings);
* ``leakage_key`` — ``data.find_leakage``'s exact train↔test duplicates (text: hash of the normalised text);
* ``size`` — length-sorted batching, so a batch pads less (text: characters);
* ``load_preprocessor`` / ``encode`` — what turns inputs into model tensors, with truncation
  (text: the checkpoint's tokenizer; truncate at ``max_length``, pad to the batch's longest);
* ``baseline`` / ``check_baseline_fits`` — the cheap baseline every model must beat, and its memory guard
  run before training (text: tuned TF-IDF + logistic regression);
* ``auto_slices`` / ``auto_slice_names`` — the slices ``evaluate`` adds by itself (text: ``text_length``
  quartiles).

Modalities register by name (:func:`register_modality`), as artifact kinds and fine-tuning methods do;
:func:`get_modality` returns one, and its error lists the registered names.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from transferops.errors import ConfigError


@runtime_checkable
class Modality(Protocol):
    """What the stages need to know about one kind of input. Implementations are stateless (one
    shared instance per modality); anything heavy is imported inside the methods."""

    #: Registry key, also written to the manifest/config (``"text"``).
    name: str

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        """Validated inputs as a list; a :class:`~transferops.errors.DataError` naming the bad item
        (``texts[3]: expected a string, got int``) otherwise."""
        ...

    def leakage_key(self, item: Any) -> str:
        """A key equal for two inputs that are the same example (after normalisation)."""
        ...

    def size(self, item: Any) -> int:
        """A cost proxy for sorting a batch (similar sizes together pad less)."""
        ...

    def load_preprocessor(self, path: str | Path) -> Any:
        """The saved preprocessor of a model folder or checkpoint (tokenizer, image processor...)."""
        ...

    def encode(self, preprocessor: Any, items: Sequence[Any], *, max_length: int,
               return_tensors: str = "pt") -> Mapping[str, Any]:
        """Model inputs (torch tensors) for one batch: preprocessing, truncation, padding."""
        ...

    def check_baseline_fits(self, items: Sequence[Any], n_classes: int) -> None:
        """Fail fast (before any training) when the baseline could not fit, e.g. in memory."""
        ...

    def baseline(self, *, multilabel: bool = False, seed: int = 0, tune: bool = True, **kw: Any) -> Any:
        """An unfitted cheap baseline estimator (``fit(items, y, n_classes=)``, ``predict_proba``)."""
        ...

    def auto_slices(self, items: Sequence[Any]) -> dict[str, list[str]]:
        """Slices ``evaluate`` adds by itself: column name → one value per item."""
        ...

    @property
    def auto_slice_names(self) -> tuple[str, ...]:
        """The names :meth:`auto_slices` returns (known before any data is seen)."""
        ...


_REGISTRY: dict[str, Modality] = {}


def register_modality(modality: Modality, *, replace: bool = False) -> Modality:
    """Add a modality under ``modality.name``; returns it (so ``TEXT = register_modality(...)``)."""
    if not isinstance(modality, Modality):
        raise TypeError(f"{modality!r} does not implement the Modality protocol (see transferops.modality.base)")
    if modality.name in _REGISTRY and not replace and _REGISTRY[modality.name] is not modality:
        raise ConfigError(f"modality: {modality.name!r} is already registered; pick another name")
    _REGISTRY[modality.name] = modality
    return modality


def get_modality(name: str | Modality = "text") -> Modality:
    """The registered modality ``name`` (a :class:`Modality` passes through)."""
    if not isinstance(name, str):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"modality: {name!r} is not one of {', '.join(map(repr, sorted(_REGISTRY)))}"
                          f"{hint}") from None


def available_modalities() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


__all__ = ["Modality", "available_modalities", "get_modality", "register_modality"]
