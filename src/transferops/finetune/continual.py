"""Add a class, keep the old ones: continue a trained run on new data (``train --init-from runs/old``).

The old run's model is loaded and its classification head is extended to the union of the old and the
new labels (old labels keep their index and their rows of the head; rows for new labels are freshly
initialised). Training runs on the shared loop (:mod:`transferops.finetune.loop`) on

* the new data's training split, plus
* an **experience-replay** sample of the old run's stored training split (``replay``, a fraction per
  old class, default :data:`DEFAULT_REPLAY`), and optionally
* an **L2-to-old-weights** penalty ``l2 · Σ (θ − θ_old)²`` over the parameters the old model had,
  added to the classification loss (:class:`L2ToOld`, an objective wrapper).

The old run's validation and test splits are added to the new ones, so model selection and the decision
rule see every class and the test data holds both old and new classes. :func:`forgetting_report` scores
the old model and the new model there: macro-F1 over the old classes (on the old-class rows) and over the
new classes, and the **forgetting** (old-class macro-F1 of the old model minus that of the new model), gated
by ``max_forgetting``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferops._validation import Constraints, Interval, validate_params
from transferops.constants import DATA_DIR, MANIFEST_NAME, MODEL_DIR, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT
from transferops.errors import ConfigError, GateFailedError

#: Share of each old class's training rows replayed by default. Decision: a quarter keeps every old class
#: represented (at least one row each) at a quarter of a full retrain's cost; raise it when forgetting
#: shows, set 0 to train on the new data alone.
DEFAULT_REPLAY = 0.25


@dataclass
class ContinualConfig:
    """How a run continues from an old one (``train --init-from``)."""

    init_from: str
    replay: float = DEFAULT_REPLAY
    l2: float = 0.0
    max_forgetting: float | None = None

    _parameter_constraints: ClassVar[Constraints] = {
        "replay": Interval(Real, 0.0, 1.0),
        "l2": Interval(Real, 0.0, None),
        "max_forgetting": [Interval(Real, 0.0, 1.0), None],
    }

    def __post_init__(self) -> None:
        self.init_from = str(self.init_from)
        validate_params(self, self._parameter_constraints, prefix="")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OldRun:
    """What the new run takes from the old one."""

    path: Path
    manifest: Any
    labels: list[str]
    label_column: str | None

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR


def load_old_run(init_from: str | Path, *, label_column: str | None) -> OldRun:
    """Validate ``--init-from``: a trained single-label full-model run whose label column matches."""
    from transferops.artifacts.manifest import read_manifest

    p = Path(init_from)
    if not (p / MANIFEST_NAME).exists():
        raise ConfigError(f"init_from: {p} is not a trained run folder (no {MANIFEST_NAME}); pass the --out "
                          "folder of an earlier `transferops train`")
    m = read_manifest(p)
    if m.kind != "model":
        raise ConfigError(f"init_from: {p} holds a {m.kind!r}, not a fine-tuned model; only a fine-tuned "
                          "model's head can be extended")
    if m.task == "multilabel":
        raise ConfigError(f"init_from: {p} is a multi-label model; adding classes supports single-label "
                          "(binary / multi-class) models only — train a new multi-label model instead")
    if (m.strategy_name or "") == "lora" or not (p / MODEL_DIR / "config.json").exists() or (
            p / MODEL_DIR / "adapter_config.json").exists():
        raise ConfigError(f"init_from: {p} saved an adapter, not a full model; continue from a run trained "
                          "with --strategy full, freeze or head")
    for split in (TRAIN_SPLIT, VALIDATION_SPLIT, TEST_SPLIT):
        if not (p / DATA_DIR / split).exists():
            raise ConfigError(f"init_from: {p}/{DATA_DIR}/{split} is missing; the old run's stored splits are "
                              "needed for replay and for the forgetting report")
    old_col = (m.get("data", {}).get("columns") or {}).get("label")
    if label_column != old_col:
        raise ConfigError(f"label_column: the old run {p} learned from column {old_col!r}, this data is read "
                          f"from {label_column!r}; pass --label-column {old_col} (the same labels must mean "
                          "the same thing)")
    return OldRun(p, m, list(m.labels), old_col)


def read_old_split(old: OldRun, split: str) -> Any:
    import pandas as pd

    return pd.read_parquet(old.path / DATA_DIR / split)


def replay_sample(frame: Any, fraction: float, seed: int) -> Any:
    """``fraction`` of each class's rows (at least one per class when ``fraction`` > 0), seeded."""
    import pandas as pd

    from transferops.constants import LABEL_COL

    if fraction <= 0 or len(frame) == 0:
        return frame.iloc[:0]
    rng = np.random.default_rng(seed)
    parts = []
    for _, g in frame.groupby(LABEL_COL, sort=True):
        k = max(1, int(round(fraction * len(g))))
        parts.append(g.iloc[np.sort(rng.choice(len(g), size=min(k, len(g)), replace=False))])
    return pd.concat(parts, ignore_index=True)


