"""Analyse an experiment from its prediction log and recorded outcomes (plain DataFrames).

Unit of analysis: the assignment key (a user) when the log has one, else the single prediction.
A unit's value of the metric is the *max* of its outcomes for a 0/1 metric (converted at least once)
and the *sum* for a continuous one (revenue per user); exposed units without an outcome count as 0,
so the rate is conversions / exposed users.

Per arm: n, mean (rate), standard deviation. Each treatment arm against the control: difference with
a 95 % CI, two-proportion z-test (0/1 metric) or Welch t-test (continuous), relative lift, and the
mSPRT always-valid p-value (see :mod:`~transferops.abtest.sequential`). Guardrails per arm from the
log: p95 latency, error rate, review rate. Sample-ratio mismatch: chi-square of units per arm against
the planned split. Then one verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import stats

from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.abtest.sequential import SequentialResult, msprt
from transferops.errors import ConfigError, DataError

MetricKind = Literal["auto", "binary", "continuous"]
Unit = Literal["auto", "key", "prediction"]
Verdict = Literal["ship", "keep control", "inconclusive", "guardrail failed",
                  "invalid: sample ratio mismatch"]


@dataclass(frozen=True)
class GuardrailConfig:
    """Treatment may not be worse than control by more than these margins.

    ``latency_p95_increase`` is relative (0.2 = p95 may grow by 20 %); the two rates are absolute
    percentage-point increases (0.01 = one point).
    """

    latency_p95_increase: float = 0.20
    error_rate_increase: float = 0.01
    review_rate_increase: float = 0.05

    _parameter_constraints: ClassVar[Constraints] = {
        name: Interval(Real, 0.0, None)
        for name in ("latency_p95_increase", "error_rate_increase", "review_rate_increase")}

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints, hints={
            name: "a margin is non-negative" for name in self._parameter_constraints})


@dataclass(frozen=True)
class AnalysisConfig:
    """Options of :func:`analyze_experiment`. ``split`` maps arm → planned share (SRM check); equal
    shares when omitted."""

    metric: str = "conversion"
    kind: MetricKind = "auto"
    unit: Unit = "auto"
    control: str = "control"
    alpha: float = 0.05
    srm_alpha: float = 0.001
    split: Mapping[str, float] | None = None
    guardrails: GuardrailConfig = field(default_factory=GuardrailConfig)
    msprt_tau: float | None = None

    _parameter_constraints: ClassVar[Constraints] = {
        "kind": Options("auto", "binary", "continuous"),
        "unit": Options("auto", "key", "prediction"),
        "alpha": Interval(Real, 0.0, 1.0, closed="neither"),
        "srm_alpha": Interval(Real, 0.0, 1.0, closed="neither"),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)
        if not self.metric:
            raise ConfigError("metric: must name the outcome metric (e.g. conversion, revenue)")


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    n: int
    mean: float
    std: float
    total: float
    predictions: int
    latency_p95_ms: float
    error_rate: float
    review_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """One treatment arm against the control."""

    arm: str
    control: str
    test: str
    diff: float
    ci_low: float
    ci_high: float
    relative_lift: float
    statistic: float
    p_value: float
    significant: bool
    sequential: SequentialResult
    guardrails: dict[str, dict[str, Any]]
    guardrails_ok: bool
    detectable_effect: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sequential"] = self.sequential.to_dict()
        return d


@dataclass(frozen=True)
class SRMCheck:
    observed: dict[str, int]
    expected_share: dict[str, float]
    chi2: float
    p_value: float
    mismatch: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ABResult:
    """Everything :func:`analyze_experiment` found; ``to_dict()`` for JSON, ``to_markdown()`` for people."""

    experiment: str | None
    metric: str
    kind: str
    unit: str
    alpha: float
    arms: list[ArmSummary]
    comparisons: list[Comparison]
    srm: SRMCheck
    verdict: str
    reasons: list[str]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({"experiment": self.experiment, "metric": self.metric, "kind": self.kind,
                          "unit": self.unit, "alpha": self.alpha, "arms": [a.to_dict() for a in self.arms],
                          "comparisons": [c.to_dict() for c in self.comparisons], "srm": self.srm.to_dict(),
                          "verdict": self.verdict, "reasons": self.reasons, "notes": self.notes})

    def arms_frame(self) -> pd.DataFrame:
        return pd.DataFrame([a.to_dict() for a in self.arms])

    def to_markdown(self) -> str:
        rate = "rate" if self.kind == "binary" else "mean"
        out = [f"## A/B analysis: {self.experiment or '(all)'} · metric `{self.metric}` ({self.kind}, "
               f"unit = {self.unit})", "",
               f"| arm | n | {rate} | p95 latency (ms) | error rate | review rate |",
               "|---|---|---|---|---|---|"]
        for a in self.arms:
            out.append(f"| {a.arm} | {a.n:,} | {a.mean:.4g} | {_fmt(a.latency_p95_ms, '.1f')} | "
                       f"{_fmt(a.error_rate, '.2%')} | {_fmt(a.review_rate, '.2%')} |")
        ci = round((1 - self.alpha) * 100)
        out += ["", f"| arm vs control | diff | {ci}% CI | lift | test | p-value | always-valid p (mSPRT) "
                f"| guardrails |", "|---|---|---|---|---|---|---|---|"]
        for c in self.comparisons:
            out.append(f"| {c.arm} vs {c.control} | {c.diff:+.4g} | [{c.ci_low:+.4g}, {c.ci_high:+.4g}] | "
                       f"{_fmt(c.relative_lift, '+.2%')} | {c.test} | {c.p_value:.4g} | "
                       f"{c.sequential.p_value:.4g} | {'ok' if c.guardrails_ok else 'FAILED'} |")
        out += ["", f"Sample ratio: chi² = {self.srm.chi2:.3g}, p = {self.srm.p_value:.3g} "
                f"({'MISMATCH' if self.srm.mismatch else 'ok'}); observed {self.srm.observed}", "",
                f"**Verdict: {self.verdict}**"]
        out += [f"- {r}" for r in self.reasons]
        if self.notes:
            out += ["", *[f"> {n}" for n in self.notes]]
        return "\n".join(out)


def _fmt(v: float, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# --------------------------------------------------------------------------------------------- units

def _flag_column(df: pd.DataFrame) -> pd.Series | None:
    """A per-prediction error flag from whatever the log records (``error`` text or HTTP ``status``)."""
    if "error" in df.columns:
        e = df["error"]
        s = e.astype(str).str.strip()
        return e.notna() & ~s.isin(["", "False", "0", "None"])
    if "status" in df.columns:
        s = pd.to_numeric(df["status"], errors="coerce")
        return s >= 400
    return None


def _time_column(df: pd.DataFrame) -> str | None:
    for c in ("ts", "time", "timestamp", "created", "created_at"):
        if c in df.columns:
            return c
    return None


def build_units(predictions: pd.DataFrame, outcomes: pd.DataFrame | None, metric: str, *,
                unit: Unit = "auto", kind: MetricKind = "auto") -> tuple[pd.DataFrame, str, str]:
    """One row per experimental unit: ``unit``, ``arm``, ``order`` (first exposure), ``value``.

    Returns ``(units, unit_used, kind_used)``.
    """
    if "arm" not in predictions.columns:
        raise DataError("predictions: no 'arm' column; log predictions through an A/B experiment "
                        "(transferops serve --ab control=...,treatment=...)")
    preds = predictions[predictions["arm"].notna()].copy()
    if preds.empty:
        raise DataError("predictions: no prediction carries an arm; nothing to analyse")
    has_key = "ab_key" in preds.columns and preds["ab_key"].notna().any()
    if unit == "auto":
        unit = "key" if has_key else "prediction"
    if unit == "key" and not has_key:
        raise DataError("unit=key but the log has no ab_key values; use unit=prediction")
    if "id" not in preds.columns:
        preds["id"] = [f"row-{i}" for i in range(len(preds))]
    preds["id"] = preds["id"].astype(str)
    if unit == "key":
        # a prediction logged without a key is its own unit rather than one big "None" user
        keyed = preds["ab_key"].notna()
        preds["_unit"] = preds["ab_key"].astype(str).where(keyed, "prediction:" + preds["id"])
    else:
        preds["_unit"] = preds["id"]
    tcol = _time_column(preds)
    preds["_order"] = preds[tcol] if tcol else np.arange(len(preds))
    preds = preds.sort_values("_order", kind="stable")
    first = preds.groupby("_unit", sort=False).agg(arm=("arm", "first"), order=("_order", "first"),
                                                    n_arms=("arm", "nunique"))
    units = first.reset_index().rename(columns={"_unit": "unit"})

    values = pd.Series(dtype=float)
    if outcomes is not None and len(outcomes):
        o = outcomes[outcomes["metric"].astype(str) == metric].copy() if "metric" in outcomes.columns else \
            outcomes.iloc[0:0]
        if len(o):
            o["value"] = pd.to_numeric(o["value"], errors="coerce")
            id_to_unit = dict(zip(preds["id"], preds["_unit"], strict=True))
            pid = o["prediction_id"] if "prediction_id" in o.columns else pd.Series(None, index=o.index)
            key = o["key"] if "key" in o.columns else pd.Series(None, index=o.index)
            mapped = []
            for p, k in zip(pid, key, strict=True):
                if p is not None and not (isinstance(p, float) and math.isnan(p)) and str(p) in id_to_unit:
                    mapped.append(id_to_unit[str(p)])
                elif k is not None and not (isinstance(k, float) and math.isnan(k)):
                    mapped.append(str(k) if unit == "key" else None)
                else:
                    mapped.append(None)
            o["_unit"] = mapped
            o = o[o["_unit"].notna() & o["value"].notna()]
            vals = o["value"].to_numpy(dtype=float)
            if kind == "auto":
                kind = "binary" if len(vals) and np.isin(vals, (0.0, 1.0)).all() else "continuous"
            agg = "max" if kind == "binary" else "sum"
            values = o.groupby("_unit")["value"].agg(agg)
    if kind == "auto":
        kind = "binary"
    if kind == "binary" and len(values) and not np.isin(values.to_numpy(dtype=float), (0.0, 1.0)).all():
        raise DataError(f"metric {metric!r}: values other than 0/1 were recorded; analyse it with "
                        "kind=continuous")
    units["value"] = units["unit"].map(values).fillna(0.0).astype(float)
    return units, unit, kind


def _guardrails(preds: pd.DataFrame, error_ids: set[str] | None = None) -> tuple[float, float, float]:
    lat = pd.to_numeric(preds["latency_ms"], errors="coerce").dropna() if "latency_ms" in preds else \
        pd.Series(dtype=float)
    p95 = float(np.percentile(lat, 95)) if len(lat) else float("nan")
    flag = _flag_column(preds)
    if flag is None and error_ids is not None and "id" in preds.columns:
        flag = preds["id"].astype(str).isin(error_ids)
    err = float(flag.mean()) if flag is not None and len(preds) else float("nan")
    rev = float((preds["route"].astype(str) == "review").mean()) if "route" in preds and len(preds) else \
        float("nan")
    return p95, err, rev


# ------------------------------------------------------------------------------------------- tests

def two_proportion_test(x1: float, n1: int, x2: float, n2: int, alpha: float = 0.05
                        ) -> tuple[float, float, float, float, float]:
    """``(diff, ci_low, ci_high, z, p)`` for ``p2 − p1``: Wald (unpooled) CI, pooled-variance z-test."""
    p1, p2 = x1 / n1, x2 / n2
    diff = p2 - p1
    se_unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    zc = float(stats.norm.ppf(1 - alpha / 2))
    pp = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pp * (1 - pp) * (1 / n1 + 1 / n2))
    if se_pooled == 0:
        return diff, diff, diff, 0.0, 1.0
    z = diff / se_pooled
    p = float(2 * stats.norm.sf(abs(z)))
    return diff, diff - zc * se_unpooled, diff + zc * se_unpooled, float(z), p


def welch_test(a: np.ndarray, b: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float, float, float]:
    """``(diff, ci_low, ci_high, t, p)`` for ``mean(b) − mean(a)`` with Welch–Satterthwaite df."""
    n1, n2 = len(a), len(b)
    v1, v2 = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    diff = float(np.mean(b) - np.mean(a))
    se2 = v1 / n1 + v2 / n2
    if se2 == 0:
        return diff, diff, diff, 0.0, 1.0
    df = se2**2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    t = diff / math.sqrt(se2)
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * math.sqrt(se2)
    return diff, diff - half, diff + half, float(t), p


def srm_check(counts: Mapping[str, int], split: Mapping[str, float] | None = None,
              alpha: float = 0.001) -> SRMCheck:
    """Chi-square goodness of fit of units per arm against the planned split (equal when omitted)."""
    arms = list(counts)
    obs = np.asarray([counts[a] for a in arms], dtype=float)
    if split:
        missing = [a for a in arms if a not in split]
        if missing:
            raise ConfigError(f"split: no planned share for arm(s) {missing}; give one per arm")
        w = np.asarray([float(split[a]) for a in arms])
    else:
        w = np.ones(len(arms))
    w = w / w.sum()
    chi2, p = stats.chisquare(obs, f_exp=w * obs.sum())
    return SRMCheck(observed={a: int(c) for a, c in zip(arms, obs, strict=True)},
                    expected_share={a: float(x) for a, x in zip(arms, w, strict=True)},
                    chi2=float(chi2), p_value=float(p), mismatch=bool(p < alpha))


# ------------------------------------------------------------------------------------------ analysis

def analyze_experiment(predictions: pd.DataFrame, outcomes: pd.DataFrame | None = None,
                       config: AnalysisConfig | None = None, /, *, experiment: str | None = None,
                       **kwargs: Any) -> ABResult:
    """Analyse one experiment.

    ``predictions``: one row per logged prediction with ``arm`` (and ideally ``id``, ``ab_key``,
    ``latency_ms``, ``route``, a time column). ``outcomes``: ``prediction_id`` and/or ``key``,
    ``metric``, ``value``.

    >>> preds = pd.DataFrame({"id": [str(i) for i in range(400)], "ab_key": [f"u{i}" for i in range(400)],
    ...                       "arm": ["control", "treatment"] * 200, "latency_ms": 10.0, "route": "auto"})
    >>> outs = pd.DataFrame({"prediction_id": [str(i) for i in range(0, 400, 3)], "metric": "conversion",
    ...                      "value": 1})
    >>> analyze_experiment(preds, outs).verdict
    'inconclusive'
    """
    cfg = config if config is not None else AnalysisConfig(**kwargs)
    if predictions is None or len(predictions) == 0:
        raise DataError(f"experiment {experiment or ''!r}: no predictions logged; send traffic through "
                        "POST /v1/experiments/{experiment}/predict first")
    if experiment is not None and "experiment" in predictions.columns:
        predictions = predictions[predictions["experiment"].astype(str) == experiment]
        if predictions.empty:
            raise DataError(f"experiment {experiment!r}: no predictions logged for this experiment")
    units, unit_used, kind = build_units(predictions, outcomes, cfg.metric, unit=cfg.unit, kind=cfg.kind)
    arms = sorted(units["arm"].astype(str).unique())
    if len(arms) < 2:
        raise DataError(f"experiment {experiment or ''!r}: only one arm ({arms[0]!r}) has data; an A/B "
                        "analysis needs the control and at least one treatment")
    if cfg.control not in arms:
        raise ConfigError(f"control: arm {cfg.control!r} has no data; arms seen: {arms} "
                          "(pass --control NAME)")
    notes: list[str] = []
    multi = int((units["n_arms"] > 1).sum())
    if multi:
        notes.append(f"{multi} unit(s) appeared in more than one arm (kept in their first arm); "
                     "assignment should be sticky per key")
    if outcomes is None or not len(outcomes) or not (
            "metric" in outcomes.columns and (outcomes["metric"].astype(str) == cfg.metric).any()):
        notes.append(f"no outcomes recorded for metric {cfg.metric!r}: every unit counts as 0")

    ordered = [cfg.control, *[a for a in arms if a != cfg.control]]
    preds = predictions[predictions["arm"].notna()]
    error_ids = _error_ids(outcomes)
    if _flag_column(preds) is None and error_ids is None:
        notes.append("error rate n/a: the log has no error column and no 'error' outcomes were recorded")
    summaries: dict[str, ArmSummary] = {}
    for a in ordered:
        v = units.loc[units["arm"] == a, "value"].to_numpy(dtype=float)
        p95, err, rev = _guardrails(preds[preds["arm"].astype(str) == a], error_ids)
        summaries[a] = ArmSummary(arm=a, n=len(v), mean=float(v.mean()) if len(v) else float("nan"),
                                  std=float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
                                  total=float(v.sum()),
                                  predictions=int((preds["arm"].astype(str) == a).sum()),
                                  latency_p95_ms=p95, error_rate=err, review_rate=rev)

    srm = srm_check({a: summaries[a].n for a in ordered}, cfg.split, cfg.srm_alpha)
    units_sorted = units.sort_values("order", kind="stable")
    g = cfg.guardrails
    comparisons: list[Comparison] = []
    c = summaries[cfg.control]
    vc = units.loc[units["arm"] == cfg.control, "value"].to_numpy(dtype=float)
    for a in ordered[1:]:
        s = summaries[a]
        vt = units.loc[units["arm"] == a, "value"].to_numpy(dtype=float)
        if kind == "binary":
            diff, lo, hi, stat, p = two_proportion_test(vc.sum(), len(vc), vt.sum(), len(vt), cfg.alpha)
            test = "two-proportion z"
        else:
            if len(vc) < 2 or len(vt) < 2:
                raise DataError(f"arm {a!r} or {cfg.control!r}: fewer than 2 units; Welch's test needs more")
            diff, lo, hi, stat, p = welch_test(vc, vt, cfg.alpha)
            test = "Welch t"
        pair = units_sorted[units_sorted["arm"].isin([cfg.control, a])]
        seq = msprt(pair["value"].to_numpy(dtype=float), (pair["arm"] == a).to_numpy(), tau=cfg.msprt_tau,
                    alpha=cfg.alpha)
        guard = {
            "latency_p95_ms": _guard(c.latency_p95_ms, s.latency_p95_ms,
                                     c.latency_p95_ms * (1 + g.latency_p95_increase)),
            "error_rate": _guard(c.error_rate, s.error_rate, c.error_rate + g.error_rate_increase),
            "review_rate": _guard(c.review_rate, s.review_rate, c.review_rate + g.review_rate_increase),
        }
        ok = all(v["ok"] for v in guard.values())
        sd = c.std if kind == "continuous" else math.sqrt(max(c.mean * (1 - c.mean), 0.0))
        za, zb = float(stats.norm.ppf(1 - cfg.alpha / 2)), float(stats.norm.ppf(0.8))
        mde = (za + zb) * sd * math.sqrt(1 / max(len(vc), 1) + 1 / max(len(vt), 1))
        comparisons.append(Comparison(
            arm=a, control=cfg.control, test=test, diff=diff, ci_low=lo, ci_high=hi,
            relative_lift=diff / c.mean if c.mean else float("nan"), statistic=stat, p_value=p,
            significant=bool(p < cfg.alpha), sequential=seq, guardrails=guard, guardrails_ok=ok,
            detectable_effect=float(mde)))

    verdict, reasons = _verdict(comparisons, srm, cfg.alpha)
    if len(comparisons) > 1:
        notes.append(f"{len(comparisons)} treatment arms were each compared with {cfg.control} at alpha "
                     f"{cfg.alpha:g}; for a family-wise error of {cfg.alpha:g} use --alpha "
                     f"{cfg.alpha / len(comparisons):.3g} (Bonferroni)")
    notes.append("the mSPRT p-value is always valid (may be checked at any time); the z/Welch p-value is "
                 "valid only at the planned sample size")
    return ABResult(experiment=experiment, metric=cfg.metric, kind=kind, unit=unit_used, alpha=cfg.alpha,
                    arms=[summaries[a] for a in ordered], comparisons=comparisons, srm=srm, verdict=verdict,
                    reasons=reasons, notes=notes)


def _error_ids(outcomes: pd.DataFrame | None) -> set[str] | None:
    """Prediction ids a client reported as failed (outcome metric ``error`` with a value > 0)."""
    if outcomes is None or not len(outcomes) or "metric" not in outcomes.columns \
            or "prediction_id" not in outcomes.columns:
        return None
    e = outcomes[outcomes["metric"].astype(str) == "error"]
    if e.empty:
        return None
    bad = e[pd.to_numeric(e["value"], errors="coerce") > 0]
    return set(bad["prediction_id"].dropna().astype(str))


def _jsonable(obj: Any) -> Any:
    """NaN/inf → None so the JSON output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _guard(control: float, treatment: float, limit: float) -> dict[str, Any]:
    # A guardrail that was not logged (NaN) cannot fail; it is reported as n/a.
    ok = bool(math.isnan(treatment) or math.isnan(limit) or treatment <= limit + 1e-12)
    return {"control": control, "treatment": treatment, "limit": limit, "ok": ok}


