"""Per-text input features logged with each prediction and profiled at training time.

Shared by the server (what is logged) and the monitoring reference profile (what it is compared
with), so both sides compute exactly the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

SKETCH_DIM = 16


def text_features(tokenizer: Any, texts: Sequence[str], input_ids: Sequence[Sequence[int]] | None = None,
                  ) -> dict[str, np.ndarray]:
    """Characters, tokens (before truncation) and the [UNK]/OOV rate per text."""
    if input_ids is None:
        input_ids = tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    unk = getattr(tokenizer, "unk_token_id", None)
    n_tok = np.asarray([len(ids) for ids in input_ids], dtype=np.int64)
    unk_n = np.asarray([sum(1 for t in ids if t == unk) for ids in input_ids], dtype=np.float64)
    return {
        "n_chars": np.asarray([len(t) for t in texts], dtype=np.int64),
        "n_tokens": n_tok,
        "unk_rate": unk_n / np.maximum(n_tok, 1),
    }


@functools.lru_cache(maxsize=8)
def _projection(dim: int) -> np.ndarray:
    # Fixed seed: the server and the training-time profile must project the same way.
    rng = np.random.default_rng(20240601 + dim)
    out = rng.standard_normal((dim, SKETCH_DIM)) / np.sqrt(SKETCH_DIM)
    out.setflags(write=False)  # cached: shared by every call
    return out


def sketch(embeddings: np.ndarray) -> np.ndarray:
    """A 16-number random projection of L2-normalised embeddings (enough for drift tests)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        return np.zeros((len(e), SKETCH_DIM), dtype=np.float32)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return (e @ _projection(e.shape[1])).astype(np.float32)
