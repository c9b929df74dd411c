"""How a text longer than ``max_length`` tokens is cut: ``head`` (the first tokens, the default) or
``head_tail`` (the first quarter and the last three quarters of the token budget; Sun et al. 2019, "How
to Fine-Tune BERT for Text Classification?", found head 128 + tail 382 best on long IMDb reviews).

The mode travels **with the tokenizer**: :func:`set_truncation` writes it into the tokenizer's
``init_kwargs``, so ``save_pretrained`` stores it in ``tokenizer_config.json`` and every loader of a saved
model (``transferops.load``, the server, batch scoring, evaluation, the ONNX export, which copies the
tokenizer files, and the ONNX session) reads the same mode back through ``load_tokenizer``. Training
(``finetune/batching.tokenize``) and inference (``inference.encode`` → the text modality's ``encode``)
both call :func:`encode_texts`, so train and serve cut a text the same way. A tokenizer without the key
(every model saved before this option) truncates at the head, as before.

Special tokens are kept: ``[CLS] head … tail [SEP]`` (RoBERTa's ``<s> … </s>``); only the content
tokens are split, ``head = budget // 4``, ``tail = budget - head`` with ``budget = max_length`` minus the
tokenizer's special tokens. Pure Python at import (the tokenizer does the work).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The key in the tokenizer's ``init_kwargs`` / ``tokenizer_config.json``.
TRUNCATION_KEY = "transferops_truncation"
MODES = ("head", "head_tail")
#: Share of the content budget kept from the start of the text under ``head_tail``.
HEAD_SHARE = 0.25


def truncation_of(tokenizer: Any) -> str:
    """The tokenizer's truncation mode (``head`` when it was never set)."""
    mode = (getattr(tokenizer, "init_kwargs", None) or {}).get(TRUNCATION_KEY, "head")
    return mode if mode in MODES else "head"


def set_truncation(tokenizer: Any, mode: str) -> Any:
    """Store ``mode`` on ``tokenizer`` (saved with it by ``save_pretrained``); returns the tokenizer."""
    from transferops.errors import ConfigError

    if mode not in MODES:
        raise ConfigError(f"truncation: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "head":
        tokenizer.init_kwargs.pop(TRUNCATION_KEY, None)
    else:
        tokenizer.init_kwargs[TRUNCATION_KEY] = mode
    return tokenizer


def head_tail_split(budget: int) -> tuple[int, int]:
    """Content tokens kept from the head and from the tail for a content budget."""
    head = int(budget * HEAD_SHARE)
    return head, budget - head


def keep_head_tail(ids: Sequence[int], budget: int) -> list[int]:
    """``ids`` itself when it fits in ``budget``, else its first and last tokens (:func:`head_tail_split`)."""
    if len(ids) <= budget:
        return list(ids)
    head, tail = head_tail_split(budget)
    return list(ids[:head]) + (list(ids[len(ids) - tail:]) if tail else [])


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int, *, padding: bool,
                 return_tensors: str | None = None) -> Any:
    """THE tokenisation of training and inference: ``tokenizer(texts, truncation=True, max_length=...)``
    under ``head``; under ``head_tail`` each text's content tokens cut by :func:`keep_head_tail`, then the
    tokenizer's own special tokens (:func:`special_tokens_around`) around them."""
    texts = list(texts)
    mode = truncation_of(tokenizer)
    if mode == "head":
        return tokenizer(texts, truncation=True, max_length=max_length, padding=padding,
                         return_tensors=return_tensors)
    front, back = special_tokens_around(tokenizer)
    budget = max(1, max_length - len(front) - len(back))
    raw = tokenizer(texts, add_special_tokens=False, truncation=False, padding=False, verbose=False)["input_ids"]
    ids = [front + keep_head_tail(r, budget) + back for r in raw]
    batch: dict[str, list[list[int]]] = {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}
    if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        batch["token_type_ids"] = [[0] * len(x) for x in ids]
    if not padding and return_tensors is None:
        return batch
    return tokenizer.pad(batch, padding=bool(padding), return_tensors=return_tensors)


def special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence (BERT: ``[CLS]`` / ``[SEP]``),
    read from its own encoding of a one-word text."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i:i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare):])
    raise ValueError(f"cannot locate the content tokens in {type(tokenizer).__name__}'s encoding")


__all__ = ["HEAD_SHARE", "MODES", "TRUNCATION_KEY", "encode_texts", "head_tail_split", "keep_head_tail",
           "set_truncation", "special_tokens_around", "truncation_of"]
