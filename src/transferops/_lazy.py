"""Lazy package exports (PEP 562): a stage package names its public API without importing it, so that
importing one of its submodules (the CLI registers every command's parser at start-up) does not load
scikit-learn, scipy or torch behind it.

>>> __getattr__, __dir__ = lazy_exports(__name__, {"evaluate": "transferops.evaluate.api"})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: name → the module that defines it, imported on first use.

    A name must not also be a submodule of the package (the submodule's import would shadow it)."""

    def __getattr__(name: str) -> Any:
        mod = exports.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(mod), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


__all__ = ["lazy_exports"]
