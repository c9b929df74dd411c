"""Multi-task training: ONE backbone, one head per label column, mixed batches, per-task loss weights.

``transferops train --tasks topic=label,urgency=priority --task-weights urgency=0.5`` (or
:func:`train_multitask`) reads every task's column from the same file. Each task is multi-class, binary
or multi-label, inferred from its column exactly as single-task ``train`` infers it
(:func:`transferops.data.load_labeled` runs on that column's labelled rows), or stated
(``name=column:multilabel``). Every batch mixes rows of every task: a row carries all its labels, and a
task whose label is missing on a row contributes no loss for that row (its loss is masked). The loss is
``sum_t weight_t * mean_loss_t`` over the tasks present in the batch.

The artifact is one folder of kind ``multitask`` (:mod:`transferops.artifacts.multitask`): the encoder, the
heads, the splits (one ``label__<task>`` column per task) and a manifest listing the tasks, their labels,
types, weights, decision rules and metrics. This module imports no torch at import time (the CLI and
the config parser read :data:`MULTITASK_KEYS` from it).

Strategies: ``head`` (frozen encoder; the heads train on cached mean-pooled embeddings), ``freeze`` and
``full`` (the registry's functions); PEFT strategies are refused (the adapter machinery saves one
sequence-classification head).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from transferops._progress import say
from transferops.errors import ConfigError, DataError

#: Keys of a ``train --config`` YAML that belong to multi-task training (not to :class:`TrainConfig`).
MULTITASK_KEYS = ("tasks", "task_weights")
#: Strategies a multi-task model trains with.
MULTITASK_STRATEGIES = ("head", "freeze", "full")
TaskType = Literal["auto", "binary", "multiclass", "multilabel"]
_TASK_TYPES = ("auto", "binary", "multiclass", "multilabel")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name, the label column, its type (``auto``: inferred) and its loss weight."""

    name: str
    column: str
    task: TaskType = "auto"
    weight: float = 1.0
    label_sep: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"tasks: task name {self.name!r} must be a plain name (letters, digits, _ or -, "
                              "not starting with a digit), e.g. topic=label")
        if not isinstance(self.column, str) or not self.column.strip():
            raise ConfigError(f"tasks: task {self.name!r} needs a label column, e.g. {self.name}=label")
        if self.task not in _TASK_TYPES:
            raise ConfigError(f"tasks: task {self.name!r}: type {self.task!r} is not one of "
                              f"{', '.join(_TASK_TYPES[1:])}")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ConfigError(f"task_weights: {self.name}: {w!r} must be a positive number")


def parse_tasks(spec: str | Mapping[str, Any] | Sequence[Any], *, label_sep: str | None = None) -> list[TaskSpec]:
    """``"topic=label,urgency=priority:binary"``, or a YAML mapping ``{topic: label, tags: {column: tags,
    task: multilabel, sep: "|"}}``, into task specs (duplicate names are an error)."""
    items: list[TaskSpec] = []
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not parts:
            raise ConfigError("tasks: empty; give name=column pairs, e.g. --tasks topic=label,urgency=priority")
        for p in parts:
            if "=" not in p:
                raise ConfigError(f"tasks: {p!r} is not name=column (e.g. --tasks topic=label,urgency=priority)")
            name, col = (x.strip() for x in p.split("=", 1))
            task: str = "auto"
            head, _, tail = col.rpartition(":")
            if head and tail in _TASK_TYPES[1:]:
                col, task = head, tail
            items.append(TaskSpec(name, col, task, label_sep=label_sep if task == "multilabel" else None))  # type: ignore[arg-type]
    elif isinstance(spec, Mapping):
        for name, v in spec.items():
            if isinstance(v, str):
                items.append(TaskSpec(str(name), v))
            elif isinstance(v, Mapping):
                bad = sorted(set(v) - {"column", "task", "sep", "weight"})
                if bad:
                    raise ConfigError(f"tasks.{name}: unknown key '{bad[0]}' (keys: column, task, sep, weight)")
                items.append(TaskSpec(str(name), v.get("column", ""), v.get("task", "auto"),
                                      v.get("weight", 1.0), v.get("sep")))
            else:
                raise ConfigError(f"tasks.{name}: expected a column name or a mapping (column, task, sep, weight), "
                                  f"got {type(v).__name__}")
    elif isinstance(spec, Sequence):
        items = [s if isinstance(s, TaskSpec) else parse_tasks(s, label_sep=label_sep)[0] for s in spec]
    else:
        raise ConfigError(f"tasks: expected 'name=column,...' or a mapping, got {type(spec).__name__}")
    seen: set[str] = set()
    for t in items:
        if t.name in seen:
            raise ConfigError(f"tasks: task name {t.name!r} appears twice; give each task its own name")
        seen.add(t.name)
    if not items:
        raise ConfigError("tasks: no task given")
    return items


