"""The schema of a table: which columns are features, of which type, and how rows become model inputs.

* :func:`infer_schema` — column roles and types from a DataFrame (numeric / categorical / datetime), recorded
  in the manifest (``schema``) so a loaded model knows exactly which columns it takes;
* :meth:`TableSchema.coerce` — rows (a list of JSON objects or a DataFrame) checked against the schema:
  a missing, extra or wrongly typed column is one :class:`~transferops.errors.DataError` naming the
  column and the row (the server answers it with 422);
* :class:`FeatureEncoder` — fitted on the training split only, stored as JSON (no pickle): numeric
  medians/means/scales, category vocabularies (most frequent first, capped; index 0 is missing or
  unseen), datetime columns as days / month / weekday.

Only numpy and pandas, imported lazily where they are heavy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from transferops.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

COLUMN_TYPES = ("numeric", "categorical", "datetime")
#: Most categories kept per column (the rest share index 0 with missing/unseen values). Below
#: HistGradientBoosting's 255-bin limit for native categorical splits.
MAX_CATEGORIES = 250
#: A text column with at least this share of values parsing as dates is a datetime feature.
DATE_SHARE = 0.95


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of COLUMN_TYPES

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ConfigError(f"schema.{self.name}: type {self.type!r} is not one of {', '.join(COLUMN_TYPES)}")


def _looks_datetime(s: pd.Series) -> bool:
    import pandas as pd

    vals = s.dropna()
    if vals.empty or not vals.map(lambda v: isinstance(v, str)).all():
        return False
    sample = vals.head(200)
    if sample.str.fullmatch(r"[-+]?\d+(\.\d*)?").any():  # plain numbers are not dates
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= DATE_SHARE)


def column_type(s: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(s):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    return "datetime" if _looks_datetime(s) else "categorical"


@dataclass
class TableSchema:
    """Feature columns (in model order), the label, and the columns that are not features."""

    features: list[Column]
    label: str
    time_column: str | None = None
    group_column: str | None = None
    id_column: str | None = None
    slice_columns: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.features}

    #: Columns a request may carry besides the features (kept for logging, never fed to the model).
    @property
    def passthrough(self) -> set[str]:
        return {c for c in (self.id_column,) if c}

    def to_dict(self) -> dict[str, Any]:
        return {"features": [{"name": c.name, "type": c.type} for c in self.features], "label": self.label,
                "time_column": self.time_column, "group_column": self.group_column, "id_column": self.id_column,
                "slice_columns": list(self.slice_columns)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableSchema:
        try:
            feats = [Column(str(c["name"]), str(c["type"])) for c in d["features"]]
            return cls(features=feats, label=str(d["label"]), time_column=d.get("time_column"),
                       group_column=d.get("group_column"), id_column=d.get("id_column"),
                       slice_columns=list(d.get("slice_columns") or []))
        except (KeyError, TypeError) as exc:
            raise DataError(f"schema: the manifest's schema is damaged ({exc!r}); retrain the model") from exc

    # ---------------------------------------------------------------- checking rows
    def coerce(self, rows: Any, *, where: str = "rows", allow_extra: Sequence[str] = ()) -> pd.DataFrame:
        """``rows`` (list of dicts, or a DataFrame) as a typed DataFrame of the feature columns; a
        :class:`DataError` names the first missing / extra / wrongly typed column."""
        import pandas as pd

        allowed = set(self.names) | self.passthrough | set(allow_extra)
        if isinstance(rows, pd.DataFrame):
            missing = [c for c in self.names if c not in rows.columns]
            if missing:
                raise DataError(f"{where}: column {missing[0]!r} is missing (the model takes "
                                f"{', '.join(self.names)})")
            extra = [str(c) for c in rows.columns if c not in allowed]
            if extra:
                raise DataError(f"{where}: column {extra[0]!r} is not a feature of this model; drop it (the "
                                f"model takes {', '.join(self.names)})")
            frame = rows[self.names].copy()
            return self._typed(frame, where, frame_input=True)
        if isinstance(rows, (Mapping, str, bytes)):
            raise DataError(f"{where}: pass a list of row objects, not a single {type(rows).__name__} (wrap it: "
                            "[row])")
        out: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise DataError(f"{where}[{i}]: expected an object of column: value, got {type(row).__name__}")
            for c in self.names:
                if c not in row:
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is missing (send null for a missing value)")
            for c in row:
                if c not in allowed:
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is not a feature of this model; drop it "
                                    f"(the model takes {', '.join(self.names)})")
            for c, t in self.types.items():
                v = row[c]
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                if t == "numeric" and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))):
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is numeric, got {type(v).__name__} {v!r}")
                if t == "numeric" and not (abs(v) < 1e308 if isinstance(v, int) else math.isfinite(float(v))):
                    raise DataError(f"{where}[{i}].{c}: column {c!r} must be a finite number or null, got {v!r}")
                if t == "categorical" and not isinstance(v, (str, int, bool, np.integer)):
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is categorical: send a string, got "
                                    f"{type(v).__name__}")
                if t == "datetime" and not isinstance(v, str):
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is a date: send an ISO string such as "
                                    f"'2024-05-01', got {type(v).__name__}")
            out.append({c: row[c] for c in self.names})
        frame = pd.DataFrame(out, columns=self.names)
        return self._typed(frame, where, frame_input=False)

    def _typed(self, frame: pd.DataFrame, where: str, *, frame_input: bool) -> pd.DataFrame:
        import pandas as pd

        for c, t in self.types.items():
            s = frame[c]
            if t == "numeric":
                num = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_bool_dtype(s) else s.where(False)
                bad = num.isna() & s.notna()
                if bad.any():
                    i = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is numeric, got {s.iloc[i]!r}")
                frame[c] = num.astype("float64")
            elif t == "datetime":
                dt = pd.to_datetime(s, errors="coerce", format="mixed", utc=True) if not \
                    pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s, utc=True)
                bad = dt.isna() & s.notna()
                if bad.any():
                    i = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(f"{where}[{i}].{c}: column {c!r} is a date, got {s.iloc[i]!r} (use ISO "
                                    "format, e.g. 2024-05-01)")
                frame[c] = dt
            else:
                frame[c] = s.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                                 else str(v).lower() if isinstance(v, bool) else str(v)).astype(object)
        return frame


def infer_schema(df: pd.DataFrame, *, label: str, features: Sequence[str] | None = None,
                 time_column: str | None = None, group_column: str | None = None, id_column: str | None = None,
                 slice_columns: Sequence[str] = (), types: Mapping[str, str] | None = None) -> TableSchema:
    """Feature columns and their types. Without ``features``: every column except the label, time, group
    and id columns (slice columns stay features: they are ordinary inputs that evaluate also groups by)."""
    if label not in df.columns:
        raise DataError(f"label_column: {label!r} is not a column (columns: {', '.join(map(str, df.columns))})")
    for role, col in (("time_column", time_column), ("group_column", group_column), ("id_column", id_column)):
        if col and col not in df.columns:
            raise DataError(f"{role}: {col!r} is not a column (columns: {', '.join(map(str, df.columns))})")
    for col in slice_columns:
        if col not in df.columns:
            raise DataError(f"slice_column: {col!r} is not a column")
    reserved = {label, time_column, group_column, id_column} - {None}
    if features:
        for c in features:
            if c not in df.columns:
                raise DataError(f"feature_columns: {c!r} is not a column (columns: {', '.join(map(str, df.columns))})")
            if c in reserved:
                raise DataError(f"feature_columns: {c!r} is also the label/time/group/id column; a column has one role")
        names = list(features)
    else:
        names = [str(c) for c in df.columns if c not in reserved and not str(c).startswith("Unnamed")]
    if not names:
        raise DataError("feature_columns: the table has no feature column besides the label/time/group/id columns")
    types = dict(types or {})
    cols = [Column(c, types.get(c) or column_type(df[c])) for c in names]
    return TableSchema(cols, label, time_column, group_column, id_column, list(slice_columns))


# -------------------------------------------------------------------- encoding


@dataclass
class FeatureEncoder:
    """Rows → ``(numeric matrix with NaN for missing, categorical codes)``. Fitted state is JSON.

    Numeric inputs: the numeric columns, then three per datetime column (days since 1970, month,
    weekday). Categorical codes: 1..k by training frequency, 0 for missing or unseen."""

    schema: TableSchema
    num_names_: list[str] = field(default_factory=list)
    median_: list[float] = field(default_factory=list)
    mean_: list[float] = field(default_factory=list)
    scale_: list[float] = field(default_factory=list)
    categories_: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cat_names(self) -> list[str]:
        return [c.name for c in self.schema.features if c.type == "categorical"]

    @property
    def cardinalities(self) -> list[int]:
        """Per categorical column: vocabulary size + 1 (index 0 = missing/unseen)."""
        return [len(self.categories_[c]) + 1 for c in self.cat_names]

    def _numeric(self, frame: pd.DataFrame) -> np.ndarray:
        cols: list[np.ndarray] = []
        for c in self.schema.features:
            if c.type == "numeric":
                cols.append(frame[c.name].to_numpy(dtype=np.float64))
            elif c.type == "datetime":
                import pandas as pd

                s = pd.to_datetime(frame[c.name], utc=True)
                days = (s - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
                cols.append(days.to_numpy(dtype=np.float64, na_value=np.nan))
                cols.append(s.dt.month.to_numpy(dtype=np.float64, na_value=np.nan))
                cols.append(s.dt.day_of_week.to_numpy(dtype=np.float64, na_value=np.nan))
        return np.stack(cols, axis=1) if cols else np.zeros((len(frame), 0))

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        self.num_names_ = []
        for c in self.schema.features:
            if c.type == "numeric":
                self.num_names_.append(c.name)
            elif c.type == "datetime":
                self.num_names_ += [f"{c.name}__days", f"{c.name}__month", f"{c.name}__weekday"]
        num = self._numeric(frame)
        with np.errstate(all="ignore"):
            med = np.nanmedian(num, axis=0) if num.shape[1] else np.zeros(0)
        med = np.where(np.isfinite(med), med, 0.0)
        filled = np.where(np.isnan(num), med, num)
        mean = filled.mean(axis=0) if len(filled) else np.zeros(num.shape[1])
        std = filled.std(axis=0) if len(filled) else np.ones(num.shape[1])
        self.median_, self.mean_ = med.tolist(), mean.tolist()
        self.scale_ = np.where(std > 1e-12, std, 1.0).tolist()
        self.categories_ = {}
        for name in self.cat_names:
            counts = frame[name].dropna().value_counts(sort=True)
            self.categories_[name] = [str(v) for v in counts.index[:MAX_CATEGORIES]]
        return self

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(numeric float64 with NaN, codes int64)``: what the trees take."""
        num = self._numeric(frame)
        codes = np.zeros((len(frame), len(self.cat_names)), dtype=np.int64)
        for j, c in enumerate(self.cat_names):
            index = {v: i + 1 for i, v in enumerate(self.categories_[c])}
            codes[:, j] = [index.get(v, 0) if v is not None else 0 for v in frame[c].tolist()]
        return num, codes

    def scaled(self, num: np.ndarray) -> np.ndarray:
        """Numeric inputs for a neural network: median-imputed, standardised, clipped to ±5 (float32)."""
        if num.shape[1] == 0:
            return num.astype(np.float32)
        x = np.where(np.isnan(num), np.asarray(self.median_), num)
        x = (x - np.asarray(self.mean_)) / np.asarray(self.scale_)
        return np.clip(x, -5.0, 5.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"num_names": self.num_names_, "median": self.median_, "mean": self.mean_, "scale": self.scale_,
                "categories": self.categories_}

    @classmethod
    def from_dict(cls, schema: TableSchema, d: Mapping[str, Any]) -> FeatureEncoder:
        return cls(schema, list(d["num_names"]), list(d["median"]), list(d["mean"]), list(d["scale"]),
                   {k: list(v) for k, v in d["categories"].items()})


#: File of a tabular model folder holding the schema and the fitted encoder.
ENCODER_FILE = "encoder.json"


def save_encoder(folder: Any, enc: FeatureEncoder) -> None:
    import json
    from pathlib import Path

    Path(folder, ENCODER_FILE).write_text(json.dumps({"schema": enc.schema.to_dict(), "encoder": enc.to_dict()},
                                                     indent=1))


def load_encoder(folder: Any) -> FeatureEncoder:
    import json
    from pathlib import Path

    f = Path(folder, ENCODER_FILE)
    if not f.exists():
        raise DataError(f"{folder}: {ENCODER_FILE} is missing; this is not a tabular model or pretrained folder")
    d = json.loads(f.read_text())
    return FeatureEncoder.from_dict(TableSchema.from_dict(d["schema"]), d["encoder"])


__all__ = [
    "COLUMN_TYPES",
    "ENCODER_FILE",
    "MAX_CATEGORIES",
    "Column",
    "FeatureEncoder",
    "TableSchema",
    "column_type",
    "infer_schema",
    "load_encoder",
    "save_encoder",
]
