"""Artifact kinds: who reads which folder. ONE dispatcher for ``transferops.load`` and the server.

A kind registers its loader once, where it is defined (PEFT's habit with methods)::

    register_kind("ensemble", EnsembleModel)
    register_kind("onnx", OnnxModel, detect=lambda p: (p / "export.json").exists())

:func:`resolve_kind` picks the kind of a folder — a ``detect`` hook first (an ONNX export is
recognised by its ``export.json`` whatever model it was exported from), else the manifest's
``kind`` — and :func:`load_folder` calls its loader. ``artifacts`` itself never imports a later
stage: the modules defining the built-in kinds are listed once, at the package root
(:data:`transferops._kinds.BUILTIN_KIND_MODULES`), and imported on the first lookup that needs
them; third-party kinds can also come in through the ``transferops.kinds`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferops.errors import ArtifactError, ConfigError

Loader = Callable[..., Any]
Detect = Callable[[Path], bool]


@dataclass(frozen=True)
class KindSpec:
    """One registered kind: its loader (``loader(path, **kw) -> Classifier``) and an optional
    ``detect(path) -> bool`` that claims a folder before the manifest's ``kind`` is read."""

    name: str
    loader: Loader
    detect: Detect | None = None


_KINDS: dict[str, KindSpec] = {}
_discovered = False


def register_kind(name: str, loader: Loader, *, detect: Detect | None = None, replace: bool = False) -> KindSpec:
    """Register the loader of artifact kind ``name``. Registering the same loader again is a no-op;
    a different one needs ``replace=True``."""
    spec = KindSpec(name, loader, detect)
    old = _KINDS.get(name)
    if old is not None and old.loader is not loader and not replace:
        raise ConfigError(f"kind: {name!r} is already registered by {old.loader!r}; pass replace=True to "
                          "override it")
    _KINDS[name] = spec
    return spec


def _discover() -> None:
    """Import the modules that register the built-in kinds, then entry-point plug-ins (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from transferops._kinds import BUILTIN_KIND_MODULES

    for mod in BUILTIN_KIND_MODULES:
        importlib.import_module(mod)
    from importlib.metadata import entry_points

    for ep in entry_points(group="transferops.kinds"):
        ep.load()  # the module registers its kinds on import


def registered_kinds() -> list[str]:
    _discover()
    return sorted(_KINDS)


def get_kind(name: str) -> KindSpec:
    if name not in _KINDS:
        _discover()
    if name not in _KINDS:
        raise ArtifactError(f"kind: no loader is registered for artifact kind {name!r} (known: "
                            f"{', '.join(sorted(_KINDS))}); upgrade transferops or install the plug-in that "
                            "wrote this folder")
    return _KINDS[name]


def resolve_kind(path: str | Path) -> str:
    """The kind that reads folder ``path``: a ``detect`` hook's, else the manifest's ``kind``."""
    from transferops.artifacts.manifest import read_manifest

    p = Path(path)
    _discover()
    for spec in _KINDS.values():
        if spec.detect is not None and spec.detect(p):
            return spec.name
    return read_manifest(p).kind


def load_folder(path: str | Path, **kw: Any) -> Any:
    """Load folder ``path`` with its kind's loader (see :func:`transferops.artifacts.load`)."""
    return get_kind(resolve_kind(path)).loader(path, **kw)


__all__ = ["KindSpec", "get_kind", "load_folder", "register_kind", "registered_kinds", "resolve_kind"]
