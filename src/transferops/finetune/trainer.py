"""Fine-tune a pretrained checkpoint as a classifier: a classification loss + a data source over the
shared training loop (:mod:`transferops.finetune.loop`).

Runs unchanged under ``accelerate launch`` / ``torchrun`` (several GPUs, or CPU processes with gloo): the
batch sampler gives each process its part of every *global* batch (``batch_size`` is global) and the loop
scales each shard's loss by its share of the batch, so N processes take the same steps as one process with
the same batch (``tests/core/test_multiprocess.py`` checks it). Only rank 0 writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._progress import say
from transferops.errors import ConfigError, NotFittedError
from transferops.finetune.batching import BucketBatchSampler, TokenizedDataset, make_collate, tokenize
from transferops.finetune.config import TrainConfig
from transferops.finetune.loop import LoopConfig, LoopResult, TrainLoop, linear_warmup  # noqa: F401 (re-exported)
from transferops.finetune.losses import balanced_weights, build_loss
from transferops.finetune.strategies import StrategyInfo, apply_strategy, encoder_layers
from transferops.metrics import classification_metrics
from transferops.modeling import batched_forward, build_classifier, sigmoid, softmax

#: The loop's result; the historical name.
FitResult = LoopResult


class ClassificationLoss:
    """The objective of fine-tuning: CE / focal / BCE on the classifier's logits, or on the head's logits
    over cached first-token features (``cached``)."""

    def __init__(self, loss_fn: torch.nn.Module, *, cached: bool) -> None:
        self.loss_fn = loss_fn
        self.cached = cached

    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        if self.cached:
            feats, target = batch
            logits = module(feats)
        else:
            target = batch.pop("labels")
            logits = module(**batch).logits
        # under bf16/fp16 autocast the loss is still computed in fp32
        return self.loss_fn(logits.float(), target), int(target.shape[0])


class SamplerSource:
    """A DataLoader over a :class:`BucketBatchSampler`, which shards every global batch across processes."""

    def __init__(self, loader: torch.utils.data.DataLoader, sampler: BucketBatchSampler) -> None:
        self.loader = loader
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int, start: int = 0) -> Iterable[Any]:
        if start:
            raise ValueError("SamplerSource resumes at epoch boundaries only")
        self.sampler.set_epoch(epoch)  # the shuffle is seeded per epoch: a resumed epoch replays its order
        return self.loader

    def global_batch_sizes(self, epoch: int) -> list[int]:
        self.sampler.set_epoch(epoch)
        return [len(b) for b in self.sampler.global_batches()]


class FineTuner:
    """Fine-tune a pretrained checkpoint as a text classifier.

    >>> ft = FineTuner(TrainConfig(strategy="lora", epochs=2))                      # doctest: +SKIP
    >>> ft.fit(train_texts, y_train, val_texts, y_val, labels=["neg", "pos"],
    ...        task="binary", checkpoint_path=ckpt.path, state_dir="runs/x/training_state")
    >>> ft.model_, ft.result_.best_metric                                            # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, *, strategy: str | None = None, strategy_reason: str = "",
                 init_from: str | Path | None = None, l2_to_old: float = 0.0) -> None:
        self.config = config
        self.strategy = strategy or config.strategy
        self.strategy_reason = strategy_reason or f"strategy '{self.strategy}' chosen by the user"
        #: A trained model folder whose head is extended to ``labels`` (:mod:`transferops.finetune.continual`);
        #: ``l2_to_old`` adds an L2-to-its-weights penalty to the loss.
        self.init_from = init_from
        self.l2_to_old = l2_to_old

    # ------------------------------------------------------------------ public
    def fit(self, train_texts: list[str], y_train: np.ndarray, val_texts: list[str], y_val: np.ndarray, *,
            labels: list[str], task: str, checkpoint_path: str | Path, state_dir: str | Path | None = None,
            resume: bool = False) -> FineTuner:
        from accelerate.utils import set_seed

        cfg = self.config
        self.labels_, self.task_ = list(labels), task
        multilabel = task == "multilabel"
        set_seed(cfg.seed)
        from transferops.modeling import load_tokenizer

        self.tokenizer_ = load_tokenizer(checkpoint_path)
        from transferops.truncation import set_truncation

        set_truncation(self.tokenizer_, cfg.truncation)  # saved with the tokenizer: serving cuts the same way
        if self.init_from is not None:
            from transferops.finetune.continual import extend_classifier

            model = extend_classifier(self.init_from, labels, task)
        else:
            model = build_classifier(checkpoint_path, labels, task)
        model, self.strategy_info_ = apply_strategy(model, cfg, self.strategy, self.strategy_reason)
        say(f"strategy {self.strategy}: {self.strategy_info_.trainable_params:,} of "
            f"{self.strategy_info_.total_params:,} parameters train ({self.strategy_reason})")

        use_cache = self.strategy == "head" and _head_is_cacheable(model)
        # A head on frozen features moves slowly per epoch and its epochs cost almost nothing: count
        # patience in blocks of 4 epochs so it is not stopped at chance after a flat start.
        patience = cfg.early_stopping_patience
        if patience and use_cache:
            patience *= 4
        loop = TrainLoop(LoopConfig(
            lr=cfg.resolved_lr(self.strategy), epochs=cfg.resolved_epochs(self.strategy), max_steps=cfg.max_steps,
            grad_accum=cfg.grad_accum, warmup_ratio=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
            metric=cfg.metric, higher_is_better=cfg.metric != "loss", patience=patience,
            select_best=cfg.select_best, precision="fp32" if use_cache else cfg.precision,
            precision_reason=f"strategy head trains a small head on cached fp32 features: no autocast "
            f"(requested {cfg.precision})"
            if use_cache and cfg.precision != "fp32" else ""))
        world, rank = loop.world_size, loop.rank
        if cfg.batch_size < world:
            raise ConfigError(f"batch_size: {cfg.batch_size} is the global batch and must be at least the number "
                              f"of processes ({world}); raise --batch-size")
        weight = None
        if cfg.class_weight == "balanced":
            weight = balanced_weights(torch.as_tensor(y_train), len(labels), multilabel)
        loss_fn = build_loss(cfg.loss, multilabel=multilabel, gamma=cfg.focal_gamma, weight=weight).to(loop.device)

        enc = enc_va = None
        prefix_cache = False
        self.frozen_cache_: dict[str, Any] | None = None
        if self.strategy == "freeze":
            from transferops.finetune import frozen_prefix as fp

            k = self.strategy_info_.frozen_layers
            enc = tokenize(self.tokenizer_, train_texts, cfg.max_length)
            enc_va = tokenize(self.tokenizer_, val_texts, cfg.max_length)
            n_tokens = sum(map(len, enc["input_ids"])) + sum(map(len, enc_va["input_ids"]))
            plan = fp.plan_cache(model, mode=cfg.cache_frozen, frozen_layers=k, n_tokens=n_tokens,
                                 epochs=cfg.resolved_epochs(self.strategy), budget_mb=cfg.cache_frozen_max_mb,
                                 prefix_eval=not cfg.frozen_dropout)
            prefix_cache = plan.used
            if prefix_cache:
                (states_tr, states_va), plan.encode_seconds = fp.timed_encode(
                    model, [enc, enc_va], k, batch_size=cfg.eval_batch_size, pad_id=self.tokenizer_.pad_token_id or 0)
                suffix_module: Any = fp.CachedSuffix(model, k)
            say(f"frozen-prefix cache: {'on' if plan.used else 'off'} ({plan.reason})")
            self.frozen_cache_ = plan.to_dict()
        if use_cache:
            # The backbone is frozen: compute its output once, train the head on it for many epochs.
            feats_tr = _cls_features(model, self.tokenizer_, train_texts, cfg)
            feats_va = _cls_features(model, self.tokenizer_, val_texts, cfg)
            dataset: Any = torch.utils.data.TensorDataset(feats_tr, torch.as_tensor(
                y_train, dtype=torch.float32 if multilabel else torch.long))
            sampler = BucketBatchSampler(np.ones(len(y_train), dtype=int), cfg.batch_size, seed=cfg.seed,
                                         bucket=False, weights=_oversample_weights(y_train, cfg, multilabel),
                                         num_shards=world, shard=rank)
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
        else:
            enc = enc if enc is not None else tokenize(self.tokenizer_, train_texts, cfg.max_length)
            dataset = TokenizedDataset(enc, np.asarray(y_train))
            sampler = BucketBatchSampler(dataset.lengths, cfg.batch_size, seed=cfg.seed,
                                         bucket=cfg.bucket_by_length,
                                         weights=_oversample_weights(y_train, cfg, multilabel),
                                         num_shards=world, shard=rank)
            collate = make_collate(self.tokenizer_, multilabel)
            if prefix_cache:  # same sampler over the same lengths: the batches of the uncached run
                dataset = fp.CachedStates(states_tr, np.asarray(y_train), multilabel=multilabel)
                collate = fp.CachedStates.collate
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
        y_val_t = torch.as_tensor(y_val, dtype=torch.float32 if multilabel else torch.long).to(loop.device)
        # validation inside an epoch (a head on cached features: its epochs cost almost nothing, epoch ends)
        every, why = plan_validation(None if use_cache else cfg.eval_every, n_train=len(train_texts),
                                     n_val=len(val_texts), steps_per_epoch=math.ceil(len(sampler) / cfg.grad_accum))
        loop.config = dataclasses.replace(loop.config, eval_every=every, eval_reason=why)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            if use_cache:
                val_logits = _head_logits(m, feats_va)
            elif prefix_cache:
                val_logits = fp.suffix_logits(suffix_module, states_va, cfg.eval_batch_size)
            else:
                val_logits = batched_forward(m, self.tokenizer_, val_texts, max_length=cfg.max_length,
                                             batch_size=cfg.eval_batch_size, desc="validate")
            metrics = _metrics_from_logits(val_logits, y_val, multilabel)
            metrics["loss"] = float(loss_fn(torch.as_tensor(val_logits).to(loop.device), y_val_t))
            return metrics

        # A cached-feature head trains through a small module so DDP sees (and syncs) its forward pass.
        objective: Any = ClassificationLoss(loss_fn, cached=use_cache)
        train_module: torch.nn.Module | None = _HeadOnly(model) if use_cache else None
        if self.strategy == "freeze":  # frozen layers keep dropout unless asked; with the cache, only layers k.. run
            objective = fp.PrefixCacheLoss(loss_fn) if prefix_cache else objective
            train_module = suffix_module if prefix_cache else fp.FrozenPrefixEval(model, k,
                                                                                  prefix_eval=not cfg.frozen_dropout)
        if self.init_from is not None and self.l2_to_old > 0:
            from transferops.finetune.continual import wrap_l2

            n_old = len(_old_labels(self.init_from))
            objective = wrap_l2(objective, model, self.l2_to_old, n_old)
        self.result_ = loop.run(model, objective, SamplerSource(loader, sampler),
                                evaluate=evaluate, train_module=train_module,
                                state_dir=state_dir, resume=resume)
        self.model_ = model
        return self

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError("FineTuner is not fitted; call fit() first")
        return batched_forward(self.model_, self.tokenizer_, texts, max_length=self.config.max_length,
                               batch_size=self.config.eval_batch_size)

    @property
    def strategy_info(self) -> StrategyInfo:
        return self.strategy_info_


