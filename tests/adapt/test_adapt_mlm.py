"""Continued MLM pretraining: masking, loss falls, the result is a usable checkpoint, bad input, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from transferops.adapt.mlm import (
    ADAPT_MANIFEST,
    MIN_TEXTS,
    AdaptConfig,
    adapt,
    general_sample,
    make_chunks,
    mask_tokens,
)
from transferops.errors import ConfigError, DataError
from transferops.modeling import load_tokenizer

FAST = {"steps": 40, "lr": 3e-3, "batch_size": 8, "max_length": 64, "save_every": 1000}


def test_whole_word_masking_takes_every_piece_and_never_specials(tiny_bert: Path) -> None:
    tok = load_tokenizer(tiny_bert)
    texts = ["unbelievably hyperinflationary tokenization of antidisestablishmentarianism"] * 50
    ch = make_chunks(tok, texts, 64, mode="whole_word")
    pieces = tok.convert_ids_to_tokens(ch.ids[0].tolist())
    assert any(p.startswith("##") for p in pieces)  # the sentence does split into word pieces
    starts = ch.word_start[0]
    assert all(not starts[i] for i, p in enumerate(pieces) if p.startswith("##"))
    rng = np.random.default_rng(0)
    frac = []
    for ids, ws, sp in zip(ch.ids, ch.word_start, ch.special, strict=True):
        inp, labels = mask_tokens(ids, ws, sp, rng, probability=0.15, mask_id=tok.mask_token_id,
                                  vocab_size=len(tok))
        picked = labels != -100
        assert not picked[sp].any()
        word = np.cumsum(ws) - 1
        for w in np.unique(word[picked]):  # a picked word is picked whole
            assert picked[(word == w) & ~sp].all()
        assert (inp[~picked] == ids[~picked]).all()
        frac.append(picked[~sp].mean())
    assert 0.05 < float(np.mean(frac)) < 0.35


def test_token_level_masking_when_asked(tiny_bert: Path) -> None:
    tok = load_tokenizer(tiny_bert)
    ch = make_chunks(tok, ["unbelievably hyperinflationary tokenization"], 64, mode="token")
    assert ch.word_start[0].all()


def test_long_texts_are_windowed_not_truncated(tiny_bert: Path) -> None:
    tok = load_tokenizer(tiny_bert)
    long = " ".join(["word"] * 300)
    ch = make_chunks(tok, [long], 64)
    assert len(ch) >= 4
    assert all(len(x) <= 64 for x in ch.ids)
    assert all(x[0] == tok.cls_token_id and x[-1] == tok.sep_token_id for x in ch.ids)


def test_mlm_loss_falls_and_checkpoint_trains(tmp_path: Path, tiny_bert: Path, bbc_small: pd.DataFrame,
                                              bbc_small_csv: Path) -> None:
    import transferops
    from transferops.checkpoints import resolve_checkpoint

    out = tmp_path / "adapted"
    res = adapt(bbc_small, out=out, checkpoint=str(tiny_bert), **FAST)
    m = res.manifest
    assert m["mlm_head"] == "pretrained" and m["head_warmup_steps"] == 0
    assert m["heldout"]["after"]["loss"] < m["heldout"]["before"]["loss"] - 0.5
    assert m["parent"]["sha256"] == resolve_checkpoint(str(tiny_bert)).sha256()
    assert m["corpus"]["texts"] == len(bbc_small) and len(m["corpus"]["fingerprint"]) == 64
    assert m["steps"] == 40 and m["history"][-1]["step"] == 40
    assert m["general"]["before"]["perplexity"] > 0 and "ratio" in m["general"]
    assert json.loads((out / ADAPT_MANIFEST).read_text())["corpus"] == m["corpus"]
    assert not (out / "training_state").exists()
    assert "small pool" in " ".join(res.warnings)
    # usable anywhere a checkpoint name is
    ck = resolve_checkpoint(str(out))
    assert ck.source == "local"
    tr = transferops.train(bbc_small_csv, out=tmp_path / "run", checkpoint=str(out), strategy="full",
                           epochs=1, lr=1e-3, max_length=32, batch_size=16, check_near_duplicates=False)
    assert tr.manifest["base"]["path"] == str(out.resolve()) or Path(tr.manifest["base"]["path"]) == out
    assert transferops.load(tr.path).predict(["Shares rose sharply"])[0] in tr.manifest["labels"]


def test_no_mlm_head_is_initialised_and_said(tmp_path: Path, tiny_bare_bert: Path, bbc_small: pd.DataFrame
                                             ) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    res = adapt(bbc_small, out=tmp_path / "a", checkpoint=str(tiny_bare_bert), steps=10, lr=3e-3,
                batch_size=8, max_length=64)
    m = res.manifest
    assert m["mlm_head"] == "initialised"
    assert m["head_warmup_steps"] == 2  # min(100, steps // 5)
    assert any("no masked-LM head" in w and "initialised" in w for w in res.warnings)
    assert next(h["phase"] for h in m["history"]) == "head"
    # the parent's pooler (not part of an MLM model) is carried over, not dropped
    assert "pooler.dense.weight" in m["carried_from_parent"]
    with safe_open(str(tmp_path / "a" / "model.safetensors"), "pt") as fh:
        assert "bert.pooler.dense.weight" in set(fh.keys())
    # the fresh head is seeded: the same settings give the same checkpoint
    adapt(bbc_small, out=tmp_path / "b", checkpoint=str(tiny_bare_bert), steps=10, lr=3e-3, batch_size=8,
          max_length=64)
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("n", [0, 3, MIN_TEXTS - 1])
def test_empty_or_tiny_pool_says_how_much_is_needed(tmp_path: Path, tiny_bert: Path, n: int) -> None:
    with pytest.raises(DataError, match=f"at least {MIN_TEXTS}"):
        adapt(["some text here"] * n, out=tmp_path / "x", checkpoint=str(tiny_bert), steps=2)


def test_blank_texts_do_not_count(tmp_path: Path, tiny_bert: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        adapt(pd.DataFrame({"text": ["  ", None, ""] * 30}), out=tmp_path / "x", checkpoint=str(tiny_bert))


@pytest.mark.parametrize("bad", [{"steps": 0}, {"mlm_probability": 0.9}, {"lr": 0.0}, {"whole_word": "yes"}])
def test_config_errors_name_the_field(bad: dict) -> None:
    field = next(iter(bad))
    with pytest.raises(ConfigError, match=field):
        AdaptConfig(**bad)


def test_out_with_a_finished_run_is_refused(tmp_path: Path, tiny_bert: Path, bbc_small: pd.DataFrame) -> None:
    out = tmp_path / "a"
    kw = {"checkpoint": str(tiny_bert), "steps": 2, "batch_size": 8, "max_length": 32}
    first = adapt(bbc_small, out=out, **kw)
    with pytest.raises(ConfigError, match="already holds"):
        adapt(bbc_small, out=out, **kw)
    # --resume on a finished run returns it, but only for the same settings and pool
    assert adapt(bbc_small, out=out, resume=True, **kw).manifest == first.manifest
    with pytest.raises(ConfigError, match="lr"):
        adapt(bbc_small, out=out, resume=True, **{**kw, "lr": 1e-2})
    with pytest.raises(ConfigError, match="different pool"):
        adapt(bbc_small.iloc[1:], out=out, resume=True, **kw)


def test_general_sample_is_shipped() -> None:
    paras = general_sample()
    assert len(paras) >= 8 and all(len(p.split()) > 30 for p in paras)


_CHILD = """
import sys
from transferops.adapt.mlm import adapt
import pandas as pd
adapt(pd.read_csv(sys.argv[1]), out=sys.argv[2], checkpoint=sys.argv[3], steps=int(sys.argv[4]), lr=3e-3,
      batch_size=4, max_length=32, save_every=3)
