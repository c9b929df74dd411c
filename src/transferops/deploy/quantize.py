"""int8 quantisation of an exported text graph, and the paired statistics its accuracy gate uses (issue 18).

Two modes, both per-channel int8 weights:

``dynamic``  ``onnxruntime.quantization.quantize_dynamic`` (QInt8 weights, activations scaled per batch at
             run time). No calibration data; every MatMul/Gemm with a constant weight becomes int8.
``static``   ``quantize_static`` in QDQ format with activation ranges calibrated (MinMax) on training
             texts. Only the encoder's weight MatMuls are quantised (``MatMulConstBOnly``): attention
             products, LayerNorm, Softmax, GELU, the embeddings and the head (pooler + classifier, or a
             probe's affine layer — every MatMul/Gemm after the last encoder layer) stay fp32.

``auto`` (in :func:`~transferops.deploy.onnx_export.export_onnx`) builds both and keeps the one with the
smaller measured accuracy drop (dynamic on a tie: it is faster on CPU).

The drop is paired: the same rows scored by the fp32 graph (which passed the parity gate against PyTorch)
and by the int8 one, ``drop = (b - c) / n`` with ``b`` rows "fp32 right, int8 wrong" and ``c`` the other
way. Its 95 % interval is Newcombe's hybrid score interval for a difference of paired proportions
(Newcombe 1998, method 10: Wilson intervals of both accuracies combined with the pairs' correlation),
which stays inside [-1, 1], needs no resampling and behaves at 0 or 1 discordant rows; the exact McNemar
p-value (binomial test on the ``b + c`` discordant rows) is recorded beside it.
The gate fails when the **lower** bound of the interval exceeds ``max_drop``: the data must show the
drop is larger than allowed, so one flipped row out of 60 cannot fail it, and a real drop does.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from transferops._extras import require
from transferops.errors import ConfigError
from transferops.evaluate.paired import CONFIDENCE

QuantizeMode = Literal["dynamic", "static", "auto"]
QUANTIZE_MODES: tuple[str, ...] = ("dynamic", "static", "auto")
#: The mode ``--quantize int8`` means (chosen by measurement: benchmarks/results/int8_accuracy_bench.md).
DEFAULT_MODE: QuantizeMode = "dynamic"
#: Name fragments of a classification head's nodes in graphs exported by torch.onnx (BERT, RoBERTa, MPNet,
#: DistilBERT heads): kept fp32 in static mode.
HEAD_MARKERS = ("pooler", "classifier", "pre_classifier", "score", "out_proj", "lm_head")


def check_mode(mode: str) -> QuantizeMode:
    if mode not in QUANTIZE_MODES:
        raise ConfigError(f"quantize mode: {mode!r} is not one of {', '.join(QUANTIZE_MODES)}")
    return mode  # type: ignore[return-value]


def paired_drop(ref_correct: Sequence[bool] | np.ndarray, q_correct: Sequence[bool] | np.ndarray, *,
                confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Accuracy drop ``ref - q`` on the same rows with its paired interval (module docstring; the statistics
    are :func:`transferops.evaluate.paired.paired_accuracy_difference`'s, named for the int8 gate).

    >>> s = paired_drop([True] * 60, [True] * 59 + [False])
    >>> round(s["drop"], 4), s["ci_low"] < 0 < s["drop"] < s["ci_high"], s["discordant"]
    (0.0167, True, 1)
    """
    from transferops.evaluate.paired import paired_accuracy_difference

    d = paired_accuracy_difference(ref_correct, q_correct, confidence=confidence)
    return {"n": d["n"], "accuracy_fp32": d["accuracy_a"], "accuracy_int8": d["accuracy_b"], "drop": d["difference"],
            "ci_low": d["ci_low"], "ci_high": d["ci_high"], "confidence": confidence,
            "fp32_right_int8_wrong": d["a_right_b_wrong"], "fp32_wrong_int8_right": d["a_wrong_b_right"],
            "discordant": d["discordant"], "exact_mcnemar_p": d["exact_mcnemar_p"], "method": d["method"]}


def gate_fails(stats: dict[str, Any], max_drop: float) -> bool:
    """THE int8 gate: the lower bound of the drop's interval is above ``max_drop`` (a fraction)."""
    return bool(stats["ci_low"] > max_drop + 1e-12)


@contextlib.contextmanager
def _quiet_root() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs a pre-processing hint on the root logger
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_dynamic_file(src: Path, dst: Path, *, per_channel: bool = True) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root():
        # per-channel weight scales: about half the probability error of per-tensor, same speed
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)
    return {"mode": "dynamic", "weight_type": "QInt8", "per_channel": per_channel,
            "method": "onnxruntime.quantization.quantize_dynamic"}


def head_nodes(path: Path) -> list[str]:
    """MatMul/Gemm nodes of the head: named like a head, or after the last LayerNormalization-like node of the
    encoder (a probe's affine layer, an unnamed classifier). These stay fp32 in static mode."""
    onnx = require("onnx", "onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = list(graph.node)
    last_norm = -1
    for i, nd in enumerate(nodes):
        if nd.op_type in ("LayerNormalization", "SkipLayerNormalization") or "LayerNorm" in nd.name:
            last_norm = i
    out = []
    for i, nd in enumerate(nodes):
        if nd.op_type not in ("MatMul", "Gemm"):
            continue
        lname = nd.name.lower()
        if any(m in lname for m in HEAD_MARKERS) or i > last_norm >= 0:
            out.append(nd.name)
    return out


def quantize_static_file(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], *, per_channel: bool = True,
                         exclude: list[str] | None = None) -> dict[str, Any]:
    """Static QDQ int8 of the encoder's weight MatMuls, activations calibrated on ``feeds`` (MinMax)."""
    q = require("onnxruntime.quantization", "onnx")
    if not feeds:
        raise ConfigError("calibration: no calibration texts; static int8 needs training texts "
                          "(use --quantize dynamic)")
    excluded = head_nodes(src) if exclude is None else list(exclude)

    class Reader(q.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    with _quiet_root():
        q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                          per_channel=per_channel, activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          nodes_to_exclude=excluded, calibrate_method=q.CalibrationMethod.MinMax,
                          extra_options={"MatMulConstBOnly": True})
    return {"mode": "static", "weight_type": "QInt8", "activation_type": "QInt8", "per_channel": per_channel,
            "format": "QDQ", "calibration_method": "MinMax", "op_types_quantized": ["MatMul (constant weight)"],
            "excluded_nodes": excluded, "calibration_batches": len(feeds),
            "method": "onnxruntime.quantization.quantize_static"}


__all__ = ["CONFIDENCE", "DEFAULT_MODE", "QUANTIZE_MODES", "QuantizeMode", "check_mode", "gate_fails", "head_nodes",
           "paired_drop", "quantize_dynamic_file", "quantize_static_file"]
