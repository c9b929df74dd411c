"""Strategy ``contrastive`` (issue 18, lever 7): SetFit-style body tuning on labeled pairs + the probe's LR
head, saved as a kind ``probe`` artifact — on a tiny random BERT built from a config (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import transferops
from transferops.cli.main import main
from transferops.errors import ConfigError

WORDS = {"alpha": "stock shares market profit", "beta": "match goal striker league",
         "gamma": "vote election minister party"}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "that", "it", "with", "as", "on", "for"]
FAST = {"check_near_duplicates": False, "max_length": 32, "lr": 1e-3}


def frame(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for label, words in WORDS.items():
        kw = words.split()
        for _ in range(n):
            toks = list(rng.choice(FILLER, size=5)) + list(rng.choice(kw, size=2))
            rng.shuffle(toks)
            rows.append({"text": " ".join(toks), "label": label})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_train_contrastive_end_to_end_is_a_probe_artifact(tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from transferops.artifacts.linear import ProbeModel
    from transferops.deploy.runtime import open_runner
    from transferops.evaluate import evaluate

    df = frame()
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "run"
    assert main(["-q", "train", "--data", str(csv), "--out", str(out), "--checkpoint", str(tiny_bert),
                 "--strategy", "contrastive", "--no-near-duplicates", "--max-length", "32", "--lr", "1e-3",
                 "--max-steps", "12", "--refit"]) == 0
    m = json.loads((out / "transferops.json").read_text())
    assert m["kind"] == "probe" and m["strategy"]["name"] == "contrastive"
    assert m["refit"]["done"] and m["refit"]["rows"] == m["splits"]["sizes"]["train"] + m["splits"]["sizes"][
        "validation"]  # the same recipe refit on train + validation (from the checkpoint)
    c = m["training"]["contrastive"]
    assert c["steps"] == 12 and m["training"]["steps"] == 12 and c["pairs"] > 0 and c["loss"] == "cosine_mse"
    assert c["body_seconds"] > 0 and c["final_train_loss"] is not None and c["pooling"] == "mean"
    assert m["training"]["precision"]["used"] in ("fp32", "bf16") and m["training"]["optimizer"] in ("fused", "foreach")
    # the saved body is the tuned one (not the checkpoint's weights), the word embeddings stay as pretrained
    tuned, base = load_file(str(out / "model" / "model.safetensors")), load_file(str(tiny_bert / "model.safetensors"))
    key = next(k for k in tuned if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert not torch.equal(tuned[key], base["bert." + key if "bert." + key in base else key])
    words = next(k for k in tuned if k.endswith("word_embeddings.weight"))
    assert torch.equal(tuned[words], base["bert." + words if "bert." + words in base else words])

    model = transferops.load(out)
    assert isinstance(model, ProbeModel)
    texts = df["text"].tolist()[:10]
    # the head reads the L2-normalised embedding (stored with the LR); the served embedding stays the raw pool
    assert model.l2_input and m["training"]["contrastive"]["head"]["input"] == "l2_normalised"
    emb = model.embed(texts)
    assert not np.allclose(np.linalg.norm(emb, axis=1), 1.0)
    from transferops.artifacts.linear import l2_normalise, lr_logits

    np.testing.assert_allclose(model.logits(texts), lr_logits(model.estimators, l2_normalise(emb), 3, False))
    assert not np.allclose(model.logits(texts), lr_logits(model.estimators, emb, 3, False))
    preds = model.predict(texts)
    assert len(preds) == 10 and set(preds) <= set(WORDS)
    rep = evaluate(out)  # the saved artifact scores exactly what training recorded
    assert rep.metrics["macro_f1"] == pytest.approx(m["metrics"]["test"]["macro_f1"], abs=1e-9)
    runner = open_runner("c", out)  # what `serve` runs
    np.testing.assert_allclose(runner.infer(texts).proba, model.predict_proba(texts), atol=1e-5)
    assert list(runner.infer(texts).labels) == list(preds)
    from transferops.deploy.onnx_export import export_onnx

    ex = export_onnx(out, tmp_path / "onnx", quantize=None)  # the probe kind's export: tuned body + LR, one graph
    assert ex.passed and ex.parity["argmax_agreement"] == 1.0
    np.testing.assert_allclose(transferops.load(tmp_path / "onnx").predict_proba(texts), model.predict_proba(texts),
                               atol=1e-4)


def test_contrastive_pulls_same_class_together(tiny_bert: Path) -> None:
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.contrastive import ContrastiveTuner
    from transferops.inference import forward
    from transferops.modeling import load_encoder, load_tokenizer

    df = frame(10)
    labels = sorted(WORDS)
    y = np.asarray([labels.index(v) for v in df["label"]])
    texts = df["text"].tolist()

    def gap(model: torch.nn.Module) -> float:
        emb = forward(model, load_tokenizer(tiny_bert), texts, max_length=32, output="embedding", desc=None)[1]
        z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        sim, same = z @ z.T, y[:, None] == y[None, :]
        off = ~np.eye(len(y), dtype=bool)
        return float(sim[same & off].mean() - sim[~same].mean())

    before = gap(load_encoder(tiny_bert))
    cfg = TrainConfig(strategy="contrastive", lr=1e-3, max_length=32, precision="fp32", seed=0)
    ft = ContrastiveTuner(cfg, steps=25).fit(texts, y, texts[:6], y[:6], labels=labels, task="multiclass",
                                             checkpoint_path=tiny_bert)
    assert gap(ft.model_) > before + 0.05  # same-class pairs closer than different-class ones, more than before
    assert ft.predict_logits(texts).shape == (len(texts), 3)
    assert ft.contrastive_["final_train_loss"] < ft.result_.history[0]["loss"]


def test_in_batch_pairs_are_balanced_and_a_pure_function_of_position(tiny_bert: Path) -> None:
    from transferops.finetune.contrastive import InBatchPairs, plan_steps, st_pooling
    from transferops.modeling import load_tokenizer

    y = np.asarray([0] * 30 + [1] * 5 + [2] * 5)
    src = InBatchPairs([f"t{i}" for i in range(40)], y, load_tokenizer(tiny_bert), batch=15, steps=200,
                       max_length=16, seed=3)
    assert np.array_equal(src.indices(0, 7), src.indices(0, 7)) and not np.array_equal(src.indices(0, 7),
                                                                                     src.indices(0, 8))
    drawn = np.concatenate([y[src.indices(0, i)] for i in range(200)])
    share = np.bincount(drawn) / len(drawn)
    assert share.max() < 0.5  # class-balanced draws, not 75 % of the majority class
    b = next(iter(src.batches(0, 5)))
    assert b["input_ids"].shape[0] == 15 and torch.equal(b["labels"], torch.as_tensor(y[src.indices(0, 5)]))
    assert plan_steps(40, 16, 150) == (50, 6000) and plan_steps(4, 16, 1)[0] == 20  # MIN_STEPS
    assert st_pooling(tiny_bert) == "mean"  # no sentence-transformers config: mean


def test_contrastive_bad_input_is_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.contrastive import ContrastiveTuner

    cfg = TrainConfig(strategy="contrastive", max_length=32)
    with pytest.raises(ConfigError, match="^label: strategy contrastive needs at least 2 classes"):
        ContrastiveTuner(cfg).fit(["a b", "c d"], np.array([0, 0]), [], np.array([]), labels=["x", "y"],
                                  task="multiclass", checkpoint_path=tiny_bert)
    with pytest.raises(ConfigError, match="^task: strategy contrastive trains single-label"):
        ContrastiveTuner(cfg).fit(["a b"], np.array([[1, 0]]), [], np.array([]), labels=["x", "y"],
                                  task="multilabel", checkpoint_path=tiny_bert)
    with pytest.raises(ConfigError, match="pairs_per_example"):
        ContrastiveTuner(cfg, pairs_per_example=0)
    rows = [{"text": f"w{i} and more", "tags": "a|b" if i % 2 else "b"} for i in range(40)]
    csv = tmp_path / "ml.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert main(["-q", "train", "--data", str(csv), "--out", str(tmp_path / "ml"), "--checkpoint", str(tiny_bert),
                 "--strategy", "contrastive", "--label-column", "tags", "--label-sep", "|",
                 "--no-near-duplicates"]) == 2


def test_search_tries_contrastive_on_few_labels_only(tiny_bert: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import transferops.finetune.contrastive as contrastive

    df = frame(12)  # 12 per class: few labels, the default search tries contrastive and ends there
    res = transferops.train(df, out=tmp_path / "s", checkpoint=str(tiny_bert), search=True, time_budget="10m",
                            **FAST)
    rows = {c["name"]: c for c in res.manifest["search"]["leaderboard"]}
    row = rows["contrastive"]
    assert row["status"] == "ok" and row["params"]["steps"] >= contrastive.MIN_STEPS and row["params"]["pairs"] > 0
    assert [c["name"] for c in res.manifest["search"]["leaderboard"]][:4] == ["tfidf_logreg", "probe", "stack",
                                                                              "contrastive"]
    for name in ("head", "freeze", "lora", "full"):
        assert rows[name]["status"] == "skipped" and "few labels" in rows[name]["reason"]
    winner = res.manifest["search"]["winner"]
    check = res.manifest["search"].get("few_shot_check")
    if winner != "contrastive":  # at few labels only a significant paired lead on validation overturns it
        assert check is not None and check["challenger"] == winner and not check["kept"] and check["ci_low"] > 0
    elif check is not None:  # a higher score that was not significant: recorded, and contrastive kept
        assert check["kept"] and check["ci_low"] <= 0 and "kept at few labels" in res.manifest["search"]["reason"]
    if winner == "contrastive":  # saved as the probe kind with the tuned body, refit on train + validation
        m = res.manifest
        assert m["kind"] == "probe" and m["training"]["contrastive"]["steps"] >= 20
        assert m["refit"]["done"] and m["refit"]["reason"].startswith("auto: contrastive at few labels")
        assert m["refit"]["rows"] == m["splits"]["sizes"]["train"] + m["splits"]["sizes"]["validation"]
        assert m["training"]["contrastive"]["pairs"] > row["params"]["pairs"]  # the pair budget grew with the rows
        assert "refit on train + validation" in res.summary()
    # --no-refit keeps the searched model
    res = transferops.train(df, out=tmp_path / "n", checkpoint=str(tiny_bert), search=True, refit=False,
                            candidates=["tfidf_logreg", "contrastive"], **FAST)
    assert res.manifest["search"]["winner"] == "contrastive" and "refit" not in res.manifest  # 3 rows: it stays
    monkeypatch.setattr(contrastive, "SEARCH_MAX_PER_CLASS", 2)
    res = transferops.train(df, out=tmp_path / "t", checkpoint=str(tiny_bert), search=True,
                            candidates=["tfidf_logreg", "contrastive"], **FAST)
    row = {c["name"]: c for c in res.manifest["search"]["leaderboard"]}["contrastive"]
    assert row["status"] == "skipped" and "per class" in row["reason"]


def test_refit_by_default_only_for_contrastive_at_few_labels() -> None:
    from transferops.finetune.search import FEW_SHOT_PER_CLASS, refit_by_default

    assert "5 validation rows" in (refit_by_default("contrastive", 35, 5, 5) or "")
    assert refit_by_default("contrastive", FEW_SHOT_PER_CLASS * 5, 5, 5) is not None
    assert refit_by_default("contrastive", FEW_SHOT_PER_CLASS * 5 + 1, 5, 5) is None  # above few labels
    assert refit_by_default("probe", 35, 5, 5) is None and refit_by_default("tfidf_logreg", 35, 5, 5) is None
    assert refit_by_default("contrastive", 35, 0, 5) is None  # nothing to add


def test_few_shot_prior_stands_unless_the_paired_lead_is_significant() -> None:
    """Seed 1 of the smoke run: the probe right on 5 of 5 validation rows, contrastive on 4 — one row is no
    evidence, contrastive stays. Right on 20 of 20 vs 12 of 20: the lead is real, the challenger wins."""
    from transferops.finetune.search import prior_stands

    kept, d = prior_stands(np.array([True] * 5), np.array([True] * 4 + [False]))
    assert kept and d["discordant"] == 1 and d["ci_low"] < 0 < d["difference"]
    kept, d = prior_stands(np.array([True] * 20), np.array([True] * 12 + [False] * 8))
    assert not kept and d["ci_low"] > 0 and d["discordant"] == 8
    kept, _ = prior_stands(np.array([True, False] * 5), np.array([True, False] * 5))  # identical: no lead
    assert kept


def test_learning_curve_refits_contrastive_with_its_own_trainer(tiny_bert: Path, tmp_path: Path) -> None:
    # a contrastive run's curve went to the classifier trainer, whose 'contrastive' entry only raises
    out = tmp_path / "c"
    transferops.train(frame(), out=out, checkpoint=str(tiny_bert), strategy="contrastive", max_steps=6, **FAST)
    assert main(["-q", "learning-curve", "--model", str(out), "--fractions", "0.25,1"]) == 0
    lc = json.loads((out / "transferops.json").read_text())["learning_curve"]
    assert lc["recipe"] == "contrastive" and [p["fraction"] for p in lc["points"]] == [0.25, 1.0]
    assert lc["points"][0]["n_train"] < lc["points"][1]["n_train"]
    assert all(0.0 <= p["model"] <= 1.0 for p in lc["points"])