def extend_classifier(old_dir: str | Path, labels: list[str], task: str) -> Any:
    """The old model with its head extended to ``labels`` (old labels first, in their old order): every
    old weight is copied; the head's rows for new labels keep their fresh initialisation."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from transferops.modeling import quiet_transformers

    with quiet_transformers():
        old = AutoModelForSequenceClassification.from_pretrained(str(old_dir), local_files_only=True)
        old_labels = [old.config.id2label[i] for i in range(old.config.num_labels)]
        if labels[:len(old_labels)] != old_labels:
            raise ConfigError("init_from: the new label list must start with the old model's labels in order")
        cfg = AutoConfig.from_pretrained(str(old_dir), local_files_only=True)
        cfg.num_labels = len(labels)
        cfg.id2label = dict(enumerate(labels))
        cfg.label2id = {lbl: i for i, lbl in enumerate(labels)}
        cfg.problem_type = "single_label_classification"
        new = AutoModelForSequenceClassification.from_config(cfg)
    old_sd = old.state_dict()
    n_old = len(old_labels)
    with torch.no_grad():
        for name, p in new.state_dict().items():
            q = old_sd.get(name)
            if q is None:
                continue
            if q.shape == p.shape:
                p.copy_(q)
            elif q.dim() >= 1 and q.shape[0] == n_old and q.shape[1:] == p.shape[1:]:
                p[:n_old].copy_(q)  # the head's output rows: old labels keep theirs
    return new


class L2ToOld:
    """An objective wrapper: the inner loss plus ``l2 · Σ (θ − θ_old)²`` over the trainable parameters the
    old model had (the head's old rows only; new rows are free)."""

    def __init__(self, inner: Any, model: Any, l2: float) -> None:
        self.inner = inner
        self.l2 = float(l2)
        self.anchors = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        self.old_rows: dict[str, int] = {}

    def restrict(self, name: str, rows: int) -> None:
        self.old_rows[name] = rows

    def loss(self, module: Any, batch: Any) -> tuple[Any, int]:
        value, rows = self.inner.loss(module, batch)
        if self.l2 <= 0:
            return value, rows
        pen = value.new_zeros(())
        for name, p in _unwrap(module).named_parameters():
            a = self.anchors.get(name)
            if a is None or not p.requires_grad:
                continue
            k = self.old_rows.get(name)
            d = (p[:k] - a[:k].to(p.device)) if k is not None else (p - a.to(p.device))
            pen = pen + (d.float() ** 2).sum()
        return value + self.l2 * pen, rows

    def state_dict(self) -> dict[str, Any]:
        sd = getattr(self.inner, "state_dict", None)
        return sd() if callable(sd) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        f = getattr(self.inner, "load_state_dict", None)
        if callable(f):
            f(state)


def _unwrap(module: Any) -> Any:
    inner = getattr(module, "module", module)  # DDP
    return getattr(inner, "model", inner) if type(inner).__name__ == "_HeadOnly" else inner


def wrap_l2(objective: Any, model: Any, l2: float, n_old: int) -> L2ToOld:
    """:class:`L2ToOld` around ``objective``; the head's output rows beyond the old ``n_old`` are free."""
    w = L2ToOld(objective, model, l2)
    n_new = int(model.config.num_labels)
    for name, p in model.named_parameters():
        if p.requires_grad and p.dim() >= 1 and p.shape[0] == n_new and n_new != n_old and (
                "classifier" in name or "score" in name):
            w.restrict(name, n_old)
    return w


# ---------------------------------------------------------------------- the report and the gate


def _class_f1(y: np.ndarray, pred: np.ndarray, idx: list[int]) -> float:
    from sklearn.metrics import f1_score

    if not idx:
        return float("nan")
    return float(f1_score(y, pred, labels=idx, average="macro", zero_division=0))


def forgetting_report(old: OldRun, y: np.ndarray, new_pred: np.ndarray, texts: list[str], labels: list[str],
                      max_forgetting: float | None) -> dict[str, Any]:
    """Old-class and new-class macro-F1 of the old and the new model on the same test rows, the forgetting
    (old model's old-class macro-F1 − new model's) and the gate."""
    from transferops.artifacts.model import TransferOpsModel

    index = {lbl: i for i, lbl in enumerate(labels)}
    old_pred = np.asarray([index[str(p)] for p in TransferOpsModel(old.path).predict(texts)])
    old_idx = [index[lbl] for lbl in old.labels]
    new_idx = [i for i in range(len(labels)) if labels[i] not in set(old.labels)]
    present_old = [i for i in old_idx if (y == i).any()]
    # Old-class macro-F1 is scored on the rows whose true class is an old one: there the old model is judged
    # on what it knew (its own test quality), and the new model loses exactly what it forgot — old rows it now
    # gives to another class, the new one included. Over all rows the new-class rows would lower the old
    # model's old-class precision (it must file them under some old class), so a model that forgets could
    # still show "negative forgetting" against it (benchmarks/new_class_bench.py found this on BBC); that
    # number stays in the report as ``old_classes_macro_f1_all_rows``.
    on_old = np.isin(y, old_idx)
    y_old = y[on_old]
    rows = {
        name: {"old_classes_macro_f1": _class_f1(y_old, pred[on_old], present_old),
               "new_classes_macro_f1": _class_f1(y, pred, new_idx),
               "old_classes_macro_f1_all_rows": _class_f1(y, pred, present_old)}
        for name, pred in (("old_model", old_pred), ("new_model", np.asarray(new_pred)))
    }
    forgetting = rows["old_model"]["old_classes_macro_f1"] - rows["new_model"]["old_classes_macro_f1"]
    gate: dict[str, Any] | None = None
    if max_forgetting is not None:
        ok = not math.isnan(forgetting) and forgetting <= max_forgetting
        gate = {"max_forgetting": max_forgetting, "observed": forgetting, "passed": bool(ok)}
    return {"test_rows": int(len(y)), "old_class_rows": int(on_old.sum()), "old_labels": list(old.labels),
            "new_labels": [labels[i] for i in new_idx], **rows, "forgetting": forgetting,
            "forgetting_on": "old-class rows", "gate": gate}


def _fmt(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def format_report(rep: dict[str, Any]) -> str:
    """A fixed-width table: old vs new model, old-class vs new-class macro-F1, then the gate row."""
    head = ("model", "old-class macro-F1", "new-class macro-F1")
    body = [(name.replace("_", " "), _fmt(rep[name]["old_classes_macro_f1"]), _fmt(rep[name]["new_classes_macro_f1"]))
            for name in ("old_model", "new_model")]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(3)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in body)]
    lines.append(f"forgetting (old-class macro-F1, old − new): {_fmt(rep['forgetting'])}")
    g = rep.get("gate")
    if g:
        gh = ("gate", "observed", "required", "status")
        gb = ("forgetting", _fmt(g["observed"]), f"<= {g['max_forgetting']:g}", "PASS" if g["passed"] else "FAIL")
        gw = [max(len(gh[i]), len(gb[i])) for i in range(4)]
        gf = "  ".join(f"{{:<{w}}}" for w in gw)
        lines += [gf.format(*gh), gf.format(*("-" * w for w in gw)), gf.format(*gb)]
    return "\n".join(line.rstrip() for line in lines)


def raise_if_forgot(rep: dict[str, Any], path: str | Path) -> None:
    """:class:`GateFailedError` (CLI exit code 1) when the forgetting gate failed; the model is kept."""
    g = rep.get("gate")
    if g and not g["passed"]:
        raise GateFailedError(f"forgetting {_fmt(g['observed'])} > max_forgetting {g['max_forgetting']:g} "
                              f"(old-class macro-F1 {_fmt(rep['old_model']['old_classes_macro_f1'])} → "
                              f"{_fmt(rep['new_model']['old_classes_macro_f1'])}); the model in {path} was "
                              "saved but should not ship — raise --replay or --l2-to-old, or lower the lr/epochs")


__all__ = ["DEFAULT_REPLAY", "ContinualConfig", "L2ToOld", "OldRun", "extend_classifier", "forgetting_report",
           "format_report", "load_old_run", "raise_if_forgot", "replay_sample", "wrap_l2"]
