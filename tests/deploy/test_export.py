"""ONNX export: fp32 parity with PyTorch, int8 measured, gates, the exported folder is self-sufficient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops._util import read_json
from transferops.cli.main import main
from transferops.constants import EXPORT_MANIFEST, MANIFEST_NAME, ONNX_INT8_MODEL, ONNX_MODEL
from transferops.deploy.onnx_export import MAX_PROB_DIFF, MIN_ARGMAX_AGREEMENT, export_onnx
from transferops.deploy.onnx_runtime import OnnxModel
from transferops.errors import ArtifactError, ConfigError, GateFailedError


def _texts(bbc_small: pd.DataFrame, n: int = 60) -> list[str]:
    # Mixed lengths, including ones beyond max_length (truncation must match too).
    texts = [str(t) for t in bbc_small["text"].iloc[:n]]
    return [*texts, "", "a", "Shares rose sharply. " * 40]


def test_export_folder_is_self_sufficient(tiny_export: Path) -> None:
    for name in (ONNX_MODEL, ONNX_INT8_MODEL, EXPORT_MANIFEST, MANIFEST_NAME, "tokenizer.json",
                 "data/validation.parquet"):
        assert (tiny_export / name).exists(), name
    em = read_json(tiny_export / EXPORT_MANIFEST)
    assert em["opset"] == 17 and em["outputs"] == ["logits", "embedding"]
    assert em["passed"] is True and em["failures"] == []
    assert em["parity"]["argmax_agreement"] >= MIN_ARGMAX_AGREEMENT
    assert em["parity"]["max_prob_diff"] <= MAX_PROB_DIFF
    assert em["sizes"]["onnx_int8"] < 0.5 * em["sizes"]["onnx_fp32"]
    assert set(em["int8"]) >= {"accuracy_pytorch", "accuracy_int8", "accuracy_drop"}


def test_fp32_parity_with_pytorch(tiny_run: Path, tiny_export: Path, bbc_small: pd.DataFrame) -> None:
    texts = _texts(bbc_small)
    pt = transferops.load(tiny_run)
    ox = OnnxModel(tiny_export, variant="fp32")
    p_pt, p_ox = pt.predict_proba(texts), ox.predict_proba(texts)
    assert p_ox.shape == p_pt.shape == (len(texts), len(pt.labels))
    assert np.abs(p_pt - p_ox).max() <= MAX_PROB_DIFF
    assert (p_pt.argmax(1) == p_ox.argmax(1)).mean() >= MIN_ARGMAX_AGREEMENT
    # the second output is the mean-pooled backbone embedding, same as TransferOpsModel.embed
    np.testing.assert_allclose(ox.embed(texts[:8]), pt.embed(texts[:8]), atol=1e-4)


def test_int8_close_to_fp32(tiny_run: Path, tiny_export: Path, bbc_small: pd.DataFrame) -> None:
    texts = _texts(bbc_small)
    p32 = OnnxModel(tiny_export, variant="fp32").predict_proba(texts)
    p8 = OnnxModel(tiny_export).predict_proba(texts)  # int8 is the default variant
    assert OnnxModel(tiny_export).variant == "int8"
    assert np.abs(p32 - p8).max() < 0.05
    np.testing.assert_allclose(p8.sum(1), 1.0, atol=1e-5)
    # the recorded drop is the one we can recompute from the exported validation split
    em = read_json(tiny_export / EXPORT_MANIFEST)["int8"]
    val = OnnxModel(tiny_export).split("validation")
    pred = np.asarray(OnnxModel(tiny_export).predict(val["text"].tolist()))
    acc8 = float(np.mean(pred == val["label"].to_numpy()))
    assert acc8 == pytest.approx(em["accuracy_int8"])


def test_load_returns_onnx_model(tiny_run: Path, tiny_export: Path) -> None:
    m = transferops.load(tiny_export)
    assert isinstance(m, OnnxModel)
    pt = transferops.load(tiny_run)
    assert m.labels == pt.labels and m.task == pt.task and m.manifest["labels"] == pt.labels
    assert m.predict(["Shares rose sharply"])[0] in m.labels
    assert m.embed(["a", "b"]).shape[0] == 2
    with pytest.raises(ArtifactError, match="ONNX export"):
        _ = m.torch_model
    with pytest.raises(ArtifactError, match=r"export\.json"):
        OnnxModel(tiny_run)


def test_lora_is_merged_before_export(tiny_lora: Path, tmp_path: Path, bbc_small: pd.DataFrame) -> None:
    res = export_onnx(tiny_lora, tmp_path / "lora-onnx", quantize=None)
    assert res.passed and res.int8 is None and not (tmp_path / "lora-onnx" / ONNX_INT8_MODEL).exists()
    texts = _texts(bbc_small, 20)
    np.testing.assert_allclose(transferops.load(tmp_path / "lora-onnx").predict_proba(texts),
                               transferops.load(tiny_lora).predict_proba(texts), atol=MAX_PROB_DIFF)


def test_int8_gate_fails_with_exit_1(tiny_run: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gated"
    # -50 points: int8 would have to beat PyTorch by 50 points, which it cannot.
    rc = main(["--quiet", "export", "--model", str(tiny_run), "--out", str(out), "--max-drop", "-50"])
    assert rc == 1
    assert "int8 accuracy drop" in capsys.readouterr().err
    em = read_json(out / EXPORT_MANIFEST)
    assert em["passed"] is False and em["failures"]
    with pytest.raises(GateFailedError, match="max-drop"):
        export_onnx(tiny_run, out, max_drop=-0.5, overwrite=True)


def test_cli_export_ok_and_refuses_existing(tiny_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ok"
    assert main(["--quiet", "export", "--model", str(tiny_run), "--out", str(out), "--max-drop", "100"]) == 0
    assert "fp32 parity" in capsys.readouterr().out
    assert main(["--quiet", "export", "--model", str(tiny_run), "--out", str(out)]) == 2
    with pytest.raises(ConfigError, match="out"):
        export_onnx(tiny_run, tiny_run)
    with pytest.raises(ConfigError, match="quantize"):
        export_onnx(tiny_run, tmp_path / "x", quantize="int4")  # type: ignore[arg-type]


@pytest.mark.slow
def test_minilm_parity_and_int8_drop(bbc_small_csv: Path, tmp_path: Path) -> None:
    # An under-trained model (near-uniform probabilities) flips argmaxes under any rounding; train
    # enough that the model is worth serving, as in the benchmark.
    run = tmp_path / "minilm"
    transferops.train(bbc_small_csv, out=run, checkpoint="minilm-l6", strategy="freeze", epochs=3, lr=5e-4,
                      max_length=64, batch_size=16, check_near_duplicates=False)
    res = export_onnx(run, tmp_path / "minilm-onnx", quantize="int8", max_drop=1.0)
    assert res.parity["argmax_agreement"] >= MIN_ARGMAX_AGREEMENT
    assert res.parity["max_prob_diff"] <= MAX_PROB_DIFF
    assert res.int8 is not None
    assert res.int8["accuracy_drop"] <= 0.05 + 1e-9  # at most one of the 20 validation texts
    assert res.int8["argmax_agreement"] >= 0.95
    assert res.sizes["onnx_int8"] <= 0.3 * res.sizes["onnx_fp32"]
