"""``evaluate --robustness``: clean vs perturbed metrics per class, in the result and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _eval_helpers import TfidfModel

from transferops.errors import ConfigError
from transferops.evaluate import evaluate
from transferops.modality.augment import perturbation_names


def test_robustness_scores_every_perturbation_per_class(tfidf_model: TfidfModel, bbc_eval: pd.DataFrame,
                                                        tmp_path: Path) -> None:
    rep = evaluate(tfidf_model, bbc_eval, robustness=True, n_bootstrap=0, report=tmp_path / "r.html",
                   json_path=tmp_path / "r.json")
    rb = rep.robustness
    assert [r["name"] for r in rb["perturbations"]] == perturbation_names()
    # the clean column is the report's own per-class F1
    assert rb["clean"]["per_class"] == {r["label"]: {"f1": r["f1"], "recall": r["recall"]} for r in rep.per_class}
    assert rb["clean"]["macro_f1"] == pytest.approx(rep.metrics["macro_f1"])
    for r in rb["perturbations"]:
        assert set(r["per_class"]) == set(rep.labels)
        assert r["changed"] > 0.9  # (nearly) every text was perturbed
        assert r["delta"] == pytest.approx(r["macro_f1"] - rb["clean"]["macro_f1"])
    assert rb["worst"] == min(rb["perturbations"], key=lambda r: r["delta"])["name"]
    # reproducible: same seed, same numbers
    again = evaluate(tfidf_model, bbc_eval, robustness=True, n_bootstrap=0).robustness
    assert again["perturbations"] == rb["perturbations"]
    assert json.loads((tmp_path / "r.json").read_text())["robustness"]["rate"] == 0.15
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<section id="robustness">' in html and 'href="#robustness"' in html
    assert html.count("<tr>", html.index("robustness-table")) >= len(rep.labels) + 2
    for name in perturbation_names():
        assert f"<th class='num'>{name}</th>" in html
    assert "robustness (rate 0.15)" in rep.summary()


def test_a_perturbation_that_removes_the_words_hurts_a_word_model(tfidf_model: TfidfModel,
                                                                  bbc_eval: pd.DataFrame) -> None:
    rb = evaluate(tfidf_model, bbc_eval, robustness=["token_mask", "leetspeak"], robustness_rate=1.0,
                  n_bootstrap=0).robustness
    masked = rb["perturbations"][0]
    assert masked["name"] == "token_mask"
    assert masked["delta"] < -0.3 and masked["flipped"] > 0.3  # every word masked: chance level
    assert rb["clean"]["macro_f1"] > 0.6


def test_no_robustness_section_unless_asked_and_bad_names_are_config_errors(
        tfidf_model: TfidfModel, bbc_eval: pd.DataFrame, tmp_path: Path) -> None:
    rep = evaluate(tfidf_model, bbc_eval, n_bootstrap=0, report=tmp_path / "r.html")
    assert rep.robustness == {} and "robustness" not in rep.to_dict()
    assert '<section id="robustness">' not in (tmp_path / "r.html").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="robustness: 'typo' is not one of"):
        evaluate(tfidf_model, bbc_eval, robustness=["typo"])
    with pytest.raises(ConfigError, match="robustness_rate"):
        evaluate(tfidf_model, bbc_eval, robustness=True, robustness_rate=2.0)


def test_evaluate_cli_robustness_on_the_test_split(run_copy: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.cli.main import main

    rc = main(["-q", "evaluate", "--model", str(run_copy), "--robustness", "leetspeak,keyboard",
               "--json", str(tmp_path / "r.json"), "--bootstrap", "0"])
    assert rc == 0
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["data"]["split"] == "test"
    assert [r["name"] for r in out["robustness"]["perturbations"]] == ["leetspeak", "keyboard"]
    assert "robustness (rate 0.15)" in capsys.readouterr().out
    rc = main(["-q", "evaluate", "--model", str(run_copy), "--robustness", "typo", "--bootstrap", "0"])
    assert rc == 2
    assert "robustness: 'typo' is not one of" in capsys.readouterr().err
