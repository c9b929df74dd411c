"""Tokenise once, then length-bucketed batches with dynamic padding.

Sorting texts of similar length into the same batch means little padding: on news articles
truncated at 128 tokens it matters less than on short texts, but it is never slower.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch


class TokenizedDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, encodings: dict[str, list[list[int]]], labels: np.ndarray | None = None) -> None:
        self.enc = encodings
        self.labels = labels
        self.lengths = np.asarray([len(x) for x in encodings["input_ids"]])

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {k: v[i] for k, v in self.enc.items()}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, list[list[int]]]:
    from transferops.truncation import encode_texts  # the same cut as inference (head or head+tail)

    enc = encode_texts(tokenizer, texts, max_length, padding=False)
    return {k: list(v) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffled batches of similar-length examples; deterministic per (seed, epoch).

    ``batch_size`` is the *global* batch. Data-parallel training gives each of ``num_shards`` processes
    one contiguous part of every global batch (``shard`` is this process's rank), so 1 or N processes
    take the same optimiser steps over the same examples. A batch too short to give every shard a row
    is merged into the one before it (only when ``num_shards > 1``).
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 bucket: bool = True, pool_factor: int = 50, weights: np.ndarray | None = None,
                 num_shards: int = 1, shard: int = 0) -> None:
        self.num_shards = num_shards
        self.shard = shard
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.bucket = bucket
        self.pool = batch_size * pool_factor
        self.weights = weights  # oversampling probabilities (sum to 1) or None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        n = len(self.lengths)
        if not self.shuffle:
            return np.argsort(-self.lengths, kind="stable") if self.bucket else np.arange(n)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is not None:
            return rng.choice(n, size=n, replace=True, p=self.weights)
        return rng.permutation(n)

    def global_batches(self) -> list[list[int]]:
        """This epoch's global batches (every shard computes the same list)."""
        order = self._order()
        batches: list[list[int]] = []
        if self.bucket:
            for s in range(0, len(order), self.pool):
                chunk = order[s:s + self.pool]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        else:
            batches = [order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, 1])
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        if self.num_shards > 1:
            merged: list[list[int]] = []
            for b in batches:
                if len(b) < self.num_shards and merged:
                    merged[-1] = merged[-1] + b
                else:
                    merged.append(b)
            batches = merged
        return batches

    def shard_of(self, batch: list[int]) -> list[int]:
        """This process's contiguous part of a global batch."""
        if self.num_shards == 1:
            return batch
        bounds = np.linspace(0, len(batch), self.num_shards + 1).round().astype(int)
        return batch[bounds[self.shard]:bounds[self.shard + 1]]

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.global_batches():
            yield self.shard_of(b)

    def __len__(self) -> int:
        if self.num_shards > 1:  # merging may drop a batch: count them exactly
            return len(self.global_batches())
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def make_collate(tokenizer: Any, multilabel: bool) -> Any:
    pad_id = tokenizer.pad_token_id or 0

    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        out: dict[str, torch.Tensor] = {}
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            if key not in items[0]:
                continue
            fill = pad_id if key == "input_ids" else 0
            out[key] = torch.tensor([it[key] + [fill] * (width - len(it[key])) for it in items])
        if "labels" in items[0]:
            lab = np.stack([np.asarray(it["labels"]) for it in items])
            out["labels"] = torch.tensor(lab, dtype=torch.float32 if multilabel else torch.long)
        return out

    return collate
