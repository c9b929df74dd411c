"""Fine-tuning strategies: which parameters train. One function per strategy, registered by name.

* ``head``   – frozen backbone; the pooler + classifier train on cached features (seconds).
* ``freeze`` – embeddings and the first N encoder layers frozen (default: half).
* ``full``   – everything trains.
* ``lora``   – PEFT LoRA on attention projections; the classification head trains and is saved
  with the adapter.
* ``auto``   – picks one from the labeled count, following the source text's Q&A, and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from transferops.errors import ConfigError
from transferops.finetune.config import TrainConfig


@dataclass
class StrategyInfo:
    name: str
    reason: str
    trainable_params: int = 0
    total_params: int = 0
    frozen_layers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    base = getattr(model, "base_model", model)
    for path in ("encoder.layer", "encoder.layers", "transformer.layer", "layers"):
        obj: Any = base
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ConfigError(f"cannot find the encoder layers of {type(model).__name__}; use strategy full or lora")


def head_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The classifier head (and BERT's pooler, which feeds it)."""
    mods: list[torch.nn.Module] = []
    base = getattr(model, "base_model", None)
    pooler = getattr(base, "pooler", None)
    if pooler is not None:
        mods.append(pooler)
    for name in ("classifier", "score", "pre_classifier"):
        m = getattr(model, name, None)
        if m is not None:
            mods.append(m)
    if not mods:
        raise ConfigError(f"cannot find a classification head on {type(model).__name__}")
    return mods


def _count(model: torch.nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return train, total


def _freeze_all(model: torch.nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def _unfreeze(mods: list[torch.nn.Module]) -> None:
    for m in mods:
        for p in m.parameters():
            p.requires_grad_(True)


def apply_full(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    for p in model.parameters():
        p.requires_grad_(True)
    return model, 0


def apply_head(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    _freeze_all(model)
    _unfreeze(head_modules(model))
    return model, len(encoder_layers(model))


def apply_freeze(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    layers = encoder_layers(model)
    n = len(layers)
    if cfg.freeze_layers is not None:
        k = cfg.freeze_layers
        if k > n:
            raise ConfigError(f"freeze_layers: the model has {n} encoder layers, cannot freeze {k}")
    else:
        k = int(round((cfg.freeze_fraction if cfg.freeze_fraction is not None else 0.5) * n))
    for p in model.parameters():
        p.requires_grad_(True)
    base = getattr(model, "base_model", model)
    emb = getattr(base, "embeddings", None)
    if emb is not None:
        for p in emb.parameters():
            p.requires_grad_(False)
    for layer in layers[:k]:
        for p in layer.parameters():
            p.requires_grad_(False)
    return model, k


def default_lora_targets(model: torch.nn.Module) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for pair in (["query", "value"], ["q", "v"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise ConfigError("lora.target_modules: could not guess the attention projections of this model; "
                      f"set them explicitly (linear layers here: {', '.join(sorted(names)[:12])})")


def apply_lora(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    from peft import LoraConfig, TaskType, get_peft_model

    targets = cfg.lora.target_modules or default_lora_targets(model)
    extra = ["pooler"] if getattr(getattr(model, "base_model", None), "pooler", None) is not None else []
    lcfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                      lora_dropout=cfg.lora.dropout, target_modules=targets,
                      modules_to_save=[*extra, "classifier"])
    return get_peft_model(model, lcfg), 0


STRATEGY_FUNCS: dict[str, Callable[[torch.nn.Module, TrainConfig], tuple[torch.nn.Module, int]]] = {
    "full": apply_full,
    "head": apply_head,
    "freeze": apply_freeze,
    "lora": apply_lora,
}


def choose_auto(n_train: int, n_layers: int) -> tuple[str, dict[str, Any], str]:
    """The source text's Q&A: <1k → freeze all but the last 2–3 layers; 1k–10k → freeze the first
    half; >10k → fine-tune everything with a small learning rate."""
    if n_train < 1000:
        k = max(n_layers - 2, 0)
        return "freeze", {"freeze_layers": k}, (
            f"{n_train} training examples (< 1,000): freeze all but the last 2 of {n_layers} layers "
            "to avoid overfitting (source text, Practical Q&A)")
    if n_train <= 10_000:
        return "freeze", {"freeze_fraction": 0.5}, (
            f"{n_train} training examples (1,000–10,000): freeze the first 50% of layers")
    return "full", {}, f"{n_train} training examples (> 10,000): fine-tune all layers with a small lr"


def apply_strategy(model: torch.nn.Module, cfg: TrainConfig, strategy: str, reason: str
                   ) -> tuple[torch.nn.Module, StrategyInfo]:
    if strategy not in STRATEGY_FUNCS:
        raise ConfigError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGY_FUNCS)}")
    model, frozen = STRATEGY_FUNCS[strategy](model, cfg)
    trainable, total = _count(model)
    return model, StrategyInfo(strategy, reason, trainable, total, frozen)
