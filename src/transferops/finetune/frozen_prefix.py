"""Strategy ``freeze`` without work on the frozen part: the frozen prefix (embeddings + the first k encoder
layers) runs in eval mode, never backpropagates, and — when it pays — runs **once**.

* **Eval-mode prefix** (``frozen_dropout=False``, opt-in): the frozen layers keep no dropout during
  training. Their weights never change, so with dropout off their output for a text is a constant, which is
  what makes it cacheable; the unfrozen layers and the head keep their dropout. It is not the default: on the
  demo's BBC recipe (4 of 6 layers frozen, 2 epochs) it scored 0.9639 test macro-F1 against 0.9753 with the
  frozen layers' dropout, below the tuned TF-IDF baseline (0.9674) instead of above it (one run each, the same
  seed and data; validation 0.9648 vs 0.9775). The dropout inside the frozen layers regularises the layers
  above them; ``benchmarks/frozen_cache_bench.py`` measures both.
* **No backward into the prefix**: its parameters have ``requires_grad`` false and its output (the input of
  the first trainable layer) requires no grad, so autograd stops there by itself
  (``tests/finetune/test_frozen_prefix.py`` checks both).
* **The cache** (``cache_frozen``: ``auto`` | ``on`` | ``off``): the hidden states after layer k are computed
  once for every training and validation text (length-sorted batches, unpadded per text, fp32) and layers
  k..n + the head train on them through the shared loop (:class:`CachedSuffix` is the loop's
  ``train_module``, :class:`PrefixCacheLoss` its objective). Size: Σ tokens × hidden × 4 bytes; ``auto``
  uses it when that fits ``cache_frozen_max_mb`` and there are ≥ 2 epochs (with one epoch the encode pass
  costs what the cache saves). Skipped, with the reason recorded, for an architecture whose layers it does
  not know how to run (BERT, RoBERTa, XLM-R are known) or a non-deterministic prefix. Augmentation
  (``finetune/augment.py``) makes its copies once, before training, so the texts are fixed and the cache
  covers the copies too; a per-epoch augmentation would have to set ``deterministic=False`` in
  :func:`plan_cache`.

The model trained is the full model (the suffix shares its modules), so the saved artifact, serving and
export are unchanged. ``manifest["training"]["frozen_cache"]`` records the plan (:meth:`CachePlan.to_dict`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Model types whose ``base_model`` is embeddings → ``encoder.layer`` → pooler, run by the model's own forward.
SUPPORTED_MODEL_TYPES = frozenset({"bert", "roberta", "xlm-roberta"})
#: Bytes per cached value (fp32 storage: the trainable layers see exactly what the prefix computed).
BYTES_PER_VALUE = 4


@dataclass
class CachePlan:
    """Whether the frozen prefix is cached, and why (``manifest["training"]["frozen_cache"]``)."""

    mode: str
    used: bool
    reason: str
    frozen_layers: int
    cache_bytes: int = 0
    budget_mb: int = 0
    prefix_eval: bool = True
    encode_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["cache_mb"] = round(self.cache_bytes / 2**20, 1)
        d["encode_seconds"] = round(self.encode_seconds, 2)
        return d


def layers_of(model: torch.nn.Module) -> torch.nn.ModuleList | None:
    encoder = getattr(getattr(model, "base_model", None), "encoder", None)
    layers = getattr(encoder, "layer", None)
    return layers if isinstance(layers, torch.nn.ModuleList) else None


def plan_cache(model: torch.nn.Module, *, mode: str, frozen_layers: int, n_tokens: int, epochs: int,
               budget_mb: int, deterministic: bool = True, prefix_eval: bool = True) -> CachePlan:
    """Decide ``cache_frozen`` for one run: ``n_tokens`` is Σ tokens over the training + validation texts."""
    hidden = int(getattr(model.config, "hidden_size", 0) or 0)
    size = n_tokens * hidden * BYTES_PER_VALUE
    plan = CachePlan(mode=mode, used=False, reason="", frozen_layers=frozen_layers, cache_bytes=size,
                     budget_mb=budget_mb, prefix_eval=prefix_eval)
    mt = getattr(model.config, "model_type", "")
    if mode == "off":
        plan.reason = "cache_frozen=off"
    elif not prefix_eval:
        plan.reason = ("the frozen layers keep their dropout (frozen_dropout): their output is not deterministic; "
                       "--no-frozen-dropout lets the cache run")
    elif not deterministic:
        plan.reason = "the training texts change between epochs: the frozen output is not fixed"
    elif mt not in SUPPORTED_MODEL_TYPES or layers_of(model) is None or not hidden:
        plan.reason = (f"model type {mt!r}: the cache knows how to run the layers of "
                       f"{', '.join(sorted(SUPPORTED_MODEL_TYPES))} only")
    elif mode == "on":
        plan.used, plan.reason = True, "cache_frozen=on"
    elif epochs < 2:
        plan.reason = "one epoch: computing the cache would cost what it saves"
    elif size > budget_mb * 2**20:
        plan.reason = (f"the cache would take {size / 2**20:.0f} MB > cache_frozen_max_mb={budget_mb}; raise it "
                       "or pass --cache-frozen on")
    else:
        plan.used = True
        plan.reason = f"auto: {size / 2**20:.0f} MB <= {budget_mb} MB and {epochs} epochs"
    return plan


def _share(module: torch.nn.Module) -> Any:
    """A shallow copy of ``module`` whose child table can be edited without touching the original."""
    c = copy.copy(module)
    c._modules = dict(module._modules)  # type: ignore[assignment]
    return c


def _with_base(model: torch.nn.Module, *, layers: Sequence[torch.nn.Module], embeddings: Any = None,
               pooler: bool = True, base_only: bool = False) -> Any:
    """``model`` with its encoder's layers replaced by ``layers`` (and optionally its embeddings / pooler),
    sharing every module: the parameters are the model's own."""
    base: Any = model.base_model
    sb = _share(base)
    enc = _share(base.encoder)
    enc._modules["layer"] = torch.nn.ModuleList(list(layers))
    sb._modules["encoder"] = enc
    if embeddings is not None:
        sb._modules["embeddings"] = embeddings
    if not pooler and "pooler" in sb._modules:
        sb._modules["pooler"] = None
    if base is model or base_only:
        return sb
    sm = _share(model)
    sm._modules[model.base_model_prefix] = sb
    return sm