def _verdict(comparisons: Sequence[Comparison], srm: SRMCheck, alpha: float) -> tuple[str, list[str]]:
    if srm.mismatch:
        return "invalid: sample ratio mismatch", [
            f"units per arm {srm.observed} differ from the planned split {srm.expected_share} "
            f"(chi-square p = {srm.p_value:.2g}); fix assignment or logging before reading the results"]
    failed = [(c.arm, k) for c in comparisons for k, v in c.guardrails.items() if not v["ok"]]
    if failed:
        return "guardrail failed", [f"{arm}: {k} worse than control beyond the margin" for arm, k in failed]
    winners = [c for c in comparisons if c.significant and c.diff > 0]
    losers = [c for c in comparisons if c.significant and c.diff < 0]
    if winners:
        best = max(winners, key=lambda c: c.diff)
        return "ship", [f"{best.arm} beats {best.control} by {best.diff:+.4g} (p = {best.p_value:.2g}, "
                        f"CI [{best.ci_low:+.4g}, {best.ci_high:+.4g}])"]
    if losers:
        return "keep control", [f"{c.arm} is worse than {c.control} by {c.diff:+.4g} (p = {c.p_value:.2g})"
                                for c in losers]
    return "inconclusive", [f"{c.arm}: no significant difference at alpha {alpha:g} (p = {c.p_value:.2g}); "
                            f"with this n the test could detect about ±{c.detectable_effect:.3g}"
                            for c in comparisons]
