"""Export a trained artifact to ONNX (fp32 + dynamic int8) with parity and accuracy gates.

The exported folder is self-sufficient for serving::

    model.onnx            fp32 graph, inputs input_ids/attention_mask[/token_type_ids] with dynamic
                          batch and sequence axes, outputs ``logits`` and ``embedding`` (mean-pooled
                          last hidden state over the attention mask, for the drift sketch)
    model.int8.onnx       int8 of the fp32 graph: dynamic (default) or static QDQ with calibration
                          (``quantize="static"``; ``"auto"`` keeps the one with the smaller drop),
                          see :mod:`transferops.deploy.quantize`
    tokenizer files       copied from the artifact's model/ folder
    transferops.json      the artifact manifest (labels, task, temperature, thresholds, metrics...)
    export.json           parity, int8 accuracy drop, sizes, versions
    data/validation.parquet, data/test.parquet   (review threshold derivation, evaluation)
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from transferops._extras import require
from transferops._progress import say
from transferops._util import human_bytes, package_versions, sha256_file
from transferops.artifacts.manifest import Manifest, read_manifest, write_manifest
from transferops.constants import (
    DATA_DIR,
    EXPORT_MANIFEST,
    MANIFEST_NAME,
    MODEL_DIR,
    ONNX_INT8_MODEL,
    ONNX_MODEL,
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
)
from transferops.errors import ConfigError, GateFailedError

#: Parity gates between the fp32 ONNX graph and PyTorch (the issue's numbers).
MIN_ARGMAX_AGREEMENT = 0.999
MAX_PROB_DIFF = 1e-4
OPSET = 17
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "merges.txt", "vocab.json", "sentencepiece.bpe.model", "spm.model",
                   "added_tokens.json")

#: ``int8`` is the default mode (:data:`transferops.deploy.quantize.DEFAULT_MODE`); the others name one.
Quantize = Literal["int8", "dynamic", "static", "auto"]
#: Rows the int8 drop is measured on (validation + test + a train sample, issue 18) and calibration texts.
ACCURACY_ROWS = 2000
CALIBRATION_ROWS = 256


@dataclass
class ExportResult:
    """What ``export_onnx`` produced and measured (also written to ``export.json``)."""

    path: Path
    files: dict[str, str]
    sizes: dict[str, int]
    parity: dict[str, Any]
    int8: dict[str, Any] | None
    passed: bool
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    def summary(self) -> str:
        p = self.parity
        lines = [f"exported to {self.path}",
                 f"  fp32 parity on {p['n']} validation texts: argmax agreement {p['argmax_agreement']:.4f} "
                 f"(gate ≥ {MIN_ARGMAX_AGREEMENT}), max prob diff {p['max_prob_diff']:.2e} "
                 f"(gate ≤ {MAX_PROB_DIFF:.0e})",
                 f"  sizes: pytorch {human_bytes(self.sizes['pytorch'])}, onnx fp32 "
                 f"{human_bytes(self.sizes['onnx_fp32'])}"
                 + (f", onnx int8 {human_bytes(self.sizes['onnx_int8'])} "
                    f"({self.sizes['onnx_int8'] / max(self.sizes['onnx_fp32'], 1):.2f}× fp32)"
                    if "onnx_int8" in self.sizes else "")]
        if self.int8:
            q = self.int8
            lines.append(f"  int8: accuracy {q['accuracy_int8']:.4f} vs pytorch {q['accuracy_pytorch']:.4f} "
                         f"(drop {q['accuracy_drop'] * 100:+.2f} points, gate ≤ {q['max_drop'] * 100:.2f}); "
                         f"agreement with pytorch {q['argmax_agreement']:.4f}")
            g = q.get("gate")
            if g:
                lines.append(f"  int8 ({q.get('mode', 'dynamic')}) on {g['n']} rows ({_rows_text(q['rows'])}): "
                             f"drop {g['drop'] * 100:+.2f} points, 95% CI [{g['ci_low'] * 100:+.2f}, "
                             f"{g['ci_high'] * 100:+.2f}], agreement with fp32 {q['agreement_fp32']:.4f}; "
                             f"gate: fails when the CI's lower bound > {q['max_drop'] * 100:.2f}")
        lines += [f"  FAILED: {f}" for f in self.failures]
        return "\n".join(lines)


def _rows_text(rows: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in rows.items() if v)


def _gate_rows(src: Path, n_rows: int, n_calib: int, seed: int = 0) -> tuple[Any, list[str], dict[str, int]]:
    """Rows for the int8 drop (all validation + test rows, topped up to ``n_rows`` with training rows) and
    ``n_calib`` calibration texts (training rows disjoint from those, at most half the split; validation
    when the artifact has no train split). ``n_calib`` 0: no calibration (dynamic mode)."""
    import pandas as pd

    parts, counts = [], {}
    for name, split in (("validation", VALIDATION_SPLIT), ("test", TEST_SPLIT)):
        f = src / DATA_DIR / split
        df = pd.read_parquet(f)[["text", "label"]] if f.exists() else pd.DataFrame(columns=["text", "label"])
        parts.append(df)
        counts[name] = len(df)
    f = src / DATA_DIR / TRAIN_SPLIT
    train = pd.read_parquet(f)[["text", "label"]] if f.exists() else None
    if train is not None and len(train):
        train = train.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        n_calib = min(n_calib, len(train) // 2)  # a small train split still lends half its rows to the gate
        calib = [str(t) for t in train["text"].iloc[:n_calib]]
        extra = train.iloc[n_calib:n_calib + max(0, n_rows - sum(counts.values()))]
        parts.append(extra)
        counts["train"] = len(extra)
    else:
        calib = [str(t) for t in parts[0]["text"].iloc[:n_calib]]
    rows = pd.concat(parts, ignore_index=True)
    return rows, calib, counts


def _affine(estimators: list[Any], multilabel: bool, n_classes: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The probe's logits are affine in the embedding: read W and b off the stored LR itself
    (``lr_logits`` at 0 and at each unit vector), so the graph computes exactly what the artifact does."""
    from transferops.artifacts.linear import lr_logits

    x = np.vstack([np.zeros((1, dim)), np.eye(dim)])
    z = lr_logits(estimators, x, n_classes, multilabel)
    return z[1:] - z[0], z[0]


