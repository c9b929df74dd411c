"""One load dispatcher: kinds register their loader; transferops.load and the server's open_runner
both go through it. A new kind is one new file: this test module defines one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import transferops
from transferops.artifacts import Classifier, ClassifierBase, register_kind, write_manifest
from transferops.artifacts.classifier import check_texts
from transferops.artifacts.kinds import get_kind, registered_kinds, resolve_kind
from transferops.errors import ArtifactError, ConfigError


class KeywordModel(ClassifierBase):
    """A kind in a few lines: 'yes' when the text contains the keyword stored in the manifest."""

    runtime = "python"

    @property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        from transferops.modeling import load_tokenizer

        if self._tok is None:
            self._tok = load_tokenizer(self.path / "model")
        return self._tok

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        hit = np.asarray([self.manifest["keyword"] in t for t in check_texts(texts)], dtype=np.float64)
        logits = np.stack([-4 * hit + 2, 4 * hit - 2], axis=1)
        return logits, np.stack([hit, 1 - hit], axis=1).astype(np.float32)


register_kind("keyword", KeywordModel)


@pytest.fixture
def keyword_folder(tmp_path: Path, tiny_bert: Path) -> Path:
    from transferops.modeling import load_tokenizer

    load_tokenizer(tiny_bert).save_pretrained(str(tmp_path / "model"))
    write_manifest(tmp_path, {"kind": "keyword", "name": "kw", "task": "binary", "labels": ["no", "yes"],
                              "config": {"max_length": 32}, "keyword": "goal"})
    return tmp_path


def test_a_registered_kind_loads_and_serves(keyword_folder: Path) -> None:
    m = transferops.load(keyword_folder)
    assert isinstance(m, KeywordModel) and isinstance(m, Classifier)
    assert m.predict(["a late goal", "shares fell"]) == ["yes", "no"]
    assert m.predict_proba(["goal"])[0, 1] > 0.9
    with pytest.raises(ArtifactError, match="holds no PyTorch model"):
        _ = m.torch_model
    from transferops.deploy.runtime import open_runner

    runner = open_runner("kw", keyword_folder)
    res = runner.infer(["a late goal", "shares fell"])
    assert runner.runtime == "python" and res.labels == ["yes", "no"]
    assert res.confidence[0] == pytest.approx(m.predict_proba(["a late goal"])[0, 1])


def test_builtin_kinds_are_registered() -> None:
    assert {"model", "baseline", "probe", "stack", "ensemble", "onnx"} <= set(registered_kinds())


def test_unknown_kind_names_it(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"kind": "hologram", "task": "binary", "labels": ["a", "b"],
                              "config": {"max_length": 8}})
    assert resolve_kind(tmp_path) == "hologram"
    with pytest.raises(ArtifactError, match="'hologram'"):
        transferops.load(tmp_path)
    with pytest.raises(ArtifactError, match="'hologram'"):
        get_kind("hologram")


def test_registering_another_loader_needs_replace() -> None:
    register_kind("keyword", KeywordModel)  # the same loader again: fine
    with pytest.raises(ConfigError, match="already registered"):
        register_kind("keyword", ClassifierBase)


def test_export_is_detected_before_the_manifest_kind(tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "transferops.json").write_bytes((tiny_run / "transferops.json").read_bytes())
    assert resolve_kind(tmp_path) == "model"
    (tmp_path / "export.json").write_text("{}")
    assert resolve_kind(tmp_path) == "onnx"


def test_ensemble_is_served_and_a_kind_can_refuse_serving_with_its_own_reason(tiny_run: Path,
                                                                              tmp_path: Path) -> None:
    import json

    from transferops.adapt.ensemble import EnsembleModel, build_ensemble
    from transferops.deploy.runtime import open_runner

    ens = build_ensemble([tiny_run, tiny_run], tmp_path / "ens", copy=False, evaluate=False)
    runner = open_runner("e", ens)  # the server runs an ensemble's members in one batch (a search's ensemble)
    texts = ["shares rose", "the match ended"]
    logits, emb = runner.forward(texts)
    np.testing.assert_allclose(logits, EnsembleModel(ens).logits(texts), atol=1e-6)
    assert emb.shape[0] == 2 and runner.extra["members"] == [m["name"] for m in json.loads(
        (ens / "transferops.json").read_text())["members"]]

    class Unservable(EnsembleModel):
        not_served_reason = "unservable kind: serve its members"

    register_kind("unservable_for_test", Unservable)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "transferops.json").write_text(json.dumps({**json.loads((ens / "transferops.json").read_text()),
                                                      "kind": "unservable_for_test"}))
    with pytest.raises(ConfigError, match="unservable kind: serve its members"):
        open_runner("o", odd)
    from transferops.deploy.onnx_export import export_onnx

    with pytest.raises(ConfigError, match="is an ensemble; export its members"):
        export_onnx(ens, tmp_path / "x")
    with pytest.raises(ConfigError, match="itself an ensemble"):
        build_ensemble([ens, tiny_run], tmp_path / "nested", copy=False, evaluate=False)


def test_artifacts_imports_no_later_stage() -> None:
    """The import circle artifacts → adapt → deploy → finetune is gone: loading the artifacts package
    (and reading a manifest) pulls in no later stage and no torch."""
    code = ("import sys, transferops.artifacts, transferops.artifacts.model, transferops.artifacts.kinds;"
            "bad = sorted(m for m in sys.modules if m.split('.')[:2] in (['transferops', 'adapt'], "
            "['transferops', 'deploy'], ['transferops', 'finetune'], ['transferops', 'cli']) or m == 'torch');"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_artifacts_source_names_no_later_stage() -> None:
    """Not even a function-level import: the dispatcher reaches later kinds only through the registry."""
    import ast

    later = ("adapt", "deploy", "finetune", "evaluate", "monitor", "cli", "select", "predict", "abtest")
    pkg = Path(transferops.__file__).parent / "artifacts"
    found = []
    for f in pkg.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{f.name}: {m}" for m in mods if m.split(".")[:2][-1] in later and m.startswith("transferops.")]
    assert not found, found
