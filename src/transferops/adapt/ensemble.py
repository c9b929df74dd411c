"""Seed ensembles: N fine-tuned members that share a label map, averaged in probability space.

Layout of an ensemble folder::

    transferops.json   manifest: kind "ensemble", members [{path, name, seed, ...}], labels, task,
                       metrics of the ensemble and of each member, splits of the (shared) test set
    members/<name>/    member artifacts — trained here by :func:`train_seeds`, or copied by
                       :func:`build_ensemble` (``copy=False`` stores relative paths instead)
    data/              the shared validation/test splits (copied from the first member)

``transferops.load(path)`` returns an :class:`EnsembleModel` for such a folder; it answers the same
calls as a single model, so evaluate and predict treat the ensemble as one model.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import transferops
from transferops._progress import say
from transferops._util import package_versions, sha256_file
from transferops.adapt._artifact import copy_splits
from transferops.artifacts.classifier import ClassifierBase
from transferops.artifacts.kinds import load_folder, register_kind
from transferops.artifacts.manifest import Manifest, read_manifest, write_manifest
from transferops.constants import (
    DATA_DIR,
    LABEL_COL,
    MANIFEST_NAME,
    MEMBERS_DIR,
    TEST_SPLIT,
    TEXT_COL,
    VALIDATION_SPLIT,
)
from transferops.errors import ArtifactError, ConfigError
from transferops.metrics import classification_metrics, encode_labels
from transferops.modality.text import check_texts

#: Probabilities are clipped before the log so that log(mean proba) stays finite.
_EPS = 1e-7


class EnsembleModel(ClassifierBase):
    """Average of the members' (calibrated) class probabilities.

    >>> ens = transferops.load("runs/news-5seeds")          # doctest: +SKIP
    >>> ens.predict_proba(["Shares rose"]).shape             # doctest: +SKIP
    (1, 5)
    >>> [m.name for m in ens.members]                        # doctest: +SKIP
    ['seed-0', 'seed-1', 'seed-2', 'seed-3', 'seed-4']

    ``logits`` are the log of the mean probability (logit of it for multi-label), so
    ``proba_from_logits(logits(x))`` gives back the mean, and a temperature fitted later on the
    ensemble (``manifest["calibration"]``) applies on top of it.
    """

    no_torch_reason = ("{path} is an ensemble of {self.n_members} models: there is no single torch model; "
                       "export or inspect its members (EnsembleModel.members)")
    not_exported_reason = ("is an ensemble; export its members one by one (or, for a model search's "
                           "ensemble, train with --search-ensemble 0 to save one model)")

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None) -> None:
        super().__init__(path, device=device, threads=threads)
        if self.manifest.kind != "ensemble":
            raise ArtifactError(f"{self.path}: not an ensemble (kind is {self.manifest.kind!r}); "
                                "load it with transferops.load")
        self._members: list[Any] | None = None

    @property
    def n_members(self) -> int:
        return len(self.manifest.members)

    @property
    def members(self) -> list[Any]:
        if self._members is None:
            # any kind: a seed ensemble's members are fine-tuned models; a model search's are whichever
            # candidates it kept (baseline, probe, stack, fine-tuned)
            self._members = [load_folder(p, device=self._device, threads=self._threads)
                             for p in member_paths(self.path, self.manifest)]
            for m in self._members:
                _check_same_labels(self.labels, self.task, m)
        return self._members

    @property
    def tokenizer(self) -> Any:
        return self.members[0].tokenizer

    def member_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Shape (members, n, labels): each member's calibrated probabilities."""
        texts = check_texts(texts)
        return np.stack([m.predict_proba(texts, batch_size=batch_size) for m in self.members])

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64, calibrated: bool = True
                      ) -> np.ndarray:
        mean = self.member_proba(texts, batch_size=batch_size).mean(axis=0)
        if not calibrated or self.temperature == 1.0:
            return mean  # type: ignore[no-any-return]
        return self.proba_from_logits(_to_logits(mean, self.multilabel), calibrated=True)

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return _to_logits(self.member_proba(texts, batch_size=batch_size).mean(axis=0), self.multilabel)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embeddings of the first member (members share the base checkpoint in a seed ensemble; a
        search's ensemble lists its validation-best candidate first)."""
        return self.members[0].embed(texts, batch_size=batch_size)

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"members": [m.get("name") for m in self.manifest.members]}

    def infer(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Logits of the mean and the first member's embedding, one forward pass per member (the server's
        call: ``logits`` + ``embed`` would run the first member twice)."""
        texts = check_texts(texts)
        outs = [m.infer(texts, batch_size=batch_size) for m in self.members]
        mean = np.mean([m.proba_from_logits(lg) for m, (lg, _) in zip(self.members, outs, strict=True)], axis=0)
        return _to_logits(mean, self.multilabel), outs[0][1]

    def __repr__(self) -> str:
        return (f"EnsembleModel(path={str(self.path)!r}, task={self.task!r}, labels={len(self.labels)}, "
                f"members={self.n_members})")


def _to_logits(p: np.ndarray, multilabel: bool) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS if multilabel else 1.0)
    return np.log(p / (1.0 - p)) if multilabel else np.log(p)


def member_paths(path: str | Path, manifest: dict[str, Any]) -> list[Path]:
    """Member folders, relative paths resolved against the ensemble folder."""
    out = []
    for m in Manifest(manifest).members:
        p = Path(m["path"])
        p = p if p.is_absolute() else Path(path) / p
        if not (p / MANIFEST_NAME).exists():
            raise ArtifactError(f"{path}: ensemble member {m.get('name', p.name)!r} not found at {p}; "
                                "rebuild the ensemble (`transferops ensemble --members ...`)")
        out.append(p)
    return out


def _check_same_labels(labels: list[str], task: str, member: Any) -> None:
    if member.labels != labels or member.task != task:
        raise ConfigError(f"members: {member.path} has labels {member.labels} ({member.task}) but the "
                          f"ensemble has {labels} ({task}); members must share one label map — retrain it on "
                          "the same labels")


def build_ensemble(members: Sequence[str | Path], out: str | Path, *, copy: bool = True,
                   name: str | None = None, evaluate: bool = True) -> Path:
    """Write an ensemble folder from existing trained runs.

    >>> build_ensemble(["runs/a", "runs/b", "runs/c"], "runs/ens")     # doctest: +SKIP

    ``copy=True`` copies each member under ``members/`` (a self-contained folder you can ship);
    ``copy=False`` stores paths relative to ``out`` (no copies; moving the folders breaks it).
    Members must share labels and task (error otherwise); members evaluated on different test
    splits are an error, because the ensemble's test metrics would mix unseen and seen texts.
    """
    out = Path(out)
    paths = [Path(p) for p in members]
    if len(paths) < 2:
        raise ConfigError(f"members: an ensemble needs at least 2 trained runs, got {len(paths)}")
    if (out / MANIFEST_NAME).exists():
        raise ConfigError(f"out: {out} already holds a model; choose another --out, or delete it")
    manifests = [read_manifest(p) for p in paths]
    for p, m in zip(paths, manifests, strict=True):
        if m.members:
            raise ConfigError(f"members: {p} is itself an ensemble; list its members instead")
    first = manifests[0]
    for p, m in zip(paths[1:], manifests[1:], strict=True):
        if m.labels != first.labels or m.task != first.task:
            raise ConfigError(f"members: {p} has labels {m.labels} ({m.task}) but {paths[0]} has "
                              f"{first.labels} ({first.task}); members must share one label map")
        t0, t1 = first.test_sha256, m.test_sha256
        if t0 and t1 and t0 != t1:
            raise ConfigError(f"members: {p} was tested on a different test split than {paths[0]}; train all "
                              "members with the same split seed (train_seeds keeps it fixed)")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    names: set[str] = set()
    for p, m in zip(paths, manifests, strict=True):
        mname = m.name or p.name
        while mname in names:
            mname += "_"
        names.add(mname)
        inside = out / MEMBERS_DIR / mname
        if copy and p.resolve() != inside.resolve():
            shutil.copytree(p, inside, ignore=shutil.ignore_patterns("training_state*"))
            rel = Path(MEMBERS_DIR) / mname
        elif p.resolve() == inside.resolve():
            rel = Path(MEMBERS_DIR) / mname
        else:
            rel = Path(os.path.relpath(p.resolve(), out.resolve()))
        base = m.base
        entries.append({"path": rel.as_posix(), "name": mname, "seed": m.get("seed"),
                        "base": base.name if base else None, "strategy": m.strategy_name or None,
                        "metrics": {"test": m.metrics.get("test", {})}})
    copy_splits(paths[0], out)
    manifest: dict[str, Any] = {
        "kind": "ensemble",
        "name": name or out.name,
        "combine": "mean_proba",
        "members": entries,
        "base": first.get("base", {}),
        "task": first.task,
        "labels": first.labels,
        "strategy": {"name": "ensemble", "members": len(entries)},
        # Loaders read max_length from here; members keep their own config.
        "config": {"max_length": first.max_length},
        "data": first.get("data", {}),
        "splits": _splits_entry(first, out),
        "metrics": {},
        "versions": package_versions(),
        "warnings": [],
        "evaluations": [],
    }
    write_manifest(out, manifest)
    if evaluate:
        _evaluate(out)
    return out


def _splits_entry(first: Manifest, out: Path) -> dict[str, Any]:
    s = first.splits
    if (out / DATA_DIR / TEST_SPLIT).exists():
        s["test_sha256"] = sha256_file(out / DATA_DIR / TEST_SPLIT)
    return s


def _evaluate(out: Path) -> dict[str, Any]:
    """Ensemble and per-member metrics on the shared validation and test splits."""

    ens = EnsembleModel(out)
    metrics: dict[str, Any] = {}
    member_metrics: dict[str, dict[str, Any]] = {m["name"]: {} for m in ens.manifest.members}
    for split, fname in (("validation", VALIDATION_SPLIT), ("test", TEST_SPLIT)):
        f = out / DATA_DIR / fname
        if not f.exists():
            continue
        df = ens.split(split)
        texts = df[TEXT_COL].astype(str).tolist()
        y_raw = [list(v) for v in df[LABEL_COL]] if ens.multilabel else df[LABEL_COL].tolist()
        y = encode_labels(y_raw, ens.labels, ens.multilabel)
        per = ens.member_proba(texts)
        metrics[split] = classification_metrics(y, per.mean(axis=0), multilabel=ens.multilabel)
        for entry, p in zip(ens.manifest.members, per, strict=True):
            member_metrics[entry["name"]][split] = classification_metrics(y, p, multilabel=ens.multilabel)
    if "test" in metrics:
        f1s = [mm["test"]["macro_f1"] for mm in member_metrics.values() if "test" in mm]
        metrics["members_test_macro_f1"] = {"mean": float(np.mean(f1s)), "min": float(np.min(f1s)),
                                            "max": float(np.max(f1s))}
        say(f"ensemble of {len(f1s)}: test macro-F1 {metrics['test']['macro_f1']:.4f} "
            f"(members {np.mean(f1s):.4f} mean, {np.min(f1s):.4f}-{np.max(f1s):.4f})")
    m = read_manifest(out)
    m["metrics"] = metrics
    for entry in m["members"]:
        entry["metrics"] = member_metrics[entry["name"]]
    write_manifest(out, m)
    return metrics


def train_seeds(data: Any, out: str | Path, *, seeds: int | Sequence[int] = (0, 1, 2, 3, 4),
                split: Any = None, resume: bool = False, **train_kwargs: Any) -> Path:
    """Train one member per seed on the SAME split, then write the ensemble folder.

    >>> train_seeds("news.csv", "runs/news-5", seeds=5, strategy="lora")   # doctest: +SKIP

    ``seeds`` is a list of model seeds, or a count N meaning seeds 0..N-1.

    ``TrainConfig.seed`` drives both the split and the model initialisation, so the split is pinned
    with ``split=SplitConfig(seed=...)`` (default: the ``seed`` keyword, else 0) and only the
    model seed varies. Members go to ``out/members/seed-<s>``; with ``resume=True`` finished
    members are kept and only the missing ones train.
    """
    from transferops.data import SplitConfig

    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ConfigError(f"seeds: an ensemble needs at least 2 seeds, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: {seeds} repeats a seed; each member needs its own")
    out = Path(out)
    if (out / MANIFEST_NAME).exists() and not resume:
        raise ConfigError(f"out: {out} already holds a model; choose another --out, or delete it")
    split_seed = int(train_kwargs.pop("seed", 0) or 0)
    if split is None:
        method = ("temporal" if train_kwargs.get("time_column") else
                  "group" if train_kwargs.get("group_column") else "stratified")
        split = SplitConfig(method=method, seed=split_seed)  # type: ignore[arg-type]
    paths = []
    for i, s in enumerate(seeds):
        member = out / MEMBERS_DIR / f"seed-{s}"
        paths.append(member)
        if (member / MANIFEST_NAME).exists():
            say(f"member {i + 1}/{len(seeds)} (seed {s}) already trained; keeping it")
            continue
        say(f"training member {i + 1}/{len(seeds)} (seed {s}) ...")
        transferops.train(data, out=member, split=split, seed=s, resume=resume, name=f"seed-{s}",
                          **train_kwargs)
    if (out / MANIFEST_NAME).exists():
        (out / MANIFEST_NAME).unlink()
    return build_ensemble(paths, out, copy=False)


register_kind("ensemble", EnsembleModel)

__all__ = ["EnsembleModel", "build_ensemble", "member_paths", "train_seeds"]