def _hidden_size(model_dir: Path) -> int:
    import json

    cfg = json.loads((model_dir / MODEL_DIR / "config.json").read_text())
    return int(cfg.get("hidden_size") or cfg.get("dim") or cfg["d_model"])


def _load_encoder(model_dir: Path) -> Any:
    """A probe's frozen encoder in eager attention (traceable)."""
    from transferops.modeling import load_encoder

    return load_encoder(model_dir / MODEL_DIR, safetensors_only=True, attn_implementation="eager")


def _load_torch_model(model_dir: Path, manifest: Manifest) -> Any:
    """The artifact's classifier in eager attention (traceable), a PEFT adapter (LoRA, IA3) merged into its base."""
    from transferops.artifacts.model import load_torch_classifier
    from transferops.modeling import quiet_transformers

    with quiet_transformers():
        model = load_torch_classifier(manifest, model_dir / MODEL_DIR, merge_adapter=True,
                                      attn_implementation="eager")
    if hasattr(model, "set_attn_implementation"):
        with contextlib.suppress(Exception):  # models without the switch trace fine as they are
            model.set_attn_implementation("eager")
    return model.eval()


def _pytorch_size(src: Path, manifest: Manifest) -> int:
    """Weights needed to run the PyTorch model: the folder, plus the base checkpoint for an adapter."""
    size = sum(f.stat().st_size for f in (src / MODEL_DIR).glob("*.safetensors"))
    if manifest.is_adapter and manifest.base is not None:
        base = Path(manifest.base.path)
        if base.exists():
            size += sum(f.stat().st_size for f in base.glob("*.safetensors"))
    return size


