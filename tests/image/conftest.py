"""Image fixtures: a tiny random MobileNetV2 (built from a config, saved with an image-processor config) and
real handwritten digits (scikit-learn's load_digits) written as PNG class folders."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    from transferops.modality.image.preprocess import ImagePreprocessing

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_mobilenet")
    cfg = MobileNetV2Config(depth_multiplier=0.35, image_size=32, num_labels=5, tf_padding=False,
                            layer_norm_eps=1e-5, min_depth=4)
    MobileNetV2ForImageClassification(cfg).save_pretrained(str(d))
    ImagePreprocessing(resize=36, crop=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)).save(d)
    return d


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transferops.vision.sample_data import write_digits_folder

    return write_digits_folder(tmp_path_factory.mktemp("digits") / "imgs", per_class=14, classes=range(3), size=32)


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory, tiny_mobilenet: Path, digits_folder: Path) -> Path:
    """A trained image model (strategy head, tiny MobileNetV2) through the CLI."""
    from transferops.cli.main import main

    out = tmp_path_factory.mktemp("image_run") / "run"
    assert main(["train", "--data", str(digits_folder), "--out", str(out), "--checkpoint", str(tiny_mobilenet),
                 "--strategy", "head", "--epochs", "10", "-q"]) == 0
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread for these tiny convolution nets: on a loaded 2-core machine, 2 threads made
    each forward ~30x slower (thread contention); restored after the module."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
