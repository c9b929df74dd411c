"""Fixtures for evaluation tests: writable copies of trained artifacts and a tiny non-torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import TfidfModel, copy_artifact


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    return copy_artifact(tiny_run, tmp_path / "run")


@pytest.fixture(scope="session")
def binary_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, bbc_small: pd.DataFrame) -> Path:
    """A tiny binary model (sport vs. business) trained with ``calibrate=True`` (runs the post_train hook)."""
    import transferops

    df = bbc_small[bbc_small["label"].isin(["sport", "business"])].reset_index(drop=True)
    out = tmp_path_factory.mktemp("runs-bin") / "binary"
    transferops.train(df, out=out, checkpoint=str(tiny_bert), strategy="full", epochs=3, lr=2e-3,
                      max_length=48, batch_size=16, check_near_duplicates=False, calibrate=True)
    return out


@pytest.fixture
def binary_copy(binary_run: Path, tmp_path: Path) -> Path:
    return copy_artifact(binary_run, tmp_path / "binary")


@pytest.fixture(scope="session")
def tfidf_model(bbc_small: pd.DataFrame) -> TfidfModel:
    train = bbc_small.iloc[::2]
    return TfidfModel(train["text"].tolist(), train["label"].tolist())


@pytest.fixture(scope="session")
def bbc_eval(bbc_small: pd.DataFrame) -> pd.DataFrame:
    """The other half of the fixture, with a 'source' slice column."""
    df = bbc_small.iloc[1::2].reset_index(drop=True).copy()
    i = np.arange(len(df))
    df["source"] = np.where(i % 4 == 0, "radio", np.where(i % 2, "web", "print"))
    return df


@pytest.fixture(scope="session")
def multilabel_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, bbc_small: pd.DataFrame) -> Path:
    """A multi-label artifact assembled from its documented parts (random head over the tiny BERT).

    Built by hand rather than by ``transferops.train`` so these tests do not depend on multi-label training.
    """
    from transferops._util import sha256_file, utcnow, write_json
    from transferops.modeling import build_classifier, load_tokenizer

    labels = ["culture", "economy", "people"]
    tags = {"business": ["economy"], "politics": ["economy", "people"], "sport": ["people"],
            "entertainment": ["people", "culture"], "tech": ["economy", "culture"]}
    out = tmp_path_factory.mktemp("runs-ml") / "ml"
    model = build_classifier(tiny_bert, labels, "multilabel")
    model.save_pretrained(str(out / "model"), safe_serialization=True)
    load_tokenizer(tiny_bert).save_pretrained(str(out / "model"))
    df = bbc_small.assign(label=bbc_small["label"].map(tags))[["text", "label"]]
    (out / "data").mkdir()
    df.iloc[0::2].to_parquet(out / "data" / "validation.parquet", index=False)
    df.iloc[1::2].to_parquet(out / "data" / "test.parquet", index=False)
    write_json(out / "transferops.json", {
        "name": "ml", "kind": "model", "created": utcnow(), "task": "multilabel", "labels": labels,
        "config": {"max_length": 48}, "strategy": {"name": "full"}, "base": {"name": str(tiny_bert)},
        "splits": {"test_sha256": sha256_file(out / "data" / "test.parquet")}, "evaluations": []})
    return out
