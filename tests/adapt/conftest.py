"""Fixtures for adapt/distill/ensemble: a keyword-separable two-class toy set and a teacher trained on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

VOCAB = {
    "sport": ["team", "match", "goal", "striker", "league", "coach", "season", "referee", "score", "win"],
    "weather": ["rain", "storm", "wind", "forecast", "cloudy", "sunny", "snow", "frost", "temperature",
                "flood"],
}
NEUTRAL = ["the", "a", "today", "people", "said", "many", "after", "before", "city", "new"]


#: Enough for the tiny random BERT to separate the toy classes (accuracy 1.0 on its test split).
TOY_TRAIN = {"strategy": "full", "epochs": 8, "lr": 1e-3, "max_length": 24, "batch_size": 8,
             "check_near_duplicates": False, "early_stopping_patience": None}


def toy_frame(per_class: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for label, words in VOCAB.items():
        for _ in range(per_class):
            toks = list(rng.choice(words, 6)) + list(rng.choice(NEUTRAL, 4))
            rng.shuffle(toks)
            rows.append({"text": " ".join(toks), "label": label})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="session")
def toy_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("toy") / "toy.csv"
    toy_frame().to_csv(p, index=False)
    return p


@pytest.fixture(scope="session")
def toy_teacher(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, toy_csv: Path) -> Path:
    import transferops

    out = tmp_path_factory.mktemp("runs") / "teacher"
    transferops.train(toy_csv, out=out, **TOY_TRAIN, checkpoint=str(tiny_bert))
    return out


@pytest.fixture(scope="session")
def tiny_bare_bert(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A tiny BERT saved as a bare encoder (``BertModel``): no MLM head weights, like MiniLM."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("tiny-bare-bert")
    cfg = BertConfig.from_pretrained(str(tiny_bert))
    BertModel(cfg).save_pretrained(str(out), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(str(out))
    return out
