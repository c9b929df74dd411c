"""``transferops predict`` on tables: CSV / Parquet in, CSV / Parquet / JSONL out (label, p_<class>,
confidence, route), through the same model object as ``transferops.load`` and the server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops.cli.main import main


@pytest.mark.parametrize("src, dst", [("csv", "parquet"), ("parquet", "csv"), ("parquet", "jsonl")])
def test_predict_file_on_a_table(loans_run: Path, tmp_path: Path, src: str, dst: str) -> None:
    model = transferops.load(loans_run)
    test = model.split("test")  # label and date columns too: predict ignores the non-features
    inp = tmp_path / f"in.{src}"
    test.to_csv(inp, index=False) if src == "csv" else test.to_parquet(inp, index=False)
    out = tmp_path / f"out.{dst}"
    assert main(["-q", "predict", "--model", str(loans_run), "--input", str(inp), "--output", str(out),
                 "--keep-column", "default", "--review-threshold", "0.9", "--chunk-size", "7"]) == 0
    res = (pd.read_csv(out) if dst == "csv" else pd.read_json(out, lines=True) if dst == "jsonl"
           else pd.read_parquet(out))
    assert list(res.columns) == ["default", "label", "confidence", "p_No", "p_Yes", "route"]
    proba = model.predict_proba(test[model.schema.names])
    assert res["label"].tolist() == model.predict(test[model.schema.names])
    assert np.allclose(res[["p_No", "p_Yes"]].to_numpy(), proba, atol=1e-6)
    assert (res["route"] == np.where(res["confidence"] < 0.9, "review", "auto")).all()
    assert res["default"].tolist() == test["default"].tolist()


def test_predict_bad_table_is_one_line(loans_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = transferops.load(loans_run).split("test")
    test["income"] = test["income"].astype(object)
    test.loc[test.index[9], "income"] = "lots"
    test.to_csv(tmp_path / "bad.csv", index=False)
    rc = main(["-q", "predict", "--model", str(loans_run), "--input", str(tmp_path / "bad.csv"), "--output",
               str(tmp_path / "o.csv"), "--chunk-size", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and "row 10, income" in err and "numeric" in err and "Traceback" not in err
    rc = main(["-q", "predict", "--model", str(loans_run), "--input", str(tmp_path / "bad.csv"), "--output",
               str(tmp_path / "o.txt")])
    assert rc == 2 and ".jsonl" in capsys.readouterr().err
