"""Fine-tuning on a tiny random BERT: every strategy, tasks, losses, save/load round trip, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import transferops
from transferops.errors import ConfigError
from transferops.finetune.config import TrainConfig
from transferops.finetune.losses import FocalLoss, balanced_weights
from transferops.finetune.strategies import choose_auto
from transferops.finetune.trainer import linear_warmup

FAST = {"max_length": 64, "batch_size": 16, "check_near_duplicates": False, "lr": 2e-3}


@pytest.mark.parametrize("strategy", ["head", "freeze", "full", "lora"])
def test_every_strategy_trains_saves_and_reloads(strategy: str, tiny_bert: Path, bbc_small_csv: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / strategy
    res = transferops.train(bbc_small_csv, out=out, checkpoint=str(tiny_bert), strategy=strategy, epochs=2,
                            **FAST)
    m = res.manifest
    assert m["strategy"]["name"] == strategy
    assert 0 < m["strategy"]["trainable_params"] <= m["strategy"]["total_params"]
    if strategy != "full":
        assert m["strategy"]["trainable_params"] < m["strategy"]["total_params"]
    assert len(m["history"]) >= 1 and m["splits"]["sizes"]["test"] == 40
    assert ((out / "data" / "test.parquet").exists() and not os.access(out / "data" / "test.parquet", os.W_OK)) \
        or os.geteuid() == 0
    # Round trip: a fresh load gives the probabilities computed at training time.
    model = transferops.load(out)
    test = model.split("test")
    p = model.predict_proba(test["text"].tolist())
    assert p.shape == (40, 5) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    acc = float((p.argmax(1) == [model.labels.index(y) for y in test["label"]]).mean())
    assert acc == pytest.approx(m["metrics"]["test"]["accuracy"], abs=1e-9)
    if strategy == "lora":
        assert (out / "model" / "adapter_config.json").exists()
        size = sum(f.stat().st_size for f in (out / "model").glob("adapter_model.*"))
        assert size < 2_000_000
    else:
        from transformers import AutoModelForSequenceClassification

        plain = AutoModelForSequenceClassification.from_pretrained(out / "model")
        assert plain.config.id2label[0] == model.labels[0]


def test_training_loss_falls_and_baseline_is_recorded(tiny_run: Path) -> None:
    m = json.loads((tiny_run / "transferops.json").read_text())
    # epoch ends (mid-epoch validation points have a fractional epoch: docs/finetune.md)
    losses = [h["train_loss"] for h in m["history"] if isinstance(h["epoch"], int)]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert m["baseline"]["tfidf_logreg"]["metrics"]["accuracy"] > 0.8
    assert "majority" in m["baseline"]


def test_multilabel_with_focal_loss(tiny_bert: Path, tmp_path: Path, bbc_small: pd.DataFrame) -> None:
    df = bbc_small.copy()
    df["tags"] = [lbl + ("|news" if i % 2 else "") for i, lbl in enumerate(df["label"])]
    p = tmp_path / "ml.csv"
    df.to_csv(p, index=False)
    res = transferops.train(p, out=tmp_path / "ml", label_column="tags", label_sep="|", checkpoint=str(tiny_bert),
                            strategy="full", epochs=1, loss="focal", focal_gamma=2.0, **FAST)
    assert res.manifest["task"] == "multilabel" and "news" in res.manifest["labels"]
    assert "hamming_loss" in res.manifest["metrics"]["test"]
    m = transferops.load(tmp_path / "ml")
    proba = m.predict_proba(["a text"])
    assert proba.shape == (1, 6) and not np.allclose(proba.sum(), 1.0)  # sigmoid, not softmax
    assert isinstance(m.predict(["a text"])[0], list)


def test_binary_task_with_class_weights(tiny_bert: Path, tmp_path: Path, bbc_small: pd.DataFrame) -> None:
    df = bbc_small.copy()
    df["label"] = np.where(df["label"] == "sport", "sport", "other")
    p = tmp_path / "bin.csv"
    df.to_csv(p, index=False)
    res = transferops.train(p, out=tmp_path / "bin", checkpoint=str(tiny_bert), strategy="head", epochs=3,
                            class_weight="balanced", oversample=True, **FAST)
    assert res.manifest["task"] == "binary" and res.manifest["labels"] == ["other", "sport"]


def test_focal_loss_properties() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 0])
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert FocalLoss(gamma=0.0)(logits, y) == pytest.approx(float(ce), rel=1e-6)
    # Focusing down-weights easy examples, so the focal loss is smaller than CE.
    assert float(FocalLoss(gamma=2.0)(logits, y)) < float(ce)
    w = balanced_weights(torch.tensor([0, 0, 0, 1]), 2)
    assert w.tolist() == pytest.approx([4 / 6, 2.0])


def test_auto_strategy_follows_source_text_table() -> None:
    assert choose_auto(500, 6)[:2] == ("freeze", {"freeze_layers": 4})
    assert choose_auto(5000, 6)[:2] == ("freeze", {"freeze_fraction": 0.5})
    assert choose_auto(50_000, 6)[0] == "full"


def test_auto_strategy_is_recorded_with_reason(tiny_run: Path, tiny_bert: Path, bbc_small_csv: Path,
                                               tmp_path: Path) -> None:
    res = transferops.train(bbc_small_csv, out=tmp_path / "auto", checkpoint=str(tiny_bert), strategy="auto",
                            epochs=1, **FAST)
    assert res.manifest["strategy"]["name"] == "freeze"
    assert "< 1,000" in res.manifest["strategy"]["reason"]


def test_warmup_schedule_is_pure() -> None:
    assert linear_warmup(0, 10, 100) == pytest.approx(0.1)
    assert linear_warmup(9, 10, 100) == pytest.approx(1.0)
    assert linear_warmup(100, 10, 100) == 0.0


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="strategy: 'big' is not one of"):
        TrainConfig(strategy="big")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        TrainConfig.from_dict({"learning_rate": 1e-4})
    with pytest.raises(ConfigError, match="lora.r"):
        TrainConfig.from_dict({"lora": {"r": 0}})
    with pytest.raises(ConfigError, match="epochs: expected a number"):
        TrainConfig(epochs="3")  # type: ignore[arg-type]


def test_refuses_to_overwrite_a_trained_model(tiny_run: Path, bbc_small_csv: Path, tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match="already holds a trained model"):
        transferops.train(bbc_small_csv, out=tiny_run, checkpoint=str(tiny_bert))


def test_unknown_checkpoint_lists_available(bbc_small_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="minilm-l6, mpnet-base"):
        transferops.train(bbc_small_csv, out=tmp_path / "x", checkpoint="bert-huge")


def test_dedupe_drops_leaking_train_rows(tiny_bert: Path, tmp_path: Path, bbc_small: pd.DataFrame) -> None:
    df = pd.concat([bbc_small, bbc_small.iloc[:30]], ignore_index=True)  # 30 exact duplicates
    p = tmp_path / "dups.csv"
    df.to_csv(p, index=False)
    res = transferops.train(p, out=tmp_path / "dd", checkpoint=str(tiny_bert), strategy="head", epochs=1,
                            dedupe=True, **FAST)
    leak = res.manifest["leakage"]
    assert leak["exact_duplicates"] > 0
    assert res.manifest["splits"]["train_used"] < res.manifest["splits"]["sizes"]["train"]
    assert any("leakage" in w for w in res.warnings)


def test_resume_after_kill(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path) -> None:
    """Kill -9 a real training process after its first epoch checkpoint, then resume it."""
    out = tmp_path / "killed"
    code = (
        "import sys, transferops; transferops.train(sys.argv[1], out=sys.argv[2], checkpoint=sys.argv[3], "
        "strategy='full', epochs=8, early_stopping_patience=None, max_length=64, batch_size=8, lr=1e-3, "
        "check_near_duplicates=False, keep_state=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(bbc_small_csv), str(out), str(tiny_bert)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "training_state" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 0):
        time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "transferops.json").exists()
    # A kill between the two renames of a checkpoint write leaves the previous one in ".old".
    saved = state if state.exists() else out / "training_state.old" / "state.json"
    done_epochs = json.loads(saved.read_text())["epoch"] + 1
    with pytest.raises(ConfigError, match="--resume"):
        transferops.train(bbc_small_csv, out=out, checkpoint=str(tiny_bert))
    res = transferops.train(bbc_small_csv, out=out, checkpoint=str(tiny_bert), strategy="full", epochs=8,
                            early_stopping_patience=None, max_length=64, batch_size=8, lr=1e-3, max_steps=None,
                            check_near_duplicates=False, resume=True)
    assert res.manifest["training"]["resumed_from_epoch"] == done_epochs
    epochs = [h["epoch"] for h in res.manifest["history"] if isinstance(h["epoch"], int)]
    assert epochs == list(range(1, 9))  # no epoch lost or repeated
    steps = [h["step"] for h in res.manifest["history"]]  # nor any mid-epoch validation point
    assert steps == sorted(set(steps))
