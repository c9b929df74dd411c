"""Fine-tune: strategies (head, freeze, full, lora, auto), losses, the loop, LR finder."""

from transferops.finetune.config import LoraSettings, TrainConfig

__all__ = ["LoraSettings", "TrainConfig"]
