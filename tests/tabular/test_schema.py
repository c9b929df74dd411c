"""Schema inference and the row check: a missing, extra or wrongly typed column is one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferops.errors import DataError
from transferops.modality import get_modality
from transferops.modality.tabular.schema import FeatureEncoder, TableSchema, infer_schema


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"income": [1.0, 2.0, np.nan, 4.0], "kind": ["a", "b", "a", None],
                         "opened": ["2024-01-01", "2024-02-03", None, "2024-05-06"], "flag": [True, False, True, True],
                         "y": [0, 1, 0, 1], "id": [1, 2, 3, 4]})


def test_types_inferred_and_roles_excluded() -> None:
    s = infer_schema(_frame(), label="y", id_column="id")
    assert s.types == {"income": "numeric", "kind": "categorical", "opened": "datetime", "flag": "categorical"}
    again = TableSchema.from_dict(s.to_dict())
    assert again.types == s.types and again.id_column == "id"


@pytest.mark.parametrize("rows, msg", [
    ([{"income": 1.0, "kind": "a", "opened": "2024-01-01"}], "rows[0].flag: column 'flag' is missing"),
    ([{"income": 1.0, "kind": "a", "opened": "2024-01-01", "flag": True, "zip": "x"}],
     "rows[0].zip: column 'zip' is not a feature"),
    ([{"income": "lots", "kind": "a", "opened": "2024-01-01", "flag": True}],
     "rows[0].income: column 'income' is numeric, got str"),
    ([{"income": 1, "kind": ["a"], "opened": "2024-01-01", "flag": True}],
     "rows[0].kind: column 'kind' is categorical"),
    ([{"income": 1, "kind": "a", "opened": "yesterday-ish", "flag": True}],
     "rows[0].opened: column 'opened' is a date"),
    ({"income": 1}, "pass a list of row objects"),
])
def test_bad_rows_name_the_column(rows: object, msg: str) -> None:
    s = infer_schema(_frame(), label="y", id_column="id")
    with pytest.raises(DataError) as e:
        s.coerce(rows)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_dataframe_input_checked_too() -> None:
    s = infer_schema(_frame(), label="y", id_column="id")
    with pytest.raises(DataError, match="column 'kind' is missing"):
        s.coerce(_frame().drop(columns=["kind"]))
    bad = _frame().drop(columns=["y"]).astype({"income": object})
    bad.loc[1, "income"] = "n/a"
    with pytest.raises(DataError, match=r"data\[1\].income: column 'income' is numeric"):
        s.coerce(bad, where="data")


def test_null_is_a_missing_value_and_unseen_category_is_zero() -> None:
    s = infer_schema(_frame(), label="y", id_column="id")
    enc = FeatureEncoder(s).fit(s.coerce(_frame().drop(columns=["y", "id"])))
    enc2 = FeatureEncoder.from_dict(s, enc.to_dict())
    rows = [{"income": None, "kind": "zzz", "opened": None, "flag": False, "id": 9}]
    num, codes = enc2.transform(s.coerce(rows))
    assert np.isnan(num[0, 0]) and codes[0].tolist() == [0, enc.categories_["flag"].index("false") + 1]
    assert enc2.scaled(num)[0, 0] == pytest.approx((enc.median_[0] - enc.mean_[0]) / enc.scale_[0], rel=1e-5)


def test_modality_registered() -> None:
    m = get_modality("tabular")
    assert m.leakage_key({"a": 1, "b": "x"}) == m.leakage_key({"b": "x", "a": 1})
    with pytest.raises(DataError, match="not a single one"):
        m.check_inputs({"a": 1})
