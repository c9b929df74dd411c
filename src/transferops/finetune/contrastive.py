"""Strategy ``contrastive``: few-shot training in the SetFit manner, on our own loop and artifact.

1. The sentence-embedding body (the checkpoint's bare encoder, mean-pooled as its sentence-transformers
   config says) is fine-tuned with a contrastive objective on pairs of labeled examples: same class →
   target cosine similarity 1, different class → 0.
2. A (class-balanced-if-needed) logistic regression is fitted on the tuned body's embeddings — the
   ``probe`` candidate's head (:func:`transferops.finetune.probe_head.fit_probe_lr`), so the run is saved,
   loaded, served and exported as a kind ``probe`` artifact whose ``model/`` holds the tuned body.

Pairs are formed **inside each batch**: a step draws ``batch_size`` training texts (class-balanced: each
text with probability ∝ 1 / its class count), embeds them in one forward pass and scores every one of its
``B(B-1)/2`` pairs, positives and negatives weighted half and half (what SetFit's oversampling does by
repeating positive pairs). SetFit embeds both texts of every pair (2 forwards per pair); here a step of
32 texts gives 496 pairs for 32 forwards. The pair budget scales with the data: ``pairs_per_example × n``
pairs in all (at least :data:`MIN_STEPS` steps, at most :data:`MAX_STEPS`), see ``docs/contrastive.md``.

Losses: ``cosine_mse`` (SetFit's default ``CosineSimilarityLoss``: MSE between the pair's cosine and its
target) or ``supcon`` (a supervised softmax contrastive loss over the batch, temperature
:data:`SUPCON_TEMPERATURE`, the in-batch relative of multiple-negatives ranking). Training runs in the one
loop (:class:`~transferops.finetune.loop.TrainLoop`: ``--precision auto`` bf16 autocast where native, fused
AdamW, warm-up/decay, progress, checkpoint/resume). There is no per-epoch early stopping: at 8 examples
per class the validation split holds one or two texts per class, too few to stop on.

The manifest records what ran under ``training.contrastive`` (pairs, steps, loss, seconds, head C).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._progress import say
from transferops.errors import ConfigError, NotFittedError
from transferops.finetune.config import TrainConfig
from transferops.finetune.loop import LoopConfig, LoopResult, TrainLoop
from transferops.finetune.strategies import StrategyInfo

LOSSES = ("cosine_mse", "supcon")
DEFAULT_LOSS = "cosine_mse"
#: Pairs seen in training per labeled example (pair budget = this × n). SetFit's default oversampling
#: makes ~2·n²/2·(1 − 1/K) pairs (1,280 at 40 examples, 5 classes); chosen by measurement (docs/contrastive.md).
PAIRS_PER_EXAMPLE = 100
MIN_STEPS = 20
MAX_STEPS = 400
#: Texts per step when the config's batch size is smaller (fewer than 2 per class gives few positive pairs).
#: 32 (was 16; 2026-12-02): headlines 8/class, 3 seeds, 300 test rows: 0.7975 / 0.7746 / 0.7715 macro-F1 vs
#: 0.7908 / 0.7724 / 0.7530 at 16, in 20 steps instead of 34 (docs/contrastive.md)
MIN_BATCH = 32
SUPCON_TEMPERATURE = 0.05
#: The default model search tries ``contrastive`` up to this many training examples per class on average:
#: few labels are where it pays (SetFit's regime) and its pair budget keeps it cheap there.
SEARCH_MAX_PER_CLASS = 64


def check_task(task: str, y: np.ndarray, n_labels: int) -> None:
    """One-line refusals of what the method cannot train."""
    if task == "multilabel":
        raise ConfigError("task: strategy contrastive trains single-label tasks (binary / multiclass) only; for "
                          "multi-label data use --strategy head, freeze or lora")
    present = np.unique(np.asarray(y))
    if len(present) < 2:
        raise ConfigError(f"label: strategy contrastive needs at least 2 classes in the training split, found "
                          f"{len(present)}; add examples of another class (or use another --strategy)")
    counts = np.bincount(np.asarray(y), minlength=n_labels)
    if counts[counts > 0].max() < 2:
        raise ConfigError("label: strategy contrastive needs a class with 2+ training examples (positive pairs); "
                          "add examples")


def st_pooling(path: str | Path) -> str:
    """The pooling the checkpoint's sentence-transformers config names (``mean`` when it has none)."""
    p = Path(path)
    try:
        modules = json.loads((p / "modules.json").read_text())
    except (OSError, ValueError):
        return "mean"
    for m in modules:
        if str(m.get("type", "")).endswith("Pooling"):
            try:
                pc = json.loads((p / m.get("path", "1_Pooling") / "config.json").read_text())
            except (OSError, ValueError):
                return "mean"
            if pc.get("pooling_mode_mean_tokens"):
                return "mean"
            return next((k[len("pooling_mode_"):].replace("_token", "") for k, v in pc.items()
                         if k.startswith("pooling_mode_") and v), "mean")
    return "mean"


