"""Which process am I? Rank helpers shared by training and the CLI under ``accelerate launch`` / ``torchrun``.

Both launchers set ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in every process they start; a plain
``python -m transferops`` has none of them and is rank 0 of 1. Only rank 0 writes files (splits,
checkpoints, the model folder, the manifest) and prints; every rank trains its shard of each batch.

>>> from transferops import distributed as dist
>>> dist.world_size(), dist.rank(), dist.is_main_process()
(1, 0, True)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def world_size() -> int:
    """Number of processes in this training job (1 outside a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """Global rank of this process (0 outside a launcher)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main_process() -> bool:
    return rank() == 0


def is_distributed() -> bool:
    return world_size() > 1


def use_cpu() -> bool:
    """Several processes and no CUDA: accelerate needs ``cpu=True`` to pick gloo (else it silently runs
    each process as an independent single-process job)."""
    import torch

    return is_distributed() and not torch.cuda.is_available()


def init() -> Any:
    """Join the process group now (gloo on CPU, NCCL on GPUs), before any file is written.

    accelerate's ``PartialState`` is a singleton: the ``Accelerator`` the trainer creates later reuses
    it. Returns ``None`` in a single process."""
    if not is_distributed():
        return None
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    state = init()
    if state is not None:
        state.wait_for_everyone()


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. writes the splits); the others run it after, reading its files."""
    if not is_distributed():
        yield
        return
    if not is_main_process():
        barrier()
    yield
    if is_main_process():
        barrier()
