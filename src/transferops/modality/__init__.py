"""Input modalities behind one seam (:mod:`transferops.modality.base`): ``text`` today.

>>> from transferops.modality import get_modality
>>> get_modality("text").leakage_key("Hello, world!") == get_modality("text").leakage_key("hello world")
True

A new modality is one new module or folder here that implements :class:`Modality` and calls
:func:`register_modality`, plus one import line below (see docs/architecture.md, "Add a modality").
"""

from transferops.modality.base import Modality, available_modalities, get_modality, register_modality
from transferops.modality.image import IMAGE, ImageModality  # noqa: F401  (registers "image")
from transferops.modality.tabular import TABULAR, TabularModality
from transferops.modality.text import TEXT, TextModality

__all__ = ["TABULAR", "TEXT", "Modality", "TabularModality", "TextModality", "available_modalities", "get_modality",
           "register_modality"]
