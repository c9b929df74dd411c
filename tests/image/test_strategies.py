"""Image strategies through the shared loop: freeze keeps the frozen blocks (weights and BatchNorm
statistics) exactly, full moves everything; class weights / oversampling; augmentation presets; leakage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferops.errors import ConfigError
from transferops.vision.augment import make_augmenter
from transferops.vision.train import ImageTrainConfig, backbone_blocks, train_images


def _state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transferops.vision.sample_data import write_digits_folder

    return write_digits_folder(tmp_path_factory.mktemp("sd") / "imgs", per_class=8, classes=range(2), size=32)


@pytest.mark.parametrize("strategy", ["freeze", "full"])
def test_freeze_and_full(strategy: str, small_digits: Path, tiny_mobilenet: Path, tmp_path: Path) -> None:
    cfg = ImageTrainConfig(checkpoint=str(tiny_mobilenet), strategy=strategy, epochs=1, batch_size=4,
                           class_weight="balanced", oversample=True, augment="standard", freeze_fraction=0.5)
    res = train_images(small_digits, out=tmp_path / "run", config=cfg)
    assert res.manifest["strategy"]["name"] == strategy and res.manifest["kind"] == "image_model"
    before, after = _state(tiny_mobilenet), _state(tmp_path / "run" / "model")
    from transformers import AutoModelForImageClassification

    n_blocks = len(backbone_blocks(AutoModelForImageClassification.from_pretrained(str(tiny_mobilenet))))
    frozen = [f"mobilenet_v2.layer.{i}." for i in range(n_blocks // 2)] + ["mobilenet_v2.conv_stem."]
    trained = [f"mobilenet_v2.layer.{i}." for i in range(n_blocks // 2, n_blocks)]
    same = {k: torch.equal(before[k], after[k]) for k in before if not k.startswith("classifier")}
    frozen_same = [v for k, v in same.items() if any(k.startswith(f) for f in frozen)]
    trained_same = [v for k, v in same.items() if any(k.startswith(t) for t in trained)
                    and ("weight" in k or "running" in k)]
    assert frozen_same and trained_same
    if strategy == "freeze":
        assert all(frozen_same), "a frozen block (weights or BatchNorm statistics) changed"
    else:
        assert not any(frozen_same)
    assert not all(trained_same)


def test_lora_on_pointwise_convs_is_merged(small_digits: Path, tiny_mobilenet: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForImageClassification

    import transferops

    # LoRA keeps BatchNorm statistics frozen: give the random net real ones first (else its features vanish)
    ck = tmp_path / "ck"
    shutil.copytree(tiny_mobilenet, ck)
    net = AutoModelForImageClassification.from_pretrained(str(ck)).train()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    with torch.no_grad():
        for s in range(5):
            net(pixel_values=torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(s)))
    net.save_pretrained(str(ck))
    cfg = ImageTrainConfig(checkpoint=str(ck), strategy="lora", epochs=2, batch_size=4, lr=1e-2)
    res = train_images(small_digits, out=tmp_path / "run", config=cfg)
    assert res.manifest["strategy"]["name"] == "lora" and res.manifest["kind"] == "image_model"
    before, after = _state(ck), _state(tmp_path / "run" / "model")
    assert not any("lora" in k for k in after)  # merged: a plain model folder
    dw = "mobilenet_v2.layer.0.conv_3x3.convolution.weight"  # depthwise: no LoRA
    pw = "mobilenet_v2.layer.0.expand_1x1.convolution.weight"  # 1×1: LoRA, merged
    bn = "mobilenet_v2.layer.0.expand_1x1.normalization.running_mean"
    assert torch.equal(before[dw], after[dw]) and torch.equal(before[bn], after[bn])
    assert not torch.equal(before[pw], after[pw])
    assert len(transferops.load(tmp_path / "run").predict([str(next(small_digits.rglob("*.png")))])) == 1


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="strategy"):
        ImageTrainConfig(strategy="prompt_tuning")
    with pytest.raises(ConfigError, match="image_size"):
        ImageTrainConfig(image_size=3)
    with pytest.raises(ConfigError, match="augment"):
        ImageTrainConfig(augment="heavy")


def test_augmentation_presets() -> None:
    crops = np.zeros((2, 32, 32, 3), np.uint8)
    crops[:, 5, 20] = 255
    crops[:, :, :, 1] += 40
    geo = make_augmenter("geometry_preserving")
    std = make_augmenter("standard")
    assert geo is not None and std is not None and make_augmenter(None) is None
    g = geo(crops, seed=(0, 0, 0))
    assert g.shape == crops.shape
    assert all(np.unravel_index(g[i].sum(-1).argmax(), (32, 32)) == (5, 20) for i in range(2))  # nothing moves
    np.testing.assert_array_equal(std(crops, seed=(1, 2, 3)), std(crops, seed=(1, 2, 3)))  # seeded
    assert not np.array_equal(std(crops, seed=(1, 2, 3)), std(crops, seed=(1, 2, 4)))


def test_leakage_exact_and_near(digits_folder: Path, tmp_path: Path) -> None:
    from transferops.vision.data import load_images
    from transferops.vision.leakage import find_image_leakage

    files = sorted(digits_folder.rglob("*.png"))
    train, test = files[:10], files[10:14]
    dup = tmp_path / "dup.png"
    shutil.copy(train[0], dup)  # byte-identical copy
    near = tmp_path / "near.png"
    Image.open(train[1]).resize((48, 48)).save(near)  # resized: other bytes, same picture
    test = [*test, dup, near]
    ims = load_images.__globals__["decode_image"]
    rep = find_image_leakage([str(f) for f in train], [str(f) for f in test], [ims(f) for f in train],
                             [ims(f) for f in test])
    assert rep["exact_duplicates"] == 1 and rep["exact_pairs"] == [(0, 4)]
    assert (1, 5) in [(i, j) for i, j, _ in rep["near_pairs"]]
