"""Artifacts whose classifier is a logistic regression: the tuned TF-IDF baseline (kind
``baseline``) and the mean-pooled frozen-encoder probe (kind ``probe``).

Stored without pickle and reconstructed into the same scikit-learn objects (exact predictions):

    baseline/vectorizer.json        TfidfVectorizer parameters + vocabulary (term → column)
    baseline/weights.safetensors    idf, and per estimator coef / intercept / classes
    probe/weights.safetensors       coef / intercept / classes of the LR on mean-pooled embeddings
    model/                          tokenizer (both kinds: token counts for monitoring) and, for a
                                    probe, the frozen encoder (safetensors)

All answer the :class:`~transferops.artifacts.classifier.Classifier` protocol (``infer``, ``logits``,
``predict_proba``, ``decide``, ``embed``, ``tokenizer``, ``split``), so ``predict``, ``evaluate``,
``serve`` and monitoring use them like any other model. ``logits`` are the LR decision values
(``[0, d]`` for a binary LR), so ``softmax(logits)`` equals scikit-learn's ``predict_proba``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops.artifacts.classifier import ClassifierBase, TorchBacked
from transferops.artifacts.kinds import register_kind
from transferops.constants import MODEL_DIR
from transferops.errors import ArtifactError
from transferops.modality.text import check_texts

BASELINE_DIR = "baseline"
PROBE_DIR = "probe"
WEIGHTS = "weights.safetensors"
VECTORIZER = "vectorizer.json"
#: Width of the fixed random projection of TF-IDF vectors used as the baseline's "embedding"
#: (drift sketches need a dense vector; the seed is fixed so server and profile agree).
BASELINE_EMBED_DIM = 256
_NEG = -1e9  # logit of a class the LR never saw in training (probability 0, as scikit-learn's column)
#: in a probe's weights: 1.0 when its LR reads the L2-normalised embedding (``contrastive``'s head), absent for the
#: frozen probe's raw mean pool; the embedding the model serves and monitors stays the raw one either way
L2_INPUT = "input.l2_normalised"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- LR (de)serialisation


def _estimators(clf: Any, multilabel: bool) -> list[Any]:
    return list(clf.estimators_) if multilabel else [clf]


def lr_tensors(clf: Any, multilabel: bool) -> dict[str, np.ndarray]:
    """coef/intercept/classes of a fitted LR (or each estimator of a one-vs-rest LR)."""
    out: dict[str, np.ndarray] = {}
    for i, est in enumerate(_estimators(clf, multilabel)):
        if hasattr(est, "coef_"):
            out[f"coef.{i}"] = np.ascontiguousarray(est.coef_, dtype=np.float64)
            out[f"intercept.{i}"] = np.ascontiguousarray(est.intercept_, dtype=np.float64)
            out[f"classes.{i}"] = np.asarray(est.classes_, dtype=np.int64)
        else:  # one-vs-rest's constant predictor (a label that never / always occurs in training)
            const = float(np.ravel(est.y_)[0])
            out[f"constant.{i}"] = np.asarray([const])
    return out


def lr_from_tensors(t: dict[str, np.ndarray], multilabel: bool) -> list[Any]:
    """Rebuild fitted scikit-learn LogisticRegression objects (or constants) from :func:`lr_tensors`."""
    from sklearn.linear_model import LogisticRegression

    n = len({k.split(".")[1] for k in t if k.split(".")[0] in ("coef", "constant")})
    ests: list[Any] = []
    for i in range(n):
        if f"constant.{i}" in t:
            ests.append(float(t[f"constant.{i}"][0]))
            continue
        lr = LogisticRegression()
        lr.coef_ = np.asarray(t[f"coef.{i}"], dtype=np.float64)
        lr.intercept_ = np.asarray(t[f"intercept.{i}"], dtype=np.float64)
        lr.classes_ = np.asarray(t[f"classes.{i}"])
        lr.n_features_in_ = lr.coef_.shape[1]
        ests.append(lr)
    if not multilabel and len(ests) != 1:
        raise ArtifactError("weights: a single-label model must hold exactly one logistic regression")
    return ests


def lr_logits(ests: list[Any], x: Any, n_classes: int, multilabel: bool) -> np.ndarray:
    """Decision values whose softmax (sigmoid for multi-label) is scikit-learn's predict_proba."""
    if multilabel:
        cols = []
        for est in ests:
            if isinstance(est, float):
                cols.append(np.full(x.shape[0], 30.0 if est >= 0.5 else -30.0))
            else:
                cols.append(np.ravel(est.decision_function(x)))
        return np.stack(cols, axis=1).astype(np.float64)
    lr = ests[0]
    d = lr.decision_function(x)
    out = np.full((x.shape[0], n_classes), _NEG, dtype=np.float64)
    if d.ndim == 1:  # binary LR: P(classes_[1]) = sigmoid(d) = softmax([0, d])
        out[:, lr.classes_[0]] = 0.0
        out[:, lr.classes_[1]] = d
    else:
        out[:, lr.classes_] = d
    return out


