"""Bad image files are one clear error (or a rejects row), never a crash; odd modes are converted."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from transferops.errors import DataError
from transferops.modality import get_modality
from transferops.modality.image import IMAGE, decode_image
from transferops.vision.data import load_images


def _huge_png(path: Path, w: int, h: int) -> None:
    """A valid 1×1 PNG whose header claims w×h (what a decompression bomb looks like before decoding)."""
    Image.new("L", (1, 1)).save(path)
    b = bytearray(path.read_bytes())
    b[16:24] = struct.pack(">II", w, h)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(b))


@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    good = tmp_path / "good.png"
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(good)
    trunc = tmp_path / "truncated.jpg"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(trunc, quality=95)
    trunc.write_bytes(trunc.read_bytes()[:400])
    notimg = tmp_path / "notes.jpg"
    notimg.write_text("this is not an image")
    huge = tmp_path / "huge.png"
    _huge_png(huge, 100_000, 100_000)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(cmyk)
    g16 = tmp_path / "gray16.png"
    Image.fromarray(np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).save(g16)
    grey = tmp_path / "grey.png"
    Image.new("L", (32, 32), 128).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(rgba)
    return {"good": good, "truncated": trunc, "notimage": notimg, "huge": huge, "cmyk": cmyk, "gray16": g16,
            "grey": grey, "rgba": rgba}


def test_bad_files_are_clear_errors(bad_files: dict[str, Path]) -> None:
    with pytest.raises(DataError, match="truncated or corrupt"):
        decode_image(bad_files["truncated"])
    with pytest.raises(DataError, match="not an image Pillow can read"):
        decode_image(bad_files["notimage"])
    with pytest.raises(DataError, match="too large|pixel limit"):
        decode_image(bad_files["huge"])
    with pytest.raises(DataError, match="not found"):
        decode_image(bad_files["good"].parent / "missing.png")
    with pytest.raises(DataError, match="images: pass a list"):
        IMAGE.check_inputs(str(bad_files["good"]))
    with pytest.raises(DataError, match=r"images\[1\]: expected an image path"):
        IMAGE.check_inputs([str(bad_files["good"]), 3])


def test_odd_modes_become_8bit_rgb(bad_files: dict[str, Path]) -> None:
    for k in ("cmyk", "gray16", "grey", "rgba"):
        im = decode_image(bad_files[k])
        assert im.mode == "RGB", k
    cmyk = np.asarray(decode_image(bad_files["cmyk"]))
    assert cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60  # cyan-free, magenta+yellow: red
    g16 = np.asarray(decode_image(bad_files["gray16"]))
    assert g16.min() == 0 and g16.max() == 255  # rescaled by its own range, not clipped
    assert np.asarray(decode_image(bad_files["rgba"])).min() == 255  # transparent over white
    assert get_modality("image") is IMAGE


def test_rejects_file_or_error_naming_the_row(bad_files: dict[str, Path], tmp_path: Path) -> None:
    rows = [("good", "a"), ("truncated", "a"), ("notimage", "b"), ("huge", "b"), ("cmyk", "b"), ("grey", "a")]
    df = pd.DataFrame({"path": [str(bad_files[k]) for k, _ in rows], "label": [lbl for _, lbl in rows]})
    csv = tmp_path / "data.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"row 2 .*truncated.*--skip-bad-rows"):
        load_images(csv)
    dec = load_images(csv, skip_bad_rows=True, rejects_path=tmp_path / "rejects.csv")
    assert dec.data.n_rejected == 3 and len(dec.images) == 3
    rej = pd.read_csv(tmp_path / "rejects.csv")
    assert rej["row"].tolist() == [2, 3, 4] and rej["reason"].str.len().min() > 10
    assert dec.data.modality == "image" and dec.data.labels == ["a", "b"]


def test_table_with_relative_paths_and_slices(bad_files: dict[str, Path], tmp_path: Path) -> None:
    import argparse

    from transferops.vision import cli as image_cli

    df = pd.DataFrame({"file": ["good.png", "grey.png", "cmyk.jpg", "rgba.png"], "y": ["a", "b", "a", "b"],
                       "site": ["s1", "s1", "s2", "s2"]})
    df.to_parquet(tmp_path / "t.parquet")  # next to the images: paths are relative to the table
    dec = load_images(tmp_path / "t.parquet", path_column="file", label_column="y", slice_columns=["site"])
    assert dec.data.frame["site"].tolist() == ["s1", "s1", "s2", "s2"]
    assert all(Path(p).is_absolute() and Path(p).exists() for p in dec.data.texts)
    with pytest.raises(Exception, match="--image-column: column 'path'"):
        load_images(tmp_path / "t.parquet")
    assert image_cli.wants_images(argparse.Namespace(modality="image", data=str(tmp_path / "t.parquet")))
    assert not image_cli.wants_images(argparse.Namespace(modality=None, data=str(tmp_path / "t.parquet")))
    assert image_cli.wants_images(argparse.Namespace(modality=None, data=str(tmp_path.parent)))  # class folders
