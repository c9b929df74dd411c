"""Artifact kind ``multitask``: one backbone, one head per task, one forward pass for every task.

The manifest's ``tasks`` lists each task in head order::

    "tasks": [{"name": "topic", "column": "label", "task": "multiclass", "labels": [...], "weight": 1.0,
               "decision": {...} | null, "thresholds": {...} | null, "decision_threshold": null,
               "metrics": {"validation": {...}, "test": {...}}}, ...]

and each entry is a manifest of its own for :class:`~transferops.decision.DecisionRule`
(``DecisionRule.from_manifest(entry)``): a task decides exactly as a single-task model with the same
stored rule would.

**The flat view.** Everything that serves, logs or monitors a model (the server's runner, the
prediction log, the reference profile) sees a multi-task model as one decision over *qualified*
labels ``task:label`` (:data:`SEP`): ``labels`` lists every task's labels qualified, ``infer`` gives
every head's logits side by side from one pass, ``proba_from_logits`` applies each task's softmax
(sigmoid for a multi-label task) to its block, and :class:`MultiTaskDecisionRule` decides one label
per single-label task (any number for a multi-label one): the decided labels of a text are a list,
as for a multi-label model, and its confidence is the least confident task's (the multi-label
definition, per task). The top-level manifest ``task`` is therefore ``multilabel``. The per-task
surface is :meth:`MultiTaskModel.predict_proba` (a dict per task), :meth:`MultiTaskModel.predict`
(a dict per text) and :meth:`MultiTaskModel.task_view` (one task as a single-task classifier, which
the evaluate and monitor stages use unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from transferops.artifacts.classifier import ClassifierBase, TorchBacked
from transferops.artifacts.kinds import register_kind
from transferops.artifacts.manifest import Manifest
from transferops.constants import DATA_DIR, LABEL_COL
from transferops.decision import DecisionRule
from transferops.errors import ArtifactError
from transferops.modality.text import check_texts

if TYPE_CHECKING:
    import pandas as pd

#: Separator of a qualified label, ``task:label`` (task names cannot contain it).
SEP = ":"
KIND = "multitask"


def qualify(task: str, label: str) -> str:
    return f"{task}{SEP}{label}"


def task_column(task: str) -> str:
    """The column of a saved split that holds task ``task``'s label (``None`` where it is missing)."""
    return f"label__{task}"


@dataclass(frozen=True)
class TaskHead:
    """One task of a saved multi-task model (read from ``manifest["tasks"]``)."""

    name: str
    task: str
    labels: tuple[str, ...]
    entry: Mapping[str, Any]

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @property
    def temperature(self) -> float:
        return float((self.entry.get("calibration") or {}).get("temperature", 1.0))

    @property
    def rule(self) -> DecisionRule:
        return DecisionRule.from_manifest(self.entry, labels=list(self.labels), multilabel=self.multilabel)


def task_heads(manifest: Mapping[str, Any]) -> list[TaskHead]:
    """The tasks of a multi-task manifest, validated (a clear error names the bad field)."""
    where = f"{getattr(manifest, 'path', None) or 'manifest'}: "
    tasks = manifest.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise ArtifactError(f"{where}field 'tasks' must be a non-empty list of tasks (a multi-task artifact)")
    out = []
    for i, t in enumerate(tasks):
        labels = t.get("labels") if isinstance(t, Mapping) else None
        if not isinstance(t, Mapping) or not isinstance(t.get("name"), str) or not isinstance(labels, list) \
                or not labels or t.get("task") not in ("binary", "multiclass", "multilabel"):
            raise ArtifactError(f"{where}field 'tasks[{i}]' needs a name, a task (binary, multiclass, multilabel) "
                                "and a non-empty list of labels; the folder is damaged")
        out.append(TaskHead(t["name"], t["task"], tuple(str(x) for x in labels), t))
    return out