# --------------------------------------------------------------------------- save


def save_baseline(path: str | Path, baseline: Any, *, tokenizer_from: str | Path | None = None) -> None:
    """Write a fitted :class:`~transferops.baselines.TfidfBaseline` under ``path/baseline/``."""
    from safetensors.numpy import save_file

    d = Path(path) / BASELINE_DIR
    d.mkdir(parents=True, exist_ok=True)
    vec = baseline.vectorizer_
    params = {k: v for k, v in vec.get_params().items()
              if k in ("lowercase", "ngram_range", "max_features", "sublinear_tf", "min_df", "max_df", "norm",
                       "use_idf", "smooth_idf", "analyzer", "strip_accents", "token_pattern", "binary")}
    params["ngram_range"] = list(params["ngram_range"])
    vocab = {str(k): int(v) for k, v in vec.vocabulary_.items()}
    (d / VECTORIZER).write_text(json.dumps({"format_version": 1, "params": params, "vocabulary": vocab},
                                           ensure_ascii=False))
    tensors = {"idf": np.ascontiguousarray(vec.idf_, dtype=np.float64),
               **lr_tensors(baseline.classifier_, baseline.multilabel)}
    save_file(tensors, str(d / WEIGHTS))
    if tokenizer_from is not None:
        from transferops.modeling import load_tokenizer

        load_tokenizer(tokenizer_from).save_pretrained(str(Path(path) / MODEL_DIR))


def load_vectorizer(d: Path) -> Any:
    from safetensors.numpy import load_file
    from sklearn.feature_extraction.text import TfidfVectorizer

    spec = json.loads((d / VECTORIZER).read_text())
    params = dict(spec["params"])
    params["ngram_range"] = tuple(params["ngram_range"])
    vocab = spec["vocabulary"]
    # max_features only applies while fitting; the stored vocabulary is already the selected one.
    params.pop("max_features", None)
    vec = TfidfVectorizer(**params, vocabulary=vocab)
    vec.idf_ = load_file(str(d / WEIGHTS))["idf"]
    return vec


# --------------------------------------------------------------------------- models


class _LinearModel(ClassifierBase):
    """Shared loading of the LR weights and the tokenizer."""

    subdir = BASELINE_DIR

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        self._ests: list[Any] | None = None

    def _weights(self) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        f = self.path / self.subdir / WEIGHTS
        if not f.exists():
            raise ArtifactError(f"{self.path}: {self.subdir}/{WEIGHTS} is missing; the artifact is incomplete")
        return load_file(str(f))

    @property
    def estimators(self) -> list[Any]:
        if self._ests is None:
            self._ests = lr_from_tensors(self._weights(), self.multilabel)
        return self._ests

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            from transferops.modeling import load_tokenizer

            mdir = self.path / MODEL_DIR
            if not mdir.exists():
                raise ArtifactError(f"{self.path}: folder '{MODEL_DIR}/' (tokenizer) is missing")
            self._tok = load_tokenizer(mdir)
        return self._tok

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"kind": self.manifest.kind}


