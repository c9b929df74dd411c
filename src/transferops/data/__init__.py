"""Prepare: read CSV/JSONL/Parquet, validate, split (stratified/temporal/group), check leakage."""

from transferops.data.leakage import LeakageReport, find_leakage, normalise_text
from transferops.data.loading import ColumnMap, LabeledData, load_labeled, read_table, read_texts
from transferops.data.splits import SplitConfig, Splits, make_splits

__all__ = [
    "ColumnMap",
    "LabeledData",
    "LeakageReport",
    "SplitConfig",
    "Splits",
    "find_leakage",
    "load_labeled",
    "make_splits",
    "normalise_text",
    "read_table",
    "read_texts",
]
