"""Data loading and validation: every error names file, row and column; nothing is dropped silently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from transferops.data import ColumnMap, load_labeled, read_table
from transferops.errors import DataError, TransferOpsError


def _csv(tmp_path: Path, rows: list[dict], name: str = "d.csv") -> Path:
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def _good_rows(n: int = 6) -> list[dict]:
    return [{"text": f"text number {i}", "label": "a" if i % 2 else "b"} for i in range(n)]


def test_reads_csv_jsonl_parquet_the_same(tmp_path: Path) -> None:
    df = pd.DataFrame(_good_rows())
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "d.parquet")
    loaded = [load_labeled(tmp_path / f"d.{ext}") for ext in ("csv", "jsonl", "parquet")]
    assert all(x.texts == loaded[0].texts and x.y == loaded[0].y for x in loaded)
    assert loaded[0].task == "binary" and loaded[0].labels == ["a", "b"]


def test_missing_column_suggests_close_name(tmp_path: Path) -> None:
    p = _csv(tmp_path, [{"txt": "x", "label": "a"}])
    with pytest.raises(DataError, match=r"no text column 'text'.*Did you mean 'txt'"):
        load_labeled(p)


def test_empty_text_names_row_and_column(tmp_path: Path) -> None:
    rows = _good_rows()
    rows[3]["text"] = "   "
    p = _csv(tmp_path, rows)
    with pytest.raises(DataError, match=r"row 4 \(line 5\), column 'text': empty"):
        load_labeled(p)


def test_missing_label(tmp_path: Path) -> None:
    rows = _good_rows()
    rows[2]["label"] = None
    with pytest.raises(DataError, match=r"row 3 .*column 'label': missing label"):
        load_labeled(_csv(tmp_path, rows))


def test_skip_bad_rows_writes_rejects_and_counts(tmp_path: Path) -> None:
    rows = _good_rows(8)
    rows[1]["text"] = ""
    rows[5]["label"] = None
    rej = tmp_path / "rejects.csv"
    data = load_labeled(_csv(tmp_path, rows), skip_bad_rows=True, rejects_path=rej)
    assert len(data) == 6 and data.n_rejected == 2
    r = pd.read_csv(rej)
    assert list(r["_row"]) == [2, 6]
    assert set(r["_reason"]) == {"empty or whitespace-only text", "missing label"}


def test_class_with_one_example(tmp_path: Path) -> None:
    rows = [*_good_rows(), {"text": "lonely", "label": "c"}]
    with pytest.raises(DataError, match=r"fewer than 2 examples: 'c' \(1\)"):
        load_labeled(_csv(tmp_path, rows))


def test_single_class(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": "a"} for i in range(5)]
    with pytest.raises(DataError, match="only one class"):
        load_labeled(_csv(tmp_path, rows))


def test_wrong_encoding_suggests_fix(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncaf\xe9 au lait,a\nother,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid utf-8.*--encoding latin-1"):
        load_labeled(p)
    assert load_labeled(p, encoding="latin-1", min_per_class=1).texts[0] == "café au lait"


def test_duplicate_ids(tmp_path: Path) -> None:
    rows = _good_rows()
    for i, r in enumerate(rows):
        r["id"] = f"id{i}"
    rows[4]["id"] = "id1"
    with pytest.raises(DataError, match=r"column 'id': duplicate id 'id1' at rows \[2, 5\]"):
        load_labeled(_csv(tmp_path, rows), ColumnMap(id="id"))


def test_malformed_jsonl_names_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_table(p)


def test_unsupported_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(tmp_path / "x.xlsx")


def test_errors_are_also_builtin_types(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_labeled(_csv(tmp_path, [{"text": "x", "label": "a"}]))
    assert issubclass(DataError, TransferOpsError)


def test_multilabel_from_separator_and_columns(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "tags": "spam|hate" if i % 3 == 0 else ("spam" if i % 3 == 1 else "hate")}
            for i in range(9)]
    d = load_labeled(_csv(tmp_path, rows), ColumnMap(label="tags", label_sep="|"))
    assert d.task == "multilabel" and d.labels == ["hate", "spam"] and d.y[0] == ["spam", "hate"]
    rows2 = [{"text": f"t{i}", "spam": i % 2, "hate": (i + 1) % 2} for i in range(6)]
    d2 = load_labeled(_csv(tmp_path, rows2, "m.csv"), ColumnMap(label=None, label_columns=["spam", "hate"]))
    assert d2.task == "multilabel" and d2.y[1] == ["spam"]


def test_unknown_labels_against_known(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="never seen in training"):
        load_labeled(_csv(tmp_path, _good_rows()), known_labels=["a"])
