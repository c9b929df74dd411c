"""Runners: what the server calls for one batch of texts, whatever the model runs on.

* any loaded folder — :func:`open_runner` loads it through the same kind registry as
  ``transferops.load`` (ONNX export, fine-tuned PyTorch model, baseline, probe, stack) and runs the
  model's own one-pass ``infer`` (logits + embedding),
* PyTorch PEFT adapters (LoRA, IA3, prompt tuning) sharing one base model per (base checkpoint, label count, task) in an
  :class:`AdapterPool` — memory is one base plus small adapters, not one full copy per adapter.

A runner returns labels, probabilities, confidence and the per-text features the server logs; it
runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferops.artifacts.manifest import Manifest
from transferops.constants import EXPORT_MANIFEST, MANIFEST_NAME, MODEL_DIR
from transferops.deploy.features import sketch, text_features
from transferops.deploy.review import ReviewPolicy, derive_review_threshold
from transferops.errors import ArtifactError, ConfigError

#: Files that can execute code when loaded (pickle): a folder holding any of them is refused.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz", ".h5")


@dataclass
class InferResult:
    """One batch: everything the server needs per text (row-aligned)."""

    labels: list[Any]
    proba: np.ndarray
    confidence: np.ndarray
    sketch: np.ndarray
    n_tokens: np.ndarray
    n_chars: np.ndarray
    unk_rate: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def slice(self, a: int, b: int) -> InferResult:
        return InferResult(self.labels[a:b], self.proba[a:b], self.confidence[a:b], self.sketch[a:b],
                           self.n_tokens[a:b], self.n_chars[a:b], self.unk_rate[a:b])


def check_safe_folder(path: Path) -> None:
    """Refuse folders with pickle-based weights anywhere inside (every subfolder, at any depth; a
    symlinked folder is not entered, a symlinked file is judged by its name): only safetensors,
    ONNX and JSON are loaded."""
    if not path.is_dir():
        return
    for root, _dirs, files in os.walk(path, followlinks=False):
        for name in sorted(files):
            if Path(name).suffix.lower() in UNSAFE_SUFFIXES:
                raise ArtifactError(f"{Path(root) / name}: refusing to load pickle-capable file types "
                                    f"({', '.join(UNSAFE_SUFFIXES)}); only safetensors/ONNX/JSON are served")


def model_version(path: Path) -> str:
    """Short content hash of the manifests: changes whenever the model behind a name changes."""
    h = hashlib.sha256()
    for name in (MANIFEST_NAME, EXPORT_MANIFEST):
        f = path / name
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


@dataclass
class Runner:
    """A loaded model behind a name: ``infer(texts) -> InferResult``."""

    name: str
    path: Path
    runtime: str  # onnx | pytorch | sklearn | adapter
    model: Any  # a Classifier: labels, task, manifest, decision_rule, proba_from_logits, split
    forward: Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
    tokenizer: Any
    version: str
    review: ReviewPolicy = field(default_factory=lambda: ReviewPolicy(None, "none"))
    extra: dict[str, Any] = field(default_factory=dict)
    on_close: Callable[[], None] | None = None
    #: ``forward`` plus each text's untruncated content ids from the same tokenisation (ONNX exports):
    #: the logged token counts then cost no second tokenizer call.
    forward_ids: Callable[[list[str]], tuple[np.ndarray, np.ndarray, list[list[int]]]] | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels)

    @functools.cached_property
    def decision_rule(self) -> Any:
        """The model's decision rule, read once: a served model's manifest does not change under it (a
        reload builds a new runner), and parsing it on every batch and request showed in the profile."""
        return self.model.decision_rule

    @property
    def multilabel(self) -> bool:
        return bool(self.model.task == "multilabel")

    def infer(self, texts: Sequence[str]) -> InferResult:
        texts = list(texts)
        own = getattr(self.model, "serve_features", None)  # a non-text modality's logged input features
        if callable(own):
            logits, emb = self.forward(texts)
            feats = own(texts)
        else:
            if self.forward_ids is not None:  # one tokenisation gives the inputs and the token counts
                logits, emb, ids = self.forward_ids(texts)
            else:
                logits, emb = self.forward(texts)
                # untruncated ids for the token count; verbose=False: long texts are expected here
                ids = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
            feats = text_features(self.tokenizer, texts, input_ids=ids)
        proba = self.model.proba_from_logits(logits)
        # one decision: labels and the confidence the log, the review route and the profile share
        decided, conf = self.decision_rule.apply(proba)
        return InferResult(labels=decided, proba=proba, confidence=conf, sketch=sketch(emb),
                           n_tokens=feats["n_tokens"], n_chars=feats["n_chars"], unk_rate=feats["unk_rate"])

    def set_review(self, *, threshold: float | None, target_auto_accuracy: float | None) -> ReviewPolicy:
        """Fixed threshold, or derived from the validation split for a target auto accuracy."""
        if threshold is not None:
            self.review = ReviewPolicy(threshold=float(threshold), source="fixed")
        elif target_auto_accuracy is not None:
            try:
                val = self.model.split("validation")
            except (ArtifactError, FileNotFoundError) as exc:
                raise ConfigError(f"target_auto_accuracy: model {self.name!r} has no validation split to "
                                  "derive a threshold from; pass --review-threshold instead") from exc
            inputs_of = getattr(self.model, "split_inputs", None)  # a non-text modality: (inputs, labels)
            inputs, truth = inputs_of(val) if callable(inputs_of) else ([str(t) for t in val["text"]], val["label"])
            res = self.infer(inputs)
            if self.multilabel:
                from transferops.metrics import encode_labels

                y = encode_labels(list(truth), self.labels, True)
                pred = np.asarray([[lbl in row for lbl in self.labels] for row in res.labels])
                correct = (pred == y.astype(bool)).all(axis=1)
            else:
                correct = np.asarray([str(a) == str(b)
                                      for a, b in zip(res.labels, truth, strict=True)])
            self.review = derive_review_threshold(res.confidence, correct, float(target_auto_accuracy))
        return self.review

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "runtime": self.runtime, "version": self.version,
                "task": self.model.task, "labels": self.labels, "review": self.review.to_dict(), **self.extra}


Forward = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]


def open_runner(name: str, path: str | Path, *, threads: int | None = None, variant: str | None = None
                ) -> Runner:
    """Load ``path`` (any registered kind: ONNX export, artifact, baseline, probe, stack) as a runner
    named ``name``, through the same dispatcher as ``transferops.load``."""
    from transferops.artifacts.kinds import get_kind, resolve_kind

    p = Path(path)
    if not p.is_dir():
        raise ArtifactError(f"model {name!r}: {p} is not a folder (pass an artifact or an export folder)")
    check_safe_folder(p)
    kind = resolve_kind(p)
    spec = get_kind(kind)
    reason = getattr(spec.loader, "not_served_reason", None)
    if reason:
        raise ConfigError(f"model {name!r}: {reason}")
    kw: dict[str, Any] = {"threads": threads}
    kw.update({"variant": variant} if kind == "onnx" else {"device": "cpu"})
    model = spec.loader(p, **kw)
    with_ids = getattr(model, "infer_with_ids", None)
    return Runner(name=name, path=p, runtime=model.runtime, model=model, forward=model.infer,
                  tokenizer=model.tokenizer, version=model_version(p), extra=dict(model.serve_info),
                  forward_ids=with_ids if callable(with_ids) else None)


class AdapterPool:
    """Many PEFT adapters (LoRA, IA3, prompt tuning) over one PyTorch base model (PEFT multi-adapter),
    switched per batch.

    One pool per (base checkpoint, number of labels, task, PEFT method): the classification heads of
    adapters with the same shape live side by side in PEFT's ``modules_to_save`` copies; PEFT cannot mix
    methods in one model, so a LoRA and an IA3 adapter over the same base get a pool each.
    """

    def __init__(self, key: tuple[str, int, str, str], *, threads: int | None = None) -> None:
        self.key = key
        self._threads = threads
        self._lock = threading.Lock()
        self._model: Any = None
        self._tok: Any = None
        self._adapters: dict[str, int] = {}  # adapter name -> max_length

    @staticmethod
    def key_for(manifest: Manifest) -> tuple[str, int, str, str]:
        base = manifest.base
        if base is None:
            raise ArtifactError(f"{manifest.path}: manifest field 'base' is missing; not a PEFT adapter artifact")
        return (str(base.sha256 or base.path), len(manifest.labels), manifest.task, manifest.peft_type or "")

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def add(self, adapter: str, artifact: Path, manifest: Manifest) -> None:
        from transferops.artifacts.model import load_adapter
        from transferops.modeling import load_tokenizer, quiet_transformers, set_threads

        mdir = artifact / MODEL_DIR
        if not (mdir / "adapter_config.json").exists():
            raise ArtifactError(f"{artifact}: not a PEFT adapter artifact (model/adapter_config.json missing); "
                                "serve it with --model instead of --adapters")
        set_threads(self._threads)
        with self._lock, quiet_transformers():
            if self._model is None:
                self._model = load_adapter(manifest, mdir, adapter_name=adapter).eval()
                self._tok = load_tokenizer(mdir)
            else:
                self._model.load_adapter(str(mdir), adapter_name=adapter, is_trainable=False)
                self._model.eval()
            self._adapters[adapter] = manifest.max_length

    def remove(self, adapter: str) -> bool:
        """Drop an adapter; returns True when the pool is now empty (and its base freed)."""
        with self._lock:
            if adapter not in self._adapters:
                return not self._adapters
            del self._adapters[adapter]
            if not self._adapters:
                self._model = None
                return True
            if adapter in getattr(self._model, "peft_config", {}):
                self._model.set_adapter(next(iter(self._adapters)))
                self._model.delete_adapter(adapter)
            return False

    @property
    def tokenizer(self) -> Any:
        return self._tok

    def forward(self, adapter: str) -> Forward:
        from transferops.inference import forward

        def run(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
            with self._lock:
                if adapter not in self._adapters or self._model is None:
                    raise ArtifactError(f"adapter {adapter!r} was unloaded")
                self._model.set_adapter(adapter)
                return forward(self._model, self._tok, texts, max_length=self._adapters[adapter],
                               batch_size=max(len(texts), 1), output="both", desc=None)

        return run
