"""The typed manifest: one writer, typed reads, versioning (unknown keys from newer formats warn)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import transferops
from transferops.artifacts import Manifest, read_manifest, update_manifest, write_manifest
from transferops.artifacts.manifest import SCHEMA_VERSION, BaseRef
from transferops.errors import ArtifactError

DOC = {"kind": "model", "name": "m", "task": "binary", "labels": ["no", "yes"],
       "base": {"name": "minilm-l6", "path": "/ck/minilm", "sha256": "ab" * 32},
       "strategy": {"name": "lora", "reason": "r"}, "config": {"max_length": 48},
       "splits": {"test_sha256": "cd" * 32}, "calibration": {"temperature": 1.5}}


def test_writer_stamps_and_reader_types(tmp_path: Path) -> None:
    written = write_manifest(tmp_path, DOC)
    raw = json.loads((tmp_path / "transferops.json").read_text())
    assert raw["format_version"] == SCHEMA_VERSION and raw["transferops_version"] == transferops.__version__
    assert raw["created"] and list(raw)[:2] == ["format_version", "kind"]
    m = read_manifest(tmp_path)
    assert isinstance(m, Manifest) and m == raw == written  # plain-dict equality: the JSON document
    assert (m.kind, m.task, m.labels, m.max_length, m.temperature) == ("model", "binary", ["no", "yes"], 48, 1.5)
    assert m.is_adapter and m.strategy_name == "lora" and not m.multilabel
    assert m.base == BaseRef(name="minilm-l6", path="/ck/minilm", sha256="ab" * 32)
    assert m.test_sha256 == "cd" * 32 and m.lineage["base"]["name"] == "minilm-l6"
    assert m.validate() is m


def test_defaults_for_older_documents() -> None:
    m = Manifest.from_dict({"task": "multilabel", "labels": ["a"], "config": {"max_length": 8}})
    assert m.kind == "model" and m.multilabel and m.temperature == 1.0 and m.base is None
    assert m.members == [] and m.decision is None and not m.is_adapter


def test_newer_format_with_unknown_keys_warns_and_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "transferops.json").write_text(json.dumps({**DOC, "format_version": SCHEMA_VERSION + 1,
                                                           "hologram": {"x": 1}}))
    with pytest.warns(UserWarning, match=r"newer.*'hologram'"):
        m = read_manifest(tmp_path)
    assert m["hologram"] == {"x": 1}
    with pytest.warns(UserWarning):
        update_manifest(tmp_path, name="renamed")
    raw = json.loads((tmp_path / "transferops.json").read_text())
    assert raw["hologram"] == {"x": 1} and raw["format_version"] == SCHEMA_VERSION + 1 and raw["name"] == "renamed"


def test_known_format_does_not_warn_on_stage_keys(tmp_path: Path) -> None:
    write_manifest(tmp_path, {**DOC, "my_stage_section": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_manifest(tmp_path)


@pytest.mark.parametrize(("change", "field"), [({"labels": []}, "labels"), ({"labels": [1, 2]}, "labels"),
                                               ({"task": "regression"}, "task"), ({"config": {}}, "config.max_length")])
def test_validate_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(ArtifactError, match=f"'{field}'"):
        Manifest.from_dict({**DOC, **change}).validate()


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="transferops.json is missing"):
        read_manifest(tmp_path)
    with pytest.raises(ArtifactError, match="export.json is missing"):
        read_manifest(tmp_path, filename="export.json")


def test_no_stage_writes_a_manifest_by_hand() -> None:
    """One writer: outside artifacts/manifest.py no module writes a manifest file with write_json."""
    src = Path(transferops.__file__).parent
    names = ("MANIFEST", "transferops.json", "export.json", "adapt.json")
    offenders = [f"{f.relative_to(src)}: {line.strip()}"
                 for f in src.rglob("*.py") if f != src / "artifacts" / "manifest.py"
                 for line in f.read_text().splitlines()
                 if "write_json(" in line and any(n in line for n in names)]
    assert not offenders, offenders
