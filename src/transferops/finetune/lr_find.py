"""Learning-rate range test (Smith 2017): exponentially increasing LR, loss recorded per step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._progress import bar
from transferops.checkpoints import resolve_checkpoint
from transferops.data import ColumnMap, load_labeled
from transferops.errors import ConfigError
from transferops.finetune.batching import BucketBatchSampler, TokenizedDataset, make_collate, tokenize
from transferops.finetune.config import TrainConfig
from transferops.finetune.losses import build_loss
from transferops.finetune.strategies import apply_strategy, choose_auto
from transferops.metrics import encode_labels
from transferops.modeling import build_classifier, load_tokenizer


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float = float("nan")
    min_loss_lr: float = float("nan")
    strategy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def plot(self, path: str | Path) -> Path:
        from transferops._extras import require

        require("matplotlib", "plot")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        ax.plot(self.lrs, self.losses, color="#c7d2fe", lw=1, label="loss")
        ax.plot(self.lrs, self.smoothed, color="#4338ca", lw=2, label="smoothed")
        ax.axvline(self.suggested_lr, color="#dc2626", ls="--", label=f"suggested {self.suggested_lr:.1e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title(f"LR finder ({self.strategy})")
        ax.legend()
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out)
        plt.close(fig)
        return out


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """Steepest descent of the smoothed loss (before its minimum), and the minimum-loss LR."""
    i_min = int(np.argmin(smoothed))
    if i_min < 2:
        return float(lrs[i_min] / 10), float(lrs[i_min])
    grads = np.gradient(smoothed[: i_min + 1], np.log(lrs[: i_min + 1]))
    return float(lrs[int(np.argmin(grads))]), float(lrs[i_min])


def lr_find(data: Any, *, config: TrainConfig | None = None, steps: int = 100, min_lr: float = 1e-7,
            max_lr: float = 1e-1, text_column: str = "text", label_column: str | None = "label",
            label_columns: list[str] | None = None, label_sep: str | None = None, encoding: str = "utf-8",
            **_: Any) -> LRFindResult:
    """Sweep the LR from ``min_lr`` to ``max_lr`` over ``steps`` batches; stop early when the loss explodes.

    >>> res = lr_find("news.csv", config=TrainConfig(strategy="lora"), steps=100)   # doctest: +SKIP
    >>> res.suggested_lr                                                            # doctest: +SKIP
    """
    cfg = config or TrainConfig()
    if not (0 < min_lr < max_lr):
        raise ConfigError(f"min_lr/max_lr: need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    if steps < 10:
        raise ConfigError(f"steps: at least 10 steps are needed, got {steps}")
    torch.manual_seed(cfg.seed)
    cols = ColumnMap(text=text_column, label=label_column, label_columns=label_columns, label_sep=label_sep)
    ld = load_labeled(data, cols, task=cfg.task, encoding=encoding)
    multilabel = ld.task == "multilabel"
    ck = resolve_checkpoint(cfg.checkpoint)
    if ck.frozen is not None:
        raise ConfigError(f"checkpoint: '{ck.name}' is a frozen encoder; lr-find sweeps a PyTorch model's learning "
                          "rate — train its head with --strategy head (default lr 2e-3), or pass --lr")
    strategy: str = cfg.strategy
    reason = "user"
    if strategy == "auto":
        strategy, extra, reason = choose_auto(len(ld), int(ck.config().get("num_hidden_layers", 6)))
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **extra})
    tok = load_tokenizer(ck.path)
    model = build_classifier(ck.path, ld.labels, ld.task)
    model, _info = apply_strategy(model, cfg, strategy, reason)
    y = encode_labels(ld.y, ld.labels, multilabel)
    ds = TokenizedDataset(tokenize(tok, ld.texts, cfg.max_length), y)
    sampler = BucketBatchSampler(ds.lengths, cfg.batch_size, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=make_collate(tok, multilabel))
    loss_fn = build_loss(cfg.loss, multilabel=multilabel, gamma=cfg.focal_gamma, weight=None)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=min_lr)
    gamma = (max_lr / min_lr) ** (1.0 / (steps - 1))
    res = LRFindResult(strategy=strategy)
    avg, best = 0.0, math.inf
    model.train()
    step, epoch = 0, 0
    with bar(desc="lr-find", total=steps, unit="step") as pb:
        while step < steps:
            sampler.set_epoch(epoch)
            epoch += 1
            for batch in loader:
                lr = min_lr * gamma**step
                for g in opt.param_groups:
                    g["lr"] = lr
                target = batch.pop("labels")
                loss = loss_fn(model(**batch).logits, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                v = float(loss.detach())
                avg = 0.9 * avg + 0.1 * v
                sm = avg / (1 - 0.9 ** (step + 1))
                res.lrs.append(lr)
                res.losses.append(v)
                res.smoothed.append(sm)
                best = min(best, sm)
                step += 1
                pb.update(1)
                if step >= steps or (step > 10 and sm > 4 * best) or not math.isfinite(v):
                    step = steps if (sm > 4 * best or not math.isfinite(v)) else step
                    break
    res.suggested_lr, res.min_loss_lr = suggest(np.asarray(res.lrs), np.asarray(res.smoothed))
    return res
