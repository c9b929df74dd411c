"""Shared fixtures: a tiny random BERT (built from a config, saved as a HF folder with the real
MiniLM tokenizer), the small BBC fixture, and a session-wide cache dir."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFEROPS_QUIET", "1")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["TRANSFEROPS_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random BERT with the MiniLM vocabulary: trains in well under a second."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from transferops.checkpoints import resolve_checkpoint

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(str(resolve_checkpoint("minilm-l6").path))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256)
    BertForMaskedLM(cfg).save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def bbc_small() -> pd.DataFrame:
    """200 BBC articles (40 per class), first 400 characters each."""
    return pd.read_csv(DATA / "bbc_small.csv")


@pytest.fixture(scope="session")
def bbc_small_csv() -> Path:
    return DATA / "bbc_small.csv"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, bbc_small_csv: Path) -> Path:
    """A trained tiny model artifact (full strategy, 3 epochs) for tests of later stages.

    The random 2-layer model barely beats chance on held-out data (it was never pretrained), but its
    training loss falls and every file of a real artifact is there."""
    import transferops

    out = tmp_path_factory.mktemp("runs") / "tiny"
    transferops.train(bbc_small_csv, out=out, checkpoint=str(tiny_bert), strategy="full", epochs=3,
                      lr=5e-3, max_length=64, batch_size=8, check_near_duplicates=False,
                      early_stopping_patience=None)
    return out
