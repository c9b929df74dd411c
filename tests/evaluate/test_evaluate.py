"""``evaluate`` on real artifacts (the tiny trained model) and on a non-torch model object."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _eval_helpers import TfidfModel, copy_artifact

from transferops._util import cache_dir, read_json
from transferops.artifacts import read_manifest, update_manifest
from transferops.errors import ArtifactError, ConfigError, DataError
from transferops.evaluate import evaluate
from transferops.evaluate.discipline import TestSetReuseWarning, registry_path


def test_default_is_the_test_split_with_every_section(run_copy: Path) -> None:
    rep = evaluate(run_copy, n_bootstrap=200)
    m = read_manifest(run_copy)
    assert rep.data["split"] == "test"
    assert rep.data["n"] == m["splits"]["sizes"]["test"]
    assert rep.data["sha256"] == m["splits"]["test_sha256"]
    for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "balanced_accuracy", "roc_auc", "pr_auc",
              "log_loss", "brier", "ece"):
        assert k in rep.metrics and np.isfinite(rep.metrics[k]), k
    # Accuracy computed here agrees with the one training stored for the same split.
    assert rep.metrics["accuracy"] == pytest.approx(m["metrics"]["test"]["accuracy"], abs=1e-6)
    assert rep.metrics["macro_f1"] == pytest.approx(m["metrics"]["test"]["macro_f1"], abs=1e-6)
    lo, hi = rep.ci["macro_f1"]
    assert lo <= rep.metrics["macro_f1"] <= hi
    assert [r["label"] for r in rep.per_class] == rep.labels
    assert sum(r["support"] for r in rep.per_class) == rep.data["n"]
    assert np.asarray(rep.confusion).sum() == rep.data["n"]
    assert rep.baseline["tfidf_logreg"] == m["baseline"]["tfidf_logreg"]
    assert {s["column"] for s in rep.slices} == {"text_length"}
    assert rep.calibration["ece_before"] >= 0
    assert rep.threshold["kind"] == "confidence"
    assert rep.passed and rep.gates == []
    d = json.loads(rep.json())
    assert d["metrics"]["accuracy"] == rep.metrics["accuracy"]
    assert rep.per_class_df().shape[0] == 5 and rep.confusion_df().shape == (5, 5)
    assert "macro_f1" in rep.summary()
    assert rep.headline.startswith("macro_f1 ") and "TF-IDF baseline" in rep.headline


def test_test_split_use_is_recorded_and_reuse_by_another_run_warns(run_copy: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A private registry: other tests in the session may have used this test split already.
    monkeypatch.setenv("TRANSFEROPS_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TestSetReuseWarning)
        evaluate(run_copy, n_bootstrap=0)  # first use by this run: no warning
        evaluate(run_copy, n_bootstrap=0)  # the same run again: still no warning
    evals = read_manifest(run_copy)["evaluations"]
    assert len(evals) == 2
    assert evals[0]["model"] == read_manifest(run_copy)["name"]
    assert evals[0]["test_sha256"] == read_manifest(run_copy)["splits"]["test_sha256"]
    assert registry_path() == cache_dir() / "test_evaluations.json"
    reg = read_json(registry_path())
    assert evals[0]["test_sha256"] in reg

    # A *different* training run (another `created` timestamp) on the same test split.
    other = copy_artifact(run_copy, tmp_path / "other")
    update_manifest(other, created="2030-01-01T00:00:00+00:00", name="other", evaluations=[])
    with pytest.warns(TestSetReuseWarning, match="Mistake 3"):
        rep = evaluate(other, n_bootstrap=0)
    assert any("already evaluated" in w for w in rep.warnings)


def test_other_data_is_not_recorded_and_slices_are_computed(run_copy: Path, bbc_eval: pd.DataFrame,
                                                            tmp_path: Path) -> None:
    f = tmp_path / "eval.csv"
    bbc_eval.to_csv(f, index=False)
    rep = evaluate(run_copy, f, slices=["source"], n_bootstrap=0, min_support=30)
    assert rep.data["split"] is None
    assert read_manifest(run_copy)["evaluations"] == []
    src = [s for s in rep.slices if s["column"] == "source"]
    assert sorted(s["value"] for s in src) == ["print", "radio", "web"]
    assert sum(s["support"] for s in src) == len(bbc_eval)
    assert all(s["low_support"] == (s["support"] < 30) for s in src)
    key = rep.settings["slice_metric"]
    judged = [s[key] for s in src if not s["low_support"]]
    assert judged == sorted(judged)  # worst first
    assert any("baseline metrics come from" in w for w in rep.warnings)


def test_any_model_object_works(tfidf_model: TfidfModel, bbc_eval: pd.DataFrame) -> None:
    rep = evaluate(tfidf_model, bbc_eval, slices=["source"], gates={"accuracy": ">= 0.6"}, n_bootstrap=100)
    assert rep.metrics["accuracy"] > 0.6  # TF-IDF on BBC is strong even with 100 rows
    assert rep.passed
    assert rep.calibration["source"] == "none"
    assert rep.model["name"] == "tfidf-wrapper"


def test_missing_label_column(run_copy: Path, bbc_eval: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"no label column 'category'.*--label-column"):
        evaluate(run_copy, bbc_eval, label_column="category")


def test_unseen_labels_error_or_are_dropped(run_copy: Path, bbc_eval: pd.DataFrame) -> None:
    df = bbc_eval.copy()
    df.loc[:4, "label"] = "weather"
    with pytest.raises(DataError, match=r"never saw: 'weather' \(5 rows\).*--ignore-unknown-labels"):
        evaluate(run_copy, df)
    rep = evaluate(run_copy, df, ignore_unknown_labels=True, n_bootstrap=0)
    assert rep.data["n"] == len(df) - 5
    assert rep.data["dropped_unknown"] == {"weather": 5}
    assert any("never saw" in w for w in rep.warnings)


def test_absent_slice_column(run_copy: Path, bbc_eval: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no slice column 'lang'"):
        evaluate(run_copy, bbc_eval, slices=["lang"])
    with pytest.raises(DataError, match="slice column 'lang' is not in the model's test split"):
        evaluate(run_copy, slices=["lang"])
    # A slice gate implies its column.
    with pytest.raises(DataError, match="'lang'"):
        evaluate(run_copy, bbc_eval, gates={"slices": {"column": "lang", "min": 0.5}})


def test_gates_on_a_real_artifact(run_copy: Path) -> None:
    m = read_manifest(run_copy)["metrics"]["test"]["macro_f1"]
    ok = evaluate(run_copy, gates={"macro_f1": f">= {m - 0.01:.4f}"}, n_bootstrap=0)
    bad = evaluate(run_copy, gates={"macro_f1": f">= {m + 0.01:.4f}", "beats_baseline_by": 0.05},
                   n_bootstrap=0)
    assert ok.passed
    assert not bad.passed
    assert [g.name.split()[0] for g in bad.failed_gates] == ["macro_f1", "macro_f1"]


def test_bad_model_argument(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="predict_proba"):
        evaluate(object())
    with pytest.raises(ArtifactError):
        evaluate(tmp_path)


def test_a_modified_test_split_is_flagged(run_copy: Path) -> None:
    f = run_copy / "data" / "test.parquet"
    df = pd.read_parquet(f)
    f.chmod(0o644)
    df.iloc[:-1].to_parquet(f, index=False)  # someone "cleaned" the test set after training
    rep = evaluate(run_copy, n_bootstrap=0)
    assert any("no longer matches the sha256" in w for w in rep.warnings)
