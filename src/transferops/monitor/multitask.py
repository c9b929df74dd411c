"""Monitoring a multi-task model per task.

The server logs a multi-task prediction as one record (:mod:`transferops.artifacts.multitask`'s flat view):
``label`` is the list of decided ``task:label`` names, ``probabilities`` holds every task's probabilities
keyed ``task:label``, ``confidence`` is the least confident task's. So the model's ordinary reference profile
and ``transferops monitor`` watch the joint decision as they watch a multi-label model; this module adds the
same drift report **per task**:

* a post-train hook stores one reference profile per task (``reference_profile.task-<name>.json``), built by
  :func:`~transferops.monitor.profile.build_profile` from the task's view of the model on the validation rows
  that carry its label (the same forward pass and the task's own decision rule);
* :func:`monitor_tasks` reads a window of the log once, rewrites each row into the task's terms (its decided
  label, its confidence recomputed from the logged probabilities with the task's rule) and runs the usual
  :class:`~transferops.monitor.drift.DriftMonitor` against that task's profile. Feedback accuracy is left to
  the flat report (feedback labels are not per task).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferops._util import read_json, write_json
from transferops.hooks import register_post_train
from transferops.monitor.profile import ReferenceProfile, build_profile

KIND = "multitask"


def task_profile_file(name: str) -> str:
    return f"reference_profile.task-{name}.json"


def build_task_profiles(artifact_dir: str | Path, *, split: str = "validation", seed: int = 0
                        ) -> dict[str, ReferenceProfile]:
    """One reference profile per task of a multi-task artifact, saved beside the model's own."""
    from transferops.artifacts.multitask import MultiTaskModel
    from transferops.constants import LABEL_COL, TEXT_COL

    model = MultiTaskModel(artifact_dir)
    out = {}
    for name in model.task_names:
        view = model.task_view(name)
        df = view.split(split)
        if not len(df):
            continue
        prof = build_profile(view, list(df[TEXT_COL]), list(df[LABEL_COL]), seed=seed).replace(split=split)
        write_json(Path(artifact_dir) / task_profile_file(name), prof.to_dict())
        out[name] = prof
    return out


def load_task_profile(artifact_dir: str | Path, name: str) -> ReferenceProfile:
    from transferops.errors import ArtifactError

    f = Path(artifact_dir) / task_profile_file(name)
    if not f.exists():
        raise ArtifactError(f"{artifact_dir}: no {f.name}; build it with transferops.monitor.multitask."
                            f"build_task_profiles('{artifact_dir}')")
    return ReferenceProfile.from_dict(read_json(f))


@register_post_train("task_profiles", order=25)
def post_train(artifact_dir: Path, config: Any) -> dict[str, Any] | None:
    """Training hook: per-task reference profiles for a multi-task artifact (other kinds: nothing)."""
    import logging

    from transferops.constants import MANIFEST_NAME

    mf = Path(artifact_dir) / MANIFEST_NAME
    if not mf.exists() or (read_json(mf) or {}).get("kind") != KIND:
        return None  # not a multi-task folder: nothing to do (a missing manifest is the other hooks' to report)
    try:
        profiles = build_task_profiles(artifact_dir, seed=int(getattr(config, "seed", 0) or 0))
    except Exception as exc:  # the model is fine without them; they can be built later
        logging.getLogger(__name__).warning("no per-task reference profiles for %s: %s", artifact_dir, exc)
        return None
    return {"task_profiles": {k: task_profile_file(k) for k in profiles}}


def task_window(frame: pd.DataFrame, model: Any, name: str) -> pd.DataFrame:
    """Logged rows (with ``probabilities``) in task ``name``'s terms: its label and its confidence."""
    from transferops.artifacts.multitask import SEP

    head = next(h for h in model.heads if h.name == name)
    prefix = f"{name}{SEP}"
    out = frame.drop(columns=["probabilities"], errors="ignore").copy()
    probs = [p if isinstance(p, dict) else {} for p in frame["probabilities"]]
    keys = [prefix + lbl for lbl in head.labels]
    have = np.asarray([all(k in p for k in keys) for p in probs])
    mat = np.asarray([[float(p.get(k, np.nan)) for k in keys] for p in probs], dtype=np.float64).reshape(
        len(probs), len(keys))
    rule = head.rule
    conf = np.full(len(probs), np.nan)
    labels: list[Any] = [None] * len(probs)
    if have.any():
        decided = rule.decide(mat[have])
        conf[have] = rule.confidence(mat[have], decided)
        for i, lab in zip(np.flatnonzero(have), rule.names(decided), strict=True):
            labels[int(i)] = json.dumps(lab) if head.multilabel else lab  # as the store holds multi-label
    out["label"] = labels
    out["confidence"] = conf
    return out[have].reset_index(drop=True)


def monitor_tasks(model: str | Path, *, db: Any, window: str | None = None, last: int | None = None,
                  config: Any = None, model_name: str | None = None, now: float | None = None) -> dict[str, Any]:
    """``{task: DriftReport}`` for a multi-task model's logged predictions (one read of the log)."""
    from transferops.artifacts.multitask import MultiTaskModel
    from transferops.errors import ConfigError
    from transferops.monitor.api import resolve_model_path, window_bounds
    from transferops.monitor.drift import DRIFT_COLUMNS, DriftConfig, DriftMonitor, read_sketches
    from transferops.monitor.store import Store

    store = db if isinstance(db, Store) else Store(db)
    path = resolve_model_path(model, store)
    from transferops.artifacts.manifest import read_manifest

    if read_manifest(path).kind != KIND:
        raise ConfigError(f"--per-task: {path} is not a multi-task model (train one with --tasks)")
    mt = MultiTaskModel(path)
    cfg = config or DriftConfig()
    since, until = window_bounds(window, now)
    frame = store.read_predictions(columns=[*DRIFT_COLUMNS, "probabilities"], since=since, until=until, last=last,
                                   model=model_name)
    if last is not None and len(frame):
        since = float(frame["ts"].min())
    sketches = read_sketches(store, since=since, until=until, last=last, sample=cfg.embedding_sample,
                             model=model_name) if cfg.embedding else None
    reports = {}
    for name in mt.task_names:
        mon = DriftMonitor(cfg).fit(load_task_profile(path, name))
        reports[name] = mon.calculate(task_window(frame, mt, name), sketches=sketches)
    return reports


__all__ = ["build_task_profiles", "load_task_profile", "monitor_tasks", "post_train", "task_profile_file",
           "task_window"]
