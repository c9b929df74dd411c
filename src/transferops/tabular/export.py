"""``export`` for a tabular model: the FT-Transformer to ONNX (opset 17, dynamic batch) behind the parity
gate; the trees stay in their safe skops file, the stack in JSON. The export folder is a complete
``tabular`` model folder whose transformer runs on ONNX Runtime.

Parity gate: on the validation rows (up to ``sample_size``), ONNX Runtime's probabilities must match
PyTorch's within ``atol`` and every decided label must agree; otherwise :class:`GateFailedError` (exit 1)
and the folder is removed. No int8 variant: the transformer here is a few hundred kilobytes. The graph has a
fixed batch of
:data:`ONNX_BATCH` rows (rtdl's attention reads the batch size with ``len()``, which the tracer and
``torch.export`` both freeze); the runtime pads the last chunk.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import ConfigError, GateFailedError

#: Rows per ONNX call (the graph has a fixed batch; see :func:`export_tabular`).
ONNX_BATCH = 64


def build_graph(module: Any, has_cont: bool, has_cat: bool) -> Any:
    """The module traced for ONNX: rtdl's forward with only the inputs the model has (explicit
    arguments, so ``torch.export`` sees one tensor per input)."""
    import torch

    class Both(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = module

        def forward(self, x_cont: Any, x_cat: Any) -> Any:
            return self.m(x_cont, x_cat)

    class ContOnly(Both):
        def forward(self, x_cont: Any) -> Any:  # type: ignore[override]
            return self.m(x_cont, None)

    class CatOnly(Both):
        def forward(self, x_cat: Any) -> Any:  # type: ignore[override]
            return self.m(None, x_cat)

    cls = Both if has_cont and has_cat else ContOnly if has_cont else CatOnly
    return cls().eval()


def export_tabular(model_dir: str | Path, out: str | Path, *, overwrite: bool = False, atol: float = 1e-4,
                   sample_size: int = 1000) -> dict[str, Any]:
    import torch

    from transferops._extras import require
    from transferops.artifacts.manifest import update_manifest
    from transferops.tabular.artifact import ONNX_FILE, TabularModel

    require("onnx", "onnx")
    src, dst = Path(model_dir), Path(out)
    model = TabularModel(src)
    if model.exported:
        raise ConfigError(f"--model: {src} is already an export; export the trained folder")
    if dst.exists():
        if not overwrite:
            raise ConfigError(f"--out: {dst} exists; pass --overwrite to replace it")
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("training_state"))
    info: dict[str, Any] = {"trees": "trees.skops (skops, allow-listed types)", "format": "onnx", "onnx": ONNX_FILE}
    try:
        if (src / "transformer.json").exists():
            ftt = model.transformer
            enc = model.encoder
            frame = model.split("validation")
            num, codes = model.encode(frame[model.schema.names].head(sample_size), where="validation")
            xc = enc.scaled(num)
            has_cont, has_cat = xc.shape[1] > 0, codes.shape[1] > 0
            g = build_graph(ftt.module_, has_cont, has_cat)
            args, names = [], []
            if has_cont:
                args.append(torch.zeros((ONNX_BATCH, xc.shape[1]), dtype=torch.float32))
                names.append("x_cont")
            if has_cat:
                args.append(torch.zeros((ONNX_BATCH, codes.shape[1]), dtype=torch.int64))
                names.append("x_cat")
            # A fixed batch: rtdl's attention reads the batch size with len(), which both the tracer and
            # torch.export specialise to a constant; the runtime pads each chunk to ONNX_BATCH rows instead.
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(g, tuple(args), str(dst / ONNX_FILE), input_names=names, output_names=["logits"],
                                  opset_version=17, dynamo=False)
            update_manifest(dst, export={"format": "onnx", "onnx": ONNX_FILE})
            onnx_model = TabularModel(dst)
            p_t = ftt.predict_proba(xc, codes)
            p_o = onnx_model.transformer.predict_proba(xc, codes)
            diff = float(np.abs(p_t - p_o).max()) if len(p_t) else 0.0
            rule = model.decision_rule
            agree = float((rule.decide(p_t) == rule.decide(p_o)).mean()) if len(p_t) else 1.0
            info["parity"] = {"rows": len(p_t), "max_abs_diff": diff, "label_agreement": agree, "atol": atol}
            if diff > atol or agree < 1.0:
                raise GateFailedError(f"ONNX parity: max |p_onnx - p_torch| = {diff:.2e} (atol {atol:.0e}), label "
                                      f"agreement {agree:.4f} on {len(p_t)} validation rows")
            full = onnx_model.predict_proba(frame[model.schema.names].head(sample_size))
            ref = model.predict_proba(frame[model.schema.names].head(sample_size))
            info["model_parity"] = {"max_abs_diff": float(np.abs(full - ref).max()) if len(ref) else 0.0}
        else:
            info["parity"] = None
            info["note"] = "trees only: nothing to convert (the skops file is the safe format)"
        update_manifest(dst, export=info)
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise
    return info


__all__ = ["export_tabular"]
