"""Drift on real text with the real MiniLM: held-out BBC stays ok, a shifted stream says retrain.

300 texts in all: 150 to train (the validation split, 60 texts, becomes the reference profile),
80 held-out BBC texts as the same-distribution stream, 70 texts for the shifted stream (40 sport
articles + 30 off-domain messages).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops.data import SplitConfig
from transferops.monitor.api import monitor
from transferops.monitor.records import make_records
from transferops.monitor.store import Store

pytestmark = pytest.mark.slow

OFF_DOMAIN = [
    "lol ok 😂😂 see u at 8?? 🍕🔥",
    "def add(a, b):\n    return a + b  # TODO tests",
    "Preheat oven to 180C. Whisk 3 eggs with 200g sugar, fold in flour, bake 25 min.",
    "omg this phone case is sooo cute 💖💖 5 stars would buy again",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '1 day';",
    "🚗💨 stuck in traffic again… 😤 #mondays",
    "Ingredients: 2 cups rice, 1 onion, garlic, saffron, 4 cups stock.",
    "git commit -m 'fix flaky test' && git push origin main --force",
    "Can't log in to my account, password reset email never arrives 😡",
    "Roses are red 🌹 violets are blue 💙 i ❤️ u",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from transferops.data.bundled import load_bbc

    df = load_bbc()
    df["text"] = df["text"].str.slice(0, 300)
    idx = np.random.default_rng(1).permutation(len(df))
    train = df.iloc[idx[:150]][["text", "label"]]
    same = df.iloc[idx[150:230]]
    sport = df.iloc[idx[230:]]
    sport = sport[sport["label"] == "sport"].head(40)
    rng = np.random.default_rng(2)
    off = [OFF_DOMAIN[i % len(OFF_DOMAIN)] + f" #{k}" for k, i in enumerate(rng.permutation(30) % 10)]
    out = tmp_path_factory.mktemp("drift") / "news"
    transferops.train(train, out=out, checkpoint="minilm-l6", strategy="head", max_length=64,
                      check_near_duplicates=False, baseline=False,
                      split=SplitConfig(validation_size=0.4, test_size=0.15, seed=0))
    model = transferops.load(out)
    return out, model, list(same["text"]), list(sport["text"]) + off


def _store(tmp_path, model, texts, ts0: float) -> Store:
    st = Store(tmp_path / "log.db")
    st.insert_predictions(make_records(model, texts, ts=list(ts0 + np.arange(len(texts)) * 10.0),
                                       model_name="news", review_below=0.5))
    return st


def test_same_distribution_stream_stays_ok(setup, tmp_path):
    path, model, same, _ = setup
    st = _store(tmp_path, model, same, ts0=1_700_000_000.0)
    rep = monitor(path, db=st, last=1000).report
    print(rep.summary())
    assert rep.n == 80
    assert rep.status == "ok", rep.summary()
    for s in rep.signals:
        if s.name != "embedding":
            assert s.value < 0.1, s  # PSI (noise-corrected)
    assert rep.signal("class_psi").detail["psi_raw"] < 0.25
    assert rep.signal("embedding").value < 0.1


def test_shifted_stream_reaches_retrain_on_the_right_signals(setup, tmp_path):
    path, model, _, shifted = setup
    st = _store(tmp_path, model, shifted, ts0=1_700_000_000.0)
    rep = monitor(path, db=st, last=1000).report
    print(rep.summary())
    assert rep.status == "retrain" and rep.exit_code == 4
    assert rep.signal("class_psi").status == "retrain"
    assert rep.signal("class_psi").detail["kl"] > 0.25
    assert rep.signal("embedding").status == "retrain"
    # Off-domain messages are short and full of emoji ([UNK] for MiniLM's vocabulary).
    assert rep.signal("feature_psi:n_chars").status == "retrain"
    assert rep.signal("feature_psi:unk_rate").status in ("warn", "retrain")
    assert rep.class_share["sport"] > rep.reference_class_share["sport"] + 0.3


def test_feedback_reveals_the_accuracy_drop(setup, tmp_path):
    path, model, same, shifted = setup
    st = _store(tmp_path, model, same + shifted, ts0=1_700_000_000.0)
    df = st.read_predictions(columns=["id", "text", "label"])
    truth = dict(zip(same, ["?"] * len(same), strict=True))  # placeholder, replaced below
    from transferops.data.bundled import load_bbc

    bbc = load_bbc()
    bbc["text"] = bbc["text"].str.slice(0, 300)
    truth = dict(zip(bbc["text"], bbc["label"], strict=False))
    for pid, text in zip(df["id"], df["text"], strict=True):
        st.add_feedback(pid, truth.get(text, "off-domain"))  # off-domain texts fit no class
    rep = monitor(path, db=st, last=1000).report
    assert rep.n_feedback == 150
    assert rep.signal("accuracy_drop").status == "retrain"
    assert rep.recall.get("off-domain", 0.0) == 0.0
    assert pd.notna(rep.accuracy) and rep.accuracy < rep.reference_accuracy - 0.1
