"""One tokenisation per served batch: the model's inputs and the logged token counts from the same pass.

The server logs each text's token count *before* truncation and its [UNK] rate
(:func:`~transferops.deploy.features.text_features`), while the model sees the text truncated to
``max_length`` with special tokens and padding. Tokenising twice (once for each) showed in the serving
profile (issue 18), so :class:`TextEncoder` tokenises once, without special tokens or truncation, and
builds the model's inputs from that encoding:

* a fast (Rust) tokenizer with ``head`` truncation: ``tokenizers``' own ``post_process`` (truncation to
  ``max_length`` counting the special tokens, then the post-processor's ``[CLS] … [SEP]``) on a private
  copy of the backend — the very steps ``tokenizer(texts, truncation=True, max_length=...)`` runs, so
  the ids are identical (``tests/deploy/test_fast_path.py`` checks it against
  :func:`~transferops.truncation.encode_texts`); padding to the longest row as ``tokenizer.pad`` does;
* anything else (``head_tail`` truncation, a slow tokenizer): :func:`~transferops.truncation.encode_texts`
  and a second, untruncated call, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from transferops.truncation import encode_texts, truncation_of


class TextEncoder:
    """``encode(texts) -> (inputs, raw_ids)``: the model's padded inputs (numpy int64, keyed by input
    name) and each text's untruncated content ids (no special tokens)."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self._lock = threading.Lock()
        self._raw: Any = None  # private backend copies: the HF wrapper re-configures its own per call
        self._post: Any = None
        self._direct: bool | None = None

    def _setup(self) -> bool:
        with self._lock:
            if self._direct is None:
                tok = self.tokenizer
                backend = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
                if backend is None or truncation_of(tok) != "head":
                    self._direct = False
                else:
                    from tokenizers import Tokenizer

                    raw, post = Tokenizer.from_str(backend.to_str()), Tokenizer.from_str(backend.to_str())
                    raw.no_truncation()
                    raw.no_padding()
                    post.no_padding()
                    post.enable_truncation(self.max_length, strategy="longest_first",
                                           direction=getattr(tok, "truncation_side", "right"))
                    self._raw, self._post, self._direct = raw, post, True
            return self._direct

    def encode(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[list[int]]]:
        texts = list(texts)
        if not self._setup():
            return self._encode_via_tokenizer(texts)
        tok = self.tokenizer
        encs = self._raw.encode_batch(texts, add_special_tokens=False)
        raw_ids = [e.ids for e in encs]
        full = [self._post.post_process(e, None, True) for e in encs]
        width = max((len(e.ids) for e in full), default=0)
        n = len(full)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = np.full((n, width), pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.full((n, width), getattr(tok, "pad_token_type_id", 0) or 0, dtype=np.int64)
        left = getattr(tok, "padding_side", "right") == "left"
        for i, e in enumerate(full):
            k = len(e.ids)
            sl = slice(width - k, width) if left else slice(0, k)
            ids[i, sl] = e.ids
            mask[i, sl] = 1
            types[i, sl] = e.type_ids
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in getattr(tok, "model_input_names", ()):
            inputs["token_type_ids"] = types
        return inputs, raw_ids

    def _encode_via_tokenizer(self, texts: list[str]) -> tuple[dict[str, np.ndarray], list[list[int]]]:
        enc = encode_texts(self.tokenizer, texts, self.max_length, padding=True, return_tensors="np")
        # verbose=False: long texts are expected here
        raw = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}, [list(r) for r in raw]


__all__ = ["TextEncoder"]
