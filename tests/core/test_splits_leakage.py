from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferops.data import ColumnMap, SplitConfig, find_leakage, load_labeled, make_splits
from transferops.errors import ConfigError


def _data(n: int = 100, **extra: object) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"text": [f"document {i} about {rng.integers(1000)}" for i in range(n)],
                       "label": ["rare" if i % 10 == 0 else "common" for i in range(n)]})
    for k, v in extra.items():
        df[k] = v
    return df


def test_stratified_keeps_class_ratio_and_is_deterministic() -> None:
    d = load_labeled(_data())
    a, b = make_splits(d), make_splits(d)
    assert a.test.texts == b.test.texts
    assert a.sizes() == {"train": 70, "validation": 10, "test": 20}
    assert a.test.label_counts()["rare"] == 2 and a.train.label_counts()["rare"] == 7
    assert not set(a.train.texts) & set(a.test.texts)


def test_temporal_split_tests_on_latest() -> None:
    times = pd.date_range("2024-01-01", periods=100, freq="D").astype(str)
    d = load_labeled(_data(time=list(times)), ColumnMap(time="time"))
    s = make_splits(d, SplitConfig(method="temporal"))
    assert s.train.frame["time"].max() < s.validation.frame["time"].min()
    assert s.validation.frame["time"].max() < s.test.frame["time"].min()


def test_group_split_never_shares_a_group() -> None:
    d = load_labeled(_data(grp=[f"g{i % 17}" for i in range(100)]), ColumnMap(group="grp"))
    s = make_splits(d, SplitConfig(method="group"))
    g = [set(p.frame["grp"]) for p in (s.train, s.validation, s.test)]
    assert not (g[0] & g[1]) and not (g[0] & g[2]) and not (g[1] & g[2])


def test_split_config_validation_names_field() -> None:
    with pytest.raises(ConfigError, match="split.test_size"):
        SplitConfig(test_size=1.5)
    with pytest.raises(ConfigError, match="needs a time column"):
        make_splits(load_labeled(_data()), SplitConfig(method="temporal"))


def test_leakage_exact_after_normalisation_and_near_by_cosine() -> None:
    train = ["Hello, World!", "something else", "third text"]
    test = ["hello world", "unrelated", "near copy"]
    emb_tr = np.array([[1, 0, 0], [0, 1, 0], [0.0, 0.0, 1.0]])
    emb_te = np.array([[1, 0, 0], [0.3, 0.3, 0.9], [0.0, 0.05, 1.0]])
    rep = find_leakage(train, test, train_emb=emb_tr, test_emb=emb_te, threshold=0.95)
    assert rep.exact_pairs == [(0, 0)]
    assert [(i, j) for i, j, _ in rep.near_pairs] == [(2, 2)]
    assert rep.train_indices_to_drop == [0, 2]
