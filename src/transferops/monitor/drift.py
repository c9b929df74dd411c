"""Drift of a window of logged predictions against the artifact's reference profile.

Signals (each with its own thresholds; the window's status is the worst one):

* ``class_psi``     PSI of the predicted-class distribution (KL reported alongside)
* ``confidence_psi`` PSI of the max-probability distribution (high-confidence share reported)
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
import math
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from transferops._validation import Constraints, Interval, validate_params
from transferops.errors import ConfigError, NotFittedError
from transferops.monitor.profile import FEATURES, HIGH_CONFIDENCE, label_keys

Status = Literal["ok", "warn", "retrain", "unknown"]
STATUS_ORDER: dict[str, int] = {"unknown": -1, "ok": 0, "warn": 1, "retrain": 2}
#: Exit codes of ``transferops monitor`` per status (for cron / alerting).
EXIT_CODES: dict[str, int] = {"ok": 0, "unknown": 0, "warn": 3, "retrain": 4}
#: Columns drift needs from the prediction log (the sketch is read separately, sampled).
DRIFT_COLUMNS: tuple[str, ...] = ("ts", "label", "confidence", "route", *FEATURES)
REVIEW_ROUTES = frozenset({"review"})
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


# ---------------------------------------------------------------------------- statistics
def _shares(counts: np.ndarray) -> np.ndarray:
    """Shares with add-½ (Jeffreys) smoothing: an empty bin in a small sample is not "impossible"."""
    c = np.asarray(counts, dtype=np.float64)
    return (c + 0.5) / (c.sum() + 0.5 * len(c))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population Stability Index ``Σ (a − e) ln(a / e)`` of two count vectors (add-½ smoothed shares)."""
    e, a = _shares(expected), _shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def kl(actual: np.ndarray, expected: np.ndarray) -> float:
    """``KL(actual ‖ expected)`` in nats."""
    e, a = _shares(expected), _shares(actual)
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
    name: str
    value: float | None
    status: Status
    warn: float
    retrain: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _grade(value: float | None, warn: float, retrain: float) -> Status:
    if value is None or not math.isfinite(value):
        return "unknown"
    if value >= retrain:
        return "retrain"
    if value >= warn:
        return "warn"
    return "ok"