@dataclass(frozen=True)
class MultiTaskDecisionRule:
    """Every task's :class:`DecisionRule`, over the flat (qualified) probability matrix."""

    heads: tuple[TaskHead, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(qualify(h.name, lbl) for h in self.heads for lbl in h.labels)

    @property
    def multilabel(self) -> bool:
        return True

    def blocks(self) -> list[tuple[TaskHead, slice]]:
        out, off = [], 0
        for h in self.heads:
            out.append((h, slice(off, off + len(h.labels))))
            off += len(h.labels)
        return out

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """A 0-1 matrix over the flat labels: each task's decision in its block."""
        proba = np.asarray(proba, dtype=np.float64)
        out = np.zeros(proba.shape, dtype=np.int64)
        for h, sl in self.blocks():
            d = h.rule.decide(proba[:, sl])
            if h.multilabel:
                out[:, sl] = d
            elif len(proba):
                out[np.arange(len(proba)), sl.start + d] = 1
        return out

    def task_confidence(self, proba: np.ndarray) -> dict[str, np.ndarray]:
        proba = np.asarray(proba, dtype=np.float64)
        return {h.name: h.rule.confidence(proba[:, sl]) for h, sl in self.blocks()}

    def confidence(self, proba: np.ndarray, decided: np.ndarray | None = None) -> np.ndarray:
        """The least confident task's confidence (each task's is :meth:`DecisionRule.confidence`)."""
        per = self.task_confidence(proba)
        if not len(proba):
            return np.zeros(0, dtype=np.float64)
        return np.asarray(np.min(np.stack(list(per.values()), axis=1), axis=1), dtype=np.float64)

    def names(self, decided: np.ndarray) -> list[Any]:
        labels = self.labels
        return [[labels[j] for j in np.flatnonzero(row)] for row in decided]

    def apply(self, proba: np.ndarray) -> tuple[list[Any], np.ndarray]:
        return self.names(self.decide(proba)), self.confidence(proba)

    def per_task(self, proba_row: Mapping[str, float] | np.ndarray) -> dict[str, dict[str, Any]]:
        """One text's per-task answer (label, probabilities, confidence) from its flat probabilities
        (a row of the matrix, or the server's ``{qualified label: p}``)."""
        if isinstance(proba_row, Mapping):
            row = np.asarray([[float(proba_row[lbl]) for lbl in self.labels]])
        else:
            row = np.asarray(proba_row, dtype=np.float64).reshape(1, -1)
        out: dict[str, dict[str, Any]] = {}
        for h, sl in self.blocks():
            p = row[:, sl]
            rule = h.rule
            decided = rule.decide(p)
            out[h.name] = {"label": rule.names(decided)[0],
                           "probabilities": {lbl: float(v) for lbl, v in zip(h.labels, p[0], strict=True)},
                           "confidence": float(rule.confidence(p, decided)[0])}
        return out


class MultiTaskModel(TorchBacked, ClassifierBase):
    """A trained multi-task model (kind ``multitask``): every task from one forward pass.

    >>> m = transferops.load("runs/news-mt")                                 # doctest: +SKIP
    >>> m.predict_proba(["Shares rose sharply"])["topic"].shape              # doctest: +SKIP
    (1, 5)
    >>> m.predict(["Shares rose sharply"])                                   # doctest: +SKIP
    [{'topic': 'business', 'length': 'short'}]
    """

    not_exported_reason: ClassVar[str | None] = (
        "is a multi-task model (kind 'multitask'): its graph would have one output per task, but the ONNX "
        "export kind, its parity gate and every ONNX reader decide with ONE single-task rule over one logits "
        "output, so an exported copy could not decide per task; serve the PyTorch artifact instead "
        "(transferops serve --model NAME=PATH)")

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        self.heads: list[TaskHead] = task_heads(self.manifest)
        flat = [qualify(h.name, lbl) for h in self.heads for lbl in h.labels]
        if flat != self.labels:
            raise ArtifactError(f"{self.path}: manifest field 'labels' must list every task's labels as "
                                f"'task{SEP}label' in task order; the folder is damaged")

    # ------------------------------------------------------------- structure
    @property
    def task_names(self) -> list[str]:
        return [h.name for h in self.heads]

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """``{task: {"task": type, "labels": [...]}}``."""
        return {h.name: {"task": h.task, "labels": list(h.labels)} for h in self.heads}

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"kind": KIND, "tasks": self.tasks}

    def _load(self) -> None:
        from transferops.artifacts.multitask_net import load_net

        heads = {h.name: len(h.labels) for h in self.heads}
        self._model = self._load_torch(lambda mdir: load_net(mdir, heads))

    # ------------------------------------------------------------- the one pass (flat view)
    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Every head's logits side by side + the mean-pooled embedding, from ONE forward pass."""
        from transferops.inference import forward

        return forward(self.torch_model, self.tokenizer, check_texts(texts), max_length=self.max_length,
                       batch_size=batch_size, output="both", desc=None)

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        from transferops.inference import forward

        return forward(self.torch_model, self.tokenizer, check_texts(texts), max_length=self.max_length,
                       batch_size=batch_size, output="logits")[0]

    def proba_from_logits(self, logits: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Each task's softmax (sigmoid: multi-label task) over its block of the flat logits."""
        from transferops.modeling import sigmoid, softmax

        z = np.asarray(logits, dtype=np.float64)
        out = np.empty_like(z)
        for h, sl in self.decision_rule.blocks():
            t = h.temperature if calibrated else 1.0
            out[:, sl] = sigmoid(z[:, sl] / t) if h.multilabel else softmax(z[:, sl] / t)
        return out

    def shared_infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`infer`, remembering the last call: the task views of one evaluation (one per task, same
        rows) share one forward pass."""
        from transferops._util import sha256_texts

        key = (sha256_texts(list(texts)), batch_size)
        last = getattr(self, "_last_infer", None)
        if last is None or last[0] != key:
            last = (key, *self.infer(texts, batch_size=batch_size))
            self._last_infer = last
        return last[1], last[2]

    @property
    def decision_rule(self) -> MultiTaskDecisionRule:  # type: ignore[override]
        return MultiTaskDecisionRule(tuple(self.heads))

    # ------------------------------------------------------------- per task
    def split_tasks(self, proba: np.ndarray) -> dict[str, np.ndarray]:
        """The flat probability matrix as ``{task: (n, k_task)}``."""
        return {h.name: proba[:, sl] for h, sl in self.decision_rule.blocks()}

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64,  # type: ignore[override]
                      calibrated: bool = True) -> dict[str, np.ndarray]:
        """Every task's probabilities from one forward pass: ``{task: (n, k_task)}``."""
        flat = self.proba_from_logits(self.logits(texts, batch_size=batch_size), calibrated=calibrated)
        return self.split_tasks(flat)

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[dict[str, Any]]:
        """Per text, ``{task: label}`` (a list of labels for a multi-label task)."""
        flat = self.proba_from_logits(self.logits(texts, batch_size=batch_size))
        per = {h.name: h.rule.names(h.rule.decide(p)) for h, (p) in
               zip(self.heads, self.split_tasks(flat).values(), strict=True)}
        return [{name: per[name][i] for name in per} for i in range(len(flat))]

    def task_frame(self, texts: Sequence[str], *, batch_size: int = 64) -> pd.DataFrame:
        """Batch-predict columns from one pass: per task ``<task>_label``, ``<task>_confidence`` and
        ``p_<task>:<label>`` (what ``transferops predict`` writes for a multi-task model)."""
        import pandas as pd

        flat = self.proba_from_logits(self.logits(texts, batch_size=batch_size))
        cols: dict[str, Any] = {}
        for h, sl in self.decision_rule.blocks():
            p = flat[:, sl]
            decided = h.rule.decide(p)
            names = h.rule.names(decided)
            cols[f"{h.name}_label"] = ["|".join(n) for n in names] if h.multilabel else names
            cols[f"{h.name}_confidence"] = h.rule.confidence(p, decided)
            for j, lbl in enumerate(h.labels):
                cols[f"p_{qualify(h.name, lbl)}"] = p[:, j]
        return pd.DataFrame(cols)

    def task_view(self, name: str) -> TaskView:
        """Task ``name`` as a single-task classifier (its labels, rule, logits block, split rows)."""
        for i, h in enumerate(self.heads):
            if h.name == name:
                return TaskView(self, i)
        raise ArtifactError(f"task: {name!r} is not a task of {self.path} (tasks: {', '.join(self.task_names)})")

    def __repr__(self) -> str:
        return f"MultiTaskModel(path={str(self.path)!r}, tasks={self.task_names})"


class TaskView(ClassifierBase):
    """One task of a :class:`MultiTaskModel` as a single-task classifier: ``labels``, ``task``, the
    stored rule and ``infer`` (that head's logits block + the shared embedding) — what
    ``evaluate`` and ``monitor.build_profile`` take, unchanged."""

    def __init__(self, parent: MultiTaskModel, index: int) -> None:  # no super(): the view has no folder of its own
        self.parent = parent
        self.head = parent.heads[index]
        self.path = parent.path
        base = {k: parent.manifest[k] for k in ("base", "strategy", "config", "splits") if k in parent.manifest}
        doc = {**base, **dict(self.head.entry), "kind": KIND, "name": f"{parent.name}/{self.head.name}",
               "labels": list(self.head.labels), "task": self.head.task}
        self.manifest = Manifest.from_dict(doc, warn_unknown=False)
        self.labels = list(self.head.labels)
        self.task = self.head.task
        self.max_length = parent.max_length
        self._device, self._threads, self._tok = parent._device, parent._threads, None
        self._slice = parent.decision_rule.blocks()[index][1]

    @property
    def tokenizer(self) -> Any:
        return self.parent.tokenizer

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        logits, emb = self.parent.shared_infer(texts, batch_size=batch_size)
        return logits[:, self._slice], emb

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return self.infer(texts, batch_size=batch_size)[0]

    def split(self, name: str = "test") -> pd.DataFrame:
        """Rows of the saved split that carry this task's label, with it in ``label``."""
        import pandas as pd

        f = self.path / DATA_DIR / f"{name}.parquet"
        if not f.exists():
            raise ArtifactError(f"{self.path}: split '{name}' not found at {f}")
        df = pd.read_parquet(f)
        col = task_column(self.head.name)
        keep = df[col].notna()
        out = df[keep].reset_index(drop=True)
        vals = out[col].tolist()
        out[LABEL_COL] = [[str(x) for x in v] for v in vals] if self.head.multilabel else [str(v) for v in vals]
        return out

    def __repr__(self) -> str:
        return f"TaskView({self.parent.path}, task={self.head.name!r})"


register_kind(KIND, MultiTaskModel)

__all__ = ["KIND", "SEP", "MultiTaskDecisionRule", "MultiTaskModel", "TaskHead", "TaskView", "qualify",
           "task_column", "task_heads"]
