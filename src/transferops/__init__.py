"""transferops: from a few hundred labels to a fine-tuned text classifier that is served, monitored
and retrained.

>>> import transferops
>>> result = transferops.train("news.csv", out="runs/news", strategy="lora")   # doctest: +SKIP
>>> transferops.load("runs/news").predict(["Shares rose sharply"])              # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transferops.errors import (
    ArtifactError,
    CheckpointNotFoundError,
    ConfigError,
    DataError,
    GateFailedError,
    MissingExtraError,
    NotFittedError,
    TransferOpsError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from transferops.artifacts.model import TransferOpsModel, load
    from transferops.evaluate.api import calibrate, evaluate
    from transferops.finetune.api import TrainResult, train
    from transferops.finetune.config import LoraSettings, TrainConfig

_LAZY = {
    "train": "transferops.finetune.api",
    "TrainResult": "transferops.finetune.api",
    "TrainConfig": "transferops.finetune.config",
    "LoraSettings": "transferops.finetune.config",
    "load": "transferops.artifacts.model",
    "evaluate": "transferops.evaluate.api",
    "calibrate": "transferops.evaluate.api",
    "TransferOpsModel": "transferops.artifacts.model",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import transferops` is cheap and has no side effects (torch loads on first use).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transferops' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "CheckpointNotFoundError",
    "ConfigError",
    "DataError",
    "GateFailedError",
    "LoraSettings",
    "MissingExtraError",
    "NotFittedError",
    "TrainConfig",
    "TrainResult",
    "TransferOpsError",
    "TransferOpsModel",
    "__version__",
    "calibrate",
    "evaluate",
    "load",
    "train",
]
