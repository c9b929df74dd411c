"""The one training loop (accelerate): optimiser, schedule, accumulation, best state, checkpoint/resume.

Every way transferops trains weights runs here — fine-tuning a classifier (``FineTuner.fit``),
distillation (``adapt.distill``) and continued MLM pretraining (``adapt.mlm.adapt``). A method brings
only what differs:

* an :class:`Objective` — ``loss(module, batch) -> (mean loss, rows in this batch)``;
* a :class:`DataSource` — ``len()`` micro-batches per epoch and ``batches(epoch, start)``; a source that
  can shard each *global* batch across processes also gives ``global_batch_sizes(epoch)`` (the loop then
  runs data-parallel under ``accelerate launch`` / ``torchrun``);
* optionally ``evaluate(model) -> metrics`` at every epoch end — and, with ``eval_every``, every k optimiser
  steps inside an epoch (best state, early stopping) — and
  :class:`Callback` s (``on_step_begin``, ``on_log``) for per-step behaviour.

Read top to bottom, :meth:`TrainLoop.run` is: AdamW + linear warm-up/decay (or the method's pure
``lr_lambda``) → ``Accelerator.prepare`` → resume from ``state_dir`` → for each epoch, for each micro-batch:
forward, scaled backward (``no_sync`` until the last micro-batch of an accumulation group), clip, step →
validate, keep the best trainable weights, checkpoint (rank 0 only), early stopping → restore the best.

A checkpoint (``finetune/state.py``: safetensors + JSON, no pickle) holds the trainable weights, the
optimiser, the schedule, the RNG states, the best weights, the loop counters and the ``state_dict()`` of the
objective, the data source and every callback, so a killed run resumes exactly: at an epoch end, or
mid-epoch (``save_every`` steps) for a source whose batches are a pure function of their position.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from transferops._progress import bar, say
from transferops.errors import ConfigError
from transferops.finetune.state import has_checkpoint, load_checkpoint, load_trainable, save_checkpoint, trainable_state


def linear_warmup(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1, then linear decay to 0 (a pure function)."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


# --------------------------------------------------------------------------- what a method provides


@runtime_checkable
class Objective(Protocol):
    """The loss of one method. ``module`` is what the loop trains (possibly DDP-wrapped); ``batch`` is one
    micro-batch from the data source, already on the device. Returns the batch's *mean* loss and its row
    count (the loop weights shards by it under data parallelism)."""

    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]: ...


@runtime_checkable
class DataSource(Protocol):
    """Micro-batches of one epoch. ``start`` > 0 only on a mid-epoch resume (``save_every``)."""

    def __len__(self) -> int: ...

    def batches(self, epoch: int, start: int = 0) -> Iterable[Any]: ...


class Callback:
    """Per-step hooks; all optional. ``state_dict``/``load_state_dict`` (JSON-able) go into checkpoints."""

    def on_step_begin(self, state: LoopState) -> None:
        """Before the first micro-batch of every optimiser step (e.g. re-seed, freeze/unfreeze)."""

    def on_log(self, state: LoopState, record: dict[str, Any]) -> dict[str, Any]:
        """A ``log_every`` step record about to enter the history; return it (amended)."""
        return record

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint's ``state.json`` (every saved key is there)."""


@dataclass
class LoopState:
    """Where the loop is; passed to callbacks."""

    step: int = 0
    epoch: int = 0
    total_steps: int = 0
    world_size: int = 1
    rank: int = 0


