"""Small helpers shared by every stage: hashing, JSON, versions, time."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def utcnow() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_texts(texts: Iterable[str], labels: Iterable[Any] | None = None) -> str:
    """Order-sensitive fingerprint of a data set (texts, and labels when given)."""
    h = hashlib.sha256()
    if labels is None:
        for t in texts:
            h.update(t.encode("utf-8"))
            h.update(b"\x00")
    else:
        for t, y in zip(texts, labels, strict=True):
            h.update(t.encode("utf-8"))
            h.update(b"\x01")
            h.update(json.dumps(y, sort_keys=True, default=str).encode("utf-8"))
            h.update(b"\x00")
    return h.hexdigest()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (_dt.datetime, _dt.date)):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(obj, indent=indent, default=_json_default, sort_keys=False)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename) so a kill never leaves half a manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(dumps(obj))
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def package_versions(names: Iterable[str] = (
    "transferops", "torch", "transformers", "peft", "accelerate", "scikit-learn", "numpy", "pandas",
)) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def dir_size(path: str | Path) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def cache_dir() -> Path:
    """User cache dir for unpacked checkpoints and embedding caches (TRANSFEROPS_CACHE overrides)."""
    env = os.environ.get("TRANSFEROPS_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "transferops" if xdg else Path.home() / ".cache" / "transferops"