"""


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path, tiny_bert: Path, bbc_small_csv: Path) -> None:
    from safetensors.torch import load_file

    steps = 60
    killed = tmp_path / "killed"
    env = {**os.environ, "TRANSFEROPS_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(bbc_small_csv), str(killed), str(tiny_bert),
                             str(steps)], env=env)
    state = killed / "training_state" / "state.json"
    deadline = time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    from transferops.finetune.state import has_checkpoint

    # a kill between the two renames of a save leaves the previous state in training_state.old/
    assert has_checkpoint(killed / "training_state"), "the child never saved a resumable state"
    assert not (killed / ADAPT_MANIFEST).exists(), "the child finished before it could be killed"
    sfile = state if state.exists() else killed / "training_state.old" / "state.json"
    saved_step = json.loads(sfile.read_text())["step"]
    assert 0 < saved_step < steps
    with pytest.raises(ConfigError, match="--resume"):
        adapt(pd.read_csv(bbc_small_csv), out=killed, checkpoint=str(tiny_bert), steps=steps)
    kw = {"checkpoint": str(tiny_bert), "steps": steps, "lr": 3e-3, "batch_size": 4, "max_length": 32,
          "save_every": 3}
    torch.set_num_threads(1)
    res = adapt(pd.read_csv(bbc_small_csv), out=killed, resume=True, **kw)
    ref = adapt(pd.read_csv(bbc_small_csv), out=tmp_path / "straight", **kw)
    a = load_file(str(killed / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert res.manifest["heldout"]["after"]["loss"] == pytest.approx(ref.manifest["heldout"]["after"]["loss"],
                                                                    abs=1e-4)