@dataclass
class LoopConfig:
    """How the loop optimises (the method's own config maps onto it)."""

    lr: float
    epochs: int = 1
    max_steps: int | None = None
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    clip_grad_norm: float | None = field(default=None, metadata={"help": "max gradient norm; None: no clipping"})
    metric: str | None = field(default=None, metadata={
        "help": "key of evaluate()'s metrics that picks the best epoch; None: no best-epoch selection"})
    higher_is_better: bool = True
    min_delta: float = 1e-4
    patience: int | None = field(default=None, metadata={
        "help": "epochs without improvement before stopping (with mid-epoch validation: the epochs' worth of "
                "optimiser steps since the last improvement)"})
    eval_every: int | None = field(default=None, metadata={
        "help": "also validate every k optimiser steps inside an epoch; None: at epoch ends only"})
    eval_reason: str = field(default="", metadata={"help": "why this eval_every, when the caller chose it"})
    select_best: bool = True
    save_epochs: bool = field(default=True, metadata={"help": "checkpoint at every epoch end (needs state_dir)"})
    save_every: int | None = field(default=None, metadata={"help": "also checkpoint every k optimiser steps"})
    log_every: int | None = field(default=None, metadata={"help": "add a step record to the history every k steps"})
    desc: str = "epoch"
    precision: str = field(default="fp32", metadata={
        "help": "auto | fp32 | bf16 | fp16: autocast around the objective (finetune/precision.py)"})
    precision_reason: str = field(default="", metadata={"help": "why, when the caller fixed the precision"})

    def __post_init__(self) -> None:
        from transferops.finetune.precision import check_precision

        check_precision(self.precision)
        for name in ("epochs", "max_steps", "grad_accum", "patience", "save_every", "log_every", "eval_every"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ConfigError(f"{name}: must be an integer >= 1, got {v!r}")
        bounds: tuple[tuple[str, float, float | None], ...] = (
            ("lr", 0.0, None), ("warmup_ratio", 0.0, 1.0), ("weight_decay", 0.0, None), ("clip_grad_norm", 0.0, None),
            ("min_delta", 0.0, None))
        for name, lo, hi in bounds:
            v = getattr(self, name)
            if v is None and name == "clip_grad_norm":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo or (hi is not None and v > hi):
                raise ConfigError(f"{name}: must be a number >= {lo}" + (f" and <= {hi}" if hi is not None else "")
                                  + f", got {v!r}")


@dataclass
class LoopResult:
    """What a run did (plain data; ``to_dict`` goes into the manifest's ``training``)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    #: the optimiser step of the best validation (mid-epoch validation can pick a step inside an epoch)
    best_step: int = 0
    best_metric: float = float("nan")
    train_seconds: float = 0.0
    examples_seen: int = 0
    stopped_early: bool = False
    resumed_from_epoch: int | None = None
    steps: int = 0
    #: ``{"requested", "used", "reason"}`` (finetune/precision.py)
    precision: dict[str, str] = field(default_factory=dict)
    #: the AdamW implementation used: ``fused`` where torch has it for these parameters, else ``foreach``
    optimizer: str = ""
    #: mid-epoch validation: ``{"every" (optimiser steps; None: epoch ends only), "evaluations",
    #: "eval_seconds", "reason"}``
    validation: dict[str, Any] = field(default_factory=dict)

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.train_seconds if self.train_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["examples_per_second"] = round(self.examples_per_second, 2)
        return d


# --------------------------------------------------------------------------- optimiser and precision


def make_adamw(params: Any, *, lr: float, weight_decay: float) -> tuple[torch.optim.Optimizer, str]:
    """AdamW, fused where torch has a fused kernel for these parameters (CPU and CUDA in torch >= 2.4;
    measured in benchmarks/train_step_bench.py: one MiniLM-L6 optimiser step several times faster than the
    default ``foreach``), else the default ``foreach`` implementation. Returns the optimiser and which."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True), "fused"
    except (RuntimeError, ValueError, TypeError):  # a device/dtype without the fused kernel
        if not isinstance(params, (list, tuple)):
            raise
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay), "foreach"


def _autocast(used: str, device: torch.device) -> tuple[Callable[[], Any], Any]:
    """A context factory for the objective's forward, and the gradient scaler (fp16 only)."""
    if used == "fp32":
        return nullcontext, None
    dtype = torch.bfloat16 if used == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if used == "fp16" else None
    return (lambda: torch.autocast(device_type=device.type, dtype=dtype)), scaler


# --------------------------------------------------------------------------- the loop