def plan_steps(n: int, batch: int, pairs_per_example: int) -> tuple[int, int]:
    """``(steps, pairs)``: the steps that see ``pairs_per_example × n`` in-batch pairs."""
    b = min(batch, n)
    per_step = max(b * (b - 1) // 2, 1)
    steps = int(min(MAX_STEPS, max(MIN_STEPS, math.ceil(pairs_per_example * n / per_step))))
    return steps, steps * per_step


class InBatchPairs:
    """Data source: ``steps`` class-balanced batches of ``batch`` texts (a pure function of the seed, the
    epoch and the position, so a mid-run resume draws the same batches)."""

    def __init__(self, texts: list[str], y: np.ndarray, tokenizer: Any, *, batch: int, steps: int,
                 max_length: int, seed: int) -> None:
        self.texts, self.y = list(texts), np.asarray(y, dtype=np.int64)
        self.tokenizer, self.batch, self.steps = tokenizer, min(batch, len(self.texts)), steps
        self.max_length, self.seed = max_length, seed
        counts = np.bincount(self.y)
        w = 1.0 / counts[self.y]
        self.p = w / w.sum()

    def __len__(self) -> int:
        return self.steps

    def indices(self, epoch: int, position: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch, position])
        return rng.choice(len(self.texts), size=self.batch, replace=False, p=self.p)

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, Any]]:
        from transferops.inference import encode

        for pos in range(start, self.steps):
            idx = self.indices(epoch, pos)
            enc = encode(self.tokenizer, [self.texts[i] for i in idx], self.max_length)
            yield {**dict(enc), "labels": torch.as_tensor(self.y[idx])}


class PairObjective:
    """Every pair of the batch: cosine-MSE to the same-class target, or a supervised softmax contrastive loss."""

    def __init__(self, loss: str = DEFAULT_LOSS, temperature: float = SUPCON_TEMPERATURE) -> None:
        if loss not in LOSSES:
            raise ConfigError(f"contrastive loss: {loss!r} is not one of {', '.join(LOSSES)}")
        self.kind, self.temperature = loss, temperature

    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        from transferops.inference import mean_pool

        batch = dict(batch)
        labels = batch.pop("labels")
        out = module(**batch)
        emb = mean_pool(out.last_hidden_state, batch["attention_mask"]).float()
        z = torch.nn.functional.normalize(emb, dim=-1)
        sim = z @ z.T
        same = labels[:, None] == labels[None, :]
        n = int(labels.shape[0])
        if self.kind == "cosine_mse":
            iu = torch.triu_indices(n, n, 1, device=sim.device)
            s, t = sim[iu[0], iu[1]], same[iu[0], iu[1]].float()
            n_pos, n_neg = t.sum(), (1 - t).sum()
            w = torch.where(t > 0, 0.5 / n_pos.clamp(min=1), 0.5 / n_neg.clamp(min=1))
            if n_pos == 0 or n_neg == 0:
                w = w * 2
            return (w * (s - t) ** 2).sum(), n
        eye = torch.eye(n, dtype=torch.bool, device=sim.device)
        logits = (sim / self.temperature).masked_fill(eye, -1e4)
        logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pos = same & ~eye
        has = pos.any(1)
        per_anchor = -(logp * pos).sum(1) / pos.sum(1).clamp(min=1)
        return per_anchor[has].mean() if bool(has.any()) else (sim * 0).sum(), n


