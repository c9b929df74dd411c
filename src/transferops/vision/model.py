"""Image artifact kinds and the one image forward pass.

* :func:`load_image_classifier` — an HF image-classification checkpoint with a fresh head for the task's
  labels and PyTorch's BatchNorm momentum (0.1; transformers' MobileNetV2 hard-codes TF's 0.997);
* :class:`WithFeatures` — ``pixel_values → (logits, embedding)``, the embedding being the input of the
  checkpoint's ``classifier`` head (1280-d for MobileNetV2); what the trainer's feature cache, the model,
  monitoring and the ONNX graph compute;
* :class:`ImageModel` (kind ``image_model``) and :class:`ImageBaselineModel` (kind ``image_baseline``):
  :class:`~transferops.artifacts.classifier.ClassifierBase` kinds, so ``transferops.load``, ``predict``,
  ``evaluate`` and calibration use them unchanged; their inputs are image paths, bytes or PIL images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transferops.artifacts.classifier import ClassifierBase, TorchBacked
from transferops.artifacts.kinds import register_kind
from transferops.constants import MODEL_DIR
from transferops.errors import ArtifactError, CheckpointNotFoundError
from transferops.modality.image import IMAGE, ImageServeHooks
from transferops.modality.image.preprocess import ImagePreprocessing, check_same

TORCH_BN_MOMENTUM = 0.1


def set_bn_momentum(model: Any, momentum: float = TORCH_BN_MOMENTUM) -> int:
    """Set every BatchNorm's momentum (PyTorch convention: weight of the new batch); returns how many."""
    import torch

    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
            n += 1
    return n


def head_module(model: Any) -> Any:
    """The checkpoint's classification head (transformers names it ``classifier`` for image models)."""
    head = getattr(model, "classifier", None)
    if head is None:
        raise CheckpointNotFoundError(f"{type(model).__name__} has no 'classifier' head; use an HF "
                                      "*ForImageClassification checkpoint")
    return head


def load_image_classifier(path: str | Path, labels: Sequence[str] | None = None) -> Any:
    """``AutoModelForImageClassification`` from a local folder; with ``labels``, a fresh head for them."""
    from transformers import AutoModelForImageClassification

    from transferops._hf import quiet_transformers
    from transferops.checkpoints.image_effnet import register_auto

    register_auto()  # efficientnet-lite0's wrapper (not a transformers model type)
    kw: dict[str, Any] = {}
    if labels is not None:
        kw = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
              "label2id": {lbl: i for i, lbl in enumerate(labels)}, "ignore_mismatched_sizes": True}
    try:
        with quiet_transformers():
            model = AutoModelForImageClassification.from_pretrained(str(path), local_files_only=True, **kw)
    except (OSError, ValueError) as exc:
        raise CheckpointNotFoundError(f"checkpoint: {path} is not an image-classification model ({exc})") from None
    set_bn_momentum(model)
    head_module(model)
    return model


class WithFeatures:
    """Factory of a torch module ``pixel_values → (logits, embedding)``: the embedding is what enters the
    head (captured by a forward pre-hook, so it works for MobileNetV2, ViT, ConvNeXt, ResNet alike, and
    traces into ONNX)."""

    @staticmethod
    def wrap(model: Any) -> Any:
        import torch

        class _WithFeatures(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner
                self._seen: list[Any] = []
                head_module(inner).register_forward_pre_hook(lambda _m, args: self._seen.append(args[0]))

            def forward(self, pixel_values: Any) -> Any:
                self._seen.clear()
                logits = self.inner(pixel_values=pixel_values).logits
                feats = self._seen[-1]
                return logits, feats.flatten(1)

        return _WithFeatures(model)


def image_forward(module: Any, pre: ImagePreprocessing, images: Sequence[Any], *, batch_size: int = 32
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Decoded images through a :class:`WithFeatures` module in batches → ``(logits, embedding)``."""
    import torch

    if not images:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    device = next(module.parameters()).device
    was = module.training
    module.eval()
    outs_l, outs_e = [], []
    try:
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                pv = torch.from_numpy(pre.pixels(list(images[s:s + batch_size]))).to(device)
                lg, em = module(pv)
                outs_l.append(lg.float().cpu().numpy())
                outs_e.append(em.float().cpu().numpy())
    finally:
        if was:
            module.train()
    return np.concatenate(outs_l), np.concatenate(outs_e)


def read_preprocessing(manifest: Any, path: Path) -> ImagePreprocessing:
    """The manifest's recorded preprocessing, checked against the model folder's own file."""
    img = manifest.get("image") or {}
    if "preprocessing" not in img:
        raise ArtifactError(f"{path}: manifest field 'image.preprocessing' is missing; not an image model folder")
    recorded = ImagePreprocessing.from_dict(img["preprocessing"])
    mdir = path / MODEL_DIR
    if (mdir / "preprocessor_config.json").exists():
        check_same(recorded, ImagePreprocessing.from_folder(mdir), str(path))
    return recorded


class ImageModel(ImageServeHooks, TorchBacked, ClassifierBase):
    """A fine-tuned image classifier folder (``kind: image_model``)."""

    modality = "image"

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        self.preprocessing = read_preprocessing(self.manifest, self.path)
        self._module: Any = None

    def _load(self) -> None:
        import torch

        from transferops.modeling import set_threads

        set_threads(self._threads)
        mdir = self.path / MODEL_DIR
        if not mdir.exists():
            raise ArtifactError(f"{self.path}: folder '{MODEL_DIR}/' is missing; the artifact is incomplete")
        model = load_image_classifier(mdir)
        model.to(self._device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
        self._model = model
        self._tok = self.preprocessing
        self._module = WithFeatures.wrap(model).eval()

    @property
    def feature_module(self) -> Any:
        if self._module is None:
            self._load()
        return self._module

    def infer(self, texts: Sequence[Any], *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        images = IMAGE.check_inputs(texts)
        return image_forward(self.feature_module, self.preprocessing, images, batch_size=batch_size)


class ImageBaselineModel(ImageServeHooks, ClassifierBase):
    """The pixel + colour-histogram logistic regression saved as the winner (``kind: image_baseline``)."""

    runtime = "sklearn"
    modality = "image"
    no_torch_reason = "{path} is the pixel logistic-regression baseline (kind image_baseline): no PyTorch model"
    not_exported_reason = "is the pixel baseline (no network to export); serve the folder directly"

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        from safetensors.numpy import load_file

        from transferops.modality.image.baseline import PixelBaseline

        f = self.path / "baseline.safetensors"
        if not f.exists():
            raise ArtifactError(f"{self.path}: baseline.safetensors is missing; the artifact is incomplete")
        side = int((self.manifest.get("image") or {}).get("baseline_side", 16))
        self.baseline = PixelBaseline.from_arrays(load_file(str(f)), side=side)

    @property
    def tokenizer(self) -> Any:
        return None

    def infer(self, texts: Sequence[Any], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        feats = self.baseline.features(texts)
        return self.baseline.logits_from_features(feats).astype(np.float32), feats


register_kind("image_model", ImageModel)
register_kind("image_baseline", ImageBaselineModel)

__all__ = ["TORCH_BN_MOMENTUM", "ImageBaselineModel", "ImageModel", "WithFeatures", "head_module",
           "image_forward", "load_image_classifier", "read_preprocessing", "set_bn_momentum"]