class TrainLoop:
    """Run an objective over a data source; see the module docstring.

    >>> loop = TrainLoop(LoopConfig(lr=1e-3, epochs=3, metric="macro_f1", patience=2))  # doctest: +SKIP
    >>> res = loop.run(model, objective, source, evaluate=score, state_dir="runs/x/training_state")
    """

    def __init__(self, config: LoopConfig, *, callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self._acc: Any = None

    @property
    def accelerator(self) -> Any:
        """Created on first use. ``split_batches``: the schedule steps once per optimiser step whatever
        the number of processes (each process gets its shard of every global batch from the source)."""
        if self._acc is None:
            from accelerate import Accelerator
            from accelerate.utils import DataLoaderConfiguration

            from transferops import distributed

            # Accumulation is done here (no_sync + scaled loss), not by accelerate's ``accumulate``, so any
            # iterable of batches works as a source, with or without a DataLoader.
            self._acc = Accelerator(gradient_accumulation_steps=1, cpu=distributed.use_cpu(),
                                    dataloader_config=DataLoaderConfiguration(split_batches=True))
        return self._acc

    @property
    def world_size(self) -> int:
        return int(self.accelerator.num_processes)

    @property
    def rank(self) -> int:
        return int(self.accelerator.process_index)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device  # type: ignore[no-any-return]

    def resolve_precision(self) -> tuple[str, str]:
        """``(used, reason)`` for this loop's device (``auto`` → bf16 where native, else fp32)."""
        from transferops.finetune.precision import detect_precision

        used, reason = detect_precision(self.config.precision, self.device.type)
        return used, (self.config.precision_reason or reason)

    def total_steps(self, data: DataSource) -> int:
        cfg = self.config
        total = cfg.epochs * math.ceil(len(data) / cfg.grad_accum)
        return min(total, cfg.max_steps) if cfg.max_steps else total

    def run(self, model: torch.nn.Module, objective: Objective, data: DataSource, *,
            evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
            train_module: torch.nn.Module | None = None, param_groups: Any = None,
            lr_lambda: Callable[[int], float] | None = None, state_dir: str | Path | None = None,
            resume: bool = False) -> LoopResult:
        """Train ``model`` in place (its trainable parameters: those with ``requires_grad``, or
        ``param_groups``). ``train_module`` is what the objective calls when it is not ``model`` itself
        (e.g. a head over cached features); checkpoints and the best state always hold ``model``'s
        trainable weights."""
        from accelerate.utils import send_to_device

        cfg, acc = self.config, self.accelerator
        world, rank = acc.num_processes, acc.process_index
        ga = cfg.grad_accum
        sharded = hasattr(data, "global_batch_sizes")
        if world > 1 and not sharded:
            raise ConfigError(f"{type(data).__name__} does not shard its batches across processes; run this "
                              "method in a single process (without accelerate launch / torchrun)")
        n_micro = len(data)
        total = self.total_steps(data)
        warmup = int(cfg.warmup_ratio * total)
        groups = param_groups if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
        opt, res_optimizer = make_adamw(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        used, reason = self.resolve_precision()
        autocast, scaler = _autocast(used, acc.device)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda or (lambda s: linear_warmup(s, warmup, total)))
        module = train_module if train_module is not None else model
        prepared, opt, sched = acc.prepare(module, opt, sched)
        stateful: list[Any] = [o for o in (objective, data, *self.callbacks) if hasattr(o, "state_dict")]

        res = LoopResult(precision={"requested": cfg.precision, "used": used, "reason": reason},
                         optimizer=res_optimizer)
        state = LoopState(total_steps=total, world_size=world, rank=rank)
        start_epoch, skip, step = 0, 0, 0
        # epochs' worth of optimiser steps since the last improvement (one per epoch-end validation when
        # there is no mid-epoch validation, so patience keeps meaning epochs however often we validate)
        bad_epochs = 0.0
        steps_per_epoch = max(1, math.ceil(n_micro / ga))
        window: list[float] = []  # step losses since the last step record
        best_state: dict[str, torch.Tensor] | None = None
        sdir = Path(state_dir) if state_dir else None
        info: dict[str, Any] = {}
        if resume and sdir is not None and has_checkpoint(sdir):
            info, best_state = load_checkpoint(sdir, model, opt, sched)
            step = info["step"]
            # (an MLM state written before the shared loop has no epoch counters: it is mid-pass at ``step``)
            start_epoch = info.get("epoch", -1) + 1
            skip = info.get("epoch_batches", 0 if "epoch" in info else step * ga)
            bad_epochs, window = float(info.get("bad_epochs", 0)), list(info.get("log_window", []))
            res.history, res.best_epoch = info.get("history", []), info.get("best_epoch", 0)
            res.best_step = info.get("best_step", 0)
            res.best_metric = info.get("best_metric", float("nan"))
            res.train_seconds, res.examples_seen = info.get("train_seconds", 0.0), info.get("examples_seen", 0)
            res.resumed_from_epoch = start_epoch
            for o in stateful:
                o.load_state_dict(info)
            if scaler is not None and info.get("grad_scaler"):
                scaler.load_state_dict(info["grad_scaler"])
            say(f"resuming at step {step}/{total} from {sdir}" if skip else
                f"resuming after epoch {start_epoch} (step {step}) from {sdir}")
        last_eval_step = int(info.get("last_eval_step", step))
        interval = cfg.eval_every if evaluate is not None else None  # (so validate() has an evaluate)
        eval_seconds: list[float] = []
        res.validation = {"every": interval, "evaluations": 0, "eval_seconds": 0.0, "reason": cfg.eval_reason or (
            f"every {interval} optimiser steps and at epoch ends" if interval else "at epoch ends")}

        def checkpoint(epoch_done: int, epoch_batches: int, train_seconds: float) -> None:
            if sdir is None or not acc.is_main_process:
                return
            extra: dict[str, Any] = {}
            for o in stateful:
                extra.update(o.state_dict())
            save_checkpoint(sdir, model, opt, sched, {
                "epoch": epoch_done, "epoch_batches": epoch_batches, "step": step, "bad_epochs": bad_epochs,
                "last_eval_step": last_eval_step,
                "history": res.history, "best_epoch": res.best_epoch, "best_step": res.best_step,
                "best_metric": res.best_metric,
                "train_seconds": train_seconds, "examples_seen": res.examples_seen, "log_window": window,
                "world_size": world, "written_by_rank": rank,
                **({"grad_scaler": scaler.state_dict()} if scaler is not None else {}), **extra}, best_state)

        def validate(epoch: int, position: float, train_loss: float, train_seconds: float) -> bool:
            """Score the model, keep the best state, count patience; True when training should stop.
            ``position``: epochs done, fractional inside an epoch (1.5 = half-way through epoch 2)."""
            nonlocal best_state, bad_epochs, last_eval_step
            assert evaluate is not None
            e0 = time.perf_counter()
            # every rank scores the full validation set with identical weights, so all ranks take the
            # same best-state and early-stopping decisions
            with autocast():  # validation in the training forward's precision (bf16: ~1.7x faster on BBC)
                metrics = evaluate(model)
            eval_seconds.append(time.perf_counter() - e0)
            whole = position == int(position)
            record = {"epoch": int(position) if whole else round(position, 3), "step": step,
                      "train_loss": train_loss, "lr": sched.get_last_lr()[0],
                      "train_seconds": round(train_seconds, 3), **{f"val_{k}": v for k, v in metrics.items()}}
            res.history.append(record)
            label = f"epoch {epoch + 1}" if whole else f"step {step} (epoch {position:.2f})"
            line = f"{label}: train_loss {train_loss:.4f}"
            since = (step - last_eval_step) / steps_per_epoch
            last_eval_step = step
            if cfg.metric is not None:
                score = metrics[cfg.metric]
                improved = bool(np.isnan(res.best_metric) or (
                    score > res.best_metric + cfg.min_delta if cfg.higher_is_better
                    else score < res.best_metric - cfg.min_delta))
                if improved:
                    res.best_metric, res.best_epoch, res.best_step, bad_epochs = score, epoch + 1, step, 0.0
                    best_state = trainable_state(model)
                else:
                    bad_epochs += since if since > 0 else 1.0
                line += f"  val_{cfg.metric} {score:.4f}" + ("  (best)" if improved else "")
            say(line)
            return bool(cfg.patience and bad_epochs >= cfg.patience - 1e-9)

        stop = False
        for epoch in range(start_epoch, cfg.epochs):
            if step >= total or stop:
                break
            state.epoch = epoch
            start = skip if epoch == start_epoch else 0
            # Every shard's part of each global batch: DDP averages shard gradients, so weighting each
            # shard's mean loss by its share of the global batch makes that average the full batch's.
            sizes = data.global_batch_sizes(epoch) if sharded else None  # type: ignore[attr-defined]
            prepared.train()
            t0, hooks_s = time.perf_counter(), 0.0  # hooks_s: callbacks and validation, not training
            running, nb, step_loss = 0.0, 0, 0.0
            with bar(desc=f"{cfg.desc} {epoch + 1}/{cfg.epochs}", total=n_micro, initial=start,
                     unit="batch") as pb:
                for bi, batch in enumerate(data.batches(epoch, start), start=start):
                    last = (bi + 1) % ga == 0 or bi == n_micro - 1
                    if bi % ga == 0 and self.callbacks:
                        h0 = time.perf_counter()
                        state.step = step
                        for cb in self.callbacks:
                            cb.on_step_begin(state)
                        hooks_s += time.perf_counter() - h0
                    batch = send_to_device(batch, acc.device)
                    with acc.no_sync(prepared) if (world > 1 and not last) else nullcontext():
                        with autocast():  # forward + loss only; the backward runs outside autocast
                            loss, n = objective.loss(prepared, batch)
                        share = n * world / sizes[bi] if (sizes is not None and world > 1) else 1.0
                        scaled = loss * share if world > 1 else loss
                        scaled = scaled / ga if ga > 1 else scaled
                        acc.backward(scaler.scale(scaled) if scaler is not None else scaled)
                    if last:
                        if scaler is not None:
                            scaler.unscale_(opt)
                        if cfg.clip_grad_norm is not None:
                            acc.clip_grad_norm_([p for p in module.parameters() if p.requires_grad],
                                                cfg.clip_grad_norm)
                        if scaler is not None:
                            scaler.step(opt)
                            scaler.update()
                        else:
                            opt.step()
                        sched.step()
                        opt.zero_grad()
                    value = float(loss.detach())
                    # this shard's part of the global batch loss (summed over ranks at the epoch's end)
                    running += value * (share / world if world > 1 else 1.0)
                    step_loss += value / ga
                    nb += 1
                    res.examples_seen += sizes[bi] if sizes is not None else n
                    pb.update(1)
                    pb.set_postfix(loss=f"{running * world / nb:.4f}")
                    if not last:
                        continue
                    step += 1
                    window.append(step_loss)
                    step_loss = 0.0
                    if cfg.log_every and (step % cfg.log_every == 0 or step == total):
                        state.step = step
                        record: dict[str, Any] = {"step": step, "loss": round(float(np.mean(window)), 5),
                                                  "lr": sched.get_last_lr()[0]}
                        for cb in self.callbacks:
                            record = cb.on_log(state, record)
                        res.history.append(record)
                        window = []
                    if interval and step - last_eval_step >= interval and bi < n_micro - 1 and step < total:
                        # mid-epoch validation (its time is not training time; the loss is this shard's)
                        h0 = time.perf_counter()
                        stop = validate(epoch, epoch + (bi + 1) / n_micro, running * world / nb,
                                        res.train_seconds + h0 - t0 - hooks_s)
                        prepared.train()
                        hooks_s += time.perf_counter() - h0
                        if stop:
                            break
                    if cfg.save_every and step % cfg.save_every == 0 and step < total:
                        checkpoint(epoch - 1, bi + 1, res.train_seconds + time.perf_counter() - t0 - hooks_s)
                    if step >= total:
                        break
            res.train_seconds += time.perf_counter() - t0 - hooks_s
            if world > 1:  # log the global batch loss, the figure one process would have logged
                running = float(acc.reduce(torch.tensor([running], device=acc.device), reduction="sum")[0])
            if evaluate is not None and not stop:
                stop = validate(epoch, float(epoch + 1), running / max(nb, 1), res.train_seconds)
            if cfg.save_epochs:
                checkpoint(epoch, 0, res.train_seconds)
            if stop:
                res.stopped_early = True
                say(f"early stopping: no improvement in val_{cfg.metric} for {bad_epochs:.3g} epochs")

        res.validation["evaluations"] = len(eval_seconds)
        res.validation["eval_seconds"] = round(float(sum(eval_seconds)), 3)

        acc.wait_for_everyone()
        if best_state is not None and cfg.select_best:
            load_trainable(model, best_state)
        model.eval()
        res.steps = step
        return res


__all__ = ["Callback", "DataSource", "LoopConfig", "LoopResult", "LoopState", "Objective", "TrainLoop",
           "linear_warmup"]
