"""Train↔test leakage: exact duplicates (the modality's leakage key: for text, the normalised text
hash) and near-duplicates (cosine of embeddings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferops.modality.base import Modality, get_modality
from transferops.modality.text import normalise_text, text_hash

__all__ = ["LeakageReport", "find_leakage", "normalise_text", "text_hash"]


@dataclass
class LeakageReport:
    exact_pairs: list[tuple[int, int]] = field(default_factory=list)
    near_pairs: list[tuple[int, int, float]] = field(default_factory=list)
    threshold: float = 0.95
    n_train: int = 0
    n_test: int = 0
    near_checked: bool = False

    @property
    def train_indices_to_drop(self) -> list[int]:
        return sorted({i for i, _ in self.exact_pairs} | {i for i, _, _ in self.near_pairs})

    def to_dict(self) -> dict[str, Any]:
        return {
            "exact_duplicates": len(self.exact_pairs),
            "near_duplicates": len(self.near_pairs),
            "near_duplicate_threshold": self.threshold,
            "near_checked": self.near_checked,
            "test_rows_affected": len({j for _, j in self.exact_pairs} | {j for _, j, _ in self.near_pairs}),
            "examples": [{"train_row": i, "test_row": j} for i, j in self.exact_pairs[:5]]
            + [{"train_row": i, "test_row": j, "cosine": round(s, 4)} for i, j, s in self.near_pairs[:5]],
        }

    def summary(self) -> str:
        s = f"leakage: {len(self.exact_pairs)} exact and "
        s += (f"{len(self.near_pairs)} near-duplicate (cosine >= {self.threshold}) train/test pairs"
              if self.near_checked else "near-duplicates not checked")
        return s


def find_leakage(
    train_texts: Sequence[Any],
    test_texts: Sequence[Any],
    *,
    train_emb: np.ndarray | None = None,
    test_emb: np.ndarray | None = None,
    threshold: float = 0.95,
    chunk: int = 1024,
    modality: str | Modality = "text",
) -> LeakageReport:
    """Find train/test pairs with the same leakage key (text: the same text after normalisation), or
    (with embeddings) whose cosine similarity is ``>= threshold``. Exact pairs are not repeated as
    near pairs."""
    key = get_modality(modality).leakage_key
    rep = LeakageReport(threshold=threshold, n_train=len(train_texts), n_test=len(test_texts))
    test_by_hash: dict[str, list[int]] = {}
    for j, t in enumerate(test_texts):
        test_by_hash.setdefault(key(t), []).append(j)
    exact = set()
    for i, t in enumerate(train_texts):
        for j in test_by_hash.get(key(t), ()):
            rep.exact_pairs.append((i, j))
            exact.add((i, j))
    if train_emb is not None and test_emb is not None and len(train_emb) and len(test_emb):
        rep.near_checked = True
        a = train_emb / np.maximum(np.linalg.norm(train_emb, axis=1, keepdims=True), 1e-12)
        b = test_emb / np.maximum(np.linalg.norm(test_emb, axis=1, keepdims=True), 1e-12)
        for start in range(0, len(a), chunk):
            sims = a[start:start + chunk] @ b.T
            ii, jj = np.nonzero(sims >= threshold)
            for ri, rj in zip(ii, jj, strict=True):
                pair = (start + int(ri), int(rj))
                if pair not in exact:
                    rep.near_pairs.append((pair[0], pair[1], float(sims[ri, rj])))
    return rep