class BaselineModel(_LinearModel):
    """The tuned TF-IDF + logistic-regression baseline saved as a model (kind ``baseline``).

    >>> m = transferops.load("runs/news")   # the search picked the baseline  # doctest: +SKIP
    >>> m.predict(["Shares rose sharply"])                                    # doctest: +SKIP
    ['business']
    """

    subdir = BASELINE_DIR
    runtime = "sklearn"
    no_torch_reason = ("{path} is a TF-IDF + logistic-regression baseline: there is no torch model (it is "
                       "served and scored as is; nothing to export to ONNX)")
    not_exported_reason = ("is the TF-IDF + logistic-regression baseline (the model search picked it); it has "
                           "no neural network to export — serve the folder as it is")

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        self._vec: Any = None
        self._proj: np.ndarray | None = None

    @property
    def vectorizer(self) -> Any:
        if self._vec is None:
            d = self.path / BASELINE_DIR
            if not (d / VECTORIZER).exists():
                raise ArtifactError(f"{self.path}: {BASELINE_DIR}/{VECTORIZER} is missing; the artifact is "
                                    "incomplete")
            self._vec = load_vectorizer(d)
        return self._vec

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        x = self.vectorizer.transform(check_texts(texts))
        return lr_logits(self.estimators, x, len(self.labels), self.multilabel)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """A fixed random projection of the TF-IDF vector (for drift sketches)."""
        x = self.vectorizer.transform(check_texts(texts))
        if self._proj is None:
            rng = np.random.default_rng(20261201)
            self._proj = rng.standard_normal((x.shape[1], BASELINE_EMBED_DIM)) / np.sqrt(BASELINE_EMBED_DIM)
        return np.asarray(x @ self._proj, dtype=np.float32)

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        return self.logits(texts), self.embed(texts)

    def __repr__(self) -> str:
        return f"BaselineModel(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)})"


class ProbeModel(TorchBacked, _LinearModel):
    """A frozen encoder's mean-pooled embeddings + logistic regression (kind ``probe``)."""

    subdir = PROBE_DIR
    _l2: bool | None = None

    def _load(self) -> None:
        from transferops.modeling import load_encoder

        self._model = self._load_torch(lambda mdir: load_encoder(mdir, safetensors_only=True))

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        from transferops.inference import forward

        return forward(self.torch_model, self.tokenizer, check_texts(texts), max_length=self.max_length,
                       batch_size=batch_size, output="embedding", desc="embed")[1]

    @property
    def l2_input(self) -> bool:
        """Whether the LR reads the L2-normalised embedding (a ``contrastive`` head) rather than the raw one."""
        if self._l2 is None:
            self._l2 = bool(self._weights().get(L2_INPUT, np.zeros(1))[0])
        return self._l2

    def logits_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        x = l2_normalise(emb) if self.l2_input else np.asarray(emb, dtype=np.float64)
        return lr_logits(self.estimators, x, len(self.labels), self.multilabel)

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return self.logits_from_embeddings(self.embed(texts, batch_size=batch_size))

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        emb = self.embed(texts, batch_size=batch_size)
        return self.logits_from_embeddings(emb), emb

    def __repr__(self) -> str:
        return f"ProbeModel(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)})"


STACK_DIR = "stack"


