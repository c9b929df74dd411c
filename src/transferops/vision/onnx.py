"""ONNX export of an image model: fp32 with the parity gate, int8 by static QDQ quantisation.

``export_image(run, out)`` traces :class:`~transferops.vision.model.WithFeatures` (``pixel_values →
logits, embedding``, dynamic batch) with ``torch.onnx.export(dynamo=False, opset 17)``; the fp32 graph must
agree with PyTorch on the validation split (max |Δlogit| ≤ ``atol`` and identical argmax on ≥ 99 %) or the
export fails. Int8 uses onnxruntime's *static* quantisation (QDQ, per-channel weights, activations
calibrated on ``calibration`` validation images): dynamic quantisation leaves convolutions in fp32. Its
accuracy drop on the test split is measured and written to ``image_export.json``; the int8 gate is the text
export's (:func:`transferops.deploy.quantize.gate_fails`: the paired 95% interval's lower bound vs ``max_drop``).

The folder (kind ``image_onnx``, recognised by ``image_export.json``) loads with ``transferops.load`` and
serves like the PyTorch model.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops._extras import require
from transferops._util import read_json, write_json
from transferops.artifacts.classifier import ClassifierBase
from transferops.artifacts.kinds import register_kind
from transferops.constants import MANIFEST_NAME
from transferops.errors import ArtifactError, ConfigError, GateFailedError
from transferops.modality.image import IMAGE, ImageServeHooks
from transferops.modality.image.preprocess import ImagePreprocessing

EXPORT_JSON = "image_export.json"
VARIANTS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def _session(path: Path, threads: int | None = None) -> Any:
    ort = require("onnxruntime", "onnx")
    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(sess: Any, pixels: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    lg, em = [], []
    for s in range(0, len(pixels), batch_size):
        a, b = sess.run(None, {"pixel_values": pixels[s:s + batch_size]})
        lg.append(a)
        em.append(b)
    return np.concatenate(lg), np.concatenate(em)


def export_image(run: str | Path, out: str | Path, *, int8: bool = True, calibration: int = 64,
                 atol: float = 1e-3, threads: int | None = None, max_drop: float = 0.01) -> dict[str, Any]:
    """Export the image model in ``run`` to ``out`` (see the module docstring); returns the export report.

    As for text, :class:`~transferops.errors.GateFailedError` when the int8 accuracy drop exceeds ``max_drop``
    (a fraction: 0.01 = one point); ``image_export.json`` is still written so the failure can be inspected,
    and the failed int8 file is removed so the folder serves fp32.
    """
    if not -1 <= max_drop <= 1:
        raise ConfigError(f"max_drop: {max_drop!r} must be a fraction in [-1, 1] (0.01 = one point)")
    import torch

    from transferops.artifacts import load
    from transferops.deploy.quantize import gate_fails, paired_drop
    from transferops.metrics import classification_metrics
    from transferops.modeling import softmax

    require("onnx", "onnx")
    ort_q = require("onnxruntime.quantization", "onnx")
    require("onnxruntime", "onnx").set_default_logger_severity(3)
    run, out = Path(run), Path(out)
    model: Any = load(run)
    if getattr(model, "modality", None) != "image" or not hasattr(model, "feature_module"):
        raise ArtifactError(f"model: {run} is not a fine-tuned image model (kind {model.manifest.kind}); "
                            "export takes an image_model folder")
    pre: ImagePreprocessing = model.preprocessing
    out.mkdir(parents=True, exist_ok=True)
    module = model.feature_module.eval()
    dummy = torch.zeros(2, 3, pre.crop, pre.crop)
    fp32 = out / VARIANTS["fp32"]
    torch.onnx.export(module, (dummy,), str(fp32), input_names=["pixel_values"], output_names=["logits", "embedding"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
                      opset_version=17, dynamo=False)
    val = model.split("validation")["text"].tolist()
    test = model.split("test")
    labels = model.labels
    y_te = np.asarray([labels.index(v) for v in test["label"]])
    pv_val = pre.pixels(IMAGE.check_inputs(val))
    pv_te = pre.pixels(IMAGE.check_inputs(test["text"].tolist()))
    with torch.inference_mode():
        ref = np.concatenate([module(torch.from_numpy(pv_val[s:s + 32]))[0].numpy() for s in range(0, len(pv_val), 32)])
    sess = _session(fp32, threads)
    got, _ = _run(sess, pv_val)
    max_diff = float(np.abs(got - ref).max()) if len(ref) else 0.0
    agree = float((got.argmax(1) == ref.argmax(1)).mean()) if len(ref) else 1.0
    report: dict[str, Any] = {"modality": "image", "source": str(run.resolve()), "opset": 17,
                              "parity": {"max_abs_logit_diff": max_diff, "argmax_agreement": agree, "atol": atol,
                                         "rows": len(ref)}}
    if max_diff > atol and agree < 0.99:
        raise GateFailedError(f"export parity: ONNX fp32 differs from PyTorch (max |Δlogit| {max_diff:.2e} > {atol}, "
                              f"argmax agreement {agree:.3f}); the graph is not trustworthy")

    right: dict[str, np.ndarray] = {}  # per variant: which test images it gets right (the paired gate)

    def score(s: Any, variant: str) -> dict[str, float]:
        t0 = time.perf_counter()
        lg, _ = _run(s, pv_te)
        dt = time.perf_counter() - t0
        m = classification_metrics(y_te, softmax(lg))
        right[variant] = lg.argmax(1) == y_te
        return {"accuracy": float(m["accuracy"]), "macro_f1": float(m["macro_f1"]),
                "ms_per_image": 1000 * dt / max(len(pv_te), 1)}

    report["fp32"] = {"file": fp32.name, "bytes": fp32.stat().st_size, "test": score(sess, "fp32")}
    if int8:
        calib = pv_val[:calibration]

        class Reader(ort_q.CalibrationDataReader):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                self.it = iter([{"pixel_values": calib[i:i + 1]} for i in range(len(calib))])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.it, None)

        q = out / VARIANTS["int8"]
        import logging

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing" advice goes to the root logger
        try:
            ort_q.quantize_static(str(fp32), str(q), Reader(), quant_format=ort_q.QuantFormat.QDQ,
                                  per_channel=True, weight_type=ort_q.QuantType.QInt8,
                                  activation_type=ort_q.QuantType.QUInt8)
        finally:
            root.setLevel(level)
        s8 = _session(q, threads)
        r8 = score(s8, "int8")
        report["int8"] = {"file": q.name, "bytes": q.stat().st_size, "method": "static QDQ", "calibration_images":
                          len(calib), "test": r8,
                          "accuracy_drop": report["fp32"]["test"]["accuracy"] - r8["accuracy"],
                          "max_drop": max_drop,
                          # the text export's gate: the drop's paired 95% interval on the same images
                          "gate": paired_drop(right["fp32"], right["int8"])}
    shutil.copy(run / MANIFEST_NAME, out / MANIFEST_NAME)
    for extra in ("image_reference.json", "image_reference.safetensors"):
        if (run / extra).exists():
            shutil.copy(run / extra, out / extra)
    if (run / "data").exists():
        shutil.copytree(run / "data", out / "data", dirs_exist_ok=True)
    drop = report.get("int8", {}).get("accuracy_drop")
    if drop is not None and gate_fails(report["int8"]["gate"], max_drop):
        report["int8"]["failed"] = True
        report["int8_failed"] = report.pop("int8")  # the loader then serves fp32, never the failed variant
        (out / VARIANTS["int8"]).unlink(missing_ok=True)
        write_json(out / EXPORT_JSON, report)
        lo = report["int8_failed"]["gate"]["ci_low"]
        raise GateFailedError(f"int8 accuracy drop {drop * 100:.2f} points (95% interval from {lo * 100:.2f}) > "
                              f"--max-drop {max_drop * 100:.2f} points on the {len(y_te)} test images (fp32 is kept "
                              f"in {out}; export with --quantize none, or raise --max-drop if acceptable)")
    write_json(out / EXPORT_JSON, report)
    return report


class OnnxImageModel(ImageServeHooks, ClassifierBase):
    """An exported image model (kind ``image_onnx``): ``variant`` ``int8`` (default when present) or ``fp32``."""

    runtime = "onnx"
    modality = "image"
    no_torch_reason = "{path} is an ONNX export of an image model: no PyTorch model"
    not_exported_reason = "is already an ONNX export"

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None,
                 variant: str | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        self.report = read_json(self.path / EXPORT_JSON)
        self.preprocessing = ImagePreprocessing.from_dict(self.manifest["image"]["preprocessing"])
        self.variant = variant or ("int8" if "int8" in self.report else "fp32")
        if self.variant not in VARIANTS or not (self.path / VARIANTS[self.variant]).exists():
            raise ArtifactError(f"variant: {self.variant!r} is not in {self.path} (have: "
                                f"{', '.join(v for v in VARIANTS if (self.path / VARIANTS[v]).exists())})")
        self._sess: Any = None

    @property
    def tokenizer(self) -> Any:
        return self.preprocessing

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"variant": self.variant}

    def infer(self, texts: Sequence[Any], *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        if self._sess is None:
            self._sess = _session(self.path / VARIANTS[self.variant], self._threads)
        images = IMAGE.check_inputs(texts)
        if not images:
            return np.zeros((0, len(self.labels)), np.float32), np.zeros((0, 0), np.float32)
        return _run(self._sess, self.preprocessing.pixels(images), batch_size)


register_kind("image_onnx", OnnxImageModel, detect=lambda p: (p / EXPORT_JSON).exists())

__all__ = ["EXPORT_JSON", "VARIANTS", "OnnxImageModel", "export_image"]
