"""The built-in artifact kinds, assembled at the package root.

Each module below calls :func:`transferops.artifacts.kinds.register_kind` at import for the kinds it
defines. ``artifacts`` imports this list lazily, on the first load that needs a kind it has not
seen, so no stage imports a later one and ``import transferops`` stays free of torch. A new
built-in kind is one new module plus one line here (third-party kinds use the
``transferops.kinds`` entry-point group instead).
"""

from __future__ import annotations

BUILTIN_KIND_MODULES: tuple[str, ...] = (
    "transferops.artifacts.model",  # model (fine-tuned: full / freeze / head / lora / distill)
    "transferops.artifacts.linear",  # baseline, probe, stack
    "transferops.adapt.ensemble",  # ensemble
    "transferops.deploy.onnx_runtime",  # onnx (detected by export.json)
    "transferops.artifacts.multitask",  # multitask (one backbone, a head per task)
    "transferops.artifacts.frozen",  # frozen (a head over a frozen multilingual encoder)
    "transferops.vision.model",  # image_model, image_baseline (issue 15)
    "transferops.vision.onnx",  # image_onnx (detected by image_export.json)
    "transferops.tabular.artifact",  # tabular (issue 16: trees / FT-Transformer / stack, and their export)
)
