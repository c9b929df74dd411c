"""A user's own multilingual Hugging Face folder (XLM-R architecture, tokenizer built in the test) trains
with every strategy, reloads and predicts; advise recognises it as multilingual."""

from __future__ import annotations

from pathlib import Path

import pytest

import transferops
from transferops.select.advise import installed_multilingual


@pytest.mark.parametrize("strategy", ["head", "freeze", "lora", "full"])
def test_every_strategy_trains_on_a_local_xlmr(strategy: str, tiny_xlmr: Path, reviews_csv: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / strategy
    res = transferops.train(reviews_csv, out=out, checkpoint=str(tiny_xlmr), strategy=strategy, epochs=1,
                            lr=5e-3, max_length=32, batch_size=8, check_near_duplicates=False, baseline=False,
                            early_stopping_patience=None, seed=0)
    man = res.manifest
    assert man["kind"] == "model" and man["strategy"]["name"] == strategy
    assert man["base"]["path"] == str(tiny_xlmr.resolve())
    info = man["strategy"]
    assert 0 < info["trainable_params"] <= info["total_params"]
    if strategy != "full":
        assert info["trainable_params"] < info["total_params"]
    m = transferops.load(out)
    texts = ["Sehr gute Qualität", "屏幕坏了", "Est-ce que ça marche ?"]
    proba = m.predict_proba(texts)
    assert proba.shape == (3, 3) and m.predict(texts)[0] in {"positive", "negative", "question"}
    assert m.tokenizer.unk_token_id == 3  # the folder's own tokenizer came back with the artifact


def test_advise_sees_the_local_xlmr_as_multilingual(tiny_xlmr: Path) -> None:
    found = installed_multilingual([str(tiny_xlmr)])
    assert found[0] == str(tiny_xlmr)  # the fine-tunable local folder first, then the frozen encoders
    assert {"use-multilingual", "multilingual-e5-small"} <= set(found)
