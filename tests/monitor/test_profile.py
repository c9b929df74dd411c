"""The reference profile written at training time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferops.constants import REFERENCE_PROFILE
from transferops.errors import ArtifactError
from transferops.monitor.profile import (
    auto_bins,
    bin_counts,
    build_profile,
    load_profile,
    profile_artifact,
    quantile_edges,
)


def test_training_wrote_the_profile_from_validation(tiny_run):
    prof = json.loads((tiny_run / REFERENCE_PROFILE).read_text())
    import transferops

    model = transferops.load(tiny_run)
    n_val = len(model.split("validation"))
    assert prof["n"] == n_val and prof["split"] == "validation"
    assert sum(prof["class_counts"].values()) == n_val
    assert set(prof["class_counts"]) == set(model.labels)
    assert sum(prof["confidence"]["counts"]) == n_val
    assert set(prof["features"]) == {"n_chars", "n_tokens", "unk_rate"}
    for h in prof["features"].values():
        assert sum(h["counts"]) == n_val and len(h["counts"]) == len(h["edges"]) + 1
    assert np.asarray(prof["sketch"]).shape == (n_val, 16)
    assert 0.0 <= prof["accuracy"] <= 1.0


def test_profile_matches_what_the_server_logs(tiny_run):
    """The profile and the server compute features and sketches the same way (same functions)."""
    import transferops
    from transferops.deploy.runtime import open_runner

    model = transferops.load(tiny_run)
    texts = [str(t) for t in model.split("validation")["text"]][:8]
    prof = build_profile(model, texts, bins=4)
    runner = open_runner("news", tiny_run)
    res = runner.infer(texts)
    assert np.allclose(np.asarray(prof["sketch"]), res.sketch, atol=1e-3)
    assert prof["features"]["n_tokens"]["mean"] == pytest.approx(float(np.mean(res.n_tokens)))
    assert sum(prof["confidence"]["counts"]) == 8


def test_histogram_helpers():
    v = np.arange(100, dtype=float)
    edges = quantile_edges(v, 4)
    assert len(edges) == 3  # quartiles; no point mass at the ends
    assert bin_counts(v, edges).tolist() == [25, 25, 25, 25]
    # A point mass (every text cut to 300 characters): below, at, above.
    e = quantile_edges(np.full(50, 300.0), 10)
    assert len(e) == 2 and e[1] == 300.0
    assert bin_counts(np.array([12.0, 300.0, 300.0, 301.0]), e).tolist() == [1, 2, 1]
    assert auto_bins(20) == 4 and auto_bins(120) == 6 and auto_bins(10_000) == 10


def test_missing_profile_error_names_the_fix(tmp_path):
    with pytest.raises(ArtifactError, match="--build-profile"):
        load_profile(tmp_path)


def test_rebuild_profile_from_another_split(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    prof = profile_artifact(copy, split="test")
    assert prof["split"] == "test" and load_profile(copy)["n"] == prof["n"]


def test_multilabel_and_binary_models_get_a_profile_and_monitor(tiny_bert, tmp_path, bbc_small):
    import transferops
    from transferops.monitor.api import monitor
    from transferops.monitor.records import make_records
    from transferops.monitor.store import Store

    df = bbc_small.copy()
    df["tags"] = [lbl + ("|news" if i % 2 else "") for i, lbl in enumerate(df["label"])]
    res = transferops.train(df, out=tmp_path / "ml", label_column="tags", label_sep="|",
                            checkpoint=str(tiny_bert), strategy="full", epochs=1, max_length=32,
                            check_near_duplicates=False, baseline=False)
    prof = load_profile(res.path)
    assert prof["task"] == "multilabel" and "news" in prof["class_counts"]
    model = transferops.load(res.path)
    st = Store(tmp_path / "ml.db")
    st.insert_predictions(make_records(model, [str(t) for t in df["text"][:40]]))
    rep = monitor(res.path, db=st, last=100).report
    assert rep.n == 40 and rep.status in ("ok", "warn", "retrain")

    binary = bbc_small[bbc_small["label"].isin(["sport", "tech"])]
    res2 = transferops.train(binary, out=tmp_path / "bin", checkpoint=str(tiny_bert), strategy="full", epochs=1,
                             max_length=32, check_near_duplicates=False, baseline=False)
    assert load_profile(res2.path)["labels"] == ["sport", "tech"]
