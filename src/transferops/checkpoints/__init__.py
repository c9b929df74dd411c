"""The checkpoint zoo: bundled pretrained text encoders, local folders and the offline HF cache."""

from transferops.checkpoints.zoo import (
    ZOO,
    CheckpointSpec,
    ResolvedCheckpoint,
    checkpoint_table,
    resolve_checkpoint,
)

__all__ = ["ZOO", "CheckpointSpec", "ResolvedCheckpoint", "checkpoint_table", "resolve_checkpoint"]