def parse_task_weights(spec: str | Mapping[str, Any] | None, tasks: Sequence[TaskSpec]) -> list[TaskSpec]:
    """Apply ``"topic=1,urgency=0.5"`` (or a mapping) to ``tasks``; an unknown task name is an error that
    names it (and the closest task)."""
    if spec is None or spec == "" or spec == {}:
        return list(tasks)
    if isinstance(spec, str):
        pairs: dict[str, Any] = {}
        for p in (x.strip() for x in spec.split(",") if x.strip()):
            if "=" not in p:
                raise ConfigError(f"task_weights: {p!r} is not task=weight (e.g. --task-weights topic=1,urgency=0.5)")
            k, v = (x.strip() for x in p.split("=", 1))
            try:
                pairs[k] = float(v)
            except ValueError:
                raise ConfigError(f"task_weights: {k}: {v!r} is not a number") from None
    elif isinstance(spec, Mapping):
        pairs = dict(spec)
    else:
        raise ConfigError(f"task_weights: expected 'task=weight,...' or a mapping, got {type(spec).__name__}")
    names = [t.name for t in tasks]
    for k in pairs:
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"task_weights: unknown task '{k}' (tasks: {', '.join(names)}).{hint}")
    out = []
    for t in tasks:
        w = pairs.get(t.name, t.weight)
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise ConfigError(f"task_weights: {t.name}: {w!r} must be a positive number")
        out.append(TaskSpec(t.name, t.column, t.task, float(w), t.label_sep))
    return out


