"""The tabular modality: an input is one table row (a mapping of column → value).

* input check: a list of row objects (the schema check proper, naming the column, is
  :meth:`~transferops.modality.tabular.schema.TableSchema.coerce`, run by the tabular model);
* leakage key: SHA-1 of the row's canonical JSON (sorted keys), so the same row in train and test is found;
* size: 1 (rows have no length to sort by);
* preprocessor: the fitted :class:`~transferops.modality.tabular.schema.FeatureEncoder` of a model folder
  (JSON); ``encode`` gives the FT-Transformer's ``x_cont`` / ``x_cat`` tensors;
* baseline: gradient-boosted trees (:class:`~transferops.modality.tabular.baseline.TreeModel`,
  scikit-learn's ``HistGradientBoostingClassifier``);
* automatic slice: none (tables get their slices from ``--slice-column``).

The stage code (training, search, export, serving, drift) is :mod:`transferops.tabular`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transferops.errors import DataError
from transferops.modality.base import register_modality


def row_key(row: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps({str(k): (None if v != v else v) for k, v in row.items()}, sort_keys=True,
                                   default=str).encode("utf-8")).hexdigest()


class TabularModality:
    """:class:`~transferops.modality.base.Modality` for table rows."""

    name = "tabular"
    auto_slice_names: tuple[str, ...] = ()

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        if isinstance(inputs, (Mapping, str, bytes)):
            raise DataError("rows: pass a list of row objects, not a single one (wrap it: [row])")
        out = list(inputs)
        for i, r in enumerate(out):
            if not isinstance(r, Mapping):
                raise DataError(f"rows[{i}]: expected an object of column: value, got {type(r).__name__}")
        return out

    def leakage_key(self, item: Any) -> str:
        return row_key(item)

    def size(self, item: Any) -> int:
        return 1

    def load_preprocessor(self, path: str | Path) -> Any:
        from transferops.modality.tabular.schema import load_encoder

        return load_encoder(Path(path))

    def encode(self, preprocessor: Any, items: Sequence[Any], *, max_length: int = 0,
               return_tensors: str = "pt") -> Mapping[str, Any]:
        import torch

        frame = preprocessor.schema.coerce(list(items))
        num, codes = preprocessor.transform(frame)
        return {"x_cont": torch.from_numpy(preprocessor.scaled(num)), "x_cat": torch.from_numpy(codes)}

    def check_baseline_fits(self, items: Sequence[Any], n_classes: int) -> None:
        return None  # trees on a table fit in memory whenever the table does

    def baseline(self, *, multilabel: bool = False, seed: int = 0, tune: bool = True, **kw: Any) -> Any:
        if multilabel:
            raise DataError("task: multi-label tables are not supported; use one binary or multi-class label")
        from transferops.modality.tabular.baseline import TreeModel

        return TreeModel(seed=seed, **kw)

    def auto_slices(self, items: Sequence[Any]) -> dict[str, list[str]]:
        return {}

    def __repr__(self) -> str:
        return "TabularModality()"


#: The shared instance (stateless).
TABULAR = register_modality(TabularModality())

__all__ = ["TABULAR", "TabularModality", "row_key"]
