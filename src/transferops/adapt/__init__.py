"""Adapt and compress: continued MLM pretraining on unlabeled in-domain text, knowledge distillation
into a smaller student, and seed ensembles.

>>> from transferops.adapt import adapt, distill, train_seeds        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transferops._lazy import lazy_exports

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

# Lazy: importing the package must not load torch.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["AdaptConfig", "AdaptResult", "DistillConfig", "DistillResult", "EnsembleModel", "adapt",
           "build_ensemble", "distill", "train_seeds"]
