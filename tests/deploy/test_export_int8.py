"""int8 modes and the paired accuracy gate (issue 18): static QDQ, auto, the exact CI, session options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferops._util import read_json
from transferops.cli.main import main
from transferops.constants import EXPORT_MANIFEST, ONNX_INT8_MODEL
from transferops.deploy import quantize as qz
from transferops.deploy.onnx_export import export_onnx
from transferops.deploy.onnx_runtime import OnnxModel, session_options
from transferops.errors import ConfigError, GateFailedError


def test_paired_drop_exact_interval() -> None:
    # 1 of 60 validation rows flipped: a 1.67-point "drop" that the data cannot tell from zero
    one = qz.paired_drop([True] * 60, [True] * 59 + [False])
    assert one["drop"] == pytest.approx(1 / 60)
    assert one["ci_low"] < 0 < one["drop"] < one["ci_high"]
    assert not qz.gate_fails(one, 0.01)
    # a real drop on 1,000 rows: 30 fp32-right/int8-wrong, 2 the other way → 2.8 points, CI above 1 point
    ref = np.ones(1000, bool)
    ref[:2] = False
    q = ref.copy()
    q[:2] = True
    q[100:130] = False
    real = qz.paired_drop(ref, q)
    assert real["drop"] == pytest.approx(0.028)
    assert real["fp32_right_int8_wrong"] == 30 and real["fp32_wrong_int8_right"] == 2
    assert 0.01 < real["ci_low"] < real["drop"] < real["ci_high"]
    assert qz.gate_fails(real, 0.01) and not qz.gate_fails(real, 0.02)
    # large n: close to the Wald interval for a paired difference, D ± z·sqrt((b+c)/n² − (b−c)²/n³)
    sd = np.sqrt(32 / 1000**2 - 28**2 / 1000**3)
    assert real["ci_low"] == pytest.approx(0.028 - 1.96 * sd, abs=0.002)
    assert real["ci_high"] == pytest.approx(0.028 + 1.96 * sd, abs=0.002)
    # swapping the roles negates the interval; more rows, narrower interval
    swapped = qz.paired_drop(q, ref)
    assert swapped["ci_low"] == pytest.approx(-real["ci_high"]) and swapped["ci_high"] == pytest.approx(-real["ci_low"])
    big = qz.paired_drop(np.tile(ref, 4), np.tile(q, 4))
    assert big["ci_high"] - big["ci_low"] < 0.6 * (real["ci_high"] - real["ci_low"])
    same = qz.paired_drop([True, False, True], [True, False, True])
    assert same["drop"] == 0.0 and same["discordant"] == 0 and same["ci_low"] <= 0 <= same["ci_high"]
    assert same["exact_mcnemar_p"] == 1.0


def test_static_qdq_export(tiny_run: Path, tiny_export: Path, tmp_path: Path, bbc_small: pd.DataFrame) -> None:
    import onnx

    out = tmp_path / "static"
    res = export_onnx(tiny_run, out, quantize="static", max_drop=1.0, calibration_rows=32)
    q = res.int8
    assert q is not None and q["mode"] == "static" and q["format"] == "QDQ" and q["per_channel"] is True
    assert q["calibration_rows"] == 32 and q["calibration_split"] == "train"
    # the head stays fp32: its MatMul/Gemm nodes are excluded and consume no dequantised weight
    graph = onnx.load(str(out / ONNX_INT8_MODEL)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert q["excluded_nodes"] and any("classifier" in n for n in q["excluded_nodes"])
    dq_out = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    for n in graph.node:
        if n.name in q["excluded_nodes"]:
            assert not set(n.input) & dq_out, n.name
    # every held-out row the artifact has, plus training rows not used for calibration
    rows = q["rows"]
    n_val = len(pd.read_parquet(tiny_run / "data" / "validation.parquet"))
    n_test = len(pd.read_parquet(tiny_run / "data" / "test.parquet"))
    n_train = len(pd.read_parquet(tiny_run / "data" / "train.parquet"))
    assert rows == {"validation": n_val, "test": n_test, "train": n_train - 32}
    g = q["gate"]
    assert g["n"] == sum(rows.values()) and g["ci_low"] <= g["drop"] <= g["ci_high"]
    assert 0.0 <= q["agreement_fp32"] <= 1.0
    em = read_json(out / EXPORT_MANIFEST)
    assert em["int8"]["mode"] == "static" and em["int8"]["gate"] == g and em["passed"] is True
    texts = [str(t) for t in bbc_small["text"].iloc[:40]]
    p8 = OnnxModel(out).predict_proba(texts)
    p32 = OnnxModel(tiny_export, variant="fp32").predict_proba(texts)
    assert np.abs(p8 - p32).max() < 0.05
    np.testing.assert_allclose(p8.sum(1), 1.0, atol=1e-5)


def test_cli_auto_records_both_candidates(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "auto"
    assert main(["--quiet", "export", "--model", str(tiny_run), "--out", str(out), "--quantize", "auto",
                 "--calibration-rows", "16", "--accuracy-rows", "120", "--max-drop", "100"]) == 0
    q = read_json(out / EXPORT_MANIFEST)["int8"]
    cands = q["auto"]["candidates"]
    assert set(cands) == {"dynamic", "static"} and q["auto"]["chosen"] == q["mode"]
    assert q["gate"] == cands[q["mode"]]["gate"]
    assert q["gate"]["drop"] == min(c["gate"]["drop"] for c in cands.values())
    assert sorted(p.name for p in out.glob("model*.onnx")) == ["model.int8.onnx", "model.onnx"]


def _negate_logits(path: Path) -> None:
    """A deliberately broken int8 model: its logits negated (the least likely class wins)."""
    import onnx
    from onnx import helper

    m = onnx.load(str(path))
    for n in m.graph.node:
        for i, o in enumerate(n.output):
            if o == "logits":
                n.output[i] = "logits_raw"
    m.graph.node.append(helper.make_node("Neg", ["logits_raw"], ["logits"], name="broken_neg"))
    onnx.save(m, str(path))


def test_gate_fails_on_a_broken_int8_model(tiny_run: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import shutil

    import transferops

    # The random tiny model is a near-constant predictor (chance accuracy), so no int8 can lose accuracy
    # against it. Relabel a copy's splits with its own predictions: fp32 is then right on every row, and
    # an int8 model that gets rows wrong shows a real drop.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    pt = transferops.load(run)
    for split in ("train", "validation", "test"):
        f = run / "data" / f"{split}.parquet"
        df = pd.read_parquet(f)
        df["label"] = pt.predict([str(t) for t in df["text"]])
        os.chmod(f, 0o644)
        df.to_parquet(f)
    ok = export_onnx(run, tmp_path / "ok", quantize="dynamic", max_drop=0.01)  # the real int8 passes
    assert ok.passed and ok.int8 is not None and ok.int8["gate"]["ci_low"] <= 0.01

    real = qz.quantize_dynamic_file

    def broken(src: Path, dst: Path, **kw: object) -> dict[str, object]:
        info = real(src, dst, **kw)  # type: ignore[arg-type]
        _negate_logits(dst)
        return info

    monkeypatch.setattr(qz, "quantize_dynamic_file", broken)
    out = tmp_path / "broken"
    with pytest.raises(GateFailedError, match="lower bound > --max-drop"):
        export_onnx(run, out, quantize="dynamic", max_drop=0.01)
    em = read_json(out / EXPORT_MANIFEST)
    g = em["int8"]["gate"]
    assert em["passed"] is False and g["ci_low"] > 0.01 and em["int8"]["agreement_fp32"] < 0.9
    assert g["n"] == sum(em["int8"]["rows"].values()) > 100


def test_bad_options_are_one_line_errors(tiny_run: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--quiet", "export", "--model", str(tiny_run), "--out", str(tmp_path / "x"), "--quantize", "int4"])
    assert e.value.code == 2 and "--quantize" in capsys.readouterr().err
    assert main(["--quiet", "export", "--model", str(tiny_run), "--out", str(tmp_path / "y"),
                 "--calibration-rows", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "calibration_rows" in err and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match="accuracy_rows"):
        export_onnx(tiny_run, tmp_path / "z", accuracy_rows=-1)
    with pytest.raises(ConfigError, match="quantize mode"):
        qz.check_mode("fast")
    with pytest.raises(ConfigError, match="graph_optimization_level"):
        session_options(graph_optimization_level="max")
    with pytest.raises(ConfigError, match="not one of"):
        session_options(intra_threads=2)
    with pytest.raises(ConfigError, match="intra_op_num_threads"):
        session_options(intra_op_num_threads=-1)
    opts = session_options(2, graph_optimization_level="basic", execution_mode="parallel")
    assert opts.intra_op_num_threads == 2 and str(opts.graph_optimization_level).endswith("BASIC")
