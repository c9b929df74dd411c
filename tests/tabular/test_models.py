"""Trees saved without pickle (and a foreign skops file refused), imbalance options, stacking, drift math."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transferops.errors import ArtifactError, ConfigError
from transferops.modality.tabular.baseline import TreeModel
from transferops.modality.tabular.drift import build_reference, compare, kl, psi
from transferops.modality.tabular.schema import FeatureEncoder, infer_schema

from .conftest import loans_frame


def _encoded() -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    df = loans_frame()
    s = infer_schema(df, label="default", time_column="date")
    fr = s.coerce(df[s.names])
    enc = FeatureEncoder(s).fit(fr)
    num, codes = enc.transform(fr)
    return enc, num, codes, (df["default"] == "Yes").to_numpy(dtype=np.int64)


def test_trees_roundtrip_skops_and_refuse_foreign_types(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    _, num, codes, y = _encoded()
    t = TreeModel(max_iter=30).fit(num, codes, y, n_classes=2)
    t.save(tmp_path / "t.skops")
    back = TreeModel.load(tmp_path / "t.skops", n_classes=2)
    assert np.array_equal(back.predict_proba(num, codes), t.predict_proba(num, codes))
    sio.dump(LogisticRegression(), str(tmp_path / "other.skops"))
    with pytest.raises(ArtifactError, match="not a HistGradientBoostingClassifier"):
        TreeModel.load(tmp_path / "other.skops", n_classes=2)
    import operator

    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(func=operator.add), str(tmp_path / "code.skops"))
    with pytest.raises(ArtifactError, match="outside the gradient-boosting allowlist"):
        TreeModel.load(tmp_path / "code.skops", n_classes=2)


def test_positive_weight_raises_the_positive_rate() -> None:
    _, num, codes, y = _encoded()
    plain = TreeModel(max_iter=50).fit(num, codes, y, n_classes=2).predict_proba(num, codes)[:, 1]
    heavy_model = TreeModel(max_iter=50, class_weight={1: 100.0}).fit(num, codes, y, n_classes=2)
    heavy = heavy_model.predict_proba(num, codes)[:, 1]
    assert (heavy >= 0.5).mean() > (plain >= 0.5).mean()


def test_smote_balances_and_threshold_meets_recall_target() -> None:
    from transferops.tabular.api import Encoded, TabularConfig, fit_candidates

    enc, num, codes, y = _encoded()
    tr, va = Encoded(num[:240], codes[:240], y[:240]), Encoded(num[240:], codes[240:], y[240:])
    from transferops.tabular.api import _smote

    sm = _smote(tr, enc, 0)
    assert np.bincount(sm.y).tolist() == [int((tr.y == 0).sum())] * 2
    fitted = fit_candidates(tr, va, enc, TabularConfig(models=("trees",), smote=True, tree_iterations=40), n_classes=2)
    from transferops.tabular.api import scores, tune_threshold

    th = tune_threshold(fitted["trees"]["val_proba"], va.y, "recall>=0.9")
    assert scores(fitted["trees"]["val_proba"], va.y, th)["recall"] >= 0.9


def test_focal_transformer_and_stack_train() -> None:
    from transferops.tabular.api import Encoded, TabularConfig, fit_candidates

    enc, num, codes, y = _encoded()
    tr, va = Encoded(num[:240], codes[:240], y[:240]), Encoded(num[240:], codes[240:], y[240:])
    cfg = TabularConfig(loss="focal", class_weight="balanced", epochs=1, d_block=16, n_blocks=1, folds=2,
                        tree_iterations=20)
    f = fit_candidates(tr, va, enc, cfg, n_classes=2)
    assert set(f) == {"trees", "transformer", "stack"}
    for v in f.values():
        assert v["val_proba"].shape == (80, 2) and np.allclose(v["val_proba"].sum(1), 1)
    assert f["stack"]["model"].coef_.shape == (1, 2)


@pytest.mark.parametrize("kw, field", [({"models": ("forest",)}, "models"), ({"class_weight": -3}, "class_weight"),
                                       ({"threshold_target": "recall>=2"}, "target"), ({"epochs": 0}, "epochs")])
def test_config_errors_name_the_field(kw: dict[str, object], field: str) -> None:
    from transferops.tabular.api import TabularConfig

    with pytest.raises(ConfigError, match=field):
        TabularConfig(**kw)  # type: ignore[arg-type]


def test_psi_kl_and_prediction_rate_drift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [0.9, 0.1]) > 0.25 and kl([0.5, 0.5], [0.9, 0.1]) > 0
    df = loans_frame()
    s = infer_schema(df, label="default", time_column="date")
    decided = (df["default"] == "Yes").to_numpy(dtype=np.int64)
    ref = build_reference(df[s.names], s, decided=decided, labels=["No", "Yes"])
    same = compare(ref, df[s.names], s, decided_labels=list(df["default"]))
    assert same["status"] == "ok" and same["features"]["income"]["psi"] == pytest.approx(0.0, abs=1e-9)
    shifted = df[s.names].assign(income=df["income"] * 0.6)
    rep = compare(ref, shifted, s, decided_labels=["No"] * len(df))
    assert rep["features"]["income"]["status"] == "retrain" and rep["most_drifted"][0] == "income"
    assert rep["features"]["balance"]["psi"] == pytest.approx(0.0, abs=1e-9)
    assert rep["prediction_rate"]["change"]["Yes"] == pytest.approx(-0.25)
    assert rep["prediction_rate"]["status"] == "retrain"


def test_group_split_and_csv_input(tmp_path: Path) -> None:
    from transferops.tabular.api import TabularConfig, encode_labels, looks_tabular, make_splits, train_tabular

    df = loans_frame()
    df["customer"] = np.arange(len(df)) // 4
    s = infer_schema(df, label="default", group_column="customer")
    y, labels = encode_labels(df["default"], None)
    assert labels == ["No", "Yes"] and "customer" not in s.names
    sp = make_splits(df, y, s, TabularConfig())
    groups = [set(df["customer"].iloc[ix]) for ix in (sp.train, sp.validation, sp.test)]
    assert sp.method == "group" and not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    csv = tmp_path / "loans.csv"
    df.to_csv(csv, index=False)
    assert looks_tabular(csv) and not looks_tabular(tmp_path / "missing.csv")
    m = train_tabular(csv, out=tmp_path / "run", label_column="default", time_column="date", id_column="customer",
                      config=TabularConfig(models=("trees",), tree_iterations=20, compare_random_split=False))
    assert m["schema"]["id_column"] == "customer" and m["model"] == "trees" and m["splits"]["method"] == "temporal"
    assert {f["name"]: f["type"] for f in m["schema"]["features"]}["income"] == "numeric"
