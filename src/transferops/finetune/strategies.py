"""Fine-tuning strategies: which parameters train. One function per strategy, registered by name.

* ``head``   – frozen backbone; the pooler + classifier train on cached features (seconds).
* ``freeze`` – embeddings and the first N encoder layers frozen (default: half).
* ``full``   – everything trains.
* ``lora``   – PEFT LoRA on attention projections; the classification head trains and is saved
  with the adapter.
* ``ia3``, ``prompt_tuning``, ``prefix_tuning`` – more PEFT methods, one file each
  (``strategy_ia3.py``, ``strategy_prompt.py``, ``strategy_prefix.py``); saved, loaded and served as
  adapters like LoRA.
* ``auto``   – picks one from the labeled count, following the source text's Q&A, and says why.

A strategy is a function ``(model, cfg) -> (model, frozen_layers)`` that decides which parameters train,
registered by name with its default learning rate and epochs (:func:`register_strategy`, as PEFT registers
its methods). ``TrainConfig``, the ``train --strategy`` flag and the trainer all read this registry, so a new
method is one new file (see ``docs/architecture/training.md``). torch is imported inside the functions: the
config validates a strategy name without importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transferops.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from transferops.finetune.config import TrainConfig

#: ``(model, cfg) -> (model, number of frozen encoder layers)``; may wrap the model (LoRA does).
ApplyFn = Callable[["torch.nn.Module", "TrainConfig"], "tuple[torch.nn.Module, int]"]


@dataclass(frozen=True)
class StrategySpec:
    """A registered fine-tuning strategy."""

    name: str
    apply: ApplyFn
    lr: float
    epochs: int
    help: str = ""
    #: ``(cfg, strategy=, strategy_reason=) -> trainer`` for a method that does not train a classifier in
    #: :class:`~transferops.finetune.trainer.FineTuner` (``contrastive``); None: FineTuner trains it
    tuner: Callable[..., Any] | None = None


#: name -> spec, in registration order (the order ``--strategy`` lists them).
STRATEGY_REGISTRY: dict[str, StrategySpec] = {}
#: name -> apply function (the registry without its defaults; the historical table).
STRATEGY_FUNCS: dict[str, ApplyFn] = {}


def register_strategy(name: str, *, lr: float, epochs: int, help: str = "",
                      tuner: Callable[..., Any] | None = None) -> Callable[[ApplyFn], ApplyFn]:
    """Register ``apply`` under ``name`` with its default learning rate and epochs.

    >>> @register_strategy("bias", lr=1e-3, epochs=5, help="BitFit: biases and the head train")  # doctest: +SKIP
    ... def apply_bias(model, cfg):
    ...     ...
    ...     return model, 0
    """
    if name == "auto" or not name.isidentifier():
        raise ConfigError(f"strategy: {name!r} cannot be registered (reserved, or not a plain name)")
    if not (lr > 0 and int(epochs) >= 1):
        raise ConfigError(f"strategy {name!r}: lr must be > 0 and epochs >= 1, got lr={lr!r}, epochs={epochs!r}")

    def deco(fn: ApplyFn) -> ApplyFn:
        old = STRATEGY_REGISTRY.get(name)
        if old is not None and old.apply is not fn:
            raise ConfigError(f"strategy: {name!r} is already registered (by {old.apply.__module__}); pick "
                              "another name")
        STRATEGY_REGISTRY[name] = StrategySpec(name, fn, float(lr), int(epochs), help, tuner)
        STRATEGY_FUNCS[name] = fn
        return fn

    return deco


def load_builtin_methods() -> None:
    """The registry lines of the built-in methods that live in their own file (one line each), imported
    on the first lookup: a module-level import here would be an import circle (each file imports
    ``register_strategy`` from this module)."""
    from transferops.finetune import strategy_contrastive, strategy_ia3, strategy_prefix, strategy_prompt  # noqa: F401


def strategy_names(*, auto: bool = True) -> tuple[str, ...]:
    """Every registered strategy (``auto`` first unless ``auto=False``)."""
    load_builtin_methods()
    return (("auto",) if auto else ()) + tuple(STRATEGY_REGISTRY)


def make_tuner(cfg: Any, strategy: str, *, reason: str = "", **finetuner_kw: Any) -> Any:
    """The trainer for ``strategy``: the method's own (a registered ``tuner``, e.g. ``contrastive``) or the
    shared :class:`~transferops.finetune.trainer.FineTuner` (``finetuner_kw`` go to it only). Every place that
    trains a named recipe (train, the learning curve) builds it here, so a new method with its own trainer
    works everywhere at once."""
    spec = get_strategy(strategy)
    if spec.tuner is not None:
        return spec.tuner(cfg, strategy=strategy, strategy_reason=reason)
    from transferops.finetune.trainer import FineTuner

    return FineTuner(cfg, strategy=strategy, strategy_reason=reason, **finetuner_kw)


def get_strategy(name: str) -> StrategySpec:
    load_builtin_methods()
    if name not in STRATEGY_REGISTRY:
        raise ConfigError(f"strategy: {name!r} is not one of {', '.join(STRATEGY_REGISTRY)}")
    return STRATEGY_REGISTRY[name]


@dataclass
class StrategyInfo:
    name: str
    reason: str
    trainable_params: int = 0
    total_params: int = 0
    frozen_layers: int = 0
    #: the PEFT method when the strategy wrapped the model in a PEFT adapter (``LORA``, ``IA3`` ...): the
    #: artifact then saves the adapter only, and every loader reads it back over the base
    peft_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if d["peft_type"] is None:  # full-model strategies keep their manifest entry as it was
            del d["peft_type"]
        return d


def encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    import torch

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


@register_strategy("head", lr=2e-3, epochs=40, help="frozen backbone; pooler + classifier train on cached features")
def apply_head(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    _freeze_all(model)
    _unfreeze(head_modules(model))
    return model, len(encoder_layers(model))


@register_strategy("freeze", lr=1e-4, epochs=4, help="embeddings and the first N encoder layers frozen (default: half)")
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


@register_strategy("full", lr=3e-5, epochs=3, help="every parameter trains")
def apply_full(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    for p in model.parameters():
        p.requires_grad_(True)
    return model, 0


def default_lora_targets(model: torch.nn.Module) -> list[str]:
    import torch

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for pair in (["query", "value"], ["q", "v"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise ConfigError("lora.target_modules: could not guess the attention projections of this model; "
                      f"set them explicitly (linear layers here: {', '.join(sorted(names)[:12])})")


@register_strategy("lora", lr=5e-4, epochs=5, help="PEFT LoRA on the attention projections; the head trains too")
def apply_lora(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    from peft import LoraConfig, TaskType, get_peft_model

    targets = cfg.lora.target_modules or default_lora_targets(model)
    lcfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                      lora_dropout=cfg.lora.dropout, target_modules=targets,
                      modules_to_save=adapter_head_modules(model))
    return get_peft_model(model, lcfg), 0


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
    model, frozen = get_strategy(strategy).apply(model, cfg)
    trainable, total = _count(model)
    return model, StrategyInfo(strategy, reason, trainable, total, frozen, peft_type_of(model))


def peft_type_of(model: torch.nn.Module) -> str | None:
    """``LORA`` / ``IA3`` / ``PROMPT_TUNING`` ... for a PEFT-wrapped model, else ``None``."""
    configs = getattr(model, "peft_config", None)
    if not configs:
        return None
    cfg = configs.get(getattr(model, "active_adapter", "default")) or next(iter(configs.values()))
    kind = getattr(cfg, "peft_type", None)
    return str(getattr(kind, "value", kind)) if kind is not None else None


def adapter_head_modules(model: torch.nn.Module) -> list[str]:
    """The head modules a PEFT adapter trains and saves beside its own weights (``modules_to_save``):
    BERT's pooler, when there is one, and the classifier."""
    extra = ["pooler"] if getattr(getattr(model, "base_model", None), "pooler", None) is not None else []
    return [*extra, "classifier"]

