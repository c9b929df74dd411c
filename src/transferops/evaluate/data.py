"""Evaluation data: the model's own test split by default, or a labeled file checked against the
labels the model knows (unknown labels are an error unless explicitly ignored)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferops.constants import DATA_DIR, LABEL_COL, TEST_SPLIT, TEXT_COL
from transferops.errors import ArtifactError, DataError


@dataclass
class EvalData:
    """Rows to evaluate on, in canonical columns (``text``, ``label`` + slice columns)."""

    frame: pd.DataFrame
    y: np.ndarray  # int classes, or a 0/1 matrix for multi-label
    source: str
    split: str | None = None  # "test" / "validation" when the rows are one of the artifact's splits
    sha256: str | None = None
    dropped_unknown: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return self.frame[TEXT_COL].tolist()

    @property
    def is_test_split(self) -> bool:
        return self.split == "test"


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _row_labels(v: Any, multilabel: bool, sep: str | None) -> list[str]:
    from transferops.data.loading import parse_multilabel

    if multilabel:
        return parse_multilabel(v, sep) or []
    if _is_missing(v):
        return []
    s = str(v).strip()
    if s.endswith(".0") and s[:-2].lstrip("-").isdigit():
        s = s[:-2]
    return [s]


def encode_frame_labels(df: pd.DataFrame, labels: list[str], multilabel: bool, *, ignore_unknown: bool,
                        label_sep: str | None = None, source: str = "data"
                        ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Encode ``df['label']`` against the model's labels: (y, rows kept mask, unknown label counts)."""
    known = set(labels)
    index = {lbl: i for i, lbl in enumerate(labels)}
    values = df[LABEL_COL].tolist()
    rows = [_row_labels(v, multilabel, label_sep) for v in values]
    if not multilabel:
        missing = [i + 1 for i, r in enumerate(rows) if not r or not r[0]]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise DataError(f"{source}: column 'label': {len(missing)} rows have no label (NaN/empty; rows "
                            f"{shown}); evaluation needs every row's true label: fill them or drop those rows")
    unknown: Counter[str] = Counter(lbl for r in rows for lbl in r if lbl not in known)
    keep = np.asarray([all(lbl in known for lbl in r) for r in rows], dtype=bool)
    if unknown and not ignore_unknown:
        listed = ", ".join(f"{k!r} ({n} rows)" for k, n in unknown.most_common(5))
        raise DataError(f"{source}: column 'label' has labels the model never saw: {listed}. The model "
                        f"knows: {', '.join(labels[:12])}. Relabel them, or pass --ignore-unknown-labels "
                        "(ignore_unknown_labels=True) to drop those rows from the evaluation.")
    kept = [r for r, k in zip(rows, keep, strict=True) if k]
    if multilabel:
        y = np.zeros((len(kept), len(labels)), dtype=np.int64)
        for i, r in enumerate(kept):
            for lbl in r:
                y[i, index[lbl]] = 1
    else:
        y = np.asarray([index[r[0]] for r in kept], dtype=np.int64)
    return y, keep, dict(unknown)


def default_split(model: Any, name: str = "test") -> pd.DataFrame:
    """A saved split of the model's artifact (``model.split`` or ``<path>/data/<name>.parquet``)."""
    if hasattr(model, "split"):
        try:
            return model.split(name)  # type: ignore[no-any-return]
        except (ArtifactError, FileNotFoundError):
            pass
    path = getattr(model, "path", None)
    if path is not None:
        for base in (Path(path), Path(path).parent):
            f = base / DATA_DIR / f"{name}.parquet"
            if f.exists():
                return pd.read_parquet(f)
    raise ArtifactError(f"the model has no saved '{name}' split to evaluate on; pass --data FILE "
                        "(a labeled CSV/JSONL/Parquet)")


def _test_sha(model: Any) -> str | None:
    return (getattr(model, "manifest", None) or {}).get("splits", {}).get("test_sha256")


