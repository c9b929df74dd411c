"""Drift signals, one per file, found by name: the registry :class:`~transferops.monitor.drift.DriftMonitor`
runs.

Every module of this package is imported on first use of :func:`registered_signals`, so a new
signal is one new file here with a ``@register_signal("name")`` function (code outside the package
calls :func:`register_signal` the same way before it runs the monitor).

>>> [s.name for s in registered_signals()]
['class_psi', 'confidence_psi', 'feature_psi', 'embedding', 'accuracy_drop']
"""

from __future__ import annotations

import importlib
import pkgutil

from transferops.monitor.signals.base import (
    _REGISTRY,
    STATUS_ORDER,
    Signal,
    SignalConfig,
    SignalContext,
    SignalFn,
    SignalSpec,
    Status,
    domain_auc,
    grade,
    kl,
    mmd2,
    psi,
    psi_noise,
    register_signal,
    shares,
    unregister_signal,
    worst,
)

_discovered = False


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _discovered = True


def registered_signals() -> list[SignalSpec]:
    """Every registered signal, in report order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


__all__ = ["STATUS_ORDER", "Signal", "SignalConfig", "SignalContext", "SignalFn", "SignalSpec", "Status",
           "domain_auc", "grade", "kl", "mmd2", "psi", "psi_noise", "register_signal", "registered_signals",
           "shares", "unregister_signal", "worst"]
