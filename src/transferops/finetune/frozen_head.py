"""Strategy ``head`` over a frozen-encoder checkpoint (``use-multilingual``, ``multilingual-e5-small``):
the encoder embeds the training and validation texts once (cached features, as ``head`` does for a Hugging
Face model), and a linear head trains on them in the shared loop (:class:`~transferops.finetune.loop.TrainLoop`:
the same loss, class weights, oversampling, early stopping, best-state and checkpoint/resume as any run).

The head standardises each embedding dimension with the training split's mean and standard deviation
before a linear layer (the scaler + logistic-regression habit): the encoders give unit-length vectors whose
coordinates are tiny, which a linear layer with the ``head`` learning rate fits slowly otherwise.

:class:`FrozenHeadTuner` answers what ``train`` reads from a :class:`~transferops.finetune.trainer.FineTuner`
(``fit``, ``predict_logits``, ``model_.save_pretrained``, ``tokenizer_``, ``strategy_info``, ``result_``)
and names its artifact kind (``frozen``, :mod:`transferops.artifacts.frozen`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferops._progress import say
from transferops.checkpoints.frozen import FrozenSpec, require_head
from transferops.errors import ConfigError, NotFittedError
from transferops.finetune.batching import BucketBatchSampler
from transferops.finetune.config import TrainConfig
from transferops.finetune.loop import LoopConfig, TrainLoop
from transferops.finetune.losses import balanced_weights, build_loss
from transferops.finetune.strategies import StrategyInfo
from transferops.finetune.trainer import ClassificationLoss, SamplerSource
from transferops.metrics import classification_metrics
from transferops.modeling import sigmoid, softmax

#: Dropout on the standardised embedding while the head trains.
HEAD_DROPOUT = 0.1


class FrozenHead(torch.nn.Module):
    """``Linear(dropout((x - mean) / scale))``; ``save_pretrained`` writes the ``frozen`` artifact files."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, mean: np.ndarray, scale: np.ndarray, n_labels: int, *, encoder: str,
                 dropout: float = HEAD_DROPOUT) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout_p = dropout
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(int(mean.shape[-1]), n_labels)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.dropout((feats - self.mean) / self.scale))
        return out

    def save_pretrained(self, path: str | Path, safe_serialization: bool = True) -> None:
        from transferops.artifacts.frozen import save_frozen_head

        if not safe_serialization:
            raise ConfigError("safe_serialization: a frozen head is written as safetensors only")
        t = {"mean": self.mean, "scale": self.scale, "weight": self.classifier.weight, "bias": self.classifier.bias}
        save_frozen_head(path, encoder=self.encoder, dropout=self.dropout_p,
                         tensors={k: v.detach().cpu().numpy() for k, v in t.items()})


def frozen_run_config(name: str, cfg: TrainConfig, explicit: set[str], *, search: bool | None, refit: bool,
                      init_from: Any) -> tuple[TrainConfig, bool]:
    """Check a ``train`` call on frozen encoder ``name``: strategy ``head`` (``auto`` becomes it), no model
    search, refit or ``--init-from``. Returns the config and ``search=False``."""
    require_head(name, cfg.strategy)
    if search:
        raise ConfigError(f"search: checkpoint '{name}' is a frozen encoder and trains one head; drop --search "
                          "(or search over a Hugging Face checkpoint)")
    if refit:
        raise ConfigError(f"refit: not supported for the frozen encoder '{name}'; drop --refit")
    if init_from is not None:
        raise ConfigError(f"init_from: --init-from continues a fine-tuned Hugging Face model, not a head over the "
                          f"frozen encoder '{name}'; train a new head on old + new data (seconds) instead")
    if cfg.strategy == "auto":
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "strategy": "head"})
        say(f"strategy head: '{name}' is a frozen encoder (only its embeddings are used)")
    explicit.add("strategy")
    return cfg, False


