"""The training loop (accelerate), read top to bottom: build → strategy → epochs → best weights.

Runs unchanged under ``accelerate launch`` / ``torchrun`` (several GPUs, or CPU processes with gloo):
the model, optimiser and scheduler go through ``Accelerator.prepare``; the batch sampler gives each
process its part of every *global* batch (``batch_size`` is global), and each shard's loss is scaled
by its share of the batch, so N processes take the same steps as one process with the same batch
(``tests/core/test_multiprocess.py`` checks it). Only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._progress import bar, say
from transferops.errors import ConfigError, NotFittedError
from transferops.finetune.batching import BucketBatchSampler, TokenizedDataset, make_collate, tokenize
from transferops.finetune.config import TrainConfig
from transferops.finetune.losses import balanced_weights, build_loss
from transferops.finetune.state import has_checkpoint, load_checkpoint, save_checkpoint, trainable_state
from transferops.finetune.strategies import StrategyInfo, apply_strategy, encoder_layers
from transferops.metrics import classification_metrics
from transferops.modeling import batched_forward, build_classifier, sigmoid, softmax


def linear_warmup(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1, then linear decay to 0 (a pure function)."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = float("nan")
    train_seconds: float = 0.0
    examples_seen: int = 0
    stopped_early: bool = False
    resumed_from_epoch: int | None = None

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.train_seconds if self.train_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["examples_per_second"] = round(self.examples_per_second, 2)
        return d


class FineTuner:
    """Fine-tune a pretrained checkpoint as a text classifier.

    >>> ft = FineTuner(TrainConfig(strategy="lora", epochs=2))                      # doctest: +SKIP
    >>> ft.fit(train_texts, y_train, val_texts, y_val, labels=["neg", "pos"],
    ...        task="binary", checkpoint_path=ckpt.path, state_dir="runs/x/training_state")
    >>> ft.model_, ft.result_.best_metric                                            # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, *, strategy: str | None = None, strategy_reason: str = "") -> None:
        self.config = config
        self.strategy = strategy or config.strategy
        self.strategy_reason = strategy_reason or f"strategy '{self.strategy}' chosen by the user"

    # ------------------------------------------------------------------ public
    def fit(self, train_texts: list[str], y_train: np.ndarray, val_texts: list[str], y_val: np.ndarray, *,
            labels: list[str], task: str, checkpoint_path: str | Path, state_dir: str | Path | None = None,
            resume: bool = False) -> FineTuner:
        from accelerate import Accelerator
        from accelerate.data_loader import prepare_data_loader
        from accelerate.utils import DataLoaderConfiguration, set_seed

        cfg = self.config
        self.labels_, self.task_ = list(labels), task
        multilabel = task == "multilabel"
        set_seed(cfg.seed)
        from transferops.modeling import load_tokenizer

        self.tokenizer_ = load_tokenizer(checkpoint_path)
        model = build_classifier(checkpoint_path, labels, task)
        model, self.strategy_info_ = apply_strategy(model, cfg, self.strategy, self.strategy_reason)
        say(f"strategy {self.strategy}: {self.strategy_info_.trainable_params:,} of "
            f"{self.strategy_info_.total_params:,} parameters train ({self.strategy_reason})")

        # split_batches: the scheduler steps once per optimiser step whatever the number of processes.
        from transferops import distributed

        acc = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=distributed.use_cpu(),
                          dataloader_config=DataLoaderConfiguration(split_batches=True))
        world, rank = acc.num_processes, acc.process_index
        if cfg.batch_size < world:
            raise ConfigError(f"batch_size: {cfg.batch_size} is the global batch and must be at least the number "
                              f"of processes ({world}); raise --batch-size")
        weight = None
        if cfg.class_weight == "balanced":
            weight = balanced_weights(torch.as_tensor(y_train), len(labels), multilabel)
        loss_fn = build_loss(cfg.loss, multilabel=multilabel, gamma=cfg.focal_gamma, weight=weight)

        use_cache = self.strategy == "head" and _head_is_cacheable(model)
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
            enc = tokenize(self.tokenizer_, train_texts, cfg.max_length)
            dataset = TokenizedDataset(enc, np.asarray(y_train))
            sampler = BucketBatchSampler(dataset.lengths, cfg.batch_size, seed=cfg.seed,
                                         bucket=cfg.bucket_by_length,
                                         weights=_oversample_weights(y_train, cfg, multilabel),
                                         num_shards=world, shard=rank)
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                                 collate_fn=make_collate(self.tokenizer_, multilabel))
        # The sampler already shards: accelerate only moves batches to the device and tracks epoch ends.
        loader = prepare_data_loader(loader, device=acc.device, num_processes=1, process_index=0,
                                     put_on_device=True)

        epochs = cfg.resolved_epochs(self.strategy)
        steps_per_epoch = math.ceil(len(sampler) / cfg.grad_accum)
        total_steps = epochs * steps_per_epoch
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        warmup = int(cfg.warmup_ratio * total_steps)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.resolved_lr(self.strategy), weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_warmup(s, warmup, total_steps))
        # A cached-feature head trains through a small module so DDP sees (and syncs) its forward pass.
        classifier: Any = model
        train_module = _HeadOnly(model) if use_cache else model
        prepared, opt, sched = acc.prepare(train_module, opt, sched)
        loss_fn = loss_fn.to(acc.device)

        res = FitResult()
        start_epoch, step, bad_epochs = 0, 0, 0
        best_state: dict[str, torch.Tensor] | None = None
        sdir = Path(state_dir) if state_dir else None
        if resume and sdir is not None and has_checkpoint(sdir):
            info, best_state = load_checkpoint(sdir, classifier, opt, sched)
            start_epoch, step, bad_epochs = info["epoch"] + 1, info["step"], info["bad_epochs"]
            res.history, res.best_epoch, res.best_metric = info["history"], info["best_epoch"], info["best_metric"]
            res.train_seconds, res.examples_seen = info["train_seconds"], info["examples_seen"]
            res.resumed_from_epoch = start_epoch
            say(f"resuming after epoch {start_epoch} (step {step}) from {sdir}")

        higher_is_better = cfg.metric != "loss"
        # A head on frozen features moves slowly per epoch and its epochs cost almost nothing: count
        # patience in blocks of 4 epochs so it is not stopped at chance after a flat start.
        patience = cfg.early_stopping_patience
        if patience and use_cache:
            patience *= 4
        for epoch in range(start_epoch, epochs):
            if step >= total_steps:
                break
            # Through the loader: accelerate's wrapper re-applies its own epoch counter to the sampler at
            # every pass, which would replay epoch 0's order after a resume.
            loader.set_epoch(epoch)
            global_sizes = [len(b) for b in sampler.global_batches()]
            prepared.train()
            t0 = time.perf_counter()
            running, nb = 0.0, 0
            with bar(desc=f"epoch {epoch + 1}/{epochs}", total=len(sampler), unit="batch") as pb:
                for bi, batch in enumerate(loader):
                    with acc.accumulate(prepared):
                        if use_cache:
                            feats, target = batch
                            logits = prepared(feats)
                        else:
                            target = batch.pop("labels")
                            logits = prepared(**batch).logits
                        loss = loss_fn(logits, target)
                        # DDP averages shard gradients; weighting each shard's mean loss by its share of
                        # the global batch makes that average the full batch's gradient (factor 1 alone).
                        share = int(target.shape[0]) * world / global_sizes[bi]
                        acc.backward(loss * share if world > 1 else loss)
                        opt.step()
                        sched.step()
                        opt.zero_grad()
                    # this shard's part of the global batch loss (summed over ranks at the epoch's end)
                    running += float(loss.detach()) * (share / world if world > 1 else 1.0)
                    nb += 1
                    res.examples_seen += global_sizes[bi]
                    pb.update(1)
                    pb.set_postfix(loss=f"{running * world / nb:.4f}")
                    if acc.sync_gradients:
                        step += 1
                        if step >= total_steps:
                            break
            res.train_seconds += time.perf_counter() - t0
            if world > 1:  # log the global batch loss, the figure one process would have logged
                running = float(acc.reduce(torch.tensor([running], device=acc.device), reduction="sum")[0])
            # Validation (every rank scores the full validation set with identical weights, so all
            # ranks take the same best-epoch and early-stopping decisions)
            m = classifier
            if use_cache:
                val_logits = _head_logits(m, feats_va)
            else:
                val_logits = batched_forward(m, self.tokenizer_, val_texts, max_length=cfg.max_length,
                                             batch_size=cfg.eval_batch_size, desc="validate")
            val_metrics = _metrics_from_logits(val_logits, y_val, multilabel)
            y_val_t = torch.as_tensor(y_val, dtype=torch.float32 if multilabel else torch.long)
            val_metrics["loss"] = float(loss_fn(torch.as_tensor(val_logits).to(acc.device), y_val_t.to(acc.device)))
            record = {"epoch": epoch + 1, "step": step, "train_loss": running / max(nb, 1),
                      "lr": sched.get_last_lr()[0], **{f"val_{k}": v for k, v in val_metrics.items()}}
            res.history.append(record)
            score = val_metrics[cfg.metric]
            improved = (np.isnan(res.best_metric) or (score > res.best_metric + 1e-4 if higher_is_better
                                                        else score < res.best_metric - 1e-4))
            if improved:
                res.best_metric, res.best_epoch, bad_epochs = score, epoch + 1, 0
                best_state = trainable_state(m)
            else:
                bad_epochs += 1
            say(f"epoch {epoch + 1}: train_loss {record['train_loss']:.4f}  val_{cfg.metric} {score:.4f}"
                + ("  (best)" if improved else ""))
            if sdir is not None and acc.is_main_process:
                save_checkpoint(sdir, m, opt, sched, {
                    "epoch": epoch, "step": step, "bad_epochs": bad_epochs, "history": res.history,
                    "best_epoch": res.best_epoch, "best_metric": res.best_metric,
                    "train_seconds": res.train_seconds, "examples_seen": res.examples_seen,
                    "world_size": world, "written_by_rank": rank,
                }, best_state)
            if patience and bad_epochs >= patience:
                res.stopped_early = True
                say(f"early stopping: no improvement in val_{cfg.metric} for {bad_epochs} epochs")
                break

        acc.wait_for_everyone()
        model = classifier
        if best_state is not None and cfg.select_best:
            from transferops.finetune.state import load_trainable

            load_trainable(model, best_state)
        model.eval()
        self.model_ = model
        self.result_ = res
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
