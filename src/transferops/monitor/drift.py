"""Drift of a window of logged predictions against the artifact's reference profile.

Signals (each with its own thresholds; the window's status is the worst one), one file each in
:mod:`transferops.monitor.signals` and run through its registry:

* ``class_psi``     PSI of the predicted-class distribution (KL reported alongside)
* ``confidence_psi`` PSI of the confidence distribution (probability of the decided label, as
                    the server logs it; high-confidence share reported)
* ``feature_psi:<name>`` PSI of each input feature (characters, tokens, [UNK] rate)
* ``embedding``     domain-classifier drift on the 16-number sketches: ``2·AUC − 1`` of a
                    logistic regression told to separate reference from live (0 = identical);
                    an RBF MMD² is reported alongside
* ``accuracy_drop`` reference accuracy minus accuracy on predictions that got feedback

PSI from finite samples is biased upward: under no drift its expectation is about
``(k − 1)(1/n_ref + 1/n_live)`` (the chi-square limit). With ``correct_small_sample`` (default)
that noise floor is subtracted before thresholds apply; raw PSI is always reported too.

>>> mon = DriftMonitor(DriftConfig()).fit(load_profile("runs/news"))          # doctest: +SKIP
>>> report = mon.calculate(store.read_predictions(last=10_000, columns=DRIFT_COLUMNS))  # doctest: +SKIP
>>> report.status                                                             # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from transferops._validation import Constraints, Interval, validate_params
from transferops.errors import ConfigError, NotFittedError
from transferops.monitor.profile import FEATURES, HIGH_CONFIDENCE, ReferenceProfile
from transferops.monitor.signals import (
    STATUS_ORDER,
    Signal,
    SignalContext,
    Status,
    domain_auc,
    kl,
    mmd2,
    psi,
    psi_noise,
    registered_signals,
    shares,
    worst,
)
from transferops.monitor.window import REVIEW_ROUTES, PreparedWindow, label_codes

#: Exit codes of ``transferops monitor`` per status (for cron / alerting).
EXIT_CODES: dict[str, int] = {"ok": 0, "unknown": 0, "warn": 3, "retrain": 4}
#: Columns drift needs from the prediction log (the sketch is read separately, sampled).
DRIFT_COLUMNS: tuple[str, ...] = ("ts", "label", "confidence", "route", *FEATURES)
EPS = 1e-4


@dataclass
class DriftConfig:
    """Thresholds and sample sizes. PSI convention: < 0.1 ok, 0.1–0.25 warn, ≥ 0.25 retrain."""

    warn: float = field(default=0.1, metadata={"help": "PSI (and embedding score) at which to warn"})
    retrain: float = field(default=0.25, metadata={"help": "PSI (and embedding score) meaning retrain now"})
    accuracy_warn: float = field(default=0.05, metadata={"help": "accuracy drop vs reference to warn"})
    accuracy_retrain: float = field(default=0.10, metadata={"help": "accuracy drop vs reference to retrain"})
    min_feedback: int = field(default=30, metadata={"help": "feedback rows needed before accuracy counts"})
    min_rows: int = field(default=30, metadata={"help": "rows a window needs for a status"})
    correct_small_sample: bool = field(default=True, metadata={"help": "subtract the PSI noise floor"})
    embedding: bool = field(default=True, metadata={"help": "compute the embedding (sketch) drift"})
    embedding_sample: int = field(default=1000, metadata={"help": "max live sketches used"})
    seed: int = 0

    _parameter_constraints: ClassVar[Constraints] = {
        **{name: Interval(Real, 0.0, None, closed="neither")
           for name in ("warn", "retrain", "accuracy_warn", "accuracy_retrain")},
        **{name: Interval(Integral, 1, None) for name in ("min_feedback", "min_rows", "embedding_sample")},
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)
        if self.retrain < self.warn:
            raise ConfigError(f"retrain ({self.retrain}) must be >= warn ({self.warn})")
        if self.accuracy_retrain < self.accuracy_warn:
            raise ConfigError(f"accuracy_retrain ({self.accuracy_retrain}) must be >= accuracy_warn "
                              f"({self.accuracy_warn})")


@dataclass
class DriftReport:
    """One window's drift: signals, headline numbers and the overall status."""

    status: Status
    n: int
    start: float | None
    end: float | None
    signals: list[Signal]
    class_share: dict[str, float]
    reference_class_share: dict[str, float]
    high_confidence_share: float | None
    reference_high_confidence_share: float | None
    review_rate: float | None
    accuracy: float | None
    reference_accuracy: float | None
    n_feedback: int
    recall: dict[str, float]
    config: dict[str, Any]
    sampled_every: int = 1

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def signal(self, name: str) -> Signal:
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def triggered(self) -> list[str]:
        """Signals at warn or retrain, worst first."""
        bad = [s for s in self.signals if s.status in ("warn", "retrain")]
        return [s.name for s in sorted(bad, key=lambda s: -STATUS_ORDER[s.status])]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["signals"] = [s.to_dict() for s in self.signals]
        d["triggered"] = self.triggered
        d["exit_code"] = self.exit_code
        return d

    def to_df(self) -> pd.DataFrame:
        return pd.DataFrame([{"signal": s.name, "value": s.value, "status": s.status, "warn": s.warn,
                              "retrain": s.retrain} for s in self.signals])

    def summary(self) -> str:
        lines = [f"status: {self.status.upper()}  ({self.n} predictions"
                 + (f", binned on every {self.sampled_every}th" if self.sampled_every > 1 else "")
                 + (f", {self.n_feedback} with feedback)" if self.n_feedback else ")")]
        for s in self.signals:
            v = "n/a" if s.value is None else f"{s.value:.4f}"
            raw = s.detail.get("psi_raw", s.detail.get("score_raw"))
            extra = f"  (raw {raw:.4f}, noise floor {s.detail['noise_floor']:.4f})" if raw is not None else ""
            lines.append(f"  {s.name:<24} {v:>8}  {s.status:<8}{extra}")
        if self.high_confidence_share is not None:
            ref = self.reference_high_confidence_share
            lines.append(f"  high-confidence (≥{HIGH_CONFIDENCE}) share {self.high_confidence_share:.1%}"
                         + (f" (reference {ref:.1%})" if ref is not None else ""))
        if self.review_rate is not None:
            lines.append(f"  review rate {self.review_rate:.1%}")
        if self.accuracy is not None:
            lines.append(f"  accuracy with feedback {self.accuracy:.4f}"
                         + (f" (reference {self.reference_accuracy:.4f})"
                            if self.reference_accuracy is not None else ""))
        return "\n".join(lines)


