"""``select`` ranks image checkpoints on frozen features; ``adapt --modality image`` (SimCLR) trains the
backbone contrastively and reports the probe gain as measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from transferops.cli.main import main
from transferops.vision.simclr import nt_xent


def test_select_ranks_image_checkpoints(digits_folder: Path, tiny_mobilenet: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_mobilenet, other)
    assert main(["select", "--data", str(digits_folder), "--candidates", f"{tiny_mobilenet},{other}",
                 "--n", "30", "--folds", "3", "--json", "-q"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 30 and len(res["ranking"]) == 2 and res["rank_by"] == "probe_macro_f1"
    f1 = [r["probe_macro_f1"] for r in res["ranking"]]
    assert f1 == sorted(f1, reverse=True) and f1[0] == pytest.approx(f1[1])  # same weights, same score
    assert 0 <= res["pixel_baseline"]["macro_f1"] <= 1


def test_nt_xent_prefers_matching_views() -> None:
    torch.manual_seed(0)
    z = torch.randn(8, 16)
    assert nt_xent(z, z + 0.01 * torch.randn(8, 16), 0.5) < nt_xent(z, torch.randn(8, 16), 0.5)


def test_adapt_simclr_writes_a_checkpoint(digits_folder: Path, tiny_mobilenet: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "ssl"
    assert main(["adapt", "--modality", "image", "--checkpoint", str(tiny_mobilenet), "--unlabeled",
                 str(digits_folder / "digit_0"), "--out", str(out), "--steps", "3", "--batch-size", "8",
                 "--probe-data", str(digits_folder), "--json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["objective"] == "simclr_nt_xent" and doc["probe"]["gain"] == pytest.approx(
        doc["probe"]["after"] - doc["probe"]["before"])
    assert (out / "preprocessor_config.json").exists() and (out / "adapt.json").exists()
    before, after = load_file(str(tiny_mobilenet / "model.safetensors")), load_file(str(out / "model.safetensors"))
    k = "mobilenet_v2.conv_stem.first_conv.convolution.weight"
    assert not torch.equal(before[k], after[k])  # the backbone trained
    assert torch.equal(before["classifier.weight"], after["classifier.weight"])  # the head did not
    # the adapted folder is a checkpoint for train (resolves and loads like any local HF image folder)
    from transferops.checkpoints.image import resolve_image_checkpoint
    from transferops.vision.model import load_image_classifier

    assert load_image_classifier(resolve_image_checkpoint(str(out)).path, ["a", "b"]).config.num_labels == 2
