"""Lazy imports of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from transferops.errors import MissingExtraError


class LazyModule(ModuleType):
    """``module``, imported through :func:`require` on first attribute access: a module using it
    imports without the extra, and the feature that needs it fails with the error naming the extra."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(module)
        self._extra = extra

    def __getattr__(self, attr: str) -> object:
        mod = require(self.__name__, self._extra)
        self.__dict__.update(mod.__dict__)  # later lookups are plain attribute reads
        return getattr(mod, attr)


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install 'transferops[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"'{module}' is needed for this feature but is not installed. "
            f"Install it with: pip install 'transferops[{extra}]'"
        ) from exc
