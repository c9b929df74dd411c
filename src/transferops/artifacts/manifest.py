"""The manifest: one typed document per folder, one reader, one writer.

Every stage that writes a folder (``train``, ``distill``, ``ensemble``, ``adapt``, ``export``) goes
through :func:`write_manifest`; every reader goes through :func:`read_manifest` and the typed
accessors of :class:`Manifest` (``kind``, ``labels``, ``task``, ``base``, ``strategy_name``,
``max_length``, ``temperature``, ``members``, ``lineage`` ...).

:class:`Manifest` is a ``dict`` subclass on purpose: the on-disk JSON document stays the one source
of truth (``manifest["metrics"]`` keeps working, equality and ``{**m}`` are plain dict semantics,
stages add their own sections without a schema change), while the fields that code *branches on*
are read through typed, validated properties instead of raw string keys.

Versioning follows PEFT's habit: the writer stamps ``format_version`` (:data:`SCHEMA_VERSION`) and
the library version; a document from a newer format that carries keys this version does not know
warns once on read (the keys are kept and written back untouched).

>>> m = read_manifest("runs/news")                      # doctest: +SKIP
>>> m.kind, m.task, m.labels[:2], m.max_length          # doctest: +SKIP
('model', 'multiclass', ['business', 'entertainment'], 128)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from transferops._util import read_json, utcnow, write_json
from transferops.constants import EXPORT_MANIFEST, MANIFEST_NAME
from transferops.errors import ArtifactError

#: Format of the documents this version writes. Bump when a key changes meaning.
SCHEMA_VERSION = 1

Task = Literal["binary", "multiclass", "multilabel"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "multilabel")

#: Top-level keys this version knows (any stage's). Keys outside this set are kept; when the
#: document comes from a newer format they also warn (written by a newer transferops).
KNOWN_KEYS = frozenset({
    # identity and provenance
    "format_version", "kind", "name", "transferops_version", "created", "versions", "seed",
    # what the model is
    "base", "task", "labels", "strategy", "config", "recipe", "members", "combine",
    # data and evaluation
    "data", "splits", "leakage", "augmentation", "metrics", "baseline", "search", "refit", "history", "training",
    "timings", "warnings", "evaluations",
    # tabular (issue 16)
    "modality", "schema", "model", "stack_members", "split_comparison", "imbalance", "export", "pretrained",
    # decision rule and calibration (written by evaluate / calibrate / thresholds)
    "decision", "decision_threshold", "positive_index", "threshold_target", "thresholds", "calibration",
    "reference_profile", "learning_curve", "discipline",
    "image",  # image models (issue 15): input modality, preprocessing and image reference stats
    # lineage
    "distillation", "parent", "lineage", "corpus", "objective", "mlm_head", "masking", "steps",
    "head_warmup_steps", "tokens_seen", "heldout", "general", "carried_from_parent", "continual",
    # multi-task (finetune/multitask.py): the tasks, their labels, types, weights and decision rules
    "tasks",
    # export.json
    "source", "format", "opset", "inputs", "outputs", "max_length", "default_variant", "sha256", "files",
    "sizes", "parity", "int8", "passed", "failures", "seconds",
})


@dataclass(frozen=True)
class BaseRef:
    """The pretrained checkpoint a model was built on (``manifest["base"]``)."""

    name: str
    path: str
    sha256: str | None = None
    source: str | None = None
    params: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaseRef:
        return cls(name=str(d.get("name") or d.get("path") or ""), path=str(d.get("path") or d.get("name") or ""),
                   sha256=d.get("sha256") or None, source=d.get("source"), params=int(d.get("params") or 0))


class Manifest(dict[str, Any]):
    """A folder's ``transferops.json`` (or ``export.json``): the JSON document plus typed accessors.

    Construct with :meth:`from_dict` (validates) or read with :func:`read_manifest`.
    """

    #: Where this document was read from (None when built in memory).
    path: Path | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, path: str | Path | None = None, warn_unknown: bool = True
                  ) -> Manifest:
        m = cls(d)
        m.path = Path(path) if path is not None else None
        if warn_unknown:
            m._warn_newer()
        return m

    def _warn_newer(self) -> None:
        version = self.format_version
        unknown = sorted(k for k in self if k not in KNOWN_KEYS)
        if version > SCHEMA_VERSION and unknown:
            where = f"{self.path}: " if self.path is not None else ""
            warnings.warn(f"{where}manifest format {version} is newer than this transferops reads "
                          f"({SCHEMA_VERSION}); ignoring unknown keys {unknown} (upgrade transferops to use "
                          "them)", UserWarning, stacklevel=4)

    def validate(self) -> Manifest:
        """Check the fields every loadable model needs; a clear error names the field."""
        where = f"{self.path}: " if self.path is not None else ""
        labels = self.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ArtifactError(f"{where}manifest field 'labels' must be a non-empty list of strings, got "
                                f"{labels!r}; the folder is damaged or not a transferops model")
        if self.get("task") not in TASKS:
            raise ArtifactError(f"{where}manifest field 'task' must be one of {', '.join(TASKS)}, got "
                                f"{self.get('task')!r}")
        try:
            int(self["config"]["max_length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{where}manifest field 'config.max_length' is missing or not an integer"
                                ) from exc
        return self

    # ------------------------------------------------------------------ typed fields
    @property
    def format_version(self) -> int:
        try:
            return int(self.get("format_version", 1))
        except (TypeError, ValueError):
            return SCHEMA_VERSION

    @property
    def kind(self) -> str:
        """``model`` (fine-tuned, the default), ``baseline``, ``probe``, ``stack``, ``ensemble``,
        ``adapted_checkpoint`` ...: which registered loader reads the folder."""
        return str(self.get("kind") or "model")

    @property
    def name(self) -> str:
        if self.get("name"):
            return str(self["name"])
        return self.path.name if self.path is not None else ""

    @property
    def task(self) -> Task:
        return cast(Task, str(self["task"]))

    @property
    def multilabel(self) -> bool:
        return self.get("task") == "multilabel"

    @property
    def labels(self) -> list[str]:
        return [str(x) for x in self["labels"]]

    @property
    def base(self) -> BaseRef | None:
        b = self.get("base")
        return BaseRef.from_dict(b) if isinstance(b, Mapping) and (b.get("name") or b.get("path")) else None

    @property
    def strategy_name(self) -> str:
        s = self.get("strategy")
        return str(s.get("name", "")) if isinstance(s, Mapping) else str(s or "")

    @property
    def peft_type(self) -> str | None:
        """The PEFT method of an adapter artifact (``LORA``, ``IA3``, ``PROMPT_TUNING`` ...), recorded by
        training as ``strategy.peft_type``; ``LORA`` for strategy ``lora`` folders written before that
        field; ``None`` for a full model."""
        s = self.get("strategy")
        recorded = s.get("peft_type") if isinstance(s, Mapping) else None
        if recorded:
            return str(recorded)
        return "LORA" if self.strategy_name == "lora" else None

    @property
    def is_adapter(self) -> bool:
        """The ``model/`` folder is a PEFT adapter over :attr:`base` (LoRA, IA3, prompt tuning ...)."""
        return self.peft_type is not None

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.get("config") or {})

    @property
    def max_length(self) -> int:
        return int(self["config"]["max_length"]) if "config" in self else int(self["max_length"])

    @property
    def temperature(self) -> float:
        return float((self.get("calibration") or {}).get("temperature", 1.0))

    @property
    def splits(self) -> dict[str, Any]:
        return dict(self.get("splits") or {})

    @property
    def test_sha256(self) -> str | None:
        return self.splits.get("test_sha256")

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.get("metrics") or {})

    @property
    def decision(self) -> dict[str, Any] | None:
        d = self.get("decision")
        return dict(d) if d else None

    @property
    def members(self) -> list[dict[str, Any]]:
        """Ensemble members (``[{path, name, seed, ...}]``); empty for a single model."""
        return [dict(m) for m in self.get("members") or []]

    @property
    def lineage(self) -> dict[str, Any]:
        """Where the weights came from: the base, a distillation teacher, ensemble members, an
        adapted parent checkpoint (whichever apply)."""
        out: dict[str, Any] = {}
        if self.get("base"):
            out["base"] = self["base"]
        if self.get("distillation"):
            out["teacher"] = self["distillation"].get("teacher")
        if self.get("members"):
            out["members"] = [m.get("name") for m in self["members"]]
        if self.get("continual"):
            out["init_from"] = self["continual"].get("init_from")
        if self.get("parent"):
            out["parent"] = self["parent"]
            out["lineage"] = self.get("lineage", [])
        return out


def read_manifest(path: str | Path, *, filename: str = MANIFEST_NAME) -> Manifest:
    """The manifest of the folder ``path`` (``transferops.json`` unless ``filename`` says otherwise)."""
    p = Path(path)
    mf = p / filename
    if not mf.exists():
        if filename == EXPORT_MANIFEST:
            raise ArtifactError(f"{p} is not an exported model: {EXPORT_MANIFEST} is missing "
                                "(create one with `transferops export --model RUN --out DIR`)")
        raise ArtifactError(f"{p} is not a transferops model folder: {filename} is missing "
                            "(train one with `transferops train ... --out DIR`)")
    doc = read_json(mf)
    if not isinstance(doc, dict):
        raise ArtifactError(f"{mf}: expected a JSON object, got {type(doc).__name__}")
    return Manifest.from_dict(doc, path=p)


def write_manifest(path: str | Path, doc: Mapping[str, Any], *, filename: str = MANIFEST_NAME) -> Manifest:
    """THE writer of every folder's manifest: stamps ``format_version`` (when absent), the library
    version and the creation time, then writes atomically. Returns what was written."""
    import transferops

    out = Manifest(doc)
    out.setdefault("format_version", SCHEMA_VERSION)
    out.setdefault("transferops_version", transferops.__version__)
    out.setdefault("created", utcnow())
    # stamped keys first, in the order the writers always used
    head = {k: out[k] for k in ("format_version", "kind") if k in out}
    ordered = Manifest({**head, **{k: v for k, v in out.items() if k not in head}})
    ordered.path = Path(path)
    Path(path).mkdir(parents=True, exist_ok=True)
    write_json(Path(path) / filename, dict(ordered))
    return ordered


def update_manifest(path: str | Path, **changes: Any) -> Manifest:
    """Merge top-level keys into a saved manifest (atomic write through :func:`write_manifest`)."""
    m = read_manifest(path)
    m.update(changes)
    return write_manifest(path, m)


__all__ = ["KNOWN_KEYS", "SCHEMA_VERSION", "TASKS", "BaseRef", "Manifest", "Task", "read_manifest",
           "update_manifest", "write_manifest"]