def export_onnx(model_dir: str | Path, out: str | Path, *, quantize: Quantize | None = "int8",
                max_drop: float = 0.01, sample_size: int = 1000, opset: int = OPSET,
                per_channel: bool = True, overwrite: bool = False, accuracy_rows: int = ACCURACY_ROWS,
                calibration_rows: int = CALIBRATION_ROWS) -> ExportResult:
    """Export ``model_dir`` (a transferops artifact) to ONNX in ``out`` and check it.

    Raises :class:`~transferops.errors.GateFailedError` when fp32 parity fails (argmax agreement
    < 99.9% or max probability difference > 1e-4) or the int8 accuracy drop is shown to exceed
    ``max_drop`` (a fraction: 0.01 = 1 point): the drop is measured on all validation and test rows plus
    training rows up to ``accuracy_rows``, and the gate fails when the lower bound of its exact paired 95%
    interval is above ``max_drop`` (:mod:`transferops.deploy.quantize`). The folder and ``export.json``
    are still written so the failure can be inspected.

    ``quantize``: ``"int8"`` (the default mode, dynamic), ``"dynamic"``, ``"static"`` (QDQ, activations
    calibrated on ``calibration_rows`` training texts, head/LayerNorm/Softmax in fp32), ``"auto"`` (both;
    keeps the smaller measured drop) or None (fp32 only).

    >>> res = export_onnx("runs/news", "runs/news-onnx", quantize="int8")      # doctest: +SKIP
    >>> res.int8["accuracy_drop"] <= 0.01                                        # doctest: +SKIP
    True
    """
    require("onnx", "onnx")
    ort = require("onnxruntime", "onnx")
    import torch

    from transferops.artifacts.kinds import get_kind
    from transferops.inference import input_names, module_forward, probe_graph, with_embedding
    from transferops.modeling import load_tokenizer, softmax

    if quantize not in (None, "int8", "dynamic", "static", "auto"):
        raise ConfigError(f"quantize: {quantize!r} is not one of 'int8', 'dynamic', 'static', 'auto', None")
    for fname, value, low in (("accuracy_rows", accuracy_rows, 0), ("calibration_rows", calibration_rows, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{fname}: {value!r} must be an integer ≥ {low}")
    if not -1 <= max_drop <= 1:
        # Negative values are allowed on purpose: "int8 must beat PyTorch by this much" (gate tests).
        raise ConfigError(f"max_drop: {max_drop!r} must be a fraction in [-1, 1] (0.01 = one point)")
    src, dst = Path(model_dir), Path(out)
    manifest = read_manifest(src)
    kind = manifest.kind
    # what cannot become one graph says why (the kind's own class carries the sentence)
    reason = getattr(get_kind(kind).loader, "not_exported_reason", None)
    if reason:
        raise ConfigError(f"model: {src} {reason}")
    if kind not in ("model", "probe", "stack"):
        raise ConfigError(f"model: {src} is of kind {kind!r}, which has no ONNX export")
    if manifest.is_adapter:
        from transferops.artifacts.model import merge_refusal

        refusal = merge_refusal(manifest)
        if refusal:
            raise ConfigError(f"model: ONNX export of {src} is refused: it {refusal}")
    if src.resolve() == dst.resolve():
        raise ConfigError("out: must differ from the model folder")
    if (dst / EXPORT_MANIFEST).exists() and not overwrite:
        raise ConfigError(f"out: {dst} already holds an export; choose another --out or pass --overwrite")
    dst.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    task = manifest.task
    max_length = manifest.max_length
    tok = load_tokenizer(src / MODEL_DIR)
    names = input_names(tok)

    # ---- export fp32 -------------------------------------------------------------------------
    stack: Any = None
    if kind in ("probe", "stack"):
        # The frozen encoder + mean pooling + the probe's logistic regression as one graph; a stack
        # keeps its TF-IDF member and meta-learner in their safe files beside it (copied below).
        from transferops.artifacts.linear import PROBE_DIR, ProbeModel, StackModel

        probe = ProbeModel(src)
        wrapper = probe_graph(_load_encoder(src), *_affine(probe.estimators, probe.multilabel,
                                                           len(manifest.labels), _hidden_size(src)),
                              l2_input=probe.l2_input)
        if kind == "stack":
            stack = StackModel(src)
    else:
        model = _load_torch_model(src, manifest)
        wrapper = with_embedding(model)
    dummy = tok(["a short example text", "another one"], truncation=True, max_length=max_length,
                padding=True, return_tensors="pt")
    args = tuple(dummy[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes.update({"logits": {0: "batch"}, "embedding": {0: "batch"}})
    fp32_path = dst / ONNX_MODEL
    say(f"exporting {src} → {fp32_path} (opset {opset})")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about Python-side shape checks
        torch.onnx.export(wrapper, args, str(fp32_path), input_names=names,
                          output_names=["logits", "embedding"], dynamic_axes=axes, opset_version=opset,
                          dynamo=False, do_constant_folding=True)

    # ---- copy what the server needs ----------------------------------------------------------
    for fname in TOKENIZER_FILES:
        f = src / MODEL_DIR / fname
        if f.exists():
            shutil.copy2(f, dst / fname)
    shutil.copy2(src / MANIFEST_NAME, dst / MANIFEST_NAME)
    if kind == "stack":
        from transferops.artifacts.linear import BASELINE_DIR, STACK_DIR

        for sub in (BASELINE_DIR, PROBE_DIR, STACK_DIR):
            shutil.copytree(src / sub, dst / sub, dirs_exist_ok=True)
    (dst / DATA_DIR).mkdir(exist_ok=True)
    for split in (VALIDATION_SPLIT, TEST_SPLIT):
        f = src / DATA_DIR / split
        if f.exists():
            shutil.copyfile(f, dst / DATA_DIR / split)

    # ---- parity on a validation sample -------------------------------------------------------
    import pandas as pd

    val_file = src / DATA_DIR / VALIDATION_SPLIT
    if val_file.exists():
        val = pd.read_parquet(val_file)
    else:
        val = pd.DataFrame({"text": ["parity check text"] * 8, "label": [manifest.labels[0]] * 8})
    val = val.iloc[:sample_size]
    texts = [str(t) for t in val["text"]]
    temperature = manifest.temperature

    def to_proba(z: np.ndarray) -> np.ndarray:
        z = z / temperature
        return 1.0 / (1.0 + np.exp(-z)) if task == "multilabel" else softmax(z)

    pt_logits, _ = module_forward(wrapper, tok, texts, max_length=max_length)
    from transferops.deploy.onnx_runtime import OnnxSession

    def final(z: np.ndarray) -> np.ndarray:
        """The model's own output: for a stack, the meta-learner over the TF-IDF member and the graph's probe."""
        return final_for(texts, z)

    def final_for(some: list[str], z: np.ndarray) -> np.ndarray:
        return z if stack is None else stack.logits_from_probe_logits(some, z)

    sess32 = OnnxSession(fp32_path, tok, max_length=max_length, threads=None)
    o32_logits = final(sess32.run(texts)[0])
    if stack is not None:  # the reference is the saved stack itself (scikit-learn + PyTorch)
        pt_logits = stack.logits(texts)
    p_pt, p_32 = to_proba(pt_logits), to_proba(o32_logits)
    if task == "multilabel":
        agree = float(((p_pt >= 0.5) == (p_32 >= 0.5)).all(axis=1).mean())
    else:
        agree = float((p_pt.argmax(1) == p_32.argmax(1)).mean())
    parity = {"n": len(texts), "argmax_agreement": agree, "max_prob_diff": float(np.abs(p_pt - p_32).max()),
              "min_argmax_agreement": MIN_ARGMAX_AGREEMENT, "max_prob_diff_allowed": MAX_PROB_DIFF}
    failures = []
    if agree < MIN_ARGMAX_AGREEMENT:
        failures.append(f"fp32 argmax agreement {agree:.4f} < {MIN_ARGMAX_AGREEMENT}")
    if parity["max_prob_diff"] > MAX_PROB_DIFF:
        failures.append(f"fp32 max probability difference {parity['max_prob_diff']:.2e} > "
                        f"{MAX_PROB_DIFF:.0e}")

    # ---- int8 ---------------------------------------------------------------------------------
    int8_info: dict[str, Any] | None = None
    if quantize is not None:
        from transferops.deploy import quantize as qz

        mode = qz.DEFAULT_MODE if quantize == "int8" else qz.check_mode(quantize)
        int8_path = dst / ONNX_INT8_MODEL
        y = val["label"].tolist()
        lab = np.asarray(manifest.labels, dtype=object)

        def correct(p: np.ndarray, labels: list[Any]) -> np.ndarray:
            if task == "multilabel":
                from transferops.metrics import encode_labels

                return np.asarray(((p >= 0.5) == encode_labels(labels, manifest.labels, True)).all(axis=1))
            return np.asarray(lab[p.argmax(1)] == np.asarray([str(v) for v in labels], dtype=object))

        def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if task == "multilabel":
                return np.asarray(((a >= 0.5) == (b >= 0.5)).all(axis=1))
            return np.asarray(a.argmax(1) == b.argmax(1))

        rows, calib_texts, counts = _gate_rows(src, accuracy_rows, 0 if mode == "dynamic" else calibration_rows)
        gate_texts = [str(t) for t in rows["text"]]
        gate_y = rows["label"].tolist()
        p32_gate = to_proba(final_for(gate_texts, sess32.run(gate_texts)[0]))
        ok32 = correct(p32_gate, gate_y)

        def build(m: str, path: Path) -> dict[str, Any]:
            if m == "dynamic":
                info = qz.quantize_dynamic_file(fp32_path, path, per_channel=per_channel)
            else:
                order = sorted(range(len(calib_texts)), key=lambda k: len(calib_texts[k]))
                feeds = [sess32.encode([calib_texts[k] for k in order[s:s + 8]])
                         for s in range(0, len(order), 8)]
                info = qz.quantize_static_file(fp32_path, path, feeds, per_channel=per_channel)
                info["calibration_rows"] = len(calib_texts)
                info["calibration_split"] = "train" if counts.get("train") is not None else "validation"
            s8 = OnnxSession(path, tok, max_length=max_length, threads=None)
            p8g = to_proba(final_for(gate_texts, s8.run(gate_texts)[0]))
            info["gate"] = qz.paired_drop(ok32, correct(p8g, gate_y))
            info["agreement_fp32"] = float(same(p32_gate, p8g).mean()) if len(gate_texts) else 1.0
            return info

        if mode == "auto":
            cands = {}
            for m in ("dynamic", "static"):
                cands[m] = build(m, dst / f"model.int8.{m}.onnx")
            # smaller measured drop wins; dynamic on a tie (faster on CPU, no calibration dependence)
            best = min(("dynamic", "static"), key=lambda m: (cands[m]["gate"]["drop"], m != "dynamic"))
            for m in cands:
                if m == best:
                    (dst / f"model.int8.{m}.onnx").replace(int8_path)
                else:
                    (dst / f"model.int8.{m}.onnx").unlink()
            chosen = cands[best]
            chosen["auto"] = {"chosen": best, "candidates": {
                m: {k: v for k, v in c.items() if k in ("gate", "agreement_fp32")} for m, c in cands.items()}}
        else:
            chosen = build(mode, int8_path)
        sess8 = OnnxSession(int8_path, tok, max_length=max_length, threads=None)
        o8_logits = final(sess8.run(texts)[0])
        p_8 = to_proba(o8_logits)
        if task == "multilabel":
            from transferops.metrics import encode_labels

            yy = encode_labels(y, manifest.labels, True)
            acc_pt = float(((p_pt >= 0.5) == yy).all(axis=1).mean())
            acc_8 = float(((p_8 >= 0.5) == yy).all(axis=1).mean())
            agree8 = float(((p_pt >= 0.5) == (p_8 >= 0.5)).all(axis=1).mean())
        else:
            acc_pt = float((lab[p_pt.argmax(1)] == np.asarray([str(v) for v in y], dtype=object)).mean())
            acc_8 = float((lab[p_8.argmax(1)] == np.asarray([str(v) for v in y], dtype=object)).mean())
            agree8 = float((p_pt.argmax(1) == p_8.argmax(1)).mean())
        drop = acc_pt - acc_8
        # n/split/accuracy_*/argmax_agreement: the validation sample vs PyTorch (as before issue 18);
        # gate/rows/agreement_fp32: the many-row paired measurement the gate decides on.
        int8_info = {"n": len(texts), "split": "validation", "accuracy_pytorch": acc_pt,
                     "accuracy_int8": acc_8, "accuracy_drop": drop, "max_drop": max_drop,
                     "argmax_agreement": agree8,
                     "max_prob_diff": float(np.abs(p_pt - p_8).max()),
                     "rows": counts, "gate_rule": "fail when gate.ci_low > max_drop", **chosen}
        g = chosen["gate"]
        if qz.gate_fails(g, max_drop):
            failures.append(f"int8 accuracy drop {g['drop'] * 100:.2f} points on {g['n']} rows, 95% CI "
                            f"[{g['ci_low'] * 100:.2f}, {g['ci_high'] * 100:.2f}], lower bound > --max-drop "
                            f"{max_drop * 100:.2f} points (try --quantize static or auto, export with "
                            "--quantize none, or raise --max-drop if acceptable)")

    sizes = {"pytorch": _pytorch_size(src, manifest), "onnx_fp32": fp32_path.stat().st_size}
    files = {"onnx_fp32": ONNX_MODEL}
    if quantize is not None:
        sizes["onnx_int8"] = (dst / ONNX_INT8_MODEL).stat().st_size
        files["onnx_int8"] = ONNX_INT8_MODEL
    res = ExportResult(path=dst, files=files, sizes=sizes, parity=parity, int8=int8_info,
                       passed=not failures, failures=failures, seconds=round(time.perf_counter() - t0, 2))
    write_manifest(dst, {
        "source": str(src.resolve()), "format": "onnx",
        "opset": opset, "inputs": names, "outputs": ["logits", "embedding"], "max_length": max_length,
        "kind": kind,
        "default_variant": "int8" if quantize is not None else "fp32",
        "sha256": {k: sha256_file(dst / v) for k, v in files.items()},
        "versions": {**package_versions(("transferops", "torch", "transformers", "onnx", "onnxruntime")),
                     "onnxruntime_build": ort.__version__},
        **{k: v for k, v in res.to_dict().items() if k != "path"},
    }, filename=EXPORT_MANIFEST)
    if failures:
        raise GateFailedError(f"export of {src} failed its gates: " + "; ".join(failures)
                              + f" (details in {dst / EXPORT_MANIFEST})")
    return res
