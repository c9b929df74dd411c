"""Prefix tuning (Li & Liang 2021): learned key/value prefixes at every attention layer, fed to the model
as ``past_key_values``; the head trains and is saved with them.

One file behind the strategy registry. PEFT runs prefix tuning only on a model whose ``forward`` takes
``past_key_values``; the encoder classifiers of the installed transformers (5.x: BERT, RoBERTa,
DistilBERT, XLM-R ``...ForSequenceClassification``) take none, so on them this strategy stops before
training with an error that says so and names ``prompt_tuning`` (the input-side variant, which works on
any encoder) and ``ia3``. Where it does train, the artifact is a PEFT adapter served like LoRA, and
``export`` refuses it (prefixes cannot be merged into the weights).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from transferops.errors import ConfigError
from transferops.finetune._prompt_common import check_positions
from transferops.finetune.strategies import adapter_head_modules, register_strategy

if TYPE_CHECKING:
    import torch

    from transferops.finetune.config import TrainConfig

NUM_VIRTUAL_TOKENS = 10


def takes_past_key_values(model: torch.nn.Module) -> bool:
    return "past_key_values" in inspect.signature(model.forward).parameters


@register_strategy("prefix_tuning", lr=1e-2, epochs=10,
                   help="PEFT prefix tuning (needs a model taking past_key_values); no ONNX export")
def apply_prefix_tuning(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    if not takes_past_key_values(model):
        raise ConfigError(f"strategy prefix_tuning: {type(model).__name__} takes no past_key_values in this "
                          "transformers version, which PEFT prefix tuning feeds its prefixes through; use "
                          "--strategy prompt_tuning (learned virtual tokens at the input, works on any "
                          "encoder) or --strategy ia3")
    check_positions(model, cfg, NUM_VIRTUAL_TOKENS, "prefix_tuning")
    pcfg = PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=NUM_VIRTUAL_TOKENS,
                              modules_to_save=adapter_head_modules(model))
    return get_peft_model(model, pcfg), 0