def load_eval_data(model: Any, data: str | Path | pd.DataFrame | None = None, *, text_column: str = "text",
                   label_column: str = "label", label_columns: list[str] | None = None,
                   label_sep: str | None = None, slices: list[str] | tuple[str, ...] = (),
                   ignore_unknown_labels: bool = False) -> EvalData:
    """Load and check evaluation rows for ``model``."""
    from transferops._util import sha256_file
    from transferops.data import ColumnMap, load_labeled, read_table

    multilabel = model.task == "multilabel"
    split: str | None = None
    sha: str | None = None
    if data is None:
        frame = default_split(model, "test").reset_index(drop=True)
        source, split, sha = "test split", "test", _test_sha(model)
        saved = Path(getattr(model, "path", "") or ".") / DATA_DIR / TEST_SPLIT
        notes: list[str] = []
        if getattr(model, "path", None) and saved.exists():
            current = sha256_file(saved)
            if sha is None:
                sha = current  # e.g. an ensemble manifest without split fingerprints
            elif current != sha:
                notes.append(f"the saved test split {saved} no longer matches the sha256 recorded at training "
                             "time; it was modified, so these numbers are not the held-out estimate")
        if multilabel:
            frame[LABEL_COL] = frame[LABEL_COL].apply(lambda v: [str(x) for x in v])
        for c in slices:
            if c not in frame.columns:
                extra = [c for c in frame.columns if c not in (TEXT_COL, LABEL_COL)]
                raise DataError(f"slice column '{c}' is not in the model's test split (its extra columns: "
                                f"{', '.join(map(str, extra)) or 'none'}). Train with --slice-column {c}, "
                                "or evaluate a file that has it with --data FILE.")
        y, keep, unknown = encode_frame_labels(frame, model.labels, multilabel,
                                               ignore_unknown=ignore_unknown_labels, source=source)
        return EvalData(frame[keep].reset_index(drop=True), y, source, split, sha, unknown, notes)

    if isinstance(data, pd.DataFrame):
        raw, source = data.reset_index(drop=True), "<dataframe>"
    else:
        raw, source = read_table(data), str(data)
        if _test_sha(model) and sha256_file(data) == _test_sha(model):
            split, sha = "test", _test_sha(model)
        elif Path(data).name == TEST_SPLIT and Path(data).parent.name == DATA_DIR:
            split, sha = "test", sha256_file(data)
    for c in slices:
        if c not in raw.columns:
            raise DataError(f"{source}: no slice column '{c}'. Columns are: "
                            f"{', '.join(map(str, raw.columns[:20]))}. Check --slice.")
    label_cols = label_columns or [label_column]
    for c in label_cols:
        if c not in raw.columns:
            cols = ", ".join(map(str, raw.columns[:20]))
            raise DataError(f"{source}: no label column '{c}' (columns: {cols}). "
                            "Evaluation needs the true labels; pass --label-column NAME.")
    dropped: dict[str, int] = {}
    if not label_columns:
        # Check unknown labels up front so the message names them all and offers the opt-out.
        tmp = pd.DataFrame({LABEL_COL: raw[label_column].tolist()})
        _, keep, dropped = encode_frame_labels(tmp, model.labels, multilabel, label_sep=label_sep,
                                               ignore_unknown=ignore_unknown_labels, source=source)
        raw = raw[keep].reset_index(drop=True)
        if len(raw) == 0:
            raise DataError(f"{source}: no rows left after dropping unknown labels")
    cm = ColumnMap(text=text_column, label=None if label_columns else label_column,
                   label_columns=label_columns, label_sep=label_sep, slices=list(slices))
    labeled = load_labeled(raw, cm, task="multilabel" if multilabel else "auto",
                           known_labels=list(model.labels))
    labeled.source = source
    frame = labeled.frame
    y, _, _ = encode_frame_labels(frame, model.labels, multilabel, ignore_unknown=False, source=source)
    return EvalData(frame, y, source, split, sha, dropped)