# ---------------------------------------------------------------------------- calculator
class DriftMonitor:
    """``fit(reference_profile)`` then ``calculate(window)`` (NannyML's calculator shape)."""

    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()

    def fit(self, profile: ReferenceProfile | dict[str, Any]) -> DriftMonitor:
        """Store the reference profile (a :class:`ReferenceProfile` or its JSON form)."""
        prof = ReferenceProfile.from_dict(profile)
        self.profile_ = prof
        self.labels_ = list(prof.labels)
        self.ref_class_counts_ = np.asarray([prof.class_counts.get(lab, 0) for lab in self.labels_],
                                            dtype=np.float64)
        self.ref_sketch_ = prof.sketch_array
        return self

    def _check(self) -> None:
        if not hasattr(self, "profile_"):
            raise NotFittedError("DriftMonitor: call fit(profile) before calculate()")

    def class_counts(self, labels: Any) -> np.ndarray:
        """Counts per reference class (+ a last slot for labels the reference never saw)."""
        codes, matrix = label_codes(labels, self.labels_)
        return np.asarray(np.bincount(codes[codes >= 0], minlength=len(matrix)) @ matrix)

    def prepare(self, window: pd.DataFrame | PreparedWindow) -> PreparedWindow:
        """A window of logged predictions binned against the profile (already binned: as is)."""
        self._check()
        return window if isinstance(window, PreparedWindow) else PreparedWindow.from_frame(window, self.profile_)

    def calculate(self, window: pd.DataFrame | PreparedWindow, *, feedback: pd.DataFrame | None = None,
                  sketches: np.ndarray | None = None) -> DriftReport:
        """Drift of ``window`` (columns of :data:`DRIFT_COLUMNS`, or a :class:`PreparedWindow` binned
        by :func:`transferops.monitor.fastread.binned_window`); ``feedback`` has ``predicted``, ``true``."""
        return self._report(self.prepare(window), feedback=feedback, sketches=sketches)

    def _report(self, win: PreparedWindow, *, feedback: pd.DataFrame | None, sketches: np.ndarray | None,
                min_rows: int | None = None, min_feedback: int | None = None) -> DriftReport:
        cfg, prof = self.config, self.profile_
        ctx = SignalContext(cfg, prof, win, feedback=feedback, sketches=sketches, min_feedback=min_feedback)
        # every registered signal (monitor/signals/, one per file), in report order
        signals = [sig for spec in registered_signals() for sig in spec.compute(ctx)]
        ref_share = dict(zip(self.labels_, shares(self.ref_class_counts_).round(6).tolist(), strict=True))
        live_share: dict[str, float] = {}
        if win.n:
            live = ctx.live_class_counts
            total = max(live.sum(), 1.0)
            live_share = {lab: float(live[i] / total) for i, lab in enumerate(self.labels_)}
            if live[-1]:
                live_share["<other>"] = float(live[-1] / total)
        acc, recall = ctx.feedback_accuracy
        need_rows = cfg.min_rows if min_rows is None else min_rows
        status = worst([s.status for s in signals]) if win.n >= need_rows else "unknown"
        start, end = win.bounds
        return DriftReport(
            status=status, n=win.n_represented, start=start, end=end, sampled_every=win.step,
            signals=signals, class_share=live_share, reference_class_share=ref_share,
            high_confidence_share=ctx.high_confidence_share,
            reference_high_confidence_share=prof.confidence.high_share,
            review_rate=ctx.review_rate, accuracy=acc, reference_accuracy=prof.accuracy,
            n_feedback=0 if feedback is None else len(feedback), recall=recall, config=asdict(cfg))

    # ------------------------------------------------------------------ time series
    def timeline(self, window: pd.DataFrame | PreparedWindow, *, buckets: int = 24,
                 feedback: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per time bucket: class/confidence/max-feature PSI, high-confidence share, class mix,
        review rate, accuracy with feedback and status (the dashboard's series)."""
        prep = self.prepare(window)
        if not prep.n:
            return pd.DataFrame()
        if prep.ts is None:  # binned in the database (fastread): rows carry their time bucket
            assert prep.bucket is not None and prep.t_lo is not None and prep.t_hi is not None
            lo, hi = float(prep.t_lo), float(prep.t_hi)
            edges = np.linspace(lo, hi + 1e-6, int(buckets) + 1)
            cuts = np.searchsorted(prep.bucket, np.arange(buckets + 1), side="left")
        else:
            ts = prep.ts
            lo, hi = float(ts[0]), float(ts[-1])
            edges = np.linspace(lo, hi + 1e-6, int(buckets) + 1)
            cuts = np.searchsorted(ts, edges, side="left")  # rows are in time order: buckets are slices
        fb_b = None
        if feedback is not None and len(feedback):
            fb_b = np.clip(np.searchsorted(edges, np.asarray(feedback["ts"], dtype=np.float64), side="right") - 1,
                           0, buckets - 1)
        rows = []
        for i in range(buckets):
            sl = slice(int(cuts[i]), int(cuts[i + 1]) if i < buckets - 1 else int(prep.n))
            if sl.stop <= sl.start:
                continue
            fb = feedback[fb_b == i] if fb_b is not None and feedback is not None else None
            rep = self._report(prep.slice(sl), feedback=fb, sketches=None, min_rows=1, min_feedback=1)
            feats = [s.value or 0.0 for s in rep.signals if s.name.startswith("feature_psi:")]
            row = {"start": float(edges[i]), "end": float(edges[i + 1]), "n": rep.n,
                   "class_psi": rep.signal("class_psi").value,
                   "confidence_psi": rep.signal("confidence_psi").value,
                   "feature_psi_max": max(feats) if feats else None,
                   "high_confidence_share": rep.high_confidence_share, "review_rate": rep.review_rate,
                   "accuracy": rep.accuracy, "n_feedback": rep.n_feedback, "status": rep.status}
            for lab, share in rep.class_share.items():
                row[f"share:{lab}"] = share
            rows.append(row)
        return pd.DataFrame(rows)


def read_sketches(store: Any, *, since: float | None, until: float | None, last: int | None,
                  sample: int = 1000, model: str | None = None) -> np.ndarray:
    """The newest ``sample`` sketches of the window (embedding drift needs few rows)."""
    n = sample if last is None else min(sample, last)
    df = store.read_predictions(columns=["sketch"], since=since, until=until, last=n, model=model,
                                parse_json=False)
    vals = [json.loads(s) for s in df["sketch"] if isinstance(s, str) and s]
    vals = [v for v in vals if isinstance(v, list) and v]
    return np.asarray(vals, dtype=np.float64) if vals else np.zeros((0, 16))


__all__ = ["DRIFT_COLUMNS", "EPS", "EXIT_CODES", "HIGH_CONFIDENCE", "REVIEW_ROUTES", "STATUS_ORDER",
           "DriftConfig", "DriftMonitor", "DriftReport", "PreparedWindow", "Signal", "Status", "domain_auc", "kl",
           "mmd2", "psi", "psi_noise", "read_sketches", "worst"]
