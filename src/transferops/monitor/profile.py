"""The reference profile: what "normal" traffic looked like, stored inside the artifact.

Built from the validation split at training time (cheap: one prediction pass and one embedding
pass over at most ``max_texts`` texts). Live windows are compared with it by
:mod:`transferops.monitor.drift`. Histograms use the reference's own quantiles as bin edges
(the usual PSI convention), so every reference bin holds about the same share.

>>> profile = build_profile(transferops.load("runs/news"), texts, labels)     # doctest: +SKIP
>>> save_profile("runs/news", profile)                                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from transferops._util import read_json, utcnow, write_json
from transferops.constants import LABEL_COL, MANIFEST_NAME, REFERENCE_PROFILE, TEXT_COL
from transferops.errors import ArtifactError, DataError
from transferops.hooks import register_post_train

log = logging.getLogger(__name__)

#: Input features profiled and logged per prediction (see ``transferops.deploy.features``).
FEATURES: tuple[str, ...] = ("n_chars", "n_tokens", "unk_rate")
HIGH_CONFIDENCE = 0.9
PROFILE_VERSION = 1


def quantile_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Bin edges at the reference quantiles (+ point-mass bins at min/max; duplicates removed)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])
    # A point mass at the minimum or maximum (every reference text cut to 300 characters) gets its
    # own bin, so live values moving below/above it are seen. Continuous tails do not: the outer
    # quantile bins already catch those, and a bin the reference barely fills makes PSI noisy.
    extra = []
    if np.mean(v == v.min()) >= 1.0 / bins:
        extra.append(float(np.nextafter(v.min(), -np.inf)))
    if np.mean(v == v.max()) >= 1.0 / bins:
        extra.append(float(v.max()))
    return [float(x) for x in np.unique(np.r_[qs, extra])]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts in ``(-inf, e0], (e0, e1], ..., (e_last, inf)``; NaNs are ignored."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


def label_keys(labels: Sequence[Any]) -> list[str]:
    """Predicted labels as class names (multi-label predictions count once per label)."""
    out: list[str] = []
    for lab in labels:
        if isinstance(lab, (list, tuple)):
            out.extend(str(x) for x in lab)
        elif isinstance(lab, str) and lab.startswith("["):
            try:
                out.extend(str(x) for x in json.loads(lab))
            except ValueError:
                out.append(lab)
        else:
            out.append(str(lab))
    return out


@dataclass(frozen=True)
class Histogram:
    """Reference bins of one quantity: counts in ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    mean: float = 0.0
    std: float = 0.0
    #: confidence only: share of reference predictions at or above :data:`HIGH_CONFIDENCE`
    high_share: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(float(e) for e in self.edges))
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))
        if len(self.counts) != len(self.edges) + 1:
            raise ArtifactError(f"reference profile: a histogram has {len(self.counts)} counts for "
                                f"{len(self.edges)} edges (needs edges + 1); rebuild the profile")

    @classmethod
    def of(cls, values: np.ndarray, bins: int = 10) -> Histogram:
        v = np.asarray(values, dtype=np.float64)
        edges = quantile_edges(v, bins)
        return cls(tuple(edges), tuple(bin_counts(v, edges).tolist()),
                   float(np.nanmean(v)) if v.size else 0.0, float(np.nanstd(v)) if v.size else 0.0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Histogram:
        hs = d.get("high_share")
        return cls(tuple(d["edges"]), tuple(d["counts"]), float(d.get("mean", 0.0)), float(d.get("std", 0.0)),
                   None if hs is None else float(hs))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"edges": list(self.edges), "counts": list(self.counts), "mean": self.mean,
                               "std": self.std}
        if self.high_share is not None:
            out["high_share"] = self.high_share
        return out

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value (NaN lands in the last bin: mask it with ``np.isfinite``)."""
        return np.searchsorted(np.asarray(self.edges, dtype=np.float64), values, side="left")


def histogram(values: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """:meth:`Histogram.of` in its JSON form."""
    return Histogram.of(values, bins).to_dict()


_PROFILE_KEYS = ("version", "created", "n", "labels", "task", "class_counts", "bins", "confidence", "features",
                 "sketch", "accuracy", "recall", "split")


@dataclass(frozen=True, eq=False)
class ReferenceProfile(Mapping[str, Any]):
    """What "normal" traffic looked like: class mix, confidence and input-feature histograms,
    embedding sketches and (with labels) the reference accuracy.

    Typed attributes for code (``profile.confidence.edges``); read-only mapping over its JSON form
    (``profile["confidence"]["counts"]``, the file's layout) for scripts and older callers. Keys a
    newer transferops wrote are kept (``extra``) and written back; a newer ``version`` warns.
    """

    labels: tuple[str, ...]
    class_counts: dict[str, int]
    confidence: Histogram
    features: dict[str, Histogram]
    n: int = 0
    task: str = "multiclass"
    bins: int = 10
    sketch: tuple[tuple[float, ...], ...] = ()
    accuracy: float | None = None
    recall: dict[str, float] | None = None
    split: str | None = None
    created: str | None = None
    version: int = PROFILE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "sketch", tuple(tuple(float(x) for x in row) for row in self.sketch))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        """Validate a profile's JSON form (a clear error naming the missing key and the fix)."""
        if isinstance(d, ReferenceProfile):
            return d
        for key in ("labels", "class_counts", "confidence", "features"):
            if key not in d:
                raise ArtifactError(f"reference profile: {key!r} is missing; rebuild it with "
                                    "`transferops monitor --model DIR --build-profile`")
        version = int(d.get("version", PROFILE_VERSION))
        extra = {k: v for k, v in d.items() if k not in _PROFILE_KEYS}
        if version > PROFILE_VERSION:
            warnings.warn(f"reference profile version {version} is newer than this transferops reads "
                          f"({PROFILE_VERSION}); keys {sorted(extra)} are kept but not used", stacklevel=3)
        acc = d.get("accuracy")
        return cls(labels=tuple(d["labels"]), class_counts={str(k): int(v) for k, v in d["class_counts"].items()},
                   confidence=Histogram.from_dict(d["confidence"]),
                   features={str(k): Histogram.from_dict(h) for k, h in d["features"].items()},
                   n=int(d.get("n", 0)), task=str(d.get("task", "multiclass")), bins=int(d.get("bins", 10)),
                   sketch=tuple(tuple(r) for r in (d.get("sketch") or ())),
                   accuracy=None if acc is None else float(acc),
                   recall=None if d.get("recall") is None else {str(k): float(v) for k, v in d["recall"].items()},
                   split=d.get("split"), created=d.get("created"), version=version, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``reference_profile.json``)."""
        out: dict[str, Any] = {
            "version": self.version, "created": self.created, "n": self.n, "labels": list(self.labels),
            "task": self.task, "class_counts": dict(self.class_counts), "bins": self.bins,
            "confidence": self.confidence.to_dict(),
            "features": {k: h.to_dict() for k, h in self.features.items()},
            "sketch": [list(r) for r in self.sketch]}
        if self.accuracy is not None or self.recall is not None:
            out["accuracy"] = self.accuracy
            out["recall"] = dict(self.recall or {})
        if self.split is not None:
            out["split"] = self.split
        if self.created is None:
            del out["created"]
        return {**out, **self.extra}

    def replace(self, **changes: Any) -> ReferenceProfile:
        return dataclasses.replace(self, **changes)

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @cached_property
    def sketch_array(self) -> np.ndarray:
        return np.asarray(self.sketch, dtype=np.float64)

    @cached_property
    def _json(self) -> dict[str, Any]:
        return self.to_dict()

    # read-only mapping over the JSON form
    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ReferenceProfile):
            return self._json == other._json
        return isinstance(other, Mapping) and self._json == dict(other)

    __hash__ = None  # type: ignore[assignment]


def auto_bins(n: int) -> int:
    """About 20 reference rows per bin, between 4 and 10 bins (PSI's noise grows with bins/rows)."""
    return int(min(10, max(4, n // 20)))


def build_profile(model: Any, texts: Sequence[str], labels: Sequence[Any] | None = None, *,
                  bins: int | None = None,
                  sketch_sample: int = 1000, max_texts: int = 2000, seed: int = 0) -> ReferenceProfile:
    """Reference profile of ``model`` on ``texts``: class mix, confidence, input features, sketches.

    ``model`` needs ``predict_proba``, ``decision_rule``, ``embed``, ``tokenizer`` and ``labels`` (a
    :class:`~transferops.artifacts.model.TransferOpsModel`). With ``labels`` the reference accuracy
    and per-class recall are stored too (the baseline for feedback accuracy).
    """
    from transferops.deploy.features import sketch, text_features

    texts = list(texts)
    if not texts:
        raise DataError("reference profile: no texts (is the validation split empty?)")
    rng = np.random.default_rng(seed)
    idx = np.arange(len(texts))
    if len(texts) > max_texts:
        idx = np.sort(rng.choice(len(texts), size=max_texts, replace=False))
    texts = [texts[i] for i in idx]
    nb = auto_bins(len(texts)) if bins is None else int(bins)
    logits, emb = model.infer(texts)  # one pass: logits + embedding, as the server computes them
    proba = np.asarray(model.proba_from_logits(logits))
    # the confidence the server logs (probability of the decided label), not proba.max()
    predicted, conf = model.decision_rule.apply(proba)
    keys = label_keys(predicted)
    counts = {str(lab): 0 for lab in model.labels}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    feats = text_features(model.tokenizer, texts)
    sk_idx = np.arange(len(texts))
    if len(texts) > sketch_sample:
        sk_idx = np.sort(rng.choice(len(texts), size=sketch_sample, replace=False))
    sk = sketch(np.asarray(emb)[sk_idx])

    names = [str(x) for x in model.labels]
    conf_hist = dataclasses.replace(Histogram.of(conf, nb), high_share=float(np.mean(conf >= HIGH_CONFIDENCE)))
    accuracy = recall = None
    if labels is not None:
        y = [labels[int(i)] for i in idx]
        pred_s = [json.dumps(p) if isinstance(p, list) else str(p) for p in predicted]
        true_s = [json.dumps(list(t)) if isinstance(t, (list, tuple, np.ndarray)) else str(t) for t in y]
        hits = np.asarray([a == b for a, b in zip(pred_s, true_s, strict=True)])
        accuracy = float(hits.mean()) if hits.size else None
        recall = {lab: float(hits[[t == lab for t in true_s]].mean())
                  for lab in names if any(t == lab for t in true_s)}
    return ReferenceProfile(
        labels=tuple(names), class_counts=counts, confidence=conf_hist,
        features={name: Histogram.of(np.asarray(feats[name], dtype=np.float64), nb) for name in FEATURES},
        n=len(texts), task=getattr(model, "task", "multiclass"), bins=nb,
        sketch=tuple(map(tuple, np.asarray(sk, dtype=np.float64).round(5).tolist())),
        accuracy=accuracy, recall=recall, created=utcnow())


def save_profile(artifact_dir: str | Path, profile: ReferenceProfile | Mapping[str, Any]) -> Path:
    path = Path(artifact_dir) / REFERENCE_PROFILE
    write_json(path, ReferenceProfile.from_dict(profile).to_dict())
    return path


def load_profile(artifact_dir: str | Path) -> ReferenceProfile:
    """The profile saved in an artifact; a clear error (with the fix) if it has none."""
    path = Path(artifact_dir) / REFERENCE_PROFILE
    if not path.exists():
        raise ArtifactError(f"{artifact_dir}: no {REFERENCE_PROFILE}; build it with "
                            f"`transferops monitor --model {artifact_dir} --build-profile`")
    return ReferenceProfile.from_dict(read_json(path))


def profile_artifact(artifact_dir: str | Path, *, split: str = "validation", **kw: Any) -> ReferenceProfile:
    """Build and save the reference profile of a saved artifact from one of its splits."""
    from transferops.artifacts.model import load

    model = load(artifact_dir)  # a single model, an ensemble or an ONNX export
    df = model.split(split)
    labels = list(df[LABEL_COL]) if LABEL_COL in df.columns else None
    profile = build_profile(model, list(df[TEXT_COL]), labels, **kw).replace(split=split)
    save_profile(artifact_dir, profile)
    return profile


def refresh_profile(artifact_dir: str | Path) -> bool:
    """Rebuild a saved profile from the same split after the artifact's decision rule changed
    (``calibrate``); a failure is logged, never fatal (the old profile stays)."""
    try:
        old = load_profile(artifact_dir)
        seed = int(((read_json(Path(artifact_dir) / MANIFEST_NAME).get("config") or {}).get("seed")) or 0)
        profile_artifact(artifact_dir, split=old.split or "validation", seed=seed)
    except Exception as exc:
        log.warning("reference profile of %s not rebuilt after the decision rule changed: %s (rebuild it "
                    "with `transferops monitor --model %s --build-profile`)", artifact_dir, exc, artifact_dir)
        return False
    return True


@register_post_train("reference_profile", order=20)  # after calibration: the profile uses its temperature
def post_train(artifact_dir: Path, config: Any) -> dict[str, Any] | None:
    """Training hook: always store the reference profile built from the validation split.

    A profile that cannot be built (e.g. an empty validation split) is logged, never fatal: the
    model itself is fine, and ``transferops monitor --build-profile`` can add it later.
    """
    seed = int(getattr(config, "seed", 0) or 0)
    try:
        profile = profile_artifact(artifact_dir, split="validation", seed=seed)
    except Exception as exc:
        log.warning("no monitoring reference profile for %s: %s (build it later with "
                    "`transferops monitor --model %s --build-profile`)", artifact_dir, exc, artifact_dir)
        return None
    return {"reference_profile": REFERENCE_PROFILE, "n": profile.n}


__all__ = ["FEATURES", "HIGH_CONFIDENCE", "Histogram", "ReferenceProfile", "bin_counts", "build_profile",
           "histogram", "label_keys", "load_profile", "post_train", "profile_artifact", "quantile_edges",
           "refresh_profile", "save_profile"]