class StackModel(_LinearModel):
    """Tuned baseline + frozen probe, combined by a logistic-regression meta-learner on their
    log-probabilities (kind ``stack``); one model for predict, evaluate, serve and monitoring."""

    subdir = STACK_DIR
    no_torch_reason = ("{path} is a stack (TF-IDF baseline + frozen probe + meta-learner); serve the folder "
                       "as it is")

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        self.baseline = BaselineModel(path, device=device, threads=threads)
        self.probe = ProbeModel(path, device=device, threads=threads)

    @property
    def tokenizer(self) -> Any:
        return self.probe.tokenizer

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return self.probe.embed(texts, batch_size=batch_size)

    def logits_from_parts(self, texts: Sequence[str], emb: np.ndarray) -> np.ndarray:
        return self.logits_from_probe_logits(texts, self.probe.logits_from_embeddings(emb))

    def logits_from_probe_logits(self, texts: Sequence[str], probe_logits: np.ndarray) -> np.ndarray:
        """The meta-learner over the TF-IDF member and the probe's logits (from PyTorch, or the ONNX graph
        of an export)."""
        from transferops.modeling import softmax

        feats = stack_features(softmax(self.baseline.logits(texts)), softmax(np.asarray(probe_logits, np.float64)))
        return lr_logits(self.estimators, feats, len(self.labels), self.multilabel)

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        texts = check_texts(texts)
        return self.logits_from_parts(texts, self.embed(texts, batch_size=batch_size))

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        texts = check_texts(texts)
        emb = self.embed(texts, batch_size=batch_size)
        return self.logits_from_parts(texts, emb), emb

    def __repr__(self) -> str:
        return f"StackModel(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)})"


def stack_features(p_base: np.ndarray, p_probe: np.ndarray) -> np.ndarray:
    """Meta-learner input: both members' log-probabilities side by side."""
    return np.log(np.clip(np.concatenate([p_base, p_probe], axis=1), 1e-12, 1.0))


def save_stack(path: str | Path, baseline: Any, probe_clf: Any, meta: Any, *, encoder_from: str | Path) -> None:
    from safetensors.numpy import save_file

    save_baseline(path, baseline)
    save_probe(path, probe_clf, encoder_from=encoder_from, multilabel=False)
    d = Path(path) / STACK_DIR
    d.mkdir(parents=True, exist_ok=True)
    save_file(lr_tensors(meta, False), str(d / WEIGHTS))


def save_probe(path: str | Path, clf: Any, *, encoder_from: Any, multilabel: bool, tokenizer: Any = None,
               l2_input: bool = False) -> None:
    """Write a probe: the encoder + tokenizer under ``model/``, the LR under ``probe/``. ``encoder_from`` is
    a checkpoint folder (the frozen probe) or an encoder module (the body ``contrastive`` tuned), then
    with its ``tokenizer``; ``l2_input``: the LR reads the L2-normalised embedding (:data:`L2_INPUT`)."""
    from safetensors.numpy import save_file

    from transferops.modeling import load_encoder, load_tokenizer

    d = Path(path) / PROBE_DIR
    d.mkdir(parents=True, exist_ok=True)
    save_file({**lr_tensors(clf, multilabel), **({L2_INPUT: np.ones(1)} if l2_input else {})}, str(d / WEIGHTS))
    enc = encoder_from if hasattr(encoder_from, "save_pretrained") else load_encoder(encoder_from)
    enc.save_pretrained(str(Path(path) / MODEL_DIR), safe_serialization=True)
    (tokenizer if tokenizer is not None else load_tokenizer(encoder_from)).save_pretrained(str(Path(path) / MODEL_DIR))


register_kind("baseline", BaselineModel)
register_kind("probe", ProbeModel)
register_kind("stack", StackModel)

__all__ = [
    "BASELINE_DIR",
    "L2_INPUT",
    "PROBE_DIR",
    "STACK_DIR",
    "BaselineModel",
    "ProbeModel",
    "StackModel",
    "l2_normalise",
    "load_vectorizer",
    "lr_from_tensors",
    "lr_logits",
    "lr_tensors",
    "save_baseline",
    "save_probe",
    "save_stack",
    "stack_features",
]