class _PassEmbeddings(torch.nn.Module):
    """Stands in for the embeddings: the cached hidden states arrive as ``inputs_embeds``."""

    def forward(self, input_ids: Any = None, position_ids: Any = None, token_type_ids: Any = None,
                inputs_embeds: Any = None, **kwargs: Any) -> Any:
        return inputs_embeds


def prefix_modules(model: torch.nn.Module, k: int) -> list[torch.nn.Module]:
    base: Any = model.base_model
    layers = layers_of(model)
    return [base.embeddings, *(list(layers)[:k] if layers is not None else [])]


class FrozenPrefixEval(torch.nn.Module):
    """The full model as the loop's ``train_module`` (no cache): ``train()`` leaves the frozen prefix in
    eval mode when ``prefix_eval`` (``frozen_dropout=False``)."""

    def __init__(self, model: torch.nn.Module, k: int, *, prefix_eval: bool = True) -> None:
        super().__init__()
        self.model = model
        self.k = k
        self.prefix_eval = prefix_eval

    def train(self, mode: bool = True) -> FrozenPrefixEval:
        super().train(mode)
        if mode and self.prefix_eval:
            for m in prefix_modules(self.model, self.k):
                m.eval()
        return self

    def forward(self, **batch: Any) -> Any:
        return self.model(**batch)


class CachedSuffix(torch.nn.Module):
    """Layers k..n + pooler + classifier over cached hidden states: the model's own forward, with the
    embeddings replaced by a pass-through and the encoder holding its last layers (modules shared)."""

    def __init__(self, model: torch.nn.Module, k: int) -> None:
        super().__init__()
        layers = layers_of(model)
        assert layers is not None
        self.suffix = _with_base(model, layers=list(layers)[k:], embeddings=_PassEmbeddings())

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.suffix(inputs_embeds=hidden, attention_mask=attention_mask).logits  # type: ignore[no-any-return]


