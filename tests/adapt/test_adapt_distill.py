"""Distillation: the student learns the teacher, is a normal artifact, and label maps must match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import transferops
from transferops.adapt.distill import DistillConfig, distill, distill_loss, truncate_layers
from transferops.errors import ConfigError


def test_student_from_scratch_agrees_with_teacher_above_chance(tmp_path: Path, toy_teacher: Path,
                                                               tiny_bare_bert: Path) -> None:
    teacher = transferops.load(toy_teacher)
    test = teacher.split("test")
    t_pred = teacher.predict(test["text"].tolist())
    assert np.mean(np.asarray(t_pred) == test["label"].to_numpy()) >= 0.9  # a teacher worth copying
    assert len(set(t_pred)) == 2
    # A randomly initialised bare encoder: anything it gets right it learned from the teacher.
    res = distill(toy_teacher, out=tmp_path / "student", student=str(tiny_bare_bert), epochs=6, lr=2e-3,
                  latency_texts=5)
    student = transferops.load(res.path)
    s_pred = student.predict(test["text"].tolist())
    agreement = float(np.mean(np.asarray(s_pred) == np.asarray(t_pred)))
    assert agreement >= 0.8  # chance is 0.5 on this balanced two-class set
    assert res.comparison["agreement"] == pytest.approx(agreement)
    c = res.comparison
    assert {"accuracy", "macro_f1", "params", "size_bytes", "latency_ms"} <= set(c["student"])
    assert c["teacher"]["latency_ms"]["n"] == 5
    assert "student keeps" in res.summary()


def test_truncated_student_is_a_standard_artifact(tmp_path: Path, toy_teacher: Path, toy_csv: Path) -> None:
    res = distill(toy_teacher, out=tmp_path / "small", layers=1, epochs=1, latency_texts=0,
                  unlabeled=toy_csv)
    m = res.manifest
    tm = json.loads((toy_teacher / "transferops.json").read_text())
    assert set(tm) - set(m) <= {"calibration", "thresholds", "decision_threshold", "positive_index"}
    assert m["labels"] == tm["labels"] and m["task"] == tm["task"]
    assert m["splits"]["test_sha256"] == tm["splits"]["test_sha256"]
    assert m["strategy"]["name"] == "distill"
    transferops.TrainConfig.from_dict(m["config"])  # a valid training config
    assert m["distillation"]["student_init"]["layers"] == {"kept": 1, "of": 2}
    # unlabeled texts that are validation/test texts are dropped (they are in toy.csv)
    unl = m["distillation"]["unlabeled"]
    assert unl["dropped"] >= tm["splits"]["sizes"]["test"]
    cfg = json.loads((tmp_path / "small" / "model" / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 1
    loaded = transferops.load(res.path)
    assert loaded.torch_model.config.num_hidden_layers == 1
    assert loaded.predict_proba(["rain and wind today"]).shape == (1, 2)
    assert (tmp_path / "small" / "data" / "train.parquet").exists()


def test_label_map_mismatch_is_an_error(tmp_path: Path, toy_teacher: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(toy_teacher, other)
    mf = other / "transferops.json"
    m = json.loads(mf.read_text())
    m["labels"] = ["negative", "positive"]
    mf.write_text(json.dumps(m))
    with pytest.raises(ConfigError, match="label map"):
        distill(toy_teacher, out=tmp_path / "s", student=str(other))


def test_student_or_layers_required_and_layers_bounded(tmp_path: Path, toy_teacher: Path) -> None:
    with pytest.raises(ConfigError, match="student"):
        distill(toy_teacher, out=tmp_path / "s")
    with pytest.raises(ConfigError, match="layers"):
        distill(toy_teacher, out=tmp_path / "s", layers=2)  # the teacher has 2 layers: nothing to drop
    with pytest.raises(ConfigError, match="alpha"):
        DistillConfig(layers=1, alpha=1.5)


def test_distill_loss_terms() -> None:
    s = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    t = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    y = torch.tensor([0, 1])
    lab = torch.tensor([True, False])
    # identical logits: the soft term is zero, only the hard CE on the one labeled row is left
    ce = torch.nn.functional.cross_entropy(s[:1], y[:1])
    got = distill_loss(s, t, y, lab, temperature=2.0, alpha=0.5, multilabel=False)
    torch.testing.assert_close(got, 0.5 * ce)
    # alpha=1: pure T²-scaled KL, positive when the student differs
    far = distill_loss(-s, t, y, lab, temperature=2.0, alpha=1.0, multilabel=False)
    kl = torch.nn.functional.kl_div(torch.log_softmax(-s / 2, -1), torch.log_softmax(t / 2, -1),
                                    reduction="batchmean", log_target=True) * 4
    torch.testing.assert_close(far, kl)
    assert float(far) > 0


def test_truncate_layers_keeps_the_first_k(tiny_bert: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    m = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    first = m.bert.encoder.layer[0]
    truncate_layers(m, 1)
    assert len(m.bert.encoder.layer) == 1 and m.bert.encoder.layer[0] is first
    assert m.config.num_hidden_layers == 1
    out = m(input_ids=torch.tensor([[101, 2000, 102]])).logits
    assert out.shape == (1, 2)


def test_multilabel_soft_term_is_smallest_at_the_teacher() -> None:
    t = torch.tensor([[2.0, -1.0, 0.3], [-0.5, 1.5, 0.0]])
    y = torch.tensor([[1, 0, 1], [0, 1, 0]])
    lab = torch.tensor([False, False])  # unlabeled rows: soft term only
    at = distill_loss(t.clone(), t, y, lab, temperature=2.0, alpha=0.5, multilabel=True)
    for shift in (-1.0, 1.0):
        assert float(distill_loss(t + shift, t, y, lab, temperature=2.0, alpha=0.5, multilabel=True)) > float(at)


def test_student_cuts_long_texts_as_the_teacher_does(tmp_path: Path, toy_teacher: Path,
                                                     tiny_bare_bert: Path) -> None:
    from transferops.truncation import TRUNCATION_KEY, truncation_of

    teacher = tmp_path / "teacher"
    shutil.copytree(toy_teacher, teacher)
    tc = teacher / "model" / "tokenizer_config.json"
    doc = json.loads(tc.read_text())
    doc[TRUNCATION_KEY] = "head_tail"  # as `train --truncation head_tail` saves it
    tc.write_text(json.dumps(doc))
    assert truncation_of(transferops.load(teacher).tokenizer) == "head_tail"
    res = distill(teacher, out=tmp_path / "student", student=str(tiny_bare_bert), epochs=1, latency_texts=0)
    assert truncation_of(transferops.load(res.path).tokenizer) == "head_tail"
