"""Seed ensembles: mean of members' probabilities, one fixed split, shared labels, load() dispatch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transferops
from transferops.adapt.ensemble import EnsembleModel, build_ensemble, train_seeds
from transferops.cli.main import main
from transferops.errors import ArtifactError, ConfigError

from .conftest import TOY_TRAIN


@pytest.fixture(scope="module")
def seeds_ensemble(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, toy_csv: Path) -> Path:
    out = tmp_path_factory.mktemp("ens") / "ens"
    kw = {**TOY_TRAIN, "epochs": 2}
    return train_seeds(toy_csv, out, seeds=[3, 4], checkpoint=str(tiny_bert), **kw)


def test_proba_is_the_mean_of_members(seeds_ensemble: Path) -> None:
    ens = transferops.load(seeds_ensemble)
    assert isinstance(ens, EnsembleModel)
    texts = ens.split("test")["text"].tolist()
    per = [m.predict_proba(texts) for m in ens.members]
    assert not np.allclose(per[0], per[1])  # different model seeds give different members
    np.testing.assert_allclose(ens.predict_proba(texts), np.mean(per, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ens.proba_from_logits(ens.logits(texts)), np.mean(per, axis=0), atol=1e-6)
    assert ens.predict(texts[:3]) == ens.decide(ens.predict_proba(texts[:3]))
    assert ens.embed(texts[:2]).shape[0] == 2


def test_temperature_fitted_on_the_ensemble_applies_to_the_mean(tmp_path: Path, seeds_ensemble: Path) -> None:
    from transferops.artifacts import update_manifest
    from transferops.modeling import softmax

    copy = tmp_path / "calibrated"
    shutil.copytree(seeds_ensemble, copy)
    texts = ["rain and storm", "the striker scored a goal"]
    mean = transferops.load(copy).predict_proba(texts)
    update_manifest(copy, calibration={"temperature": 2.0})
    ens = transferops.load(copy)
    np.testing.assert_allclose(ens.predict_proba(texts), softmax(np.log(mean) / 2.0), atol=1e-6)
    np.testing.assert_allclose(ens.predict_proba(texts, calibrated=False), mean, atol=1e-12)


def test_members_share_one_split_and_manifest_lists_them(seeds_ensemble: Path) -> None:
    m = json.loads((seeds_ensemble / "transferops.json").read_text())
    assert m["kind"] == "ensemble" and len(m["members"]) == 2
    assert [e["seed"] for e in m["members"]] == [3, 4]
    shas = {json.loads((seeds_ensemble / e["path"] / "transferops.json").read_text())["splits"]["test_sha256"]
            for e in m["members"]}
    assert len(shas) == 1 and m["splits"]["test_sha256"] in shas
    assert {"validation", "test", "members_test_macro_f1"} <= set(m["metrics"])
    assert all("test" in e["metrics"] for e in m["members"])
    ens = transferops.load(seeds_ensemble)
    assert ens.labels == m["labels"] and ens.task == "binary" and ens.name == "ens"
    with pytest.raises(ArtifactError, match="ensemble"):
        _ = ens.torch_model


def test_cli_builds_a_self_contained_copy(tmp_path: Path, seeds_ensemble: Path) -> None:
    members = ",".join(str(seeds_ensemble / "members" / f"seed-{s}") for s in (3, 4))
    assert main(["--quiet", "ensemble", "--members", members, "--out", str(tmp_path / "copy")]) == 0
    copied = transferops.load(tmp_path / "copy")
    assert all(str(p.path).startswith(str(tmp_path / "copy")) for p in copied.members)
    texts = ["rain and storm", "the striker scored a goal"]
    original = transferops.load(seeds_ensemble)
    np.testing.assert_allclose(copied.predict_proba(texts), original.predict_proba(texts))
    # --no-copy stores relative paths that resolve
    rc = main(["--quiet", "ensemble", "--members", members, "--out", str(tmp_path / "ref"), "--no-copy"])
    assert rc == 0
    m = json.loads((tmp_path / "ref" / "transferops.json").read_text())
    assert all(not Path(e["path"]).is_absolute() and ".." in e["path"] for e in m["members"])
    assert transferops.load(tmp_path / "ref").predict(texts) == copied.predict(texts)


def test_label_mismatch_and_too_few_members_are_errors(tmp_path: Path, seeds_ensemble: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    a = seeds_ensemble / "members" / "seed-3"
    other = tmp_path / "other"
    shutil.copytree(seeds_ensemble / "members" / "seed-4", other)
    m = json.loads((other / "transferops.json").read_text())
    m["labels"] = ["no", "yes"]
    (other / "transferops.json").write_text(json.dumps(m))
    with pytest.raises(ConfigError, match="share one label map"):
        build_ensemble([a, other], tmp_path / "bad")
    assert main(["--quiet", "ensemble", "--members", f"{a},{other}", "--out", str(tmp_path / "bad2")]) == 2
    assert "label map" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="at least 2"):
        build_ensemble([a], tmp_path / "one")
    with pytest.raises(ConfigError, match="seeds"):
        train_seeds(pd.DataFrame({"text": ["x"], "label": ["a"]}), tmp_path / "s", seeds=[1, 1])
    with pytest.raises(ConfigError, match=r"at least 2 seeds, got \[0\]"):
        train_seeds(pd.DataFrame({"text": ["x"], "label": ["a"]}), tmp_path / "s", seeds=1)  # a count


def test_multilabel_logits_round_trip() -> None:
    from transferops.adapt.ensemble import _to_logits
    from transferops.modeling import sigmoid, softmax

    p = np.array([[0.1, 0.9, 0.5], [0.01, 0.99, 0.3]])
    np.testing.assert_allclose(sigmoid(_to_logits(p, multilabel=True)), p, atol=1e-9)
    q = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(softmax(_to_logits(q, multilabel=False)), q, atol=1e-12)
