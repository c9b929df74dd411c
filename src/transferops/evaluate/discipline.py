"""Test-set discipline (source text, Mistake 3: tuning on the test set).

Every evaluation on an artifact's test split is recorded twice: in the model's manifest
(``evaluations``: when, which model, the test split's sha256) and in a small registry in the user
cache (``test_evaluations.json``, keyed by the test split's sha256). When a *different* training run
is evaluated against a test split that has already been used, the user is warned that the test set
is being used for selection.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from transferops._util import cache_dir, read_json, utcnow, write_json

REGISTRY_NAME = "test_evaluations.json"


class TestSetReuseWarning(UserWarning):
    """A test split already used by another training run is being used again (selection on test)."""

    __test__ = False  # not a pytest test class despite the name

#: Keep the registry small: the newest entries per test split.
MAX_ENTRIES_PER_SPLIT = 50


def registry_path() -> Path:
    return cache_dir() / REGISTRY_NAME


def run_id(manifest: dict[str, Any], path: str | Path | None = None) -> str:
    """A stable id of the *training run* behind a model: exports and reloads of it share the id."""
    if manifest.get("run_id"):
        return str(manifest["run_id"])
    key = {"created": manifest.get("created"), "base": (manifest.get("base") or {}).get("sha256"),
           "config": manifest.get("config"), "data": (manifest.get("data") or {}).get("fingerprint")}
    if not key["created"]:  # e.g. an ensemble or a hand-made manifest: fall back to where it lives
        key["path"] = str(Path(path).resolve()) if path else manifest.get("name")
    blob = json.dumps(key, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def record_test_evaluation(model: Any, test_sha256: str, *, kind: str = "evaluate") -> list[str]:
    """Record one test-split evaluation; return warnings (empty when this run is the only user)."""
    manifest = getattr(model, "manifest", None) or {}
    path = getattr(model, "path", None)
    rid = run_id(manifest, path)
    name = str(manifest.get("name") or getattr(model, "name", None) or (Path(path).name if path else "model"))
    entry = {"when": utcnow(), "model": name, "run_id": rid, "test_sha256": test_sha256, "kind": kind,
             "path": str(Path(path).resolve()) if path else None}
    warnings_: list[str] = []

    reg_file = registry_path()
    try:
        reg = read_json(reg_file) if reg_file.exists() else {}
        if not isinstance(reg, dict):
            reg = {}
    except (OSError, json.JSONDecodeError):
        reg = {}  # a corrupt registry must never block an evaluation; start a fresh one
    seen = reg.get(test_sha256, [])
    others = [e for e in seen if e.get("run_id") != rid]
    if others:
        runs = sorted({e.get("model", "?") for e in others})
        warnings_.append(
            f"the test split (sha256 {test_sha256[:12]}…) was already evaluated by {len(runs)} other "
            f"training run(s) ({', '.join(runs[:5])}); comparing runs on it uses the test set for selection "
            "(source text, Mistake 3). Choose between runs on the validation split; touch the test set "
            "once, at the end.")
    seen = [*seen, entry][-MAX_ENTRIES_PER_SPLIT:]
    reg[test_sha256] = seen
    try:
        write_json(reg_file, reg)
    except OSError:
        warnings_.append(f"could not write the test-evaluation registry {reg_file}")

    # The manifest record: only for artifacts on disk that we can write to.
    if path is not None and os.access(Path(path), os.W_OK) and (Path(path) / "transferops.json").exists():
        from transferops.artifacts import read_manifest, update_manifest

        m = read_manifest(path)
        evals = list(m.get("evaluations") or [])
        evals.append({k: entry[k] for k in ("when", "model", "test_sha256", "kind")})
        update_manifest(path, evaluations=evals)
        if isinstance(manifest, dict):
            manifest["evaluations"] = evals
    return warnings_
