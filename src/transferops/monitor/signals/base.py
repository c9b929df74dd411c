"""What every drift signal is built from: the result type, the statistics, the context and the
registry.

A signal is a function ``compute(ctx: SignalContext) -> Iterable[Signal]`` registered under a
name with :func:`register_signal`; :class:`~transferops.monitor.drift.DriftMonitor` calls every
registered signal, in ``order``, for the whole window and for each time bucket of the timeline.
Built-in signals live one per file beside this one (``class_mix``, ``confidence``, ``features``,
``embedding``, ``accuracy``); a module added to this package is found without any other change
(see ``docs/architecture/decisions-and-monitoring.md``, "How to add a drift signal").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from transferops.errors import ConfigError
from transferops.monitor.profile import ReferenceProfile
from transferops.monitor.window import PreparedWindow

Status = Literal["ok", "warn", "retrain", "unknown"]
STATUS_ORDER: dict[str, int] = {"unknown": -1, "ok": 0, "warn": 1, "retrain": 2}


# ---------------------------------------------------------------------------- statistics
def shares(counts: np.ndarray) -> np.ndarray:
    """Shares with add-½ (Jeffreys) smoothing: an empty bin in a small sample is not "impossible"."""
    c = np.asarray(counts, dtype=np.float64)
    return (c + 0.5) / (c.sum() + 0.5 * len(c))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population Stability Index ``Σ (a − e) ln(a / e)`` of two count vectors (add-½ smoothed shares)."""
    e, a = shares(expected), shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def kl(actual: np.ndarray, expected: np.ndarray) -> float:
    """``KL(actual ‖ expected)`` in nats."""
    e, a = shares(expected), shares(actual)
    return float(np.sum(a * np.log(a / e)))


def psi_noise(expected: np.ndarray, actual: np.ndarray) -> float:
    """Expected PSI of two samples of these sizes drawn from the same distribution."""
    n_e, n_a = float(np.sum(expected)), float(np.sum(actual))
    k = int(np.sum((np.asarray(expected) + np.asarray(actual)) > 0))
    if n_e <= 0 or n_a <= 0 or k < 2:
        return 0.0
    return (k - 1) * (1.0 / n_e + 1.0 / n_a)


def domain_auc(reference: np.ndarray, live: np.ndarray, *, seed: int = 0) -> float:
    """Out-of-fold ROC AUC of a logistic regression separating reference from live rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([reference, live])
    y = np.r_[np.zeros(len(reference)), np.ones(len(live))]
    folds = int(min(5, len(reference), len(live)))
    if folds < 2:
        return 0.5
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    p = cross_val_predict(LogisticRegression(C=1.0, max_iter=500), x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased RBF-kernel MMD² (bandwidth: median pairwise distance of the pooled sample)."""
    z = np.vstack([x, y]).astype(np.float64)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    med = np.median(d2[np.triu_indices(len(z), 1)]) if len(z) > 1 else 1.0
    k = np.exp(-d2 / max(med, 1e-12))
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        return 0.0
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


# ---------------------------------------------------------------------------- results
@dataclass
class Signal:
    """One drift number of a window, graded against its own ``warn``/``retrain`` lines."""

    name: str
    value: float | None
    status: Status
    warn: float
    retrain: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grade(value: float | None, warn: float, retrain: float) -> Status:
    if value is None or not math.isfinite(value):
        return "unknown"
    if value >= retrain:
        return "retrain"
    if value >= warn:
        return "warn"
    return "ok"


def worst(statuses: list[str]) -> Status:
    """The window's status: the worst known one (``unknown`` when none is known)."""
    known = [s for s in statuses if s != "unknown"]
    if not known:
        return "unknown"
    top = max(known, key=lambda s: STATUS_ORDER[s])
    return "retrain" if top == "retrain" else "warn" if top == "warn" else "ok"


# ---------------------------------------------------------------------------- context
class SignalConfig(Protocol):
    """The settings signals read (:class:`~transferops.monitor.drift.DriftConfig` has them)."""

    warn: float
    retrain: float
    accuracy_warn: float
    accuracy_retrain: float
    min_feedback: int
    correct_small_sample: bool
    embedding: bool
    embedding_sample: int
    seed: int