def split_config_keys(loaded: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``--config`` mapping as (TrainConfig fields, multi-task keys)."""
    return ({k: v for k, v in loaded.items() if k not in MULTITASK_KEYS},
            {k: v for k, v in loaded.items() if k in MULTITASK_KEYS})


# --------------------------------------------------------------------------- data


@dataclass
class TaskData:
    """One task's labels over the rows of :class:`MultiTaskData` (``None`` where missing)."""

    spec: TaskSpec
    task: str
    labels: list[str]
    values: list[Any]

    @property
    def present(self) -> np.ndarray:
        return np.asarray([v is not None for v in self.values])

    def to_entry(self) -> dict[str, Any]:
        return {"name": self.spec.name, "column": self.spec.column, "task": self.task, "labels": self.labels,
                "weight": self.spec.weight, "label_sep": self.spec.label_sep}


@dataclass
class MultiTaskData:
    texts: list[str]
    tasks: list[TaskData]
    source: str
    rows: int
    dropped_unlabeled: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def load_multitask(data: str | Path | pd.DataFrame, tasks: Sequence[TaskSpec], *, text_column: str = "text",
                   encoding: str = "utf-8", stratify_column: str | None = None) -> MultiTaskData:
    """Read the rows once; infer (or check) each task's type and labels from its labelled rows.
    ``stratify_column`` (default: the first task's labels) is what the splits are stratified on."""
    from transferops.data import ColumnMap, load_labeled, read_table

    if isinstance(data, pd.DataFrame):
        raw, src = data.reset_index(drop=True), "<dataframe>"
    else:
        raw, src = read_table(data, encoding=encoding), str(data)
    if len(raw) == 0:
        raise DataError(f"{src}: the file has no rows")
    cols = [str(c) for c in raw.columns]
    named = [("text", text_column)] + [(t.name, t.column) for t in tasks]
    for name, col in named + ([("stratify", stratify_column)] if stratify_column else []):
        if col not in raw.columns:
            close = difflib.get_close_matches(col, cols, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            what = {"text": "--text-column", "stratify": "stratify_column"}.get(name, f"--tasks {name}={col}")
            raise DataError(f"{src}: {what}: no column '{col}'. Columns are: {', '.join(cols[:20])}.{hint}")
    texts = raw[text_column].tolist()
    for i, t in enumerate(texts):
        if _missing(t):
            raise DataError(f"{src}: row {i + 1}, column '{text_column}': empty or missing text; fix or drop the row")
    texts = [str(t) for t in texts]
    out: list[TaskData] = []
    for spec in tasks:
        vals = raw[spec.column].tolist()
        present = [i for i, v in enumerate(vals) if not (_missing(v) if not isinstance(v, (list, np.ndarray))
                                                         else False)]
        if not present:
            raise DataError(f"{src}: --tasks {spec.name}={spec.column}: the column has no labels")
        sub = pd.DataFrame({"text": [texts[i] for i in present], "label": [vals[i] for i in present]})
        ml = spec.task == "multilabel" or spec.label_sep is not None
        try:
            ld = load_labeled(sub, ColumnMap(text="text", label="label", label_sep=spec.label_sep),
                              task="multilabel" if ml else "auto")
        except DataError as exc:
            msg = str(exc).replace("<dataframe>: ", "").replace("column 'label'", f"column '{spec.column}'")
            raise DataError(f"{src}: --tasks {spec.name}={spec.column}: {msg}") from None
        if spec.task != "auto" and spec.task != ld.task and not (spec.task == "multiclass" and ld.task == "binary"):
            raise ConfigError(f"tasks: {spec.name}: type '{spec.task}' stated but column '{spec.column}' looks "
                              f"{ld.task} ({len(ld.labels)} labels)")
        kind = "multilabel" if ld.task == "multilabel" else ("multiclass" if spec.task == "multiclass" else ld.task)
        values: list[Any] = [None] * len(raw)
        for j, i in enumerate(present):
            values[i] = list(ld.y[j]) if kind == "multilabel" else ld.y[j]
        out.append(TaskData(spec, kind, list(ld.labels), values))
    # a row without any task's label teaches nothing: dropped (counted in the manifest)
    keep = [i for i in range(len(texts)) if any(t.values[i] is not None for t in out)]
    for t in out:
        t.values = [t.values[i] for i in keep]
    extra = {"stratify": [str(raw[stratify_column].iloc[i]) for i in keep]} if stratify_column else {}
    return MultiTaskData([texts[i] for i in keep], out, src, len(raw), dropped_unlabeled=len(texts) - len(keep),
                         extra=extra)


def _flat_labels(tasks: Sequence[TaskData], i: int) -> list[str]:
    from transferops.artifacts.multitask import qualify

    flat: list[str] = []
    for t in tasks:
        v = t.values[i]
        if v is None:
            continue
        flat += [qualify(t.spec.name, x) for x in (v if isinstance(v, list) else [v])]
    return flat


def _split(md: MultiTaskData, split_cfg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train / validation / test: the data stage's split, stratified on the first task."""
    from transferops.constants import LABEL_COL, TEXT_COL
    from transferops.data import ColumnMap, LabeledData, make_splits

    first = md.tasks[0]
    counts: dict[str, int] = {}
    for v in first.values:
        for x in (v if isinstance(v, list) else [v]):
            counts[str(x)] = counts.get(str(x), 0) + 1

    def key(v: Any) -> str:
        if v is None:
            return "__missing__"
        if isinstance(v, list):
            return min(v, key=lambda x: counts[str(x)]) if v else "__none__"
        return str(v)

    keys = list(md.extra["stratify"]) if "stratify" in md.extra else [key(v) for v in first.values]
    frame = pd.DataFrame({TEXT_COL: md.texts, LABEL_COL: keys, "_row": np.arange(len(md.texts))})
    ld = LabeledData(frame, "multiclass", sorted(set(keys)), ColumnMap(), md.source)
    s = make_splits(ld, split_cfg)
    return (np.asarray(s.train.frame["_row"]), np.asarray(s.validation.frame["_row"]),
            np.asarray(s.test.frame["_row"]))


def _save_splits(md: MultiTaskData, parts: dict[str, np.ndarray], out: Path) -> dict[str, str]:
    from transferops.artifacts.multitask import task_column
    from transferops.constants import DATA_DIR, LABEL_COL, TEST_SPLIT, TEXT_COL, TRAIN_SPLIT, VALIDATION_SPLIT

    d = out / DATA_DIR
    d.mkdir(parents=True, exist_ok=True)
    names = {"train": TRAIN_SPLIT, "validation": VALIDATION_SPLIT, "test": TEST_SPLIT}
    for part, idx in parts.items():
        df = pd.DataFrame({TEXT_COL: [md.texts[i] for i in idx],
                           LABEL_COL: [_flat_labels(md.tasks, int(i)) for i in idx]})
        for t in md.tasks:
            df[task_column(t.spec.name)] = [t.values[i] for i in idx]
        f = d / names[part]
        if f.exists():
            os.chmod(f, stat.S_IRUSR | stat.S_IWUSR)
        df.to_parquet(f, index=False)
    os.chmod(d / TEST_SPLIT, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # write-once, as single-task
    return {k: f"{DATA_DIR}/{v}" for k, v in names.items()}


# --------------------------------------------------------------------------- training pieces


class MultiTaskLoss:
    """``sum_t weight_t * mean over rows labelled for t of loss_t`` (CE; BCE for a multi-label task).

    A batch is ``{input_ids, attention_mask, ..., y0, m0, y1, m1, ...}`` (token batches) or
    ``(features, y0, m0, y1, m1, ...)`` (cached features, ``cached=True``); ``m_t`` masks the rows whose
    task-``t`` label is missing."""

    def __init__(self, blocks: Sequence[tuple[slice, bool, float]], *, cached: bool) -> None:
        self.blocks = list(blocks)
        self.cached = cached

    def loss(self, module: Any, batch: Any) -> tuple[Any, int]:
        import torch.nn.functional as F

        if self.cached:
            feats, *targets = batch
            logits = module(feats)
        else:
            targets = []
            for i in range(len(self.blocks)):
                targets += [batch.pop(f"y{i}"), batch.pop(f"m{i}")]
            logits = module(**batch).logits.float()  # fp32 loss under bf16 autocast
        total = logits.sum() * 0.0
        for i, (sl, multilabel, weight) in enumerate(self.blocks):
            y, m = targets[2 * i], targets[2 * i + 1].bool()
            if not bool(m.any()):
                continue
            z = logits[m][:, sl]
            lt = F.binary_cross_entropy_with_logits(z, y[m].float()) if multilabel else F.cross_entropy(z, y[m].long())
            total = total + weight * lt
        return total, int(logits.shape[0])


def _targets(tasks: Sequence[TaskData], idx: np.ndarray) -> list[np.ndarray]:
    """Per task ``y`` (class ids, -1 where missing; multi-label: a 0-1 matrix) and ``m`` (present)."""
    from transferops.metrics import encode_labels

    out: list[np.ndarray] = []
    for t in tasks:
        vals = [t.values[i] for i in idx]
        m = np.asarray([v is not None for v in vals])
        y: np.ndarray
        if t.task == "multilabel":
            y = np.zeros((len(vals), len(t.labels)), dtype=np.float32)
            if m.any():
                y[m] = encode_labels([v for v in vals if v is not None], t.labels, True)
        else:
            y = np.full(len(vals), -1, dtype=np.int64)
            if m.any():
                y[m] = encode_labels([v for v in vals if v is not None], t.labels, False)
        out += [y, m]
    return out


def _task_metrics(t: TaskData, y: np.ndarray, m: np.ndarray, proba: np.ndarray, decision: Any = None
                  ) -> dict[str, float]:
    from transferops.metrics import classification_metrics, label_metrics

    ml = t.task == "multilabel"
    if not m.any():
        return {}
    yy = y[m].astype(np.int64)
    met = classification_metrics(yy, proba[m], multilabel=ml)
    if decision is not None:
        from transferops.decision import DecisionRule

        pred = DecisionRule.from_manifest({"decision": decision}, labels=t.labels, multilabel=False).decide(proba[m])
        lm = label_metrics(yy, pred, n_classes=len(t.labels))
        met.update({k: lm[k] for k in ("accuracy", "macro_f1", "weighted_f1", "balanced_accuracy")})
        met["decision_rule"] = "logit_offsets"  # type: ignore[assignment]
    met["n"] = int(m.sum())
    return met


def _proba(z: np.ndarray, multilabel: bool) -> np.ndarray:
    from transferops.modeling import sigmoid, softmax

    return sigmoid(z) if multilabel else softmax(z)


@dataclass
class MultiTaskResult:
    """What :func:`train_multitask` saved."""

    path: Path
    manifest: Any
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> Any:
        from transferops.artifacts.multitask import MultiTaskModel

        return MultiTaskModel(self.path)

    @property
    def test_metrics(self) -> dict[str, dict[str, Any]]:
        return {t["name"]: dict(t["metrics"]["test"]) for t in self.manifest["tasks"]}

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "warnings": self.warnings, **self.manifest}

    def summary(self) -> str:
        m = self.manifest
        lines = [f"multi-task model saved to {self.path}",
                 f"  base {m['base']['name']} · strategy {m['strategy']['name']} · {len(m['tasks'])} tasks · "
                 f"splits {m['splits']['sizes']}"]
        for t in m["tasks"]:
            v, te = t["metrics"]["validation"], t["metrics"]["test"]
            line = (f"  task {t['name']} ({t['task']}, {len(t['labels'])} labels, column {t['column']}, weight "
                    f"{t['weight']:g}): validation macro-F1 {v.get('macro_f1', float('nan')):.4f} · test accuracy "
                    f"{te.get('accuracy', float('nan')):.4f} macro-F1 {te.get('macro_f1', float('nan')):.4f} "
                    f"(n={te.get('n', 0)})")
            b = (t.get("baseline") or {}).get("tfidf_logreg")
            if b:
                line += f" · TF-IDF baseline macro-F1 {b['metrics']['macro_f1']:.4f}"
            lines.append(line)
        tm = m["timings"]
        lines.append(f"  training {tm['train_seconds']:.1f}s · {tm['examples_per_second']:.1f} examples/s")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _check_config(cfg: Any) -> None:
    if cfg.strategy not in ("auto", *MULTITASK_STRATEGIES):
        raise ConfigError(f"strategy: {cfg.strategy!r} is not available with --tasks (multi-task trains "
                          f"{', '.join(MULTITASK_STRATEGIES)}; the PEFT strategies save one classification head)")
    if cfg.task != "auto":
        raise ConfigError("task: with --tasks each task has its own type; state it per task "
                          "(--tasks tags=tags:multilabel) instead of --task")
    if cfg.calibrate:
        raise ConfigError("calibrate: temperature scaling is per single-task model; drop --calibrate with --tasks")
    if cfg.augment or cfg.augment_slice:
        raise ConfigError("augment: augmentation is not implemented for --tasks; drop --augment/--augment-slice")
    if cfg.loss != "ce" or cfg.class_weight or cfg.oversample:
        raise ConfigError("loss/class_weight/oversample: multi-task training uses plain CE/BCE per task; drop "
                          "--loss, --class-weight and --oversample with --tasks")


def train_multitask(
    data: str | Path | pd.DataFrame,
    *,
    out: str | Path,
    tasks: str | Mapping[str, Any] | Sequence[Any],
    task_weights: str | Mapping[str, Any] | None = None,
    text_column: str = "text",
    label_sep: str | None = None,
    config: Any = None,
    split: Any = None,
    name: str | None = None,
    encoding: str = "utf-8",
    stratify_column: str | None = None,
    **overrides: Any,
) -> MultiTaskResult:
    """Train one backbone with one head per task and save a ``multitask`` artifact.

    >>> res = train_multitask("news.csv", out="runs/mt", tasks="topic=label,length=length",
    ...                       task_weights="length=0.5", checkpoint="minilm-l6", strategy="head")  # doctest: +SKIP
    >>> res.model.predict(["Shares rose sharply"])                                               # doctest: +SKIP
    [{'topic': 'business', 'length': 'short'}]
    """
    import shutil

    import torch

    from transferops._util import package_versions, sha256_file, sha256_texts
    from transferops.artifacts.manifest import read_manifest, write_manifest
    from transferops.artifacts.multitask import KIND, qualify
    from transferops.artifacts.multitask_net import build_net, save_net
    from transferops.checkpoints import resolve_checkpoint
    from transferops.constants import MANIFEST_NAME, MODEL_DIR
    from transferops.data import SplitConfig, find_leakage
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.loop import LoopConfig, TrainLoop
    from transferops.finetune.strategies import choose_auto, encoder_layers, get_strategy
    from transferops.hooks import run_post_train
    from transferops.inference import forward
    from transferops.modeling import load_tokenizer, set_threads

    specs = parse_task_weights(task_weights, parse_tasks(tasks, label_sep=label_sep))
    cfg = config or TrainConfig()
    if overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
    _check_config(cfg)
    split_cfg = split or SplitConfig(seed=cfg.seed)
    if split_cfg.method in ("temporal", "group"):
        raise ConfigError(f"split: method {split_cfg.method!r} is not available with --tasks (stratified on the "
                          "first task, or random)")
    set_threads(cfg.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(out)
    if (out / MANIFEST_NAME).exists():
        raise ConfigError(f"out: {out} already holds a trained model; choose another --out, or delete it")
    t_start = time.perf_counter()
    ckpt = resolve_checkpoint(cfg.checkpoint)
    md = load_multitask(data, specs, text_column=text_column, encoding=encoding, stratify_column=stratify_column)
    warnings_: list[str] = []
    if md.dropped_unlabeled:
        warnings_.append(f"{md.dropped_unlabeled} rows carry no task's label and were dropped")
    tr, va, te = _split(md, split_cfg)
    files = _save_splits(md, {"train": tr, "validation": va, "test": te}, out)
    test_sha = sha256_file(out / files["test"])
    texts = md.texts
    tr_t, va_t, te_t = ([texts[i] for i in idx] for idx in (tr, va, te))
    leak = find_leakage(tr_t, te_t)
    if leak.exact_pairs:
        warnings_.append(leak.summary())
    for t in md.tasks:
        for part, idx in (("validation", va), ("test", te)):
            if not any(t.values[i] is not None for i in idx):
                warnings_.append(f"task {t.spec.name}: no labelled rows in the {part} split; its {part} metrics are "
                                 "empty")

    strategy = cfg.strategy
    reason = "set by the user"
    n_layers = int(ckpt.config().get("num_hidden_layers", 6))
    if strategy == "auto":
        strategy, extra, reason = choose_auto(len(tr), n_layers)
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **extra})
        say(f"auto strategy: {strategy} — {reason}")
    tok = load_tokenizer(ckpt.path)
    torch.manual_seed(cfg.seed)
    heads = {t.spec.name: len(t.labels) for t in md.tasks}
    net = build_net(ckpt.path, heads)
    frozen = 0
    if strategy == "head":
        for p in net.parameters():
            p.requires_grad_(False)
        for p in net.heads.parameters():
            p.requires_grad_(True)
        frozen = len(encoder_layers(net))
    else:
        _, frozen = get_strategy(strategy).apply(net, cfg)  # in place (freeze / full never wrap the module)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for p in net.parameters())
    say(f"multi-task, strategy {strategy}: {trainable:,} of {total:,} parameters train; tasks "
        + ", ".join(f"{t.spec.name} ({t.task}, {len(t.labels)} labels, weight {t.spec.weight:g})" for t in md.tasks))

    blocks, off = [], 0
    for t in md.tasks:
        blocks.append((slice(off, off + len(t.labels)), t.task == "multilabel", float(t.spec.weight)))
        off += len(t.labels)
    y_tr, y_va, y_te = _targets(md.tasks, tr), _targets(md.tasks, va), _targets(md.tasks, te)
    cached = strategy == "head"
    loop = TrainLoop(LoopConfig(lr=cfg.resolved_lr(strategy), epochs=cfg.resolved_epochs(strategy),
                                max_steps=cfg.max_steps, grad_accum=cfg.grad_accum, warmup_ratio=cfg.warmup_ratio,
                                weight_decay=cfg.weight_decay, metric=cfg.metric, higher_is_better=cfg.metric != "loss",
                                patience=(cfg.early_stopping_patience * (4 if cached else 1))
                                if cfg.early_stopping_patience else None, select_best=cfg.select_best,
                                precision="fp32" if cached else cfg.precision))
    if loop.world_size > 1:
        raise ConfigError("--tasks: multi-task training runs in one process; launch it without accelerate/torchrun")
    from transferops.finetune.batching import BucketBatchSampler, make_collate, tokenize
    from transferops.finetune.trainer import SamplerSource

    def embed(part: list[str], desc: str) -> torch.Tensor:
        return torch.from_numpy(forward(net, tok, part, max_length=cfg.max_length, batch_size=cfg.eval_batch_size,
                                        output="embedding", desc=desc)[1])

    feats_va = None
    if cached:
        feats_tr, feats_va = embed(tr_t, "encode train (frozen)"), embed(va_t, "encode validation (frozen)")
        tensors = [feats_tr] + [torch.as_tensor(a) for a in y_tr]
        dataset: Any = torch.utils.data.TensorDataset(*tensors)
        sampler = BucketBatchSampler(np.ones(len(tr), dtype=int), cfg.batch_size, seed=cfg.seed, bucket=False)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
    else:
        enc = tokenize(tok, tr_t, cfg.max_length)
        base_collate = make_collate(tok, False)

        class _Rows(torch.utils.data.Dataset):  # type: ignore[type-arg]
            def __len__(self) -> int:
                return len(tr_t)

            def __getitem__(self, i: int) -> dict[str, Any]:
                return {**{k: v[i] for k, v in enc.items()}, "_i": i}

        def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
            idx = [it.pop("_i") for it in items]
            b = base_collate(items)
            for j, arr in enumerate(y_tr):
                b[f"y{j // 2}" if j % 2 == 0 else f"m{j // 2}"] = torch.as_tensor(arr[idx])
            return b

        lengths = np.asarray([len(x) for x in enc["input_ids"]])
        sampler = BucketBatchSampler(lengths, cfg.batch_size, seed=cfg.seed, bucket=cfg.bucket_by_length)
        loader = torch.utils.data.DataLoader(_Rows(), batch_sampler=sampler, collate_fn=collate)

    def flat_logits(part: list[str], feats: torch.Tensor | None = None) -> np.ndarray:
        if feats is not None:
            net.eval()
            with torch.inference_mode():
                return net.head_logits(feats).float().numpy()  # type: ignore[no-any-return]
        return forward(net, tok, part, max_length=cfg.max_length, batch_size=cfg.eval_batch_size,
                       output="logits", desc=None)[0]

    objective = MultiTaskLoss(blocks, cached=cached)
    from transferops.finetune.trainer import plan_validation

    every, why = plan_validation(None if cached else cfg.eval_every, n_train=len(tr_t), n_val=len(va_t),
                                 steps_per_epoch=math.ceil(len(sampler) / cfg.grad_accum))
    loop.config = dataclasses.replace(loop.config, eval_every=every, eval_reason=why)

    def evaluate(_: Any) -> dict[str, float]:
        z = flat_logits(va_t, feats_va)
        res: dict[str, float] = {}
        scores = []
        for j, (t, (sl, ml, _w)) in enumerate(zip(md.tasks, blocks, strict=True)):
            y, m = y_va[2 * j], y_va[2 * j + 1]
            met = _task_metrics(t, y, m, _proba(z[:, sl], ml))
            if met:
                key = cfg.metric if cfg.metric in met else "macro_f1"
                res[f"{t.spec.name}_{key}"] = float(met[key])
                scores.append(float(met[key]))
        zt = torch.as_tensor(z)
        with torch.no_grad():
            ys = [torch.as_tensor(a) for a in y_va]
            res["loss"] = float(MultiTaskLoss(blocks, cached=True).loss(lambda f: f, (zt, *ys))[0])
        mean = float(np.mean(scores)) if scores else float("nan")
        for k in ("macro_f1", "accuracy", "micro_f1", "weighted_f1"):
            res.setdefault(k, mean)
        return res

    train_module = None
    if cached:
        class _Heads(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, f: torch.Tensor) -> torch.Tensor:
                return self.net.head_logits(f)  # type: ignore[no-any-return]

        train_module = _Heads()
    result = loop.run(net, objective, SamplerSource(loader, sampler), evaluate=evaluate, train_module=train_module)
    net.eval()

    # ---- per task: decision rule on validation, metrics on validation and test --------------------
    from transferops.decision import tune_offsets

    z_va = flat_logits(va_t, feats_va)
    z_te = flat_logits(te_t)
    entries = []
    for j, (t, (sl, ml, _w)) in enumerate(zip(md.tasks, blocks, strict=True)):
        yv, mv = y_va[2 * j], y_va[2 * j + 1]
        yt, mt = y_te[2 * j], y_te[2 * j + 1]
        pv, pt = _proba(z_va[:, sl], ml), _proba(z_te[:, sl], ml)
        decision = None
        if not ml and len(t.labels) > 2 and cfg.tune_decision and mv.any():
            decision = tune_offsets(np.log(np.clip(pv[mv], 1e-300, 1.0)), yv[mv], t.labels, metric=cfg.metric)
            if decision:
                say(f"task {t.spec.name}: per-class logit offsets raise validation {decision['metric']} "
                    f"{decision['validation_before']:.4f} → {decision['validation_after']:.4f}")
        entry = t.to_entry()
        entry.update(decision=decision, thresholds={lbl: 0.5 for lbl in t.labels} if ml else None,
                     metrics={"validation": _task_metrics(t, yv, mv, pv, decision),
                              "test": _task_metrics(t, yt, mt, pt, decision)},
                     label_counts={lbl: int(sum(1 for v in t.values if v is not None and
                                                (lbl in v if isinstance(v, list) else v == lbl)))
                                   for lbl in t.labels},
                     rows_labelled=int(t.present.sum()))
        if cfg.baseline and mt.any():
            from transferops.baselines import baseline_report
            from transferops.modality import get_modality

            mtr = y_tr[2 * j + 1]
            ytr = y_tr[2 * j][mtr].astype(np.int64)
            if ml or len(np.unique(ytr)) >= 2:
                say(f"task {t.spec.name}: fitting the tuned TF-IDF + logistic-regression baseline ...")
                trt = [tr_t[i] for i in np.flatnonzero(mtr)]
                tet = [te_t[i] for i in np.flatnonzero(mt)]
                fb = get_modality("text").baseline(multilabel=ml, seed=cfg.seed, tune=True).fit(
                    trt, ytr, n_classes=len(t.labels))
                entry["baseline"] = baseline_report(trt, ytr, tet, yt[mt].astype(np.int64), n_classes=len(t.labels),
                                                    multilabel=ml, seed=cfg.seed, fitted=fb)
        entries.append(entry)

    mdir = out / MODEL_DIR
    if mdir.exists():
        shutil.rmtree(mdir)
    save_net(net, mdir)
    tok.save_pretrained(str(mdir))

    def mean_of(part: str, key: str) -> float:
        vals = [e["metrics"][part][key] for e in entries if key in e["metrics"][part]]
        return float(np.mean(vals)) if vals else float("nan")

    flat = [qualify(t.spec.name, lbl) for t in md.tasks for lbl in t.labels]
    timings = {"train_seconds": round(result.train_seconds, 2),
               "examples_per_second": round(result.examples_per_second, 2),
               "total_seconds": round(time.perf_counter() - t_start, 2)}
    manifest: dict[str, Any] = {
        "kind": KIND,
        "name": name or out.name,
        "base": {"name": ckpt.name, "path": str(ckpt.path), "source": ckpt.source, "sha256": ckpt.sha256(),
                 "params": total},
        # the flat view (artifacts/multitask.py): every task's qualified labels, decided as one label set
        "task": "multilabel",
        "labels": flat,
        "tasks": entries,
        "strategy": {"name": strategy, "reason": reason, "trainable_params": trainable, "total_params": total,
                     "frozen_layers": frozen, "loss": "sum over tasks of weight * masked mean CE/BCE"},
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "data": {"source": md.source, "fingerprint": sha256_texts(texts), "rows": md.rows,
                 "rows_used": len(texts), "dropped_unlabeled": md.dropped_unlabeled, "columns": {"text": text_column,
                                                          "tasks": {t.spec.name: t.spec.column for t in md.tasks}}},
        "splits": {"method": split_cfg.method, "seed": split_cfg.seed,
                   "stratified_on": stratify_column or md.tasks[0].spec.column,
                   "sizes": {"train": len(tr), "validation": len(va), "test": len(te)}, "test_sha256": test_sha,
                   "files": files},
        "leakage": leak.to_dict(),
        "metrics": {part: {"accuracy": mean_of(part, "accuracy"), "macro_f1": mean_of(part, "macro_f1"),
                           "note": "unweighted mean over tasks; per-task metrics are under tasks[].metrics"}
                    for part in ("validation", "test")},
        "history": result.history,
        "training": result.to_dict(),
        "timings": timings,
        "versions": package_versions(),
        "warnings": warnings_,
        "evaluations": [],
    }
    write_manifest(out, manifest)
    run_post_train(out, cfg)  # the monitoring reference profiles (flat view + one per task)
    return MultiTaskResult(out, read_manifest(out), warnings_)


__all__ = ["MULTITASK_KEYS", "MULTITASK_STRATEGIES", "MultiTaskData", "MultiTaskLoss", "MultiTaskResult", "TaskSpec",
           "load_multitask", "parse_task_weights", "parse_tasks", "split_config_keys", "train_multitask"]


# --------------------------------------------------------------------------- CLI


def multitask_args(args: Any) -> tuple[Any, Any] | None:
    """``(tasks, task_weights)`` from ``--tasks``/``--task-weights`` or the ``--config`` YAML (flags win);
    ``None`` for single-task training."""
    import yaml

    from_yaml: dict[str, Any] = {}
    path = getattr(args, "config", None)
    if path and Path(path).exists():
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if isinstance(loaded, dict):
            from_yaml = split_config_keys(loaded)[1]
    tasks = getattr(args, "tasks", None) or from_yaml.get("tasks")
    weights = getattr(args, "task_weights", None) or from_yaml.get("task_weights")
    if tasks is None:
        if weights is not None:
            raise ConfigError("task_weights: given without tasks; add --tasks name=column,... (or tasks: in --config)")
        return None
    return tasks, weights


def run_train_cli(args: Any, cfg: Any, split: Any, tasks: Any, weights: Any) -> int:
    """``transferops train --tasks ...``: refuses the single-task-only flags, trains, prints the summary."""
    from transferops._util import dumps

    for flag, attr in (("--seeds", "seeds"), ("--init-from", "init_from"), ("--search", "search"),
                       ("--refit", "refit"), ("--label-columns", "label_columns"), ("--resume", "resume"),
                       ("--validation-data", "validation_data"), ("--test-data", "test_data"),
                       ("--time-column", "time_column"), ("--group-column", "group_column")):
        if getattr(args, attr, None):
            raise ConfigError(f"{flag}: not available with --tasks (multi-task training); drop one of them")
    res = train_multitask(args.data, out=args.out, tasks=tasks, task_weights=weights, text_column=args.text_column,
                          label_sep=args.label_sep, config=cfg, split=split, encoding=args.encoding)
    print(dumps(res.manifest) if args.json else res.summary())
    return 0
