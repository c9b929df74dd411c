"""Labeled image data: a folder of class sub-folders (``images/cat/001.jpg``) or a CSV/Parquet table with a
path column (+ label, slice, time, group columns). Every image is decoded once with Pillow here; a bad file
is an error naming it, or (``skip_bad_rows``) a line in ``rejects.csv`` with its reason.

The result is a :class:`~transferops.data.LabeledData` whose ``text`` column holds the absolute image path,
so splits, leakage checks and saved split files work as for text (``modality == "image"``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from transferops.constants import LABEL_COL, TEXT_COL
from transferops.data import ColumnMap, LabeledData
from transferops.errors import ConfigError, DataError
from transferops.modality.image.decode import IMAGE_EXTENSIONS, decode_image


class ImageData(LabeledData):
    """:class:`LabeledData` of image paths (``modality == "image"``)."""

    @property
    def modality(self) -> str:
        return "image"

    def subset(self, index: Any) -> ImageData:
        return ImageData(self.frame.loc[index].reset_index(drop=True), self.task, self.labels, self.columns,
                         self.source)


@dataclass
class DecodedImages:
    """Rows kept after decoding, with their decoded RGB images (same order as ``data.frame``)."""

    data: ImageData
    images: list[Any]


def is_image_folder(path: str | Path) -> bool:
    """A folder whose sub-folders hold image files (the class-per-folder layout)."""
    p = Path(path)
    if not p.is_dir():
        return False
    for sub in p.iterdir():
        if sub.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in sub.iterdir() if f.is_file()):
            return True
    return False


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` or below it, sorted (for ``predict`` on a folder)."""
    p = Path(folder)
    if not p.is_dir():
        raise DataError(f"{p}: not a folder of images")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{p}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found")
    return files


def folder_frame(folder: str | Path) -> pd.DataFrame:
    """``class/xxx.jpg`` → a frame with ``path`` and ``label`` (files with other extensions are ignored)."""
    root = Path(folder)
    rows = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir()):
        for f in sorted(sub.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                rows.append({"path": str(f.resolve()), "label": sub.name})
    if not rows:
        raise DataError(f"{root}: no class sub-folders with images; lay the data out as {root}/<class>/<file>.jpg "
                        "or pass a CSV/Parquet file with a path column")
    return pd.DataFrame(rows)


def load_images(data: str | Path | pd.DataFrame, *, path_column: str = "path", label_column: str = "label",
                slice_columns: list[str] | None = None, time_column: str | None = None,
                group_column: str | None = None, skip_bad_rows: bool = False, rejects_path: str | Path | None = None,
                decode: bool = True) -> DecodedImages:
    """Read and decode labeled images. Relative paths in a table are relative to the table's folder."""
    base = None
    if isinstance(data, pd.DataFrame):
        frame, source = data.copy(), "<memory>"
    elif Path(data).is_dir():
        frame, source = folder_frame(data), str(data)
        path_column, label_column = "path", "label"
    else:
        from transferops.data.loading import read_table

        frame, source = read_table(data), str(data)
        base = Path(data).resolve().parent
    extra = [c for c in (time_column, group_column, *(slice_columns or [])) if c]
    for col, what in [(path_column, "--image-column"), (label_column, "--label-column"), *[(c, c) for c in extra]]:
        if col not in frame.columns:
            raise ConfigError(f"{what}: column {col!r} not in {source} (columns: {', '.join(map(str, frame.columns))})")
    keep, images, rejects = [], [], []
    for i, (p, lbl) in enumerate(zip(frame[path_column].tolist(), frame[label_column].tolist(), strict=True)):
        where = f"{source} row {i + 1}"
        try:
            if not isinstance(p, str) or not p.strip():
                raise DataError(f"{where}: column {path_column!r} is empty; every row needs an image path")
            if lbl is None or (isinstance(lbl, float) and pd.isna(lbl)) or str(lbl).strip() == "":
                raise DataError(f"{where}: column {label_column!r} is empty")
            path = Path(p)
            if not path.is_absolute() and base is not None:
                path = base / path
            img = decode_image(path, f"{where} ({path})") if decode else None
        except DataError as exc:
            if not skip_bad_rows:
                raise DataError(f"{exc}; fix or remove it, or pass --skip-bad-rows to write bad rows to rejects.csv"
                                ) from None
            rejects.append({"row": i + 1, "path": p, "reason": str(exc)})
            continue
        keep.append(i)
        images.append(img)
        frame.at[frame.index[i], path_column] = str(path.resolve())
    out = pd.DataFrame({TEXT_COL: frame[path_column].iloc[keep].tolist(),
                        LABEL_COL: [str(x) for x in frame[label_column].iloc[keep].tolist()]})
    for c in extra:
        out[c] = frame[c].iloc[keep].tolist()
    if out.empty:
        raise DataError(f"{source}: no readable images left" + (" (every row was rejected)" if rejects else ""))
    labels = sorted(out[LABEL_COL].unique().tolist())
    if len(labels) < 2:
        raise DataError(f"{source}: found one class ({labels[0]!r}); a classifier needs at least two")
    rp = None
    if rejects:
        rp = Path(rejects_path) if rejects_path else Path("rejects.csv")
        rp.parent.mkdir(parents=True, exist_ok=True)
        with open(rp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["row", "path", "reason"])
            w.writeheader()
            w.writerows(rejects)
    cols = ColumnMap(text=path_column, label=label_column, time=time_column, group=group_column,
                     slices=list(slice_columns or []))
    task: Any = "binary" if len(labels) == 2 else "multiclass"
    d = ImageData(out, task, labels, cols, source, n_rejected=len(rejects), rejects_path=str(rp) if rp else None)
    return DecodedImages(d, images)


__all__ = ["DecodedImages", "ImageData", "folder_frame", "is_image_folder", "list_images", "load_images"]