def worst(statuses: list[str]) -> Status:
    known = [s for s in statuses if s != "unknown"]
    if not known:
        return "unknown"
    top = max(known, key=lambda s: STATUS_ORDER[s])
    return "retrain" if top == "retrain" else "warn" if top == "warn" else "ok"


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

    def fit(self, profile: dict[str, Any]) -> DriftMonitor:
        self.profile_ = profile
        self.labels_ = [str(x) for x in profile["labels"]]
        cc = profile["class_counts"]
        self.ref_class_counts_ = np.asarray([cc.get(lab, 0) for lab in self.labels_], dtype=np.float64)
        self.ref_sketch_ = np.asarray(profile.get("sketch") or [], dtype=np.float64)
        return self

    def _check(self) -> None:
        if not hasattr(self, "profile_"):
            raise NotFittedError("DriftMonitor: call fit(profile) before calculate()")

    def _psi_signal(self, name: str, ref_counts: np.ndarray, live_counts: np.ndarray,
                    extra: dict[str, Any] | None = None) -> Signal:
        cfg = self.config
        raw = psi(ref_counts, live_counts)
        noise = psi_noise(ref_counts, live_counts)
        value = max(0.0, raw - noise) if cfg.correct_small_sample else raw
        detail = {"psi_raw": raw, "noise_floor": noise, **(extra or {})}
        return Signal(name, value, _grade(value, cfg.warn, cfg.retrain), cfg.warn, cfg.retrain, detail)

    def class_counts(self, labels: Any) -> np.ndarray:
        """Counts per reference class (+ a last slot for labels the reference never saw)."""
        codes, matrix = self._label_codes(labels)
        return np.bincount(codes[codes >= 0], minlength=len(matrix)) @ matrix

    def _label_codes(self, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """Integer codes per row and a (unique label → class counts) matrix: strings are handled
        once per distinct value, not once per row (a million rows have a handful of labels)."""
        codes, uniq = pd.factorize(pd.Series(np.asarray(labels, dtype=object)), use_na_sentinel=True)
        idx = {lab: i for i, lab in enumerate(self.labels_)}
        k = len(self.labels_)
        matrix = np.zeros((len(uniq), k + 1))
        for u, value in enumerate(uniq):
            for key in label_keys([value]):  # a multi-label row counts once per label
                matrix[u, idx.get(key, k)] += 1
        return np.asarray(codes), matrix

    def _prepare(self, window: pd.DataFrame) -> dict[str, Any]:
        """Vectorised view of a window: label codes, bin indices, review flags, in time order."""
        prof = self.profile_
        n = len(window)
        order = None
        if "ts" in window.columns and n:
            ts = np.asarray(window["ts"], dtype=np.float64)
            if np.any(np.diff(ts) < 0):
                order = np.argsort(ts, kind="stable")
                ts = ts[order]
        else:
            ts = np.zeros(n)

        def col(name: str, dtype: Any = np.float64) -> np.ndarray:
            v = np.asarray(window[name], dtype=dtype)
            return v[order] if order is not None else v

        codes, matrix = self._label_codes(col("label", object)) if n else (np.zeros(0, int), np.zeros((0, 1)))
        conf = col("confidence") if n else np.zeros(0)
        prep: dict[str, Any] = {"n": n, "ts": ts, "codes": codes, "matrix": matrix,
                                "high": conf >= HIGH_CONFIDENCE,
                                "conf_bin": np.searchsorted(np.asarray(prof["confidence"]["edges"], dtype=np.float64),
                                                            conf, side="left"),
                                "conf_ok": np.isfinite(conf), "features": {}, "review": None}
        for fname, fh in prof["features"].items():
            if fname not in window.columns or not n:
                continue
            vals = pd.to_numeric(pd.Series(col(fname, object)), errors="coerce").to_numpy(dtype=np.float64)
            ok = np.isfinite(vals)
            if ok.any():
                prep["features"][fname] = (vals, ok, np.searchsorted(np.asarray(fh["edges"], dtype=np.float64),
                                                                     vals, side="left"))
        if "route" in window.columns and n:
            routes = pd.Series(col("route", object))
            prep["review"] = (routes.isin(list(REVIEW_ROUTES)).to_numpy(), routes.notna().to_numpy())
        return prep

    def calculate(self, window: pd.DataFrame | dict[str, Any], *, feedback: pd.DataFrame | None = None,
                  sketches: np.ndarray | None = None) -> DriftReport:
        """Drift of ``window`` (columns of :data:`DRIFT_COLUMNS`, or a dict binned by
        :func:`transferops.monitor.fastread.binned_window`); ``feedback`` has ``predicted``, ``true``."""
        self._check()
        prep = window if isinstance(window, dict) else self._prepare(window)
        return self._report(prep, slice(None), feedback=feedback, sketches=sketches)

    def _report(self, prep: dict[str, Any], sl: slice, *, feedback: pd.DataFrame | None,
                sketches: np.ndarray | None, embedding: bool = True, min_rows: int | None = None,
                min_feedback: int | None = None) -> DriftReport:
        cfg, prof = self.config, self.profile_
        codes = prep["codes"][sl]
        n = len(codes)
        signals: list[Signal] = []
        ref_share = dict(zip(self.labels_, _shares(self.ref_class_counts_).round(6).tolist(), strict=True))
        live_share: dict[str, float] = {}
        high = review = None
        if n:
            live = np.bincount(codes[codes >= 0], minlength=len(prep["matrix"])) @ prep["matrix"]
            ref = np.r_[self.ref_class_counts_, 0.0]
            total = max(live.sum(), 1.0)
            live_share = {lab: float(live[i] / total) for i, lab in enumerate(self.labels_)}
            if live[-1]:
                live_share["<other>"] = float(live[-1] / total)
            signals.append(self._psi_signal("class_psi", ref, live, {"kl": kl(live, ref)}))

            ch = prof["confidence"]
            ok = prep["conf_ok"][sl]
            high = float(prep["high"][sl][ok].mean()) if ok.any() else None
            live_conf = np.bincount(prep["conf_bin"][sl][ok], minlength=len(ch["edges"]) + 1)
            signals.append(self._psi_signal("confidence_psi", np.asarray(ch["counts"]), live_conf,
                                            {"high_share": high, "reference_high_share": ch.get("high_share")}))
            for fname, (vals, fok, fbin) in prep["features"].items():
                fh = prof["features"][fname]
                m = fok[sl]
                if not m.any():
                    continue
                counts = np.bincount(fbin[sl][m], minlength=len(fh["edges"]) + 1)
                mean = float(vals[sl][m].mean()) if vals is not None else prep.get("means", {}).get(fname)
                signals.append(self._psi_signal(f"feature_psi:{fname}", np.asarray(fh["counts"]), counts,
                                                {"mean": mean, "reference_mean": fh["mean"]}))
            if prep["review"] is not None:
                is_review, known = prep["review"][0][sl], prep["review"][1][sl]
                if known.any():
                    review = float(is_review[known].mean())
        if (embedding and cfg.embedding and sketches is not None and len(sketches) >= 10
                and len(self.ref_sketch_) >= 10):
            signals.append(self._embedding_signal(np.asarray(sketches, dtype=np.float64)))

        acc = None
        recall: dict[str, float] = {}
        n_fb = 0 if feedback is None else len(feedback)
        if feedback is not None and n_fb:
            pred = feedback["predicted"].astype(str).to_numpy()
            true = feedback["true"].astype(str).to_numpy()
            hits = pred == true
            acc = float(hits.mean())
            for lab in sorted(set(true)):
                recall[lab] = float(hits[true == lab].mean())
            ref_acc = prof.get("accuracy")
            need = cfg.min_feedback if min_feedback is None else min_feedback
            if n_fb >= need and ref_acc is not None:
                drop = float(ref_acc) - acc
                signals.append(Signal("accuracy_drop", drop,
                                      _grade(drop, cfg.accuracy_warn, cfg.accuracy_retrain),
                                      cfg.accuracy_warn, cfg.accuracy_retrain,
                                      {"accuracy": acc, "reference_accuracy": ref_acc, "n_feedback": n_fb}))
        need_rows = cfg.min_rows if min_rows is None else min_rows
        status = worst([s.status for s in signals]) if n >= need_rows else "unknown"
        if prep.get("ts") is not None:
            ts = prep["ts"][sl]
            start, end = (float(ts.min()), float(ts.max())) if n else (None, None)
        else:  # binned in the database: only the window's bounds are known
            start, end = prep.get("t_lo"), prep.get("t_hi")
        step = int(prep.get("step", 1))
        n_report = int(prep["n_total"]) if step > 1 and sl == slice(None) else n * step
        return DriftReport(
            status=status, n=n_report, start=start, end=end, sampled_every=step,
            signals=signals, class_share=live_share, reference_class_share=ref_share,
            high_confidence_share=high, reference_high_confidence_share=prof["confidence"].get("high_share"),
            review_rate=review, accuracy=acc, reference_accuracy=prof.get("accuracy"), n_feedback=n_fb,
            recall=recall, config=asdict(cfg))

    def _embedding_signal(self, live: np.ndarray) -> Signal:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        if len(live) > cfg.embedding_sample:
            live = live[rng.choice(len(live), cfg.embedding_sample, replace=False)]
        ref = self.ref_sketch_
        auc = domain_auc(ref, live, seed=cfg.seed)
        raw = max(0.0, 2.0 * auc - 1.0)
        # Hanley–McNeil standard error of an AUC of 0.5: a 95% band of chance separation is
        # subtracted (same idea as the PSI noise floor), so small windows do not cry wolf.
        n1, n2 = len(ref), len(live)
        noise = 2.0 * 1.96 * math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
        score = max(0.0, raw - noise) if cfg.correct_small_sample else raw
        m = mmd2(ref[:500], live[:500])
        return Signal("embedding", score, _grade(score, cfg.warn, cfg.retrain), cfg.warn, cfg.retrain,
                      {"domain_auc": auc, "score_raw": raw, "noise_floor": noise, "mmd2": m,
                       "n_live": n2, "n_reference": n1})

    # ------------------------------------------------------------------ time series
    def timeline(self, window: pd.DataFrame | dict[str, Any], *, buckets: int = 24,
                 feedback: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per time bucket: class/confidence/max-feature PSI, high-confidence share, class mix,
        review rate, accuracy with feedback and status (the dashboard's series)."""
        self._check()
        if isinstance(window, dict):  # already binned in the database (fastread)
            prep = window
            if not prep["n"]:
                return pd.DataFrame()
            lo, hi = float(prep["t_lo"]), float(prep["t_hi"])
            edges = np.linspace(lo, hi + 1e-6, int(buckets) + 1)
            cuts = np.searchsorted(prep["bucket"], np.arange(buckets + 1), side="left")
        else:
            if not len(window):
                return pd.DataFrame()
            prep = self._prepare(window)
            ts = prep["ts"]
            lo, hi = float(ts[0]), float(ts[-1])
            edges = np.linspace(lo, hi + 1e-6, int(buckets) + 1)
            cuts = np.searchsorted(ts, edges, side="left")  # rows are in time order: buckets are slices
        fb_b = None
        if feedback is not None and len(feedback):
            fb_b = np.clip(np.searchsorted(edges, np.asarray(feedback["ts"], dtype=np.float64), side="right") - 1,
                           0, buckets - 1)
        rows = []
        for i in range(buckets):
            sl = slice(int(cuts[i]), int(cuts[i + 1]) if i < buckets - 1 else int(prep["n"]))
            if sl.stop <= sl.start:
                continue
            fb = feedback[fb_b == i] if fb_b is not None and feedback is not None else None
            rep = self._report(prep, sl, feedback=fb, sketches=None, embedding=False, min_rows=1, min_feedback=1)
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


__all__ = ["DRIFT_COLUMNS", "EXIT_CODES", "DriftConfig", "DriftMonitor", "DriftReport", "Signal", "domain_auc",
           "kl", "mmd2", "psi", "psi_noise", "read_sketches", "worst"]
