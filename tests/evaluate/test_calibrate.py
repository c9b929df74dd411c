"""Temperature + thresholds stored in the artifact, applied by predict, reported on test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import copy_artifact

import transferops
from transferops.artifacts import read_manifest
from transferops.errors import ConfigError
from transferops.evaluate import calibrate, evaluate
from transferops.evaluate.calibration import ece, post_train
from transferops.evaluate.data import encode_frame_labels
from transferops.evaluate.thresholds import operating_point
from transferops.finetune.config import TrainConfig


def test_train_with_calibrate_stores_the_temperature(binary_run: Path) -> None:
    cal = read_manifest(binary_run)["calibration"]
    assert set(cal) >= {"temperature", "ece_before", "ece_after", "bins"}
    assert cal["bins"] == 15
    assert 0.05 <= cal["temperature"] <= 20.0
    model = transferops.load(binary_run)
    assert model.temperature == pytest.approx(cal["temperature"])
    val = model.split("validation")
    logits = model.logits(val["text"].tolist())
    y, _, _ = encode_frame_labels(val, model.labels, False, ignore_unknown=False)
    # predict_proba applies the stored temperature, and the stored ECE is reproducible from it.
    np.testing.assert_allclose(model.predict_proba(val["text"].tolist()),
                               model.proba_from_logits(logits), rtol=1e-5)
    assert ece(model.proba_from_logits(logits), y) == pytest.approx(cal["ece_after"], abs=1e-5)


def test_post_train_without_calibrate_does_nothing(run_copy: Path) -> None:
    before = read_manifest(run_copy)
    assert post_train(run_copy, TrainConfig(calibrate=False)) is None
    assert read_manifest(run_copy) == before


def test_recall_target_threshold_is_stored_used_and_reported(binary_copy: Path) -> None:
    res = calibrate(binary_copy, target="recall>=0.95", positive="sport")
    m = read_manifest(binary_copy)
    assert m["decision_threshold"] == pytest.approx(res.threshold)
    assert m["positive_index"] == m["labels"].index("sport")
    assert m["threshold_target"] == "recall>=0.95"
    assert res.validation["recall"] >= 0.95  # the target holds on the split it was chosen on
    assert set(res.test) >= {"precision", "recall", "specificity", "threshold"}
    assert m["evaluations"][-1]["kind"] == "calibrate"

    # The stored rule is what predict uses, and it reproduces the validation operating point.
    model = transferops.load(binary_copy)
    val = model.split("validation")
    proba = model.predict_proba(val["text"].tolist())
    pos = m["positive_index"]
    preds = model.decide(proba)
    # compared in float64, as the decision rule does: a float32 scalar against a Python float compares in
    # float32 under NumPy 2 (NEP 50), which flips a row sitting within one float32 step of the threshold
    expected = [model.labels[pos] if p >= res.threshold else model.labels[1 - pos]
                for p in np.asarray(proba[:, pos], dtype=np.float64)]
    assert preds == expected
    op = operating_point(proba[:, pos], (val["label"] == "sport").to_numpy(), res.threshold)
    assert op.recall == pytest.approx(res.validation["recall"])

    rep = evaluate(binary_copy, n_bootstrap=0)
    assert rep.calibration["source"] == "stored"
    assert rep.threshold["kind"] == "binary" and rep.threshold["positive"] == "sport"
    assert rep.threshold["current"]["threshold"] == pytest.approx(res.threshold)
    assert rep.metrics["recall"] == pytest.approx(res.test["recall"])
    assert "calibrated" in res.summary()


def test_multiclass_calibrate_is_temperature_only(run_copy: Path) -> None:
    with pytest.raises(ConfigError, match="multi-class"):
        calibrate(run_copy, target="recall>=0.9")
    res = calibrate(run_copy)
    assert res.threshold is None and res.thresholds is None
    m = read_manifest(run_copy)
    # the manifest keeps 6 decimals of the temperature
    assert m["calibration"]["temperature"] == pytest.approx(res.temperature, abs=1e-6)
    assert "decision_threshold" not in m


def test_unknown_positive_label(binary_copy: Path) -> None:
    with pytest.raises(ConfigError, match="positive: 'fraud'"):
        calibrate(binary_copy, target="max-f1", positive="fraud")


def test_multilabel_model_object_evaluates(bbc_small: pd.DataFrame) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    labels = ["economy", "people"]
    df = bbc_small.copy()
    df["tags"] = [[t for t, hit in zip(labels, (lbl in ("business", "politics"), lbl in ("sport",
                  "entertainment")), strict=True) if hit] for lbl in df["label"]]
    y = np.asarray([[int(t in row) for t in labels] for row in df["tags"]])
    pipe = make_pipeline(TfidfVectorizer(), OneVsRestClassifier(LogisticRegression(C=10, max_iter=500)))
    pipe.fit(df["text"].iloc[::2].tolist(), y[::2])

    class Model:
        task, manifest = "multilabel", {"name": "ml", "thresholds": {"economy": 0.4, "people": 0.6}}

        def __init__(self) -> None:
            self.labels = labels

        def predict_proba(self, texts: list[str]) -> np.ndarray:
            return np.asarray(pipe.predict_proba(texts))

    test = df.iloc[1::2].assign(label=lambda d: d["tags"])[["text", "label"]]
    rep = evaluate(Model(), test, n_bootstrap=100)
    for k in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc", "log_loss", "brier"):
        assert np.isfinite(rep.metrics[k]), k
    assert rep.metrics["micro_f1"] > 0.5
    assert rep.threshold["kind"] == "multilabel"
    assert rep.threshold["thresholds"] == {"economy": 0.4, "people": 0.6}
    assert [r["label"] for r in rep.per_class] == labels


def test_multilabel_artifact_gets_per_label_thresholds(multilabel_run: Path, tmp_path: Path) -> None:
    path = copy_artifact(multilabel_run, tmp_path / "ml")
    res = calibrate(path, target="max-f1")
    m = read_manifest(path)
    assert set(m["thresholds"]) == {"culture", "economy", "people"}
    assert m["thresholds"] == res.thresholds
    assert all(0.05 <= t <= 0.95 for t in m["thresholds"].values())
    assert set(res.validation) >= {"micro_f1", "macro_f1"} and res.test
    # Grid search on validation: no grid threshold gives a better F1 for any label than the stored one.
    model = transferops.load(path)
    val = model.split("validation")
    y, _, _ = encode_frame_labels(val, model.labels, True, ignore_unknown=False)
    p = model.predict_proba(val["text"].tolist())
    for j, lbl in enumerate(model.labels):
        best = max(operating_point(p[:, j], y[:, j], float(t)).f1 for t in np.arange(0.05, 0.951, 0.01))
        assert operating_point(p[:, j], y[:, j], m["thresholds"][lbl]).f1 == pytest.approx(best)
    # predict uses the stored thresholds; evaluate reports per-label metrics and the multilabel curve.
    assert model.decide(p[:1]) == [[lbl for j, lbl in enumerate(model.labels) if p[0, j] >= m["thresholds"][lbl]]]
    rep = evaluate(path, n_bootstrap=100)
    assert rep.task == "multilabel" and rep.threshold["thresholds"] == m["thresholds"]
    assert "hamming_loss" in rep.metrics and "micro_f1" in rep.ci
    assert rep.confusion_df().shape == (3, 4)