class FrozenHeadTuner:
    """Train a linear head on a frozen encoder's embeddings.

    >>> from transferops.checkpoints.frozen import FROZEN
    >>> ft = FrozenHeadTuner(TrainConfig(strategy="head"), spec=FROZEN["use-multilingual"])  # doctest: +SKIP
    >>> ft.fit(texts, y, val_texts, y_val, labels=["neg", "pos"], task="binary")              # doctest: +SKIP
    """

    artifact_kind = "frozen"

    def __init__(self, config: TrainConfig, *, spec: FrozenSpec, strategy: str = "head",
                 strategy_reason: str = "") -> None:
        self.config = config
        self.spec = spec
        self.strategy = strategy
        self.strategy_reason = strategy_reason or f"'{spec.name}' is a frozen encoder: a head on its embeddings"

    def fit(self, train_texts: list[str], y_train: np.ndarray, val_texts: list[str], y_val: np.ndarray, *,
            labels: list[str], task: str, checkpoint_path: str | Path | None = None,
            state_dir: str | Path | None = None, resume: bool = False) -> FrozenHeadTuner:
        from accelerate.utils import set_seed

        require_head(self.spec.name, self.strategy)
        cfg = self.config
        multilabel = task == "multilabel"
        self.labels_, self.task_ = list(labels), task
        set_seed(cfg.seed)
        self.embedder_ = self.spec.load()
        self.tokenizer_ = self.embedder_.tokenizer
        say(f"embedding {len(train_texts)} + {len(val_texts)} texts with the frozen encoder {self.spec.name} ...")
        feats_tr = torch.from_numpy(np.asarray(self.embedder_.embed(train_texts), dtype=np.float32))
        feats_va = torch.from_numpy(np.asarray(self.embedder_.embed(val_texts), dtype=np.float32))
        mean = feats_tr.mean(0).numpy()
        scale = np.maximum(feats_tr.std(0).numpy() if len(feats_tr) > 1 else np.ones_like(mean), 1e-6)
        model = FrozenHead(mean, scale, len(labels), encoder=self.spec.name)
        trainable = sum(p.numel() for p in model.parameters())
        self.strategy_info_ = StrategyInfo("head", self.strategy_reason, trainable, trainable + self.spec.params, 0)
        say(f"strategy head: {trainable:,} parameters train over the frozen {self.spec.name} "
            f"({self.spec.params:,} parameters, not trained)")

        patience = cfg.early_stopping_patience
        loop = TrainLoop(LoopConfig(
            lr=cfg.resolved_lr("head"), epochs=cfg.resolved_epochs("head"), max_steps=cfg.max_steps,
            grad_accum=cfg.grad_accum, warmup_ratio=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
            metric=cfg.metric, higher_is_better=cfg.metric != "loss", patience=patience * 4 if patience else patience,
            select_best=cfg.select_best))
        weight = balanced_weights(torch.as_tensor(y_train), len(labels), multilabel) \
            if cfg.class_weight == "balanced" else None
        loss_fn = build_loss(cfg.loss, multilabel=multilabel, gamma=cfg.focal_gamma, weight=weight).to(loop.device)
        ytype = torch.float32 if multilabel else torch.long
        dataset = torch.utils.data.TensorDataset(feats_tr, torch.as_tensor(y_train, dtype=ytype))
        weights = None
        if cfg.oversample and not multilabel:
            w = 1.0 / np.bincount(y_train)[y_train]
            weights = w / w.sum()
        sampler = BucketBatchSampler(np.ones(len(y_train), dtype=int), cfg.batch_size, seed=cfg.seed, bucket=False,
                                     weights=weights, num_shards=loop.world_size, shard=loop.rank)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
        y_val_t = torch.as_tensor(y_val, dtype=ytype).to(loop.device)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            z = _logits(m, feats_va)
            proba = sigmoid(z) if multilabel else softmax(z)
            metrics = classification_metrics(y_val, proba, multilabel=multilabel)
            metrics["loss"] = float(loss_fn(torch.as_tensor(z).to(loop.device), y_val_t))
            return metrics

        self.result_ = loop.run(model, ClassificationLoss(loss_fn, cached=True), SamplerSource(loader, sampler),
                                evaluate=evaluate, state_dir=state_dir, resume=resume)
        self.model_ = model.eval()
        return self

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError("FrozenHeadTuner is not fitted; call fit() first")
        feats = torch.from_numpy(np.asarray(self.embedder_.embed(list(texts)), dtype=np.float32))
        return _logits(self.model_, feats)

    @property
    def strategy_info(self) -> StrategyInfo:
        return self.strategy_info_


def _logits(model: torch.nn.Module, feats: torch.Tensor) -> np.ndarray:
    was = model.training
    model.eval()
    with torch.inference_mode():
        out = model(feats.to(next(model.parameters()).device)).float().cpu().numpy()
    model.train(was)
    return np.asarray(out, dtype=np.float64)


__all__ = ["FrozenHead", "FrozenHeadTuner", "frozen_run_config"]
