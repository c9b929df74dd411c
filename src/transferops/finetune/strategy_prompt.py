"""Prompt tuning (Lester et al. 2021): a few learned "virtual token" embeddings prepended to every input;
the encoder stays frozen, the head (BERT's pooler + classifier) trains and is saved with the prompt.

One file behind the strategy registry. The artifact is a PEFT adapter (``Manifest.is_adapter``): it loads,
predicts and serves (``--adapters``, many over one base) like LoRA. It cannot be merged: the prompt is an
extra input, not a change of weights, so ``export`` refuses it and says so
(``artifacts.model.merge_refusal``). The mean-pooled embedding pools the real tokens only
(``inference.encoder_outputs`` drops the virtual positions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transferops.finetune._prompt_common import check_positions
from transferops.finetune.strategies import adapter_head_modules, register_strategy

if TYPE_CHECKING:
    import torch

    from transferops.finetune.config import TrainConfig

#: virtual tokens prepended (Lester et al. use 5–100; 20 is PEFT's documented example)
NUM_VIRTUAL_TOKENS = 20


@register_strategy("prompt_tuning", lr=3e-2, epochs=10,
                   help="PEFT prompt tuning: 20 learned virtual tokens; pooler + classifier train; no ONNX export")
def apply_prompt_tuning(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    from peft import PromptTuningConfig, TaskType, get_peft_model

    check_positions(model, cfg, NUM_VIRTUAL_TOKENS, "prompt_tuning")
    pcfg = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=NUM_VIRTUAL_TOKENS,
                              modules_to_save=adapter_head_modules(model))
    return get_peft_model(model, pcfg), 0
