"""Issue 18, lever 6 (cold ``select``): one model load and one embedding pass per checkpoint, every score
from that pass; the bf16 embedding pass (``--precision``) next to the exact fp32 one."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import transferops.modeling as modeling
from transferops.checkpoints import resolve_checkpoint
from transferops.data import load_labeled
from transferops.errors import ConfigError
from transferops.select import SelectConfig, select
from transferops.select.precision import cpu_has_native_bf16, resolve_precision
from transferops.select.selection import embedding_cache_path, selection_split


def _spy(monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], Counter[str], list[int]]:
    """Count calls of the real loaders and of the real forward pass (each still runs)."""
    loads: Counter[str] = Counter()
    toks: Counter[str] = Counter()
    passes: list[int] = []
    real_enc, real_tok, real_fwd = modeling.load_encoder, modeling.load_tokenizer, modeling.batched_forward

    def load_encoder(path: Any, **kw: Any) -> Any:
        loads[str(path)] += 1
        return real_enc(path, **kw)

    def load_tokenizer(path: Any) -> Any:
        toks[str(path)] += 1
        return real_tok(path)

    def batched_forward(model: Any, tok: Any, texts: Any, **kw: Any) -> np.ndarray:
        passes.append(len(texts))
        return real_fwd(model, tok, texts, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(modeling, "load_encoder", load_encoder)
    monkeypatch.setattr(modeling, "load_tokenizer", load_tokenizer)
    monkeypatch.setattr(modeling, "batched_forward", batched_forward)
    return loads, toks, passes


def test_each_checkpoint_is_loaded_once_and_embedded_once(bbc_small: pd.DataFrame, tiny_bert: Path,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from transformers import BertConfig, BertModel

    other = tmp_path / "tiny-other"  # a second checkpoint: same shape, other weights (another cache key)
    shutil.copytree(tiny_bert, other)
    torch.manual_seed(1)
    BertModel(BertConfig.from_pretrained(str(tiny_bert))).save_pretrained(str(other), safe_serialization=True)
    loads, toks, passes = _spy(monkeypatch)
    res = select(bbc_small, [str(tiny_bert), str(other)], n=40, max_length=16, use_cache=False)
    paths = {str(resolve_checkpoint(str(p)).path) for p in (tiny_bert, other)}
    assert dict(loads) == {p: 1 for p in paths}  # one model load per checkpoint ...
    assert dict(toks) == {p: 1 for p in paths}   # ... one tokenizer load ...
    assert passes == [40, 40]                    # ... and one pass over the 40 texts each
    for p in (tiny_bert, other):
        row = res.row(str(p))  # every score of the row comes from that one pass
        assert None not in (row.knn_accuracy, row.probe_accuracy, row.probe_macro_f1, row.logme)
    # use_cache=False wrote nothing: this run embeds (once each) and fills the cache ...
    loads.clear(), toks.clear(), passes.clear()
    again = select(bbc_small, [str(tiny_bert), str(other)], n=40, max_length=16)
    assert dict(loads) == {p: 1 for p in paths} and passes == [40, 40]
    # ... from which the next run needs no load and no pass at all.
    loads.clear(), toks.clear(), passes.clear()
    third = select(bbc_small, [str(tiny_bert), str(other)], n=40, max_length=16)
    assert not loads and not toks and not passes
    assert all(r.cached for r in third.candidates)
    assert [r.name for r in third.rows] == [r.name for r in again.rows]


def test_bf16_pass_is_close_to_fp32_and_cached_apart(bbc_small: pd.DataFrame, tiny_bert: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFEROPS_CACHE", str(tmp_path / "cache"))  # an empty cache of its own
    a = select(bbc_small, [str(tiny_bert)], n=40, max_length=16, precision="fp32")
    b = select(bbc_small, [str(tiny_bert)], n=40, max_length=16, precision="bf16")
    ra, rb = a.row(str(tiny_bert)), b.row(str(tiny_bert))
    assert (ra.precision, rb.precision) == ("fp32", "bf16") and not rb.cached  # not fp32's cache entry
    assert "embeddings bf16" in b.table() and a.row("baseline:tfidf-logreg").precision is None
    sha = resolve_checkpoint(str(tiny_bert)).sha256()
    texts, _, _, _ = selection_split(load_labeled(bbc_small), SelectConfig(n=40, max_length=16))
    f32 = np.load(embedding_cache_path(sha, texts, 16, "fp32"))
    f16 = np.load(embedding_cache_path(sha, texts, 16, "bf16"))
    assert embedding_cache_path(sha, texts, 16, "fp32").name.endswith("-16.npy")  # pre-issue-18 name
    assert embedding_cache_path(sha, texts, 16, "bf16").name.endswith("-16-bf16.npy")
    assert f16.dtype == np.float32 and f16.shape == f32.shape
    cos = (f32 * f16).sum(1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(f16, axis=1)
    assert cos.min() > 0.999 and not np.array_equal(f32, f16)  # really a different pass, and a close one
    assert rb.logme == pytest.approx(ra.logme, abs=0.02)


def test_auto_precision_follows_the_cpu_flags() -> None:
    assert cpu_has_native_bf16("processor : 0\nflags : fpu sse avx512f amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags : fpu sse avx2 avx512f\n")
    assert resolve_precision("auto", cpuinfo="flags : avx512_bf16") == "bf16"
    assert resolve_precision("auto", cpuinfo="flags : avx2") == "fp32"
    assert resolve_precision("fp32", cpuinfo="flags : avx512_bf16") == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        SelectConfig(precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        modeling.FrozenEncoder("minilm-l6", precision="int8")