class _Embedder:
    """``embed(texts)`` over the tuned body (the probe's encoder interface)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, batch_size: int) -> None:
        self.model, self.tokenizer, self.max_length, self.batch_size = model, tokenizer, max_length, batch_size

    def embed(self, texts: list[str], desc: str = "embed") -> np.ndarray:
        from transferops.inference import forward

        return forward(self.model, self.tokenizer, list(texts), max_length=self.max_length,
                       batch_size=self.batch_size, output="embedding", desc=desc)[1]


class ContrastiveTuner:
    """Fine-tune the body contrastively, then fit the probe's logistic-regression head on its embeddings.

    Answers what ``train`` and the model search read from a trainer (``fit``, ``predict_logits``,
    ``strategy_info``, ``result_``, ``config``) and writes a kind ``probe`` artifact (``save_artifact``).

    >>> ft = ContrastiveTuner(TrainConfig(strategy="contrastive"))                      # doctest: +SKIP
    >>> ft.fit(texts, y, val_texts, y_val, labels=labels, task="multiclass", checkpoint_path=path)  # doctest: +SKIP
    """

    artifact_kind = "probe"

    def __init__(self, config: TrainConfig, *, strategy: str = "contrastive", strategy_reason: str = "",
                 loss: str = DEFAULT_LOSS, pairs_per_example: int = PAIRS_PER_EXAMPLE,
                 steps: int | None = None, train_word_embeddings: bool = False) -> None:
        if loss not in LOSSES:
            raise ConfigError(f"contrastive loss: {loss!r} is not one of {', '.join(LOSSES)}")
        if not (isinstance(pairs_per_example, int) and pairs_per_example >= 1):
            raise ConfigError(f"pairs_per_example: must be an integer >= 1, got {pairs_per_example!r}")
        self.config = config
        self.strategy = strategy
        self.strategy_reason = strategy_reason or "contrastive body tuning on labeled pairs + a probe head"
        self.loss = loss
        self.pairs_per_example = pairs_per_example
        self.steps = steps
        self.train_word_embeddings = train_word_embeddings

    def fit(self, train_texts: list[str], y_train: np.ndarray, val_texts: list[str], y_val: np.ndarray, *,
            labels: list[str], task: str, checkpoint_path: str | Path, state_dir: str | Path | None = None,
            resume: bool = False) -> ContrastiveTuner:
        from accelerate.utils import set_seed

        from transferops.artifacts.linear import l2_normalise
        from transferops.finetune.probe_head import fit_probe_lr
        from transferops.modeling import load_encoder, load_tokenizer
        from transferops.truncation import set_truncation

        cfg = self.config
        y_train = np.asarray(y_train, dtype=np.int64)
        check_task(task, y_train, len(labels))
        self.labels_, self.task_ = list(labels), task
        self._checkpoint_path = checkpoint_path
        set_seed(cfg.seed)
        t0 = time.perf_counter()
        self.tokenizer_ = load_tokenizer(checkpoint_path)
        set_truncation(self.tokenizer_, cfg.truncation)
        model = load_encoder(checkpoint_path)
        for p in model.parameters():
            p.requires_grad_(True)
        words = getattr(getattr(model, "embeddings", None), "word_embeddings", None)
        if words is not None and not self.train_word_embeddings:
            # the vocabulary matrix (half of MiniLM's weights) stays as pretrained: a few dozen texts touch a
            # few hundred of its rows, and its dense gradient + AdamW update cost as much as the rest of a step
            words.weight.requires_grad_(False)
        pooling = st_pooling(checkpoint_path)
        if pooling != "mean":
            say(f"strategy contrastive: the checkpoint's sentence-transformers pooling is '{pooling}'; the probe "
                "artifact mean-pools (its served embedding), so training mean-pools too")
        batch = max(cfg.batch_size, MIN_BATCH)
        steps, pairs = plan_steps(len(train_texts), batch, self.pairs_per_example)
        if self.steps is not None:
            steps = self.steps
            b = min(batch, len(train_texts))
            pairs = steps * b * (b - 1) // 2
        if cfg.max_steps:
            steps = min(steps, cfg.max_steps)
        n_params = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.strategy_info_ = StrategyInfo(self.strategy, self.strategy_reason, n_train, n_params, 0)
        say(f"strategy contrastive: {steps} steps of {min(batch, len(train_texts))} texts ({pairs:,} in-batch "
            f"pairs, loss {self.loss}); {n_train:,} of the body's {n_params:,} parameters train, then a "
            "logistic-regression head on its embeddings")
        loop = TrainLoop(LoopConfig(
            lr=cfg.resolved_lr(self.strategy), epochs=1, max_steps=steps, grad_accum=1,
            warmup_ratio=max(cfg.warmup_ratio, 0.1), weight_decay=cfg.weight_decay, precision=cfg.precision,
            log_every=max(steps // 10, 1), desc="contrastive"))
        source = InBatchPairs(train_texts, y_train, self.tokenizer_, batch=batch, steps=steps,
                              max_length=cfg.max_length, seed=cfg.seed)
        self.result_: LoopResult = loop.run(model, PairObjective(self.loss), source, state_dir=state_dir,
                                            resume=resume)
        train_s = time.perf_counter() - t0
        self.model_ = model.eval()
        self.encoder = _Embedder(self.model_, self.tokenizer_, cfg.max_length, cfg.eval_batch_size)
        th = time.perf_counter()
        emb = self.encoder.embed(train_texts, desc="contrastive: head")
        cw = cfg.class_weight
        if cw is None:
            counts = np.bincount(y_train)
            cw = "balanced" if counts.max() / max(counts[counts > 0].min(), 1) > 1.5 else None
        # the head reads the L2-normalised embedding, the geometry the cosine loss shaped (SetFit's default head
        # too): +0.5 pt macro-F1 over the raw pool on development seeds (docs/contrastive.md)
        self.clf_ = fit_probe_lr(l2_normalise(emb), y_train, multilabel=False, class_weight=cw, seed=cfg.seed)
        self.clf = self.clf_
        losses = [r["loss"] for r in self.result_.history if "loss" in r]
        self.contrastive_: dict[str, Any] = {
            "loss": self.loss, "pairs": int(pairs), "pairs_per_example": self.pairs_per_example,
            "steps": int(self.result_.steps), "batch_texts": min(batch, len(train_texts)),
            "lr": cfg.resolved_lr(self.strategy), "pooling": "mean", "checkpoint_pooling": pooling,
            "max_length": cfg.max_length, "trainable_params": n_train, "precision": self.result_.precision.get("used"),
            "final_train_loss": round(float(losses[-1]), 5) if losses else None,
            "body_seconds": round(train_s, 2), "head_seconds": round(time.perf_counter() - th, 2),
            "head": {"C": float(self.clf_.C), "class_weight": cw, "input": "l2_normalised"}}
        return self

    # ---- what train / the search read ------------------------------------------------------------

    @property
    def strategy_info(self) -> StrategyInfo:
        return self.strategy_info_

    def logits_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        from transferops.artifacts.linear import l2_normalise, lr_logits

        return lr_logits([self.clf_], l2_normalise(emb), len(self.labels_), False)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        if not hasattr(self, "clf_"):
            raise NotFittedError("ContrastiveTuner is not fitted; call fit() first")
        return self.logits_from_embeddings(self.encoder.embed(list(texts), desc="contrastive"))

    logits = predict_logits

    def save_artifact(self, out: str | Path) -> None:
        """The kind ``probe`` files: the tuned body + tokenizer under ``model/``, the LR under ``probe/``."""
        from transferops.artifacts.linear import save_probe

        save_probe(out, self.clf_, encoder_from=self.model_, tokenizer=self.tokenizer_, multilabel=False, l2_input=True)

    def refit(self, texts: list[str], y: np.ndarray, val_texts: list[str], y_val: np.ndarray) -> ContrastiveTuner:
        """The same recipe (loss, pair budget) on ``texts`` (train + validation), from the checkpoint."""
        new = ContrastiveTuner(self.config, strategy=self.strategy, strategy_reason=self.strategy_reason + " (refit)",
                               loss=self.loss, pairs_per_example=self.pairs_per_example, steps=self.steps)
        return new.fit(texts, y, val_texts, y_val, labels=self.labels_, task=self.task_,
                       checkpoint_path=self._checkpoint_path)


__all__ = ["DEFAULT_LOSS", "LOSSES", "PAIRS_PER_EXAMPLE", "SEARCH_MAX_PER_CLASS", "ContrastiveTuner", "InBatchPairs",
           "PairObjective", "check_task", "plan_steps", "st_pooling"]
