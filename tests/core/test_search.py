"""Issue 11: the auto recipe, the tuned baseline, the model search, the baseline artifact and the one
decision rule — on real (tiny) models, real files and a real uvicorn server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops.baselines import TfidfBaseline
from transferops.cli.main import main
from transferops.decision import decide_indices, tune_offsets
from transferops.errors import ConfigError
from transferops.finetune.search import SearchError, parse_budget

WORDS = {"alpha": "stock shares market profit", "beta": "match goal striker league",
         "gamma": "vote election minister party"}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "that", "it", "with", "as", "on", "for", "this",
          "from", "by", "at", "new", "said"]


def keyword_frame(counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Labels defined by keywords: TF-IDF must win against a random tiny BERT."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, n in counts.items():
        kw = WORDS[label].split()
        for _ in range(n):
            toks = list(rng.choice(FILLER, size=8)) + list(rng.choice(kw, size=2))
            rng.shuffle(toks)
            rows.append({"text": " ".join(toks), "label": label})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


FAST = {"check_near_duplicates": False, "batch_size": 16, "epochs": 1}


# ---------------------------------------------------------------------- tuned baseline
def test_tuned_baseline_chooses_c_by_cv_and_falls_back_on_tiny_classes() -> None:
    df = keyword_frame({"alpha": 30, "beta": 10, "gamma": 4})
    labels = sorted(WORDS)
    y = np.asarray([labels.index(v) for v in df["label"]])
    b = TfidfBaseline(tune=True).fit(df["text"].tolist(), y, n_classes=3)
    assert b.cv_["folds"] == 4 and b.cv_["fallback"]  # smallest class has 4 < 5 folds
    assert "only 4 training examples" in b.cv_["reason"]
    assert b.C_ in [g["C"] for g in b.cv_["grid"]] and {g["class_weight"] for g in b.cv_["grid"]} == {None,
                                                                                                     "balanced"}
    y1 = y.copy()
    y1[0] = 3  # a class with a single example: no stratified CV possible
    b1 = TfidfBaseline(tune=True).fit(df["text"].tolist(), y1, n_classes=4)
    assert b1.cv_["folds"] == 0 and "fallback" in b1.cv_["reason"] and b1.class_weight_ == "balanced"


@pytest.mark.parametrize("counts", [{"alpha": 20, "beta": 20, "gamma": 20}, {"alpha": 20, "beta": 12}])
def test_baseline_artifact_reloads_exactly_without_pickle(tmp_path: Path, counts: dict[str, int]) -> None:
    from transferops.artifacts.linear import BaselineModel, save_baseline
    from transferops.checkpoints import resolve_checkpoint

    df = keyword_frame(counts)
    labels = sorted(counts)
    y = np.asarray([labels.index(v) for v in df["label"]])
    b = TfidfBaseline(tune=True).fit(df["text"].tolist(), y, n_classes=len(labels))
    save_baseline(tmp_path, b, tokenizer_from=resolve_checkpoint("minilm-l6").path)
    (tmp_path / "transferops.json").write_text(json.dumps({"kind": "baseline", "labels": labels,
                                                           "task": "multiclass", "config": {"max_length": 64},
                                                           "strategy": {"name": "tfidf_logreg"}}))
    files = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert not files & {".pkl", ".pickle", ".joblib", ".bin"}
    m = transferops.load(tmp_path)
    assert isinstance(m, BaselineModel)
    texts = ["shares profit market", "the goal of the striker", "unrelated words here", *df["text"][:20].tolist()]
    np.testing.assert_allclose(m.predict_proba(texts), b.predict_proba(texts), rtol=0, atol=1e-12)
    assert m.embed(texts).shape == (len(texts), 256)


# ---------------------------------------------------------------------- decision rule
def test_logit_offsets_fix_a_majority_biased_model_and_every_path_uses_them() -> None:
    from transferops.evaluate.metrics import predictions

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [120, 40, 15])
    logits = rng.normal(size=(len(y), 3))
    logits[np.arange(len(y)), y] += 1.5
    logits[:, 0] += 2.0  # the collapse: the majority wins almost everywhere
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    labels = ["a", "b", "c"]
    d = tune_offsets(logp, y, labels)
    assert d is not None and d["validation_after"] > d["validation_before"] + 0.1
    proba = np.exp(logp)
    manifest = {"decision": d}
    idx = decide_indices(proba, manifest, labels, False)
    assert (idx == 2).sum() > 0 and (proba.argmax(1) == 2).sum() < (idx == 2).sum()
    assert np.array_equal(predictions(proba, manifest, labels, False), idx)
    # a temperature fitted later does not change the decisions
    t = 2.0
    cal = np.exp(logp / t) / np.exp(logp / t).sum(1, keepdims=True)
    assert np.array_equal(decide_indices(cal, {**manifest, "calibration": {"temperature": t}}, labels, False), idx)
    assert tune_offsets(logp[:, :2], y.clip(0, 1), labels[:2]) is None  # binary keeps its threshold


@pytest.mark.server
def test_tuned_offsets_round_trip_pytorch_onnx_and_server(tiny_run: Path, tmp_path: Path) -> None:
    import httpx

    from server_testing import running
    from transferops.deploy.onnx_export import export_onnx
    from transferops.deploy.server import ServeSettings, create_app

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    mf = json.loads((run / "transferops.json").read_text())
    labels = mf["labels"]
    mf["decision"] = {"rule": "logit_offsets", "metric": "macro_f1",
                      "offsets": {lbl: (3.0 if i == 1 else 0.0) for i, lbl in enumerate(labels)}}
    (run / "transferops.json").write_text(json.dumps(mf))
    texts = [str(t) for t in transferops.load(run).split("test")["text"][:12]]
    pt = transferops.load(run)
    plain = [labels[i] for i in pt.predict_proba(texts).argmax(1)]
    decided = pt.predict(texts)
    assert decided != plain and decided.count(labels[1]) > plain.count(labels[1])
    export_onnx(run, tmp_path / "onnx")
    onnx = transferops.load(tmp_path / "onnx", variant="fp32")
    assert onnx.predict(texts) == decided
    app = create_app(ServeSettings(models={"m": str(run), "o": str(tmp_path / "onnx")}))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        for name in ("m", "o"):
            r = c.post(f"/v1/models/{name}/predict", json={"texts": texts})
            assert r.status_code == 200
            assert [p["label"] for p in r.json()["predictions"]] == decided


# ---------------------------------------------------------------------- default train + search
@pytest.mark.server
def test_default_train_searches_picks_the_baseline_and_it_serves(tiny_bert: Path, tmp_path: Path) -> None:
    """Imbalanced keyword labels, all defaults: the recipe weights the classes, the search runs (small
    data), the tuned baseline wins on validation, and it IS the saved, servable model."""
    import httpx

    from server_testing import running
    from transferops.deploy.server import ServeSettings, create_app

    df = keyword_frame({"alpha": 100, "beta": 30, "gamma": 15})
    res = transferops.train(df, out=tmp_path / "run", checkpoint=str(tiny_bert), check_near_duplicates=False,
                            candidates=["tfidf_logreg", "probe", "head", "full"], epochs=1)
    m = res.manifest
    recipe = {c["field"]: c for c in m["recipe"]}
    assert recipe["strategy"]["source"] == "search" and recipe["max_length"]["source"] == "advise"
    assert (recipe["class_weight"]["value"] == "balanced") or (recipe["loss"]["value"] == "focal")
    assert m["kind"] == "baseline" and m["search"]["winner"] == "tfidf_logreg"
    names = [c["name"] for c in m["search"]["leaderboard"]]
    assert names == ["tfidf_logreg", "probe", "head", "full"]
    assert all(c["ci"] is not None for c in m["search"]["leaderboard"] if c["status"] == "ok")
    assert "IS the baseline" in res.summary() and "validation" in m["search"]["scored_on"]
    # minority recall > 0 on the test split
    test = pd.read_parquet(tmp_path / "run" / "data" / "test.parquet")
    model = transferops.load(tmp_path / "run")
    pred = model.predict(test["text"].tolist())
    minority = test["label"] == "gamma"
    assert minority.sum() > 0 and (np.asarray(pred)[minority] == "gamma").mean() > 0
    assert (tmp_path / "run" / "reference_profile.json").exists()  # monitoring like any model
    # evaluate, batch predict (CLI) and the server use it like any other model
    from transferops.evaluate import evaluate

    rep = evaluate(tmp_path / "run")
    assert rep.metrics["macro_f1"] > 0.8
    inp = tmp_path / "new.csv"
    test[["text"]].to_csv(inp, index=False)
    assert main(["-q", "predict", "--model", str(tmp_path / "run"), "--input", str(inp), "--output",
                 str(tmp_path / "p.csv")]) == 0
    assert pd.read_csv(tmp_path / "p.csv")["label"].tolist() == pred
    app = create_app(ServeSettings(models={"b": str(tmp_path / "run")}))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/models/b/predict", json={"texts": test["text"].tolist()[:10]})
        assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == pred[:10]
    with pytest.raises(ConfigError, match="baseline"):
        from transferops.deploy.onnx_export import export_onnx

        export_onnx(tmp_path / "run", tmp_path / "x")


def test_explicit_flags_win_over_the_recipe(tiny_bert: Path, tmp_path: Path) -> None:
    df = keyword_frame({"alpha": 60, "beta": 15, "gamma": 10})
    res = transferops.train(df, out=tmp_path / "r", checkpoint=str(tiny_bert), strategy="head", loss="ce",
                            max_length=40, **FAST)
    recipe = {c["field"]: c for c in res.manifest["recipe"]}
    assert res.manifest["kind"] == "model" and "search" not in res.manifest
    assert recipe["max_length"] == {"field": "max_length", "value": 40, "source": "user", "reason": "set by the user"}
    assert recipe["loss"]["source"] == "user" and res.manifest["config"]["class_weight"] is None
    assert recipe["strategy"]["source"] == "user"
    res2 = transferops.train(df, out=tmp_path / "r2", checkpoint=str(tiny_bert), strategy="head", **FAST)
    r2 = {c["field"]: c for c in res2.manifest["recipe"]}
    assert r2["class_weight"]["source"] == "advise" and res2.manifest["config"]["class_weight"] == "balanced"
    assert "largest/smallest" in r2["class_weight"]["reason"]


# ---------------------------------------------------------------------- edge cases
def test_search_edge_cases(tiny_bert: Path, tmp_path: Path) -> None:
    df = keyword_frame({"alpha": 20, "beta": 20, "gamma": 20})
    with pytest.raises(ConfigError, match="search and strategy"):
        transferops.train(df, out=tmp_path / "a", checkpoint=str(tiny_bert), strategy="lora", search=True, **FAST)
    assert main(["-q", "train", "--data", str(_csv(df, tmp_path)), "--out", str(tmp_path / "c"), "--search",
                 "--strategy", "full", "--checkpoint", str(tiny_bert)]) == 2
    # a budget too short for any transfer candidate: the baseline is trained, and the user is told
    res = transferops.train(df, out=tmp_path / "b", checkpoint=str(tiny_bert), search=True, time_budget=1e-6,
                            **FAST)
    assert res.manifest["kind"] == "baseline"
    assert any("too short for any fine-tuning" in w for w in res.warnings)
    assert {c["status"] for c in res.manifest["search"]["leaderboard"][1:]} == {"skipped"}
    # every candidate failing is one clear error
    with pytest.raises(SearchError, match="every candidate failed"):
        transferops.train(df, out=tmp_path / "d", checkpoint=str(tiny_bert), search=True,
                          candidates=["lora"], lora={"target_modules": ["no_such_module"]}, **FAST)
    with pytest.raises(ConfigError, match="candidates"):
        transferops.train(df, out=tmp_path / "e", checkpoint=str(tiny_bert), search=True, candidates=["xgb"], **FAST)
    assert parse_budget("1h30m") == 5400 and parse_budget("90s") == 90 and parse_budget(15) == 15
    with pytest.raises(ConfigError, match="time_budget"):
        parse_budget("soon")


def test_own_test_file_alone_keeps_internal_test_rows_for_training(tiny_bert: Path, tmp_path: Path) -> None:
    df = keyword_frame({"alpha": 30, "beta": 30, "gamma": 30})
    own_test = keyword_frame({"alpha": 5, "beta": 5, "gamma": 5}, seed=1)
    res = transferops.train(df, out=tmp_path / "t", checkpoint=str(tiny_bert), strategy="head",
                            test_data=own_test, **FAST)
    sizes = res.manifest["splits"]["sizes"]
    assert sizes["test"] == 15 and sizes["train"] + sizes["validation"] == 90
    assert res.manifest["splits"]["predefined"] == {"validation": False, "test": True}


def _csv(df: pd.DataFrame, tmp_path: Path) -> Path:
    p = tmp_path / "d.csv"
    df.to_csv(p, index=False)
    return p


@pytest.mark.server
def test_stack_candidate_round_trips_save_load_predict_serve(tiny_bert: Path, tmp_path: Path) -> None:
    import httpx

    from server_testing import running
    from transferops.artifacts.linear import StackModel, save_stack
    from transferops.deploy.server import ServeSettings, create_app
    from transferops.finetune.search import ProbeFit, fit_probe_lr, fit_stack
    from transferops.modeling import FrozenEncoder, softmax

    df = keyword_frame({"alpha": 40, "beta": 25, "gamma": 15})
    res = transferops.train(df, out=tmp_path / "run", checkpoint=str(tiny_bert), search=True,
                            candidates=["tfidf_logreg", "probe", "stack"], **FAST)
    rows = {c["name"]: c for c in res.manifest["search"]["leaderboard"]}
    assert rows["stack"]["status"] == "ok" and rows["stack"]["params"]["folds"] == 5
    # the stack as the saved model (what train writes when it wins): one folder, one model
    labels = res.manifest["labels"]
    y = np.asarray([labels.index(v) for v in df["label"]])
    texts = df["text"].tolist()
    base = TfidfBaseline(tune=True).fit(texts, y, n_classes=3)
    enc = FrozenEncoder(str(tiny_bert), max_length=32)
    emb = enc.embed(texts)
    probe = ProbeFit(enc, fit_probe_lr(emb, y, multilabel=False, class_weight=None, seed=0), 3, False, tiny_bert)
    sf = fit_stack(base, probe, texts, emb, y, 3, 0)
    out = tmp_path / "stack"
    save_stack(out, base, probe.clf, sf.meta, encoder_from=tiny_bert)
    mf = {**res.manifest, "kind": "stack", "config": {**res.manifest["config"], "max_length": 32}}
    (out / "transferops.json").write_text(json.dumps(mf))
    shutil.copytree(tmp_path / "run" / "data", out / "data")
    m = transferops.load(out)
    assert isinstance(m, StackModel)
    new = ["shares market profit today", "vote for the party", "the striker and the goal"]
    np.testing.assert_allclose(m.predict_proba(new), softmax(sf.logits(new)), atol=1e-6)
    decided = m.predict(new)
    # ONNX for the transformer part (encoder + probe in one graph), the TF-IDF member and the
    # meta-learner in their safe files: the export answers exactly as the saved stack does
    from transferops.deploy.onnx_export import export_onnx
    from transferops.deploy.onnx_runtime import OnnxModel

    ex = export_onnx(out, tmp_path / "stack-onnx", quantize="int8", max_drop=1.0)
    assert ex.passed and ex.parity["max_prob_diff"] < 1e-4
    om = transferops.load(tmp_path / "stack-onnx")
    assert isinstance(om, OnnxModel)
    fp32 = OnnxModel(tmp_path / "stack-onnx", variant="fp32")
    np.testing.assert_allclose(fp32.predict_proba(new), m.predict_proba(new), atol=1e-4)
    assert fp32.predict(new) == decided
    assert not list((tmp_path / "stack-onnx").rglob("*.pkl"))
    app = create_app(ServeSettings(models={"s": str(out), "x": str(tmp_path / "stack-onnx")}))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/models/s/predict", json={"texts": new})
        assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == decided
        r = c.post("/v1/models/x/predict", json={"texts": new})
        assert r.status_code == 200
        served = [[p["probabilities"][lbl] for lbl in labels] for p in r.json()["predictions"]]
        np.testing.assert_allclose(served, om.predict_proba(new), atol=1e-5)
        assert [p["label"] for p in r.json()["predictions"]] == om.predict(new)


def test_learning_curve_and_report_section(tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from transferops.evaluate import evaluate

    df = keyword_frame({"alpha": 40, "beta": 40, "gamma": 40})
    transferops.train(df, out=tmp_path / "r", checkpoint=str(tiny_bert), search=True, candidates=["tfidf_logreg"],
                      **FAST)
    assert main(["-q", "learning-curve", "--model", str(tmp_path / "r")]) == 0
    assert "tuned baseline" in capsys.readouterr().out
    lc = json.loads((tmp_path / "r" / "transferops.json").read_text())["learning_curve"]
    assert [p["fraction"] for p in lc["points"]] == [0.125, 0.25, 0.5, 1.0] and lc["scored_on"] == "validation"
    assert lc["points"][0]["n_train"] < lc["points"][-1]["n_train"]
    html = tmp_path / "rep.html"
    evaluate(tmp_path / "r", report=html)
    text = html.read_text()
    assert 'id="model-search"' in text and "tfidf_logreg" in text and "labels used" in text
    assert main(["-q", "learning-curve", "--model", str(tmp_path / "r"), "--fractions", "0,2"]) == 2
    # the curve prices labels: `cost --labels-from RUN --target-metric X`
    from transferops.finetune.learning_curve import labels_needed

    top = max(p["model"] for p in lc["points"])
    est = labels_needed(lc["points"], top)
    assert not est["extrapolated"] and est["labels_needed"] <= lc["points"][-1]["n_train"]
    capsys.readouterr()
    assert main(["-q", "cost", "--labels-from", str(tmp_path / "r"), "--target-metric", str(top),
                 "--price-per-label", "0.05", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["labeling"] == {**_LABELING_NONE, "examples": 0, "cost": 0.0}
    assert main(["-q", "cost", "--labels-from", str(tmp_path / "r"), "--price-per-label", "0.05"]) == 2


_LABELING_NONE = {"active_learning_examples": None, "active_learning_cost": None, "savings": None}


def test_labels_needed_extrapolates_a_log_linear_curve() -> None:
    from transferops.finetune.learning_curve import labels_needed

    pts = [{"n_train": 100, "model": 0.6}, {"n_train": 200, "model": 0.65}, {"n_train": 400, "model": 0.70}]
    est = labels_needed(pts, 0.80)  # +0.05 per doubling: 0.80 is 2 doublings past 400
    assert est["extrapolated"] and est["labels_needed"] == pytest.approx(1600, abs=2)
    assert labels_needed(pts, 0.65)["labels_needed"] == 200  # already measured
    flat = [{"n_train": 100, "model": 0.7}, {"n_train": 400, "model": 0.69}]
    assert labels_needed(flat, 0.8)["labels_needed"] is None
    assert labels_needed(pts, 0.999)["labels_needed"] is None  # beyond 10x the measured labels
    with pytest.raises(ConfigError, match="target"):
        labels_needed(pts, 1.5)


def test_probe_winner_with_refit_is_saved_and_scores_as_recorded(tiny_bert: Path, tmp_path: Path) -> None:
    from transferops.artifacts.linear import ProbeModel
    from transferops.evaluate import evaluate

    df = keyword_frame({"alpha": 30, "beta": 30, "gamma": 30})
    assert main(["-q", "train", "--data", str(_csv(df, tmp_path)), "--out", str(tmp_path / "p"), "--checkpoint",
                 str(tiny_bert), "--search", "--time-budget", "3s", "--refit", "--no-near-duplicates",
                 "--epochs", "1"]) == 0
    m = json.loads((tmp_path / "p" / "transferops.json").read_text())
    assert m["refit"]["done"] and m["refit"]["rows"] == m["splits"]["sizes"]["train"] + m["splits"]["sizes"][
        "validation"]
    res = transferops.train(df, out=tmp_path / "q", checkpoint=str(tiny_bert), search=True, candidates=["probe"],
                            refit=True, **FAST)
    assert res.manifest["kind"] == "probe"
    model = transferops.load(tmp_path / "q")
    assert isinstance(model, ProbeModel)
    from transferops.deploy.onnx_export import export_onnx

    texts = df["text"].tolist()[:20]
    ex = export_onnx(tmp_path / "q", tmp_path / "q-onnx", quantize=None)
    assert ex.passed and ex.parity["argmax_agreement"] == 1.0
    np.testing.assert_allclose(transferops.load(tmp_path / "q-onnx").predict_proba(texts), model.predict_proba(texts),
                               atol=1e-4)
    rep = evaluate(tmp_path / "q")
    assert rep.metrics["macro_f1"] == pytest.approx(res.manifest["metrics"]["test"]["macro_f1"], abs=1e-9)


# ---------------------------------------------------------------------- the search's ensemble
def test_small_validation_split_ships_an_ensemble_that_loads_evaluates_and_serves(tiny_bert: Path,
                                                                                  tmp_path: Path) -> None:
    """From 30 to 99 validation rows (and above 16 training rows a class) the search saves the mean of its best
    candidates: one folder, members loadable on their own, the same answers from load, evaluate, predict and
    the server; export and --refit say what to do instead."""
    import httpx

    from server_testing import running
    from transferops.adapt.ensemble import EnsembleModel
    from transferops.deploy.server import ServeSettings, create_app
    from transferops.evaluate import evaluate

    df = keyword_frame({"alpha": 100, "beta": 100, "gamma": 100}, seed=3)  # 30 validation rows
    res = transferops.train(df, out=tmp_path / "run", checkpoint=str(tiny_bert), search=True,
                            candidates=["tfidf_logreg", "probe", "stack", "head"], **FAST)
    m = res.manifest
    rows = {c["name"]: c for c in m["search"]["leaderboard"]}
    assert m["kind"] == "ensemble" and m["search"]["winner"] == "ensemble", m["search"]["reason"]
    names = rows["ensemble"]["params"]["members"]
    assert 2 <= len(names) <= 4 and [x["name"] for x in m["members"]] == names
    # the validation-best candidate comes first; every member was scored on its own
    assert rows[names[0]]["value"] == max(rows[n]["value"] for n in rows if n != "ensemble" and rows[n]["value"])
    assert "too few to tell them apart" in m["search"]["reason"] and "--search-ensemble 0" in m["search"]["reason"]
    assert "ensemble" in res.summary() and "← saved" in res.summary()
    model = transferops.load(tmp_path / "run")
    assert isinstance(model, EnsembleModel) and model.n_members == len(names)
    test = pd.read_parquet(tmp_path / "run" / "data" / "test.parquet")
    texts = test["text"].tolist()
    alone = [transferops.load(tmp_path / "run" / "members" / n) for n in names]
    mean = np.mean([a.predict_proba(texts, calibrated=False) for a in alone], axis=0)
    np.testing.assert_allclose(model.predict_proba(texts, calibrated=False), mean, atol=1e-6)
    # the recorded test metrics are the saved ensemble's
    rep = evaluate(tmp_path / "run")
    assert rep.metrics["macro_f1"] == pytest.approx(m["metrics"]["test"]["macro_f1"], abs=1e-6)
    pred = model.predict(texts)
    app = create_app(ServeSettings(models={"e": str(tmp_path / "run")}))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/models/e/predict", json={"texts": texts[:8]})
        assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == pred[:8]
    from transferops.deploy.onnx_export import export_onnx

    with pytest.raises(ConfigError, match="--search-ensemble 0"):
        export_onnx(tmp_path / "run", tmp_path / "x")
    # an ensemble champion retrains like any other: it scores the fresh holdout, the challenger is searched anew
    from transferops.monitor.retrain import retrain

    new = keyword_frame({"alpha": 40, "beta": 40, "gamma": 40}, seed=9)
    rr = retrain(tmp_path / "reg.db", model=str(tmp_path / "run"), new_data=new, out=tmp_path / "chal")
    assert rr.holdout_size == 36 and rr.train_new_rows == 84 and rr.champion_metrics["macro_f1"] > 0.5
    chal = transferops.load(rr.challenger_path)
    assert chal.manifest["search"]["winner"] and len(chal.split("train")) > len(model.split("train"))
    # searched the way the champion was: its candidates and budget, not the default set
    assert [c["name"] for c in chal.manifest["search"]["leaderboard"] if c["name"] != "ensemble"] == [
        "tfidf_logreg", "probe", "stack", "head"]
    assert chal.manifest["search"]["budget_seconds"] == m["search"]["budget_seconds"]
    assert chal.manifest["search"]["requested"]["candidates"] == ["tfidf_logreg", "probe", "stack", "head"]
    # one model on request, the same search otherwise
    one = transferops.train(df, out=tmp_path / "one", checkpoint=str(tiny_bert), search=True, search_ensemble=0,
                            candidates=["tfidf_logreg", "probe", "stack", "head"], **FAST)
    assert one.manifest["kind"] != "ensemble" and "ensemble" not in {
        c["name"] for c in one.manifest["search"]["leaderboard"]}
    assert one.manifest["search"]["winner"] == names[0]
    # --refit refits one recipe: by default it turns the ensemble off; asked for both, a clear error
    rf = transferops.train(df, out=tmp_path / "rf", checkpoint=str(tiny_bert), search=True, refit=True,
                           candidates=["tfidf_logreg", "probe"], **FAST)
    assert rf.manifest["kind"] != "ensemble"
    with pytest.raises(ConfigError, match="--search-ensemble 0 with --refit"):
        transferops.train(df, out=tmp_path / "rf2", checkpoint=str(tiny_bert), search=True, refit=True,
                          search_ensemble=2, candidates=["tfidf_logreg", "probe", "stack"], **FAST)


def test_search_ensemble_rule_and_bad_values(tiny_bert: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    from transferops.finetune.search import ENSEMBLE_SIZE, ensemble_size

    kw = {"n_labels": 5, "multilabel": False}
    assert ensemble_size(None, n_train=288, n_val=32, **kw) == ENSEMBLE_SIZE == 5  # 64 a class, 32 validation rows
    assert ensemble_size(None, n_train=36, n_val=4, **kw) == 0      # few labels: the contrastive prior decides
    assert ensemble_size(None, n_train=130, n_val=15, **kw) == 0    # < 30 rows: no member can be ruled out
    assert ensemble_size(None, n_train=900, n_val=100, **kw) == 0   # 100 validation rows: trust the pick
    assert ensemble_size(None, n_train=288, n_val=32, n_labels=5, multilabel=True) == 0
    assert ensemble_size(2, n_train=36, n_val=4, **kw) == 2         # asked for: honoured
    for bad in (-1, True, 2.5):
        with pytest.raises(ConfigError, match="search_ensemble"):
            ensemble_size(bad, n_train=288, n_val=32, **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="single-label"):
        ensemble_size(3, n_train=288, n_val=32, n_labels=5, multilabel=True)
    df = keyword_frame({"alpha": 20, "beta": 20, "gamma": 20})
    res = transferops.train(df, out=tmp_path / "d", checkpoint=str(tiny_bert), search=True,
                            candidates=["tfidf_logreg", "probe"], **FAST)  # 6 validation rows: one model
    assert res.manifest["kind"] == "baseline"
    with pytest.raises(ConfigError, match="does not search"):
        transferops.train(df, out=tmp_path / "s", checkpoint=str(tiny_bert), strategy="head", search_ensemble=3,
                          **FAST)
    df.to_csv(tmp_path / "d.csv", index=False)
    capsys.readouterr()
    assert main(["-q", "train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "c"), "--checkpoint",
                 str(tiny_bert), "--search-ensemble", "-1", "--epochs", "1"]) == 2
    assert "search_ensemble: -1 must be an integer >= 0" in capsys.readouterr().err


def test_retrain_searches_the_challenger_as_the_champion_was_searched() -> None:
    from transferops.finetune.search import CANDIDATES
    from transferops.monitor.retrain import search_kwargs

    board = [{"name": n} for n in ("tfidf_logreg", "probe", "ensemble")]
    req = {"candidates": None, "search_ensemble": 0, "refit": True}
    new = {"search": {"budget_seconds": 120.0, "leaderboard": board, "requested": req},
           "refit": {"done": True, "reason": "set by the user"}}
    assert search_kwargs(new) == {"search": True, "time_budget": 120.0, "search_ensemble": 0, "refit": True}
    # --no-refit is carried too; an automatic refit (refit None) is the challenger's search's own decision
    no = {"search": {**new["search"], "requested": {**req, "refit": False}}}
    assert search_kwargs(no)["refit"] is False
    auto = {"search": {**new["search"], "requested": {**req, "refit": None}},
            "refit": {"done": True, "reason": "auto: contrastive ..."}}
    assert "refit" not in search_kwargs(auto)
    # older manifests: the leaderboard says which candidates ran; the default set is left to the default
    old = {"search": {"budget_seconds": 60.0, "leaderboard": board}}
    assert search_kwargs(old) == {"search": True, "time_budget": 60.0, "candidates": ["tfidf_logreg", "probe"]}
    assert search_kwargs({**old, "refit": {"done": True, "reason": "set by the user"}})["refit"] is True
    assert "refit" not in search_kwargs({**old, "refit": {"done": True, "reason": "auto: contrastive ..."}})
    full = {"search": {"budget_seconds": 60.0, "leaderboard": [{"name": n} for n in CANDIDATES]}}
    assert search_kwargs(full) == {"search": True, "time_budget": 60.0}
    assert search_kwargs({}) == {} and search_kwargs(new, {"strategy": "freeze"}) == {}