@dataclass
class SignalContext:
    """One window (the whole one, or one time bucket of the timeline) and what it is compared with.

    Shared quantities are computed once, on first use, and read by the signals and the report alike.
    """

    config: SignalConfig
    profile: ReferenceProfile
    window: PreparedWindow
    feedback: pd.DataFrame | None = None
    #: sampled live sketches; ``None`` for timeline buckets (the embedding signal is not bucketed)
    sketches: np.ndarray | None = None
    #: feedback rows needed before accuracy counts (``None``: the config's ``min_feedback``)
    min_feedback: int | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.profile.labels

    @cached_property
    def reference_class_counts(self) -> np.ndarray:
        return np.asarray([self.profile.class_counts.get(lab, 0) for lab in self.labels], dtype=np.float64)

    @cached_property
    def live_class_counts(self) -> np.ndarray:
        """Predicted-class counts of the window (+ a last slot for labels the reference never saw)."""
        w = self.window
        if not w.n:
            return np.zeros(len(self.labels) + 1)
        return np.asarray(np.bincount(w.codes[w.codes >= 0], minlength=len(w.matrix)) @ w.matrix)

    @cached_property
    def high_confidence_share(self) -> float | None:
        w = self.window
        return float(w.high[w.conf_ok].mean()) if w.n and w.conf_ok.any() else None

    @cached_property
    def review_rate(self) -> float | None:
        w = self.window
        if not w.n or w.review is None:
            return None
        is_review, known = w.review
        return float(is_review[known].mean()) if known.any() else None

    @cached_property
    def feedback_accuracy(self) -> tuple[float | None, dict[str, float]]:
        """Accuracy and per-class recall on the predictions that got feedback."""
        fb = self.feedback
        if fb is None or not len(fb):
            return None, {}
        pred = fb["predicted"].astype(str).to_numpy()
        true = fb["true"].astype(str).to_numpy()
        hits = pred == true
        return float(hits.mean()), {lab: float(hits[true == lab].mean()) for lab in sorted(set(true))}

    def psi_signal(self, name: str, ref_counts: np.ndarray, live_counts: np.ndarray,
                   extra: dict[str, Any] | None = None) -> Signal:
        """A PSI signal graded on ``warn``/``retrain``, noise floor subtracted (``correct_small_sample``)."""
        cfg = self.config
        raw = psi(ref_counts, live_counts)
        noise = psi_noise(ref_counts, live_counts)
        value = max(0.0, raw - noise) if cfg.correct_small_sample else raw
        detail = {"psi_raw": raw, "noise_floor": noise, **(extra or {})}
        return Signal(name, value, grade(value, cfg.warn, cfg.retrain), cfg.warn, cfg.retrain, detail)


# ---------------------------------------------------------------------------- registry
SignalFn = Callable[[SignalContext], Iterable[Signal]]


@dataclass(frozen=True)
class SignalSpec:
    """A registered signal: its key, the function and where it goes in the report."""

    name: str
    compute: SignalFn
    order: int = 100


_REGISTRY: dict[str, SignalSpec] = {}


def register_signal(name: str, *, order: int = 100) -> Callable[[SignalFn], SignalFn]:
    """Decorator: register ``compute(ctx) -> Iterable[Signal]`` as the drift signal ``name``.

    ``order`` places it in reports (built-ins: 10 class mix, 20 confidence, 30 features,
    40 embedding, 50 accuracy). A second signal under a taken name is an error.
    """

    def deco(fn: SignalFn) -> SignalFn:
        old = _REGISTRY.get(name)
        if old is not None and (old.compute.__module__, old.compute.__qualname__) != (fn.__module__,
                                                                                       fn.__qualname__):
            raise ConfigError(f"drift signal {name!r} is already registered by {old.compute.__module__}; "
                              "pick another name (or unregister_signal it first)")
        _REGISTRY[name] = SignalSpec(name, fn, int(order))
        return fn

    return deco


def unregister_signal(name: str) -> None:
    _REGISTRY.pop(name, None)