# ---------------------------------------------------------------------- helpers

#: ``eval_every='auto'``: one validation row costs about 1/VALIDATION_ROW_COST of a training row (forward only,
#: batch 64, in the training precision); measured on BBC at 128 tokens, MiniLM-L6, bf16, strategy freeze — the
#: cheapest training row of the strategies that validate this way (docs/finetune.md "Validation inside an epoch").
VALIDATION_ROW_COST = 4.0
#: share of the training time that ``auto`` spends on validation, and its most validations per epoch
VALIDATION_BUDGET, MAX_VALIDATIONS_PER_EPOCH = 0.1, 4


def plan_validation(setting: int | str | None, *, n_train: int, n_val: int,
                    steps_per_epoch: int) -> tuple[int | None, str]:
    """``(eval_every steps or None, reason)`` for the loop. ``auto``: as many validations per epoch (at most
    4) as keep their estimated cost within 10 % of an epoch's — a function of the split sizes, not of
    timings, so the same seed and data give the same schedule and the same model on any machine.

    >>> plan_validation("auto", n_train=1050, n_val=200, steps_per_epoch=66)[0]
    33
    >>> plan_validation("auto", n_train=50, n_val=25, steps_per_epoch=7)
    (None, 'auto: at epoch ends (2 validations of 25 rows an epoch would cost over 10% of an epoch of 50 rows)')
    """
    if setting is None:
        return None, "at epoch ends"
    if setting != "auto":
        k = int(setting)
        return (k, f"every {k} optimiser steps and at epoch ends") if k < steps_per_epoch else (
            None, f"at epoch ends (eval_every {k} >= the {steps_per_epoch} steps of an epoch)")
    share = n_val / max(1, n_train) / VALIDATION_ROW_COST  # one validation's cost, as a share of an epoch's
    per_epoch = min(MAX_VALIDATIONS_PER_EPOCH, int(VALIDATION_BUDGET / share) if share > 0 else 1,
                    steps_per_epoch)
    if per_epoch < 2:
        return None, (f"auto: at epoch ends (2 validations of {n_val} rows an epoch would cost over "
                      f"{VALIDATION_BUDGET:.0%} of an epoch of {n_train} rows)")
    k = math.ceil(steps_per_epoch / per_epoch)
    return k, (f"auto: every {k} of the {steps_per_epoch} optimiser steps of an epoch ({per_epoch} validations "
               f"of {n_val} rows an epoch, ~{per_epoch * share:.0%} of an epoch of {n_train} rows)")


