"""Checkpoint resolution: split-zip unpacking (the mpnet-base mechanism), local folders, clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from transferops.checkpoints import resolve_checkpoint
from transferops.checkpoints.zoo import _unpack_split_zip
from transferops.errors import CheckpointNotFoundError


def test_split_zip_is_joined_checked_and_unpacked(tiny_bert: Path, tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in tiny_bert.iterdir():
            zf.write(f, f"all-mpnet-base-v2/{f.name}")
    data = archive.read_bytes()
    pieces = []
    for i in range(5):  # five pieces like the five PyPI part packages
        p = tmp_path / f"model.zip.{i + 1:03d}"
        p.write_bytes(data[i * len(data) // 5:(i + 1) * len(data) // 5])
        pieces.append(p)
    target = _unpack_split_zip(pieces, tmp_path / "cache" / "m")
    assert (target / "config.json").exists() and (target / ".complete").exists()
    assert resolve_checkpoint(target).path == target.resolve()
    with pytest.raises(CheckpointNotFoundError, match="do not form a valid zip"):
        _unpack_split_zip(list(reversed(pieces)), tmp_path / "cache" / "bad")


def test_folder_that_is_not_a_model_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointNotFoundError, match=r"missing model.safetensors.*tokenizer"):
        resolve_checkpoint(tmp_path)


def test_artifact_folder_resolves_to_its_model(tiny_run: Path) -> None:
    assert resolve_checkpoint(tiny_run).path == (tiny_run / "model").resolve()


def test_uncached_repo_id_is_an_error_not_a_download() -> None:
    with pytest.raises(CheckpointNotFoundError, match="nothing is downloaded"):
        resolve_checkpoint("some-org/some-model-that-is-not-cached")
