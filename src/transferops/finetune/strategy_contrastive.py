"""Strategy ``contrastive`` behind the strategy registry: SetFit-style contrastive tuning of the
sentence-embedding body + the probe's logistic-regression head (:mod:`transferops.finetune.contrastive`,
imported on use: this file only registers the name, its defaults and its trainer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transferops.errors import ConfigError
from transferops.finetune.strategies import register_strategy

if TYPE_CHECKING:
    import torch

    from transferops.finetune.config import TrainConfig


def contrastive_tuner(config: TrainConfig, *, strategy: str = "contrastive", strategy_reason: str = "") -> Any:
    from transferops.finetune.contrastive import ContrastiveTuner

    return ContrastiveTuner(config, strategy=strategy, strategy_reason=strategy_reason)


@register_strategy("contrastive", lr=5e-5, epochs=1, tuner=contrastive_tuner,
                   help="SetFit-style: the body trains on labeled pairs (contrastive), then a logistic-regression "
                        "head on its embeddings (a probe artifact)")
def apply_contrastive(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    raise ConfigError("strategy: 'contrastive' trains the bare encoder with its own trainer, not a classifier; "
                      "train it through transferops.train / `transferops train --strategy contrastive`")