class PrefixCacheLoss:
    """The classification objective over cached states: ``batch = (hidden, mask, target)``."""

    def __init__(self, loss_fn: torch.nn.Module) -> None:
        self.loss_fn = loss_fn

    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        hidden, mask, target = batch
        return self.loss_fn(module(hidden, mask), target), int(target.shape[0])


def encode_prefix(model: torch.nn.Module, enc: dict[str, list[list[int]]], k: int, *, batch_size: int,
                  pad_id: int) -> list[torch.Tensor]:
    """Hidden states after layer ``k`` (embeddings' output for k = 0) per text, unpadded, fp32, on the CPU;
    length-sorted batches, prefix in eval mode, no autograd."""
    layers = layers_of(model)
    assert layers is not None
    prefix = _with_base(model, layers=list(layers)[:k], pooler=False, base_only=True)
    device = next(model.parameters()).device
    ids = enc["input_ids"]
    lengths = np.asarray([len(x) for x in ids])
    order = np.argsort(-lengths, kind="stable")
    out: list[torch.Tensor | None] = [None] * len(ids)
    was = [m.training for m in prefix_modules(model, k)]
    for m in prefix_modules(model, k):
        m.eval()
    try:
        with torch.no_grad():  # not inference_mode: the states feed autograd-tracked layers later
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                batch = pad_batch([{key: enc[key][i] for key in enc} for i in idx], pad_id)
                hidden = prefix(**{key: v.to(device) for key, v in batch.items()}).last_hidden_state
                for j, i in enumerate(idx):
                    out[i] = hidden[j, :lengths[i]].float().cpu().clone()
    finally:
        for m, w in zip(prefix_modules(model, k), was, strict=True):
            m.train(w)
    return out  # type: ignore[return-value]


def pad_batch(items: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(it["input_ids"]) for it in items)
    res: dict[str, torch.Tensor] = {}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        if key in items[0]:
            fill = pad_id if key == "input_ids" else 0
            res[key] = torch.tensor([it[key] + [fill] * (width - len(it[key])) for it in items])
    return res


class CachedStates(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Cached per-text states + labels; the collate pads a batch to its longest text (as the tokenised path
    does), so a batch's shapes equal the uncached run's."""

    def __init__(self, states: list[torch.Tensor], labels: np.ndarray, *, multilabel: bool) -> None:
        self.states = states
        self.labels = torch.as_tensor(labels, dtype=torch.float32 if multilabel else torch.long)

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.states[i], self.labels[i]

    @staticmethod
    def collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(s.shape[0] for s, _ in items)
        hidden = torch.zeros(len(items), width, items[0][0].shape[1])
        mask = torch.zeros(len(items), width, dtype=torch.long)
        for j, (s, _) in enumerate(items):
            hidden[j, :s.shape[0]] = s
            mask[j, :s.shape[0]] = 1
        return hidden, mask, torch.stack([y for _, y in items])


def suffix_logits(module: CachedSuffix, states: list[torch.Tensor], batch_size: int) -> np.ndarray:
    """Logits of the trainable part over cached states (eval mode, length-sorted batches, caller's order)."""
    if not states:
        return np.zeros((0, 0), np.float32)
    device = next(module.parameters()).device
    was = module.training
    module.eval()
    lengths = np.asarray([s.shape[0] for s in states])
    order = np.argsort(-lengths, kind="stable")
    parts: list[np.ndarray] = []
    dummy = torch.zeros(())
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            h, m, _ = CachedStates.collate([(states[i], dummy) for i in order[s:s + batch_size]])
            parts.append(module(h.to(device), m.to(device)).float().cpu().numpy())
    module.train(was)
    cat = np.concatenate(parts)
    res = np.empty_like(cat)
    res[order] = cat
    return res


def timed_encode(model: torch.nn.Module, encs: Sequence[dict[str, list[list[int]]]], k: int, *, batch_size: int,
                 pad_id: int) -> tuple[list[list[torch.Tensor]], float]:
    t0 = time.perf_counter()
    states = [encode_prefix(model, e, k, batch_size=batch_size, pad_id=pad_id) for e in encs]
    return states, time.perf_counter() - t0


__all__ = ["CachePlan", "CachedStates", "CachedSuffix", "FrozenPrefixEval", "PrefixCacheLoss",
           "encode_prefix", "plan_cache", "prefix_modules", "suffix_logits"]
