"""Adapt and compress: continued MLM pretraining on unlabeled in-domain text, knowledge distillation
into a smaller student, and seed ensembles.

>>> from transferops.adapt import adapt, distill, train_seeds        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transferops.adapt.distill import DistillConfig, DistillResult, distill
    from transferops.adapt.ensemble import EnsembleModel, build_ensemble, train_seeds
    from transferops.adapt.mlm import AdaptConfig, AdaptResult, adapt

_LAZY = {
    "AdaptConfig": "transferops.adapt.mlm",
    "AdaptResult": "transferops.adapt.mlm",
    "adapt": "transferops.adapt.mlm",
    "DistillConfig": "transferops.adapt.distill",
    "DistillResult": "transferops.adapt.distill",
    "distill": "transferops.adapt.distill",
    "EnsembleModel": "transferops.adapt.ensemble",
    "build_ensemble": "transferops.adapt.ensemble",
    "train_seeds": "transferops.adapt.ensemble",
}


def __getattr__(name: str) -> Any:
    # Lazy: importing the package must not load torch.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transferops.adapt' has no attribute {name!r}")


__all__ = ["AdaptConfig", "AdaptResult", "DistillConfig", "DistillResult", "EnsembleModel", "adapt",
           "build_ensemble", "distill", "train_seeds"]
