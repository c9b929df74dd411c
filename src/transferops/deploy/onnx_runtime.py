"""ONNX Runtime inference for exported folders (kind ``onnx``, the :class:`Classifier` protocol).

``transferops.load(path)`` returns an :class:`OnnxModel` when ``path`` holds ``export.json``, so batch
scoring, evaluation and the server use exported models without knowing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from transferops._extras import require
from transferops.artifacts.classifier import ClassifierBase
from transferops.artifacts.kinds import register_kind
from transferops.artifacts.manifest import Manifest, read_manifest
from transferops.constants import EXPORT_MANIFEST, ONNX_INT8_MODEL, ONNX_MODEL
from transferops.errors import ArtifactError, ConfigError
from transferops.inference import encode, length_order, sorted_batches
from transferops.modality.text import check_texts

Variant = Literal["int8", "fp32"]


#: Session options chosen by measurement (issue 18; benchmarks/results/ort_options_bench.md, docs/deploy.md).
#: ``intra_op_num_threads`` 0 = ONNX Runtime's default (one per physical core) unless ``threads`` is given.
SESSION_DEFAULTS: dict[str, Any] = {
    "graph_optimization_level": "all",
    "intra_op_num_threads": 0,
    "inter_op_num_threads": 1,
    "enable_cpu_mem_arena": True,
    "execution_mode": "sequential",
}
_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}
_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}


def session_options(threads: int | None = None, **overrides: Any) -> Any:
    """``onnxruntime.SessionOptions`` from :data:`SESSION_DEFAULTS`, ``threads`` (intra-op) and ``overrides``
    (same keys; a bad key or value is a one-line :class:`ConfigError`)."""
    ort = require("onnxruntime", "onnx")
    unknown = sorted(set(overrides) - set(SESSION_DEFAULTS))
    if unknown:
        raise ConfigError(f"session option: {', '.join(unknown)} is not one of {', '.join(SESSION_DEFAULTS)}")
    o = {**SESSION_DEFAULTS, **({"intra_op_num_threads": threads} if threads else {}), **overrides}
    if o["graph_optimization_level"] not in _LEVELS:
        raise ConfigError(f"graph_optimization_level: {o['graph_optimization_level']!r} is not one of "
                          f"{', '.join(_LEVELS)}")
    if o["execution_mode"] not in _MODES:
        raise ConfigError(f"execution_mode: {o['execution_mode']!r} is not one of {', '.join(_MODES)}")
    for k in ("intra_op_num_threads", "inter_op_num_threads"):
        if isinstance(o[k], bool) or not isinstance(o[k], int) or o[k] < 0:
            raise ConfigError(f"{k}: {o[k]!r} must be an integer ≥ 0 (0 = ONNX Runtime's default)")
    if not isinstance(o["enable_cpu_mem_arena"], bool):
        raise ConfigError(f"enable_cpu_mem_arena: {o['enable_cpu_mem_arena']!r} must be true or false")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[o["graph_optimization_level"]])
    opts.execution_mode = getattr(ort.ExecutionMode, _MODES[o["execution_mode"]])
    opts.intra_op_num_threads = int(o["intra_op_num_threads"])
    opts.inter_op_num_threads = int(o["inter_op_num_threads"])
    opts.enable_cpu_mem_arena = o["enable_cpu_mem_arena"]
    opts.log_severity_level = 3
    return opts


class OnnxSession:
    """One ``onnxruntime.InferenceSession`` plus its tokenizer: texts in, (logits, embeddings) out.

    ``options`` overrides :data:`SESSION_DEFAULTS` (benchmarks; the defaults are the measured best)."""

    def __init__(self, path: str | Path, tokenizer: Any, *, max_length: int,
                 threads: int | None = None, options: dict[str, Any] | None = None) -> None:
        ort = require("onnxruntime", "onnx")
        opts = session_options(threads, **(options or {}))
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._text_encoder: Any = None

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        enc = encode(self.tokenizer, texts, self.max_length, return_tensors="np")
        return {n: np.asarray(enc[n], dtype=np.int64) for n in self.input_names}

    def run_encoded(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits, emb = self.session.run(["logits", "embedding"], feeds)
        return np.asarray(logits, dtype=np.float32), np.asarray(emb, dtype=np.float32)

    def run(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Length-sorted batches (less padding), results in the original order."""
        if len(texts) == 0:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        logits, emb = sorted_batches(texts, batch_size, lambda batch: self.run_encoded(self.encode(batch)))
        return logits, emb


    def run_with_ids(self, texts: Sequence[str], *, batch_size: int = 64
                     ) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """:meth:`run` plus each text's untruncated content ids (the served path's logged token
        counts), from one tokenisation (:class:`~transferops.deploy.encoding.TextEncoder`)."""
        if self._text_encoder is None:
            from transferops.deploy.encoding import TextEncoder

            self._text_encoder = TextEncoder(self.tokenizer, self.max_length)
        if len(texts) == 0:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), []
        texts = list(texts)
        if len(texts) <= batch_size:
            # one batch (every served batch): rows do not depend on their order within it (same padding,
            # same set for int8's per-tensor scales), so no length sort and no reordering afterwards
            feeds, raw = self._text_encoder.encode(texts)
            logits, emb = self.run_encoded({n: feeds[n] for n in self.input_names})
            return logits, emb, raw
        seen: list[list[int]] = []  # in length order, as sorted_batches runs the batches

        def run(batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
            feeds, raw = self._text_encoder.encode(batch)
            seen.extend(raw)
            return self.run_encoded({n: feeds[n] for n in self.input_names})

        logits, emb = sorted_batches(texts, batch_size, run)
        ids: list[list[int]] = [[] for _ in texts]
        for k, i in enumerate(length_order(texts)):
            ids[int(i)] = seen[k]
        return logits, emb, ids


class OnnxModel(ClassifierBase):
    """An exported model on ONNX Runtime: ``predict``, ``predict_proba``, ``logits``, ``embed``.

    ``variant`` picks ``model.int8.onnx`` or ``model.onnx`` (default: int8 when it was exported).

    >>> m = OnnxModel("runs/news-onnx", threads=2)                    # doctest: +SKIP
    >>> m.predict(["Shares rose sharply"])                            # doctest: +SKIP
    ['business']
    """

    runtime = "onnx"
    no_torch_reason = ("{path} is an ONNX export: there is no PyTorch model in it; load the original "
                       "artifact ({self.source}) for training or LoRA")

    def __init__(self, path: str | Path, *, variant: Variant | None = None, threads: int | None = None,
                 device: str | None = None) -> None:
        p = Path(path)
        self.export_manifest: Manifest = read_manifest(p, filename=EXPORT_MANIFEST)
        super().__init__(p, device=device, threads=threads)
        variant = variant or self.export_manifest.get("default_variant", "int8")
        if variant not in ("int8", "fp32"):
            raise ConfigError(f"variant: {variant!r} is not one of 'int8', 'fp32'")
        self.variant: str = variant
        self.onnx_path = p / (ONNX_INT8_MODEL if variant == "int8" else ONNX_MODEL)
        if not self.onnx_path.exists():
            raise ArtifactError(f"{p}: {self.onnx_path.name} is missing (variant {variant!r}); "
                                "re-export with --quantize int8 or pick variant='fp32'")
        self._session: OnnxSession | None = None
        # A stacked export: the graph gives the probe's logits; the TF-IDF member and the meta-learner
        # (safe files copied beside it) finish the job, exactly as the artifact does.
        self._stack: Any = None
        if self.manifest.kind == "stack":
            from transferops.artifacts.linear import StackModel

            self._stack = StackModel(p, threads=threads)

    def _load(self) -> None:
        from transferops.modeling import load_tokenizer

        self._tok = load_tokenizer(self.path)
        self._session = OnnxSession(self.onnx_path, self._tok, max_length=self.max_length,
                                    threads=self._threads)

    @property
    def session(self) -> OnnxSession:
        if self._session is None:
            self._load()
        assert self._session is not None
        return self._session

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            self._load()
        return self._tok

    @property
    def source(self) -> str:
        """The artifact folder this export was made from."""
        return str(self.export_manifest.get("source"))

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"variant": self.variant}

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Logits and mean-pooled embeddings in one pass."""
        texts = check_texts(texts)
        logits, emb = self.session.run(texts, batch_size=batch_size)
        if self._stack is not None:
            logits = self._stack.logits_from_probe_logits(texts, logits)
        return logits, emb

    def infer_with_ids(self, texts: Sequence[str], *, batch_size: int = 64
                       ) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """:meth:`infer` plus each text's untruncated content ids, from the same tokenisation (the
        server's logged ``n_tokens`` / ``unk_rate``: :class:`~transferops.deploy.runtime.Runner`)."""
        texts = check_texts(texts)
        logits, emb, ids = self.session.run_with_ids(texts, batch_size=batch_size)
        if self._stack is not None:
            logits = self._stack.logits_from_probe_logits(texts, logits)
        return logits, emb, ids

    def __repr__(self) -> str:
        return f"OnnxModel(path={str(self.path)!r}, variant={self.variant!r}, task={self.task!r})"


def _is_export(path: Path) -> bool:
    return (Path(path) / EXPORT_MANIFEST).exists()


register_kind("onnx", OnnxModel, detect=_is_export)

__all__ = ["SESSION_DEFAULTS", "OnnxModel", "OnnxSession", "Variant", "session_options"]
