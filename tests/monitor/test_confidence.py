"""Issue 13's confidence bug: the reference profile, offline records and the server must measure the
same "confidence" (the probability of the decided label; multi-label: the least certain per-label
decision), also after ``calibrate`` tuned a binary threshold or per-label thresholds.

On the code before the fix the profile (and ``make_records``) used ``proba.max()`` while the
server's runner logged the probability of the decided label, and ``calibrate`` left the profile
built under the old rule: confidence drift compared two different quantities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _served_vs_profile(path: Path) -> None:
    import transferops
    from transferops.deploy.runtime import open_runner
    from transferops.monitor.profile import bin_counts, label_keys, load_profile
    from transferops.monitor.records import make_records

    model = transferops.load(path)
    texts = [str(t) for t in model.split("validation")["text"]]
    prof = load_profile(path)
    assert prof["n"] == len(texts)  # the whole split, in order: row for row the same texts
    served = open_runner("m", path).infer(texts)  # what the server logs per prediction
    conf = served.confidence
    ch = prof["confidence"]
    assert ch["mean"] == pytest.approx(float(np.mean(conf)), abs=1e-4)
    assert ch["high_share"] == pytest.approx(float(np.mean(conf >= 0.9)))
    # a value sitting on a bin edge may move one bin with float noise between the two forward passes
    assert np.abs(bin_counts(conf, ch["edges"]) - np.asarray(ch["counts"])).sum() <= 2
    counts = pd.Series(label_keys(served.labels)).value_counts().to_dict()
    assert {k: v for k, v in prof["class_counts"].items() if v} == counts
    recs = make_records(model, texts)
    np.testing.assert_allclose([r.confidence for r in recs], conf, atol=1e-4)
    assert [r.label for r in recs] == served.labels


def test_binary_tuned_threshold_profile_confidence_is_the_served_confidence(tiny_bert, tmp_path, bbc_small):
    import transferops
    from transferops.evaluate.api import calibrate

    binary = bbc_small[bbc_small["label"].isin(["sport", "tech"])]
    res = transferops.train(binary, out=tmp_path / "bin", checkpoint=str(tiny_bert), strategy="full", epochs=1,
                            max_length=32, check_near_duplicates=False, baseline=False)
    cal = calibrate(res.path, target="recall>=0.99", positive="tech", report_test=False)
    model = transferops.load(res.path)
    proba = model.predict_proba([str(t) for t in model.split("validation")["text"]])
    assert model.manifest["decision_threshold"] == pytest.approx(cal.threshold)
    # the precondition that makes this test discriminate: the tuned threshold moves decisions off argmax
    argmax = [model.labels[i] for i in proba.argmax(axis=1)]
    assert any(a != b for a, b in zip(model.decide(proba), argmax, strict=True))
    _served_vs_profile(res.path)


def test_multilabel_profile_confidence_is_the_served_confidence(tiny_bert, tmp_path, bbc_small):
    import transferops
    from transferops.evaluate.api import calibrate

    df = bbc_small.copy()
    df["tags"] = [lbl + ("|news" if i % 2 else "") for i, lbl in enumerate(df["label"])]
    res = transferops.train(df, out=tmp_path / "ml", label_column="tags", label_sep="|",
                            checkpoint=str(tiny_bert), strategy="full", epochs=1, max_length=32,
                            check_near_duplicates=False, baseline=False)
    _served_vs_profile(res.path)
    calibrate(res.path, report_test=False)  # per-label thresholds: the profile follows the new rule
    _served_vs_profile(res.path)


def test_one_confidence_definition() -> None:
    from transferops.decision import DecisionRule

    p = np.array([[0.6, 0.4], [0.2, 0.8]])
    # binary threshold: the probability of the label given, not the largest
    rule = DecisionRule(labels=("a", "b"), threshold=0.3)
    assert rule.decide(p).tolist() == [1, 1]
    np.testing.assert_allclose(rule.confidence(p), [0.4, 0.8])
    assert rule.apply(p) == (["b", "b"], pytest.approx([0.4, 0.8]))
    # multi-class offsets move the decision off argmax too
    p3 = np.array([[0.5, 0.3, 0.2]])
    off = DecisionRule(labels=("a", "b", "c"), offsets=(0.0, 1.0, 0.0))
    assert off.decide(p3).tolist() == [1]
    np.testing.assert_allclose(off.confidence(p3), [0.3])
    # multi-label: the least certain per-label decision, whatever the thresholds
    ml = DecisionRule(labels=("x", "y"), multilabel=True, thresholds=(0.2, 0.5))
    pm = np.array([[0.3, 0.9], [0.05, 0.4]])
    assert ml.names(ml.decide(pm)) == [["x", "y"], []]
    np.testing.assert_allclose(ml.confidence(pm), [0.7, 0.6])
    # empty input, plain argmax
    assert DecisionRule.argmax(3).confidence(np.zeros((0, 3))).shape == (0,)
    np.testing.assert_allclose(DecisionRule.argmax(2).confidence(p), [0.6, 0.8])


def test_rule_from_manifest_and_bad_values() -> None:
    from transferops.decision import DecisionRule
    from transferops.errors import ConfigError

    m = {"labels": ["a", "b", "c"], "task": "multiclass", "calibration": {"temperature": 2.0},
         "decision": {"rule": "logit_offsets", "offsets": {"b": 0.5}}}
    rule = DecisionRule.from_manifest(m)
    assert rule.offsets == (0.0, 0.5, 0.0) and rule.temperature == 2.0 and not rule.multilabel
    ml = DecisionRule.from_manifest({"labels": ["x", "y"], "task": "multilabel", "thresholds": {"y": 0.7}})
    assert ml.multilabel and ml.thresholds == (0.5, 0.7)
    with pytest.raises(ConfigError, match="thresholds"):
        DecisionRule(labels=("x", "y"), multilabel=True, thresholds=(0.5,))
    with pytest.raises(ConfigError, match="temperature"):
        DecisionRule.from_manifest({**m, "calibration": {"temperature": 0.0}})
