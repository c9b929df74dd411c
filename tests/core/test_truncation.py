"""``truncation: head | head_tail``: the cut keeps exactly the first and last tokens, travels with the saved
tokenizer, and training and inference tokenise the same way (issue 18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transferops.errors import ConfigError
from transferops.truncation import (
    TRUNCATION_KEY,
    encode_texts,
    head_tail_split,
    keep_head_tail,
    set_truncation,
    truncation_of,
)

LONG = " ".join(f"word{i}" for i in range(300))  # one word piece per number group: > 128 tokens


@pytest.fixture
def tok(tiny_bert: Path):  # type: ignore[no-untyped-def]
    from transferops.modeling import load_tokenizer

    return load_tokenizer(tiny_bert)


def test_keep_head_tail_on_a_known_sequence() -> None:
    ids = list(range(100))
    assert head_tail_split(126) == (31, 95)
    kept = keep_head_tail(ids, 20)
    assert kept == list(range(5)) + list(range(85, 100))  # 20 // 4 = 5 from the head, 15 from the tail
    assert keep_head_tail(ids, 100) == ids and keep_head_tail(ids[:3], 20) == [0, 1, 2]


def test_head_tail_keeps_cls_head_tail_sep_exactly(tok) -> None:  # type: ignore[no-untyped-def]
    content = tok(LONG, add_special_tokens=False)["input_ids"]
    assert len(content) > 200
    head = tok([LONG], truncation=True, max_length=64)["input_ids"][0]
    assert encode_texts(tok, [LONG], 64, padding=False)["input_ids"][0] == head  # default: unchanged
    set_truncation(tok, "head_tail")
    got = encode_texts(tok, [LONG], 64, padding=False)
    ids = got["input_ids"][0]
    assert len(ids) == 64 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert ids[1:-1] == content[:15] + content[-47:]  # budget 62: 15 head + 47 tail tokens
    assert got["attention_mask"][0] == [1] * 64 and got["token_type_ids"][0] == [0] * 64
    short = "a short text"
    assert encode_texts(tok, [short], 64, padding=False)["input_ids"][0] == tok(short)["input_ids"]


def test_padded_inference_encoding_equals_training_encoding(tok) -> None:  # type: ignore[no-untyped-def]
    from transferops.finetune.batching import tokenize
    from transferops.inference import encode

    set_truncation(tok, "head_tail")
    texts = [LONG, "short", LONG[:300]]
    train = tokenize(tok, texts, 48)
    served = encode(tok, texts, 48, return_tensors="np")
    for i, row in enumerate(train["input_ids"]):
        n = len(row)
        assert served["input_ids"][i, :n].tolist() == row and served["attention_mask"][i].sum() == n
    assert isinstance(served["input_ids"], np.ndarray)


def test_mode_round_trips_through_save_pretrained(tok, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from transferops.deploy.onnx_export import TOKENIZER_FILES
    from transferops.modeling import load_tokenizer

    assert truncation_of(tok) == "head"
    set_truncation(tok, "head_tail").save_pretrained(str(tmp_path))
    assert truncation_of(load_tokenizer(tmp_path)) == "head_tail"
    assert "tokenizer_config.json" in TOKENIZER_FILES  # the ONNX export copies the file that holds the mode
    set_truncation(tok, "head")
    assert TRUNCATION_KEY not in tok.init_kwargs
    with pytest.raises(ConfigError, match="truncation"):
        set_truncation(tok, "tail")


def test_config_rejects_an_unknown_mode() -> None:
    from transferops.finetune.config import TrainConfig

    with pytest.raises(ConfigError, match="truncation"):
        TrainConfig(truncation="middle")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cache_frozen"):
        TrainConfig(cache_frozen="maybe")  # type: ignore[arg-type]


def test_onnx_export_of_a_head_tail_model_cuts_the_same_way(tiny_run: Path, tmp_path: Path) -> None:
    """The export copies the tokenizer files, which carry the mode: ONNX and PyTorch agree on a long text, and
    that text's probabilities differ from the head cut (so the agreement is not trivial)."""
    import shutil

    import transferops
    from transferops.deploy.onnx_export import export_onnx
    from transferops.modeling import load_tokenizer

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for p in run.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    long_text = " ".join(transferops.load(run).split("test")["text"].tolist()[:4])
    head_p = transferops.load(run).predict_proba([long_text])
    set_truncation(load_tokenizer(run / "model"), "head_tail").save_pretrained(str(run / "model"))
    pt = transferops.load(run)
    assert truncation_of(pt.tokenizer) == "head_tail"
    ht_p = pt.predict_proba([long_text])
    assert np.abs(ht_p - head_p).max() > 1e-6
    export_onnx(run, tmp_path / "onnx", quantize=None)
    assert truncation_of(load_tokenizer(tmp_path / "onnx")) == "head_tail"
    np.testing.assert_allclose(transferops.load(tmp_path / "onnx").predict_proba([long_text]), ht_p, atol=1e-4)
