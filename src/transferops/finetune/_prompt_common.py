"""Shared by the prompt-learning strategies (``prompt_tuning``, ``prefix_tuning``): the head they train
and the check that the virtual tokens fit the model's positions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transferops.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from transferops.finetune.config import TrainConfig


def check_positions(model: torch.nn.Module, cfg: TrainConfig, n_virtual: int, strategy: str) -> None:
    """Virtual tokens take positions: ``max_length + n_virtual`` must fit ``max_position_embeddings``."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    max_length: Any = getattr(cfg, "max_length", None)
    if isinstance(limit, int) and isinstance(max_length, int) and max_length + n_virtual > limit:
        raise ConfigError(f"max_length: {max_length} + {n_virtual} virtual tokens of strategy {strategy} "
                          f"exceed the model's {limit} positions; set --max-length {limit - n_virtual} or lower")
