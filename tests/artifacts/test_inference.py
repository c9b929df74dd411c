"""The one forward pass: length-sorted batches, logits + mean-pooled embedding, used by the model, the
server's runner, the ONNX export wrapper and the trainer's feature cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import transferops
from transferops.inference import forward, module_forward, sorted_batches, with_embedding

TEXTS = ["short", "a much longer text about shares and markets rising", "mid length text here", "",
         "x " * 80]


def test_sorted_batches_restore_the_callers_order() -> None:
    seen: list[list[str]] = []

    def run(batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
        seen.append(batch)
        return np.asarray([[len(t)] for t in batch]), np.asarray([[t == ""] for t in batch])

    lengths, empty = sorted_batches(TEXTS, 2, run)
    assert lengths.ravel().tolist() == [len(t) for t in TEXTS]
    assert empty.ravel().tolist() == [t == "" for t in TEXTS]
    assert [len(b) for b in seen] == [2, 2, 1] and seen[0][0] == TEXTS[4]  # longest first


def test_one_pass_gives_what_separate_passes_give(tiny_run: Path) -> None:
    m = transferops.load(tiny_run)
    logits, emb = m.infer(TEXTS)
    np.testing.assert_allclose(logits, m.logits(TEXTS), atol=1e-5)
    np.testing.assert_allclose(emb, m.embed(TEXTS), atol=1e-5)
    # batch size only changes padding, never the answer or its order
    l1, e1 = m.infer(TEXTS, batch_size=1)
    np.testing.assert_allclose(l1, logits, atol=1e-5)
    np.testing.assert_allclose(e1, emb, atol=1e-5)
    # the embedding is the mean of the last hidden state over real tokens
    import torch

    enc = m.tokenizer([TEXTS[1]], return_tensors="pt", truncation=True, max_length=m.max_length)
    with torch.inference_mode():
        hidden = m.torch_model.base_model(**enc).last_hidden_state[0]
    np.testing.assert_allclose(emb[1], hidden.mean(0).numpy(), atol=1e-5)


def test_export_wrapper_and_runner_share_the_forward(tiny_run: Path) -> None:
    from transferops.deploy.runtime import open_runner

    m = transferops.load(tiny_run)
    logits, emb = m.infer(TEXTS)
    wl, we = module_forward(with_embedding(m.torch_model), m.tokenizer, TEXTS, max_length=m.max_length)
    np.testing.assert_allclose(wl, logits, atol=1e-5)
    np.testing.assert_allclose(we, emb, atol=1e-5)
    runner = open_runner("t", tiny_run)
    rl, re = runner.forward(TEXTS)
    np.testing.assert_allclose(rl, logits, atol=1e-5)
    np.testing.assert_allclose(re, emb, atol=1e-5)


def test_first_token_features_and_empty_input(tiny_run: Path) -> None:
    m = transferops.load(tiny_run)
    _, first = forward(m.torch_model.base_model, m.tokenizer, TEXTS, max_length=m.max_length,
                       output="first_token", desc=None)
    assert first.shape[:2] == (len(TEXTS), 1)
    lg, em = forward(m.torch_model, m.tokenizer, [], max_length=8)
    assert lg.shape == (0, 0) and em.shape == (0, 0)
    with pytest.raises(ValueError, match="output"):
        from transferops.inference import batched_forward

        batched_forward(m.torch_model, m.tokenizer, TEXTS, max_length=8, output="cls")
