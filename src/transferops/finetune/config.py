"""Training configuration: one dataclass per concern, validated in ``__post_init__``.

Unknown keys (from YAML or ``TrainConfig.from_dict``) are an error that names the key and the
closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import types
import typing
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar, Literal, Union

from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.errors import ConfigError

#: The built-in strategies; any name registered with ``finetune.strategies.register_strategy`` is valid too.
Strategy = Literal["auto", "head", "freeze", "full", "lora"]
Task = Literal["auto", "binary", "multiclass", "multilabel"]
Loss = Literal["ce", "focal"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


def _strategies() -> Any:
    # Learning rate and epochs per strategy when the user gives none live in the strategy registry.
    from transferops.finetune import strategies  # torch-free at import

    return strategies


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "a boolean (true/false, unquoted)"
    if tp is int:
        return "a number (an integer)"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if origin in (list, tuple):
        return "a list"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {getattr(tp, '__name__', 'dataclass')} fields"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    """Strict: a bool is not an int, a float is not an int, a string is not a bool."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, t) for t in typing.get_args(tp))
    if origin is Literal:  # choices are checked (with their own message) by the Options constraints
        return True
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:  # numbers.Integral: numpy integers from a search are integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def check_types(obj: Any, prefix: str = "") -> None:
    """One validation path for YAML and flags: every field's value matches its annotation, or a
    :class:`ConfigError` names the key, the expected type and what was given."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        tp, value = hints[f.name], getattr(obj, f.name)
        if not _matches(value, tp):
            args = [t for t in typing.get_args(tp) if t is not type(None)] if typing.get_origin(tp) in (
                Union, types.UnionType) else [tp]
            expected = " or ".join(_type_name(t) for t in args)
            if typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp):
                expected += " (or null)"
            hint = ""
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no") and bool in args:
                hint = f"; write {'true' if value.lower() in ('true', 'yes') else 'false'} without quotes"
            elif isinstance(value, float) and int in args and float not in args:
                hint = "; it must be a whole number"
            raise ConfigError(f"{prefix}{f.name}: expected {expected}, got {type(value).__name__} "
                              f"{value!r}{hint}")


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (PEFT). ``target_modules=None`` picks the attention query/value layers."""

    r: int = field(default=8, metadata={"help": "rank of the update matrices"})
    alpha: int = field(default=16, metadata={"help": "scaling numerator (alpha / r)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on the LoRA path"})
    target_modules: list[str] | None = field(default=None, metadata={"help": "module names to adapt"})

    _parameter_constraints: ClassVar[Constraints] = {
        "r": Interval(Integral, 1, 1024),
        "alpha": Interval(Integral, 1, None),
        "dropout": Interval(Real, 0.0, 0.9),
    }

    def __post_init__(self) -> None:
        check_types(self, "lora.")
        validate_params(self, self._parameter_constraints, prefix="lora.")


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved verbatim in the artifact manifest."""

    checkpoint: str = "minilm-l6"
    strategy: Strategy = "auto"
    task: Task = "auto"
    epochs: int | None = None
    max_steps: int | None = None
    lr: float | None = None
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    loss: Loss = "ce"
    focal_gamma: float = 2.0
    class_weight: Literal["balanced"] | None = None
    oversample: bool = False
    early_stopping_patience: int | None = 2
    #: Also validate every k optimiser steps inside an epoch (best state, early stopping). ``auto``: up to 4
    #: times an epoch, as many as keep validation within ~10 % of an epoch, judged from the split sizes
    #: (``finetune/trainer.plan_validation``; docs/finetune.md "Validation inside an epoch"); None: epoch ends.
    eval_every: int | Literal["auto"] | None = "auto"
    #: Restore the weights of the best validation epoch (False: keep the last epoch's weights).
    select_best: bool = True
    metric: str = "macro_f1"
    seed: int = 0
    freeze_layers: int | None = None
    freeze_fraction: float | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    bucket_by_length: bool = True
    eval_batch_size: int = 64
    dedupe: bool = False
    near_duplicate_threshold: float = 0.95
    check_near_duplicates: bool = True
    calibrate: bool = False
    baseline: bool = True
    threads: int | None = None
    #: Multi-class: tune per-class logit offsets on validation for ``metric`` (see transferops.decision).
    tune_decision: bool = True
    #: Augmented copies per training row on average (0: none; see ``finetune/augment.py``).
    augment: float = 0.0
    #: Share of the words each augmented copy perturbs.
    augment_strength: float = 0.15
    #: Perturbation names (``transferops.modality.augment``); None: every registered one.
    augment_perturbations: list[str] | None = None
    #: Oversample slices by augmentation: ``["career=change"]`` (the column must be a --slice-column).
    augment_slice: list[str] | None = None
    #: Augmented copies added per training row of each ``augment_slice``.
    augment_slice_copies: int = 2
    #: Texts over ``max_length`` tokens: ``head`` keeps the first tokens, ``head_tail`` the first 1/4 and the
    #: last 3/4 (``transferops.truncation``; saved with the tokenizer, so serving cuts the same way).
    truncation: Literal["head", "head_tail"] = "head"
    #: Strategy ``freeze``: the frozen layers keep their dropout while the rest trains (as in a model whose
    #: weights are frozen but which runs in train mode). ``False``: they run in eval mode, which makes their
    #: output deterministic and cacheable (``cache_frozen``): faster, but the demo's BBC recipe lost 1.1 pt of
    #: test macro-F1 with it (docs/finetune.md "Less work per step").
    frozen_dropout: bool = True
    #: Strategy ``freeze``: train the unfrozen layers on cached outputs of the frozen prefix (``auto``: when
    #: ``frozen_dropout`` is off, the cache fits ``cache_frozen_max_mb`` and there are >= 2 epochs; ``on``
    #: needs ``frozen_dropout=False``; see ``finetune/frozen_prefix.py``).
    cache_frozen: Literal["auto", "on", "off"] = "auto"
    cache_frozen_max_mb: int = 2048
    #: Training precision (issue 18): auto (bf16 where native, else fp32), fp32, bf16, fp16 (CUDA only).
    precision: Precision = "auto"

    _parameter_constraints: ClassVar[Constraints] = {
        "strategy": Options(lambda: _strategies().strategy_names()),
        "task": Options("auto", "binary", "multiclass", "multilabel"),
        "loss": Options("ce", "focal"),
        "class_weight": [None, Options("balanced")],
        "metric": Options("macro_f1", "accuracy", "micro_f1", "weighted_f1", "loss"),
        "epochs": [None, Interval(Integral, 1, 1000)],
        "max_steps": [None, Interval(Integral, 1, None)],
        "lr": [None, Interval(Real, 0.0, 1.0, closed="right")],
        "batch_size": Interval(Integral, 1, 4096),
        "grad_accum": Interval(Integral, 1, 1024),
        "max_length": Interval(Integral, 8, 8192),
        "warmup_ratio": Interval(Real, 0.0, 0.5),
        "weight_decay": Interval(Real, 0.0, 1.0),
        "focal_gamma": Interval(Real, 0.0, 10.0),
        "early_stopping_patience": [None, Interval(Integral, 1, None)],
        "eval_every": [None, Options("auto"), Interval(Integral, 1, None)],
        "freeze_layers": [None, Interval(Integral, 0, None)],
        "freeze_fraction": [None, Interval(Real, 0.0, 1.0)],
        "near_duplicate_threshold": Interval(Real, 0.5, 1.0),
        "augment": Interval(Real, 0.0, 20.0),
        "augment_strength": Interval(Real, 0.0, 1.0, closed="right"),
        "augment_slice_copies": Interval(Integral, 1, 100),
        "truncation": Options("head", "head_tail"),
        "cache_frozen": Options("auto", "on", "off"),
        "cache_frozen_max_mb": Interval(Integral, 1, None),
        "precision": Options("auto", "fp32", "bf16", "fp16"),
    }

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**_known(LoraSettings, self.lora, "lora"))
        check_types(self)  # types first (YAML's "2.5" for an integer, quoted booleans), then values
        validate_params(self, self._parameter_constraints)
        if self.freeze_layers is not None and self.freeze_fraction is not None:
            raise ConfigError("freeze_layers and freeze_fraction: give one, not both")
        if self.cache_frozen == "on" and self.frozen_dropout:
            raise ConfigError("cache_frozen: 'on' needs frozen layers without dropout (their output must not "
                              "change between epochs); add --no-frozen-dropout (frozen_dropout: false), or use "
                              "--cache-frozen auto")
        from transferops.finetune.precision import check_fp16_available  # torch only for fp16

        check_fp16_available(self.precision)
        if self.augment_perturbations is not None or self.augment_slice:
            from transferops.modality.augment import check_perturbations, parse_slice  # pure Python

            if self.augment_perturbations is not None:
                check_perturbations(self.augment_perturbations)
            for spec in self.augment_slice or []:
                parse_slice(spec)

    def resolved_lr(self, strategy: str) -> float:
        return self.lr if self.lr is not None else float(_strategies().get_strategy(strategy).lr)

    def resolved_epochs(self, strategy: str) -> int:
        return self.epochs if self.epochs is not None else int(_strategies().get_strategy(strategy).epochs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return cls(**_known(cls, d, "train"))


#: Names users bring from other tools (transformers, Keras) mapped to ours, for "did you mean".
SYNONYMS = {"learning_rate": "lr", "num_epochs": "epochs", "num_train_epochs": "epochs", "model": "checkpoint",
            "model_name": "checkpoint", "model_name_or_path": "checkpoint", "max_seq_length": "max_length",
            "per_device_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
            "warmup": "warmup_ratio", "patience": "early_stopping_patience",
            "eval_steps": "eval_every", "rank": "r", "lora_alpha": "alpha",
            "lora_dropout": "dropout", "lora_r": "r"}


def _known(klass: type, d: dict[str, Any], where: str) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(klass)]
    for k in d:
        if k not in names:
            close = [SYNONYMS[k]] if SYNONYMS.get(k) in names else difflib.get_close_matches(k, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(names)}."
            raise ConfigError(f"{where}: unknown key '{k}'.{hint}")
    return dict(d)
