"""IA3 (Liu et al. 2022, "(IA)^3"): learned vectors that rescale the attention keys and values and the
feed-forward activations; the classification head trains and is saved with them.

One file behind the strategy registry (``register_strategy``); the artifact is a PEFT adapter like LoRA's
(``Manifest.is_adapter``), so it loads, predicts and serves (``--adapters``) through the same code, and
``export`` merges it into plain weights (IA3 is a per-channel scale of existing weights, which PEFT folds
in) before tracing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transferops.errors import ConfigError
from transferops.finetune.strategies import adapter_head_modules, default_lora_targets, register_strategy

if TYPE_CHECKING:
    import torch

    from transferops.finetune.config import TrainConfig


def ia3_targets(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """``(target_modules, feedforward_modules)``: PEFT's table for the architecture (BERT: key, value,
    output.dense); else the attention query/value projections (LoRA's guess) with no feed-forward
    scales."""
    from peft.utils import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
    )

    mtype = str(getattr(getattr(model, "config", None), "model_type", ""))
    targets = list(TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.get(mtype) or [])
    feedforward = list(TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.get(mtype) or [])
    if not targets:
        try:
            targets, feedforward = default_lora_targets(model), []
        except ConfigError as err:
            raise ConfigError(f"strategy ia3: no IA3 target modules known for model type {mtype!r} "
                              f"({err}); use strategy lora with --lora-targets, or freeze") from err
    return targets, feedforward


@register_strategy("ia3", lr=5e-3, epochs=8,
                   help="PEFT IA3: learned scales on keys, values and feed-forward; the head trains too")
def apply_ia3(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    from peft import IA3Config, TaskType, get_peft_model

    targets, feedforward = ia3_targets(model)
    # the head trains in full and is saved with the adapter, as LoRA's (a checkpoint without pooler
    # weights, like a masked-LM one, would otherwise get a fresh random pooler at every load)
    icfg = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=targets, feedforward_modules=feedforward,
                     modules_to_save=adapter_head_modules(model))
    return get_peft_model(model, icfg), 0