def _old_labels(path: str | Path) -> list[str]:
    import json

    cfg = json.loads((Path(path) / "config.json").read_text())
    return [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]


def _metrics_from_logits(logits: np.ndarray, y: np.ndarray, multilabel: bool) -> dict[str, float]:
    proba = sigmoid(logits) if multilabel else softmax(logits)
    return classification_metrics(y, proba, multilabel=multilabel)


def _oversample_weights(y: np.ndarray, cfg: TrainConfig, multilabel: bool) -> np.ndarray | None:
    if not cfg.oversample or multilabel:
        return None
    counts = np.bincount(y)
    w = 1.0 / counts[y]
    return w / w.sum()


def _head_is_cacheable(model: torch.nn.Module) -> bool:
    """BERT-style (pooler → classifier) and RoBERTa/MPNet-style heads read only token 0."""
    mt = getattr(getattr(model, "config", None), "model_type", "")
    return mt in {"bert", "mpnet", "roberta", "xlm-roberta"}


def _cls_features(model: torch.nn.Module, tokenizer: Any, texts: list[str], cfg: TrainConfig) -> torch.Tensor:
    """Last-layer hidden state of the first token, shape (n, 1, hidden) (the shared forward pass)."""
    from transferops.inference import forward

    _, first = forward(model.base_model, tokenizer, texts, max_length=cfg.max_length,
                       batch_size=cfg.eval_batch_size, output="first_token", desc="encode (frozen)")
    return torch.from_numpy(first)


class _HeadOnly(torch.nn.Module):
    """The classifier's head over cached first-token features, as a module DDP can wrap."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return _head_forward(self.model, feats)


def _head_forward(model: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
    base: Any = model.base_model
    head: Any = model.classifier
    pooler = getattr(base, "pooler", None)
    if pooler is not None:
        pooled = pooler(feats)
        drop = getattr(model, "dropout", torch.nn.Identity())
        return head(drop(pooled))  # type: ignore[no-any-return]
    return head(feats)  # type: ignore[no-any-return]


def _head_logits(model: torch.nn.Module, feats: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        out = _head_forward(model, feats.to(next(model.parameters()).device)).float().cpu().numpy()
    model.train()
    return out


def n_encoder_layers(model: torch.nn.Module) -> int:
    return len(encoder_layers(model))
