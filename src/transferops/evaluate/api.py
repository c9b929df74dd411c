"""``evaluate`` and ``calibrate``: the public entry points of the evaluation stage."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferops._progress import say
from transferops.artifacts.manifest import Manifest
from transferops.constants import REFERENCE_PROFILE, TEXT_COL
from transferops.decision import DecisionRule
from transferops.errors import ConfigError, DataError
from transferops.evaluate import metrics as M
from transferops.evaluate.calibration import N_BINS, calibrate_logits, ece, reliability, scale
from transferops.evaluate.data import EvalData, default_split, encode_frame_labels, load_eval_data
from transferops.evaluate.gates import Gates, check_gates, load_gates
from transferops.evaluate.report import EvaluationReport
from transferops.evaluate.thresholds import (
    ThresholdTarget,
    choose_label_thresholds,
    choose_threshold,
    curve,
    operating_point,
    parse_target,
)
from transferops.modality import Modality, get_modality
from transferops.modality.text import LENGTH_SLICE as _TEXT_LENGTH_SLICE

#: Automatic slice column of text models: character-length quartiles (owned by the text modality).
LENGTH_SLICE = _TEXT_LENGTH_SLICE
#: Slices smaller than this are flagged "low support" in reports (gates use their own min_support).
DEFAULT_MIN_SUPPORT = 20
_MAX_CURVE_POINTS = 300


def _load_model(model_or_path: Any) -> Any:
    if isinstance(model_or_path, (str, Path)):
        import transferops

        return transferops.load(model_or_path)
    for attr in ("predict_proba", "labels", "task"):
        if not hasattr(model_or_path, attr):
            raise ConfigError(f"model: expected a model folder or an object with predict_proba, labels, task "
                              f"and manifest; {type(model_or_path).__name__} has no '{attr}'")
    return model_or_path


def _probabilities(model: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(calibrated proba, uncalibrated proba or None, logits or None) with one forward pass."""
    if hasattr(model, "logits") and hasattr(model, "proba_from_logits"):
        try:
            logits = np.asarray(model.logits(texts), dtype=np.float64)
            cal = np.asarray(model.proba_from_logits(logits), dtype=np.float64)
            raw = np.asarray(model.proba_from_logits(logits, calibrated=False), dtype=np.float64)
            return cal, raw, logits
        except (TypeError, NotImplementedError, AttributeError):
            pass
    return np.asarray(model.predict_proba(texts), dtype=np.float64), None, None


def _thin(c: dict[str, list[float]], n: int = _MAX_CURVE_POINTS) -> dict[str, list[float]]:
    """Keep at most ``n`` evenly spaced points of a curve (reports stay small)."""
    m = len(next(iter(c.values()), []))
    if m <= n:
        return c
    idx = np.unique(np.linspace(0, m - 1, n).round().astype(int))
    return {k: [v[i] for i in idx] for k, v in c.items()}


def _modality_of(model: Any) -> Modality:
    """The model's input modality (text unless the model says otherwise)."""
    return get_modality(getattr(model, "modality", None) or "text")


def _positive_index(model: Any) -> int:
    return int((getattr(model, "manifest", None) or {}).get("positive_index", 1))


def _slices(ed: EvalData, columns: list[str], y: np.ndarray, pred: np.ndarray, labels: list[str], *,
            multilabel: bool, positive_index: int, min_support: dict[str, int], sort_metric: str,
            modality: Modality) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    frame = ed.frame
    auto = [c for c in columns if c in modality.auto_slice_names and c not in frame.columns]
    auto_values = {k: v for k, v in modality.auto_slices(ed.texts).items() if k in auto} if auto else {}
    for col in columns:
        values = (pd.Series(auto_values[col]) if col in auto_values
                  else frame[col].astype("string").fillna("<missing>"))
        rows = []
        for val, idx in values.groupby(values, sort=True).indices.items():
            s = M.slice_metrics(y[idx], pred[idx], len(labels), multilabel=multilabel,
                                positive_index=positive_index)
            s["class_recall"] = {labels[j]: v for j, v in s["class_recall"].items()}
            s["class_support"] = {labels[j]: v for j, v in s["class_support"].items()}
            low = s["support"] < min_support.get(col, DEFAULT_MIN_SUPPORT)
            rows.append({"column": col, "value": str(val), **s, "low_support": low})
        # Worst first within a column; low-support slices after the ones that can be judged.
        rows.sort(key=lambda r: (r["low_support"], _key(r.get(sort_metric))))
        out.extend(rows)
    return out


def _key(v: Any) -> float:
    return float("inf") if v is None or np.isnan(v) else float(v)


def _calibration_section(model: Any, y: np.ndarray, proba: np.ndarray, raw: np.ndarray | None,
                         logits: np.ndarray | None, multilabel: bool, preview: bool) -> dict[str, Any]:
    t = float(getattr(model, "temperature", 1.0) or 1.0)
    before = raw if raw is not None else proba
    sec: dict[str, Any] = {"bins": N_BINS, "temperature": t, "ece_before": ece(before, y),
                           "reliability_before": reliability(before, y)}
    if raw is not None and abs(t - 1.0) > 1e-9:
        sec.update(source="stored", ece_after=ece(proba, y), reliability_after=reliability(proba, y))
        return sec
    sec["source"] = "none"
    if preview and logits is not None and hasattr(model, "split"):
        # Not calibrated: show what temperature scaling fitted on validation *would* do (not applied).
        try:
            val = default_split(model, "validation")
        except Exception:
            return sec
        yv, keep, _ = encode_frame_labels(val, model.labels, multilabel, ignore_unknown=True)
        if len(yv) < 2:
            return sec
        vlog = np.asarray(model.logits(val[TEXT_COL][keep].tolist()), dtype=np.float64)
        res = calibrate_logits(vlog, yv, multilabel=multilabel)
        after = scale(logits, res.temperature, multilabel=multilabel)
        sec.update(source="preview", temperature=res.temperature, ece_after=ece(after, y),
                   reliability_after=reliability(after, y))
    return sec


def _threshold_section(model: Any, y: np.ndarray, proba: np.ndarray, labels: list[str], multilabel: bool
                       ) -> dict[str, Any]:
    manifest = getattr(model, "manifest", None) or {}
    if multilabel:
        th = manifest.get("thresholds") or {}
        c = curve(proba.ravel(), y.ravel())
        return {"kind": "multilabel", "curve": _thin(c), "thresholds": {lbl: float(th.get(lbl, 0.5))
                                                                         for lbl in labels},
                "x_label": "threshold (same for every label)"}
    if len(labels) == 2:
        pos = _positive_index(model)
        t = float(manifest.get("decision_threshold", 0.5))
        yb = y == pos
        sec = {"kind": "binary", "positive": labels[pos], "curve": _thin(curve(proba[:, pos], yb)),
               "current": operating_point(proba[:, pos], yb, t).to_dict(),
               "target": manifest.get("threshold_target"), "x_label": f"threshold on P({labels[pos]})"}
        return sec
    # Multi-class: confidence threshold for automatic decisions (below it, route to a human), with
    # the model's own rule and confidence (the ones review routing uses; offsets move it off argmax).
    rule = DecisionRule.from_manifest(manifest, labels=labels, multilabel=False)
    decided = rule.decide(proba)
    conf = rule.confidence(proba, decided)
    correct = decided == y
    grid = np.linspace(0.0, 1.0, 101)
    cov = [(conf >= g).mean() for g in grid]
    acc = [float(correct[conf >= g].mean()) if (conf >= g).any() else float("nan") for g in grid]
    return {"kind": "confidence", "curve": {"threshold": grid.tolist(), "precision": acc, "recall": cov},
            "x_label": "confidence threshold (probability of the decided class)",
            "series": {"precision": "accuracy of decided rows", "recall": "coverage (share decided)"}}


def evaluate(
    model_or_path: Any,
    data: str | Path | pd.DataFrame | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_columns: list[str] | None = None,
    label_sep: str | None = None,
    slices: Sequence[str] = (),
    auto_slices: bool = True,
    gates: Gates | Mapping[str, Any] | str | Path | None = None,
    report: str | Path | None = None,
    json_path: str | Path | None = None,
    ignore_unknown_labels: bool = False,
    n_bootstrap: int = 1000,
    seed: int = 0,
    min_support: int = DEFAULT_MIN_SUPPORT,
    calibration_preview: bool = True,
    record: bool = True,
    robustness: bool | Sequence[str] = False,
    robustness_rate: float | None = None,
) -> EvaluationReport:
    """Evaluate a model (folder or any object with ``predict_proba``, ``labels``, ``task``, ``manifest``).

    Default data is the model's own test split; that use is recorded (test-set discipline).

    >>> rep = evaluate("runs/news", slices=["source"], gates={"macro_f1": ">= 0.85"},
    ...                report="report.html")                                  # doctest: +SKIP
    >>> rep.passed, rep.metrics["macro_f1"]                                    # doctest: +SKIP
    (True, 0.962)

    ``robustness=True`` (or a list of perturbation names) also scores the same rows under each
    text perturbation of :mod:`transferops.modality.augment` at ``robustness_rate`` (share of words
    touched; default 0.15) and adds clean vs perturbed metrics per class to the report.
    """
    robust_names: list[str] | None = None
    if robustness is not False and robustness is not True:
        from transferops.modality.augment import check_perturbations

        robust_names = check_perturbations(list(robustness), "robustness")
    if robustness_rate is not None:
        from transferops._validation import Interval, check_param

        check_param("robustness_rate", robustness_rate, Interval(Real, 0.0, 1.0, closed="right"))
    model = _load_model(model_or_path)
    g = load_gates(gates)
    labels = list(model.labels)
    multilabel = model.task == "multilabel"
    manifest = Manifest.from_dict(getattr(model, "manifest", None) or {}, warn_unknown=False)
    cols = list(dict.fromkeys([*slices, *g.slice_columns()]))
    modality = _modality_of(model)
    user_cols = [c for c in cols if c not in modality.auto_slice_names]
    ed = load_eval_data(model, data, text_column=text_column, label_column=label_column,
                        label_columns=label_columns, label_sep=label_sep, slices=user_cols,
                        ignore_unknown_labels=ignore_unknown_labels)
    warns: list[str] = list(ed.warnings)
    if ed.dropped_unknown:
        n = sum(ed.dropped_unknown.values())
        warns.append(f"dropped rows with labels the model never saw: {ed.dropped_unknown} "
                     f"({n} label occurrences)")
    if data is None:  # slices the model was trained with are in its saved splits: evaluate them too
        trained = (manifest.get("data") or {}).get("columns", {}).get("slices") or []
        cols = list(dict.fromkeys([*cols, *[c for c in trained if c in ed.frame.columns]]))
    if auto_slices:
        cols.extend(c for c in modality.auto_slice_names if c not in cols)

    say(f"evaluating {manifest.name or type(model).__name__} on {ed.source} ({len(ed.frame)} rows) ...")
    proba, raw, logits = _probabilities(model, ed.texts)
    if proba.shape != (len(ed.frame), len(labels)):
        raise DataError(f"model returned probabilities of shape {proba.shape}; expected "
                        f"({len(ed.frame)}, {len(labels)})")
    y = ed.y
    pos = _positive_index(model)
    pred = M.predictions(proba, manifest, labels, multilabel)
    metrics = M.aggregate(y, proba, pred, multilabel=multilabel, positive_index=pos)
    ci = M.bootstrap_ci(y, pred, len(labels), multilabel=multilabel, n=n_bootstrap, seed=seed,
                        positive_index=pos)
    slice_metric = next((s.metric for s in g.slices), "recall" if len(labels) == 2 else
                        ("f1" if multilabel else "macro_f1"))
    # A gated column flags "low support" at its gate's min_support, so report and gate agree.
    support_by_col = {c: min_support for c in cols}
    for sg in g.slices:
        support_by_col[sg.column] = sg.min_support
    slice_rows = _slices(ed, cols, y, pred, labels, multilabel=multilabel, positive_index=pos,
                         min_support=support_by_col, sort_metric=slice_metric, modality=modality)
    baseline = manifest.get("baseline") or {}
    if baseline and not ed.is_test_split:
        warns.append("baseline metrics come from the model's test split, not from this data; "
                     "compare with care")
    if ed.is_test_split and ed.sha256 and record:
        from transferops.evaluate.discipline import TestSetReuseWarning, record_test_evaluation

        for w in record_test_evaluation(model, ed.sha256):
            warnings.warn(w, TestSetReuseWarning, stacklevel=2)
            warns.append(w)

    counts = y.sum(axis=0) if multilabel else np.bincount(y, minlength=len(labels))
    rep = EvaluationReport(
        model={"name": manifest.name or type(model).__name__,
               "path": str(getattr(model, "path", "")) or None,
               "base": manifest.base.name if manifest.base else None,
               "strategy": manifest.strategy_name or None,
               "temperature": float(getattr(model, "temperature", 1.0) or 1.0),
               "decision_threshold": manifest.get("decision_threshold"),
               "thresholds": manifest.get("thresholds"),
               "kind": manifest.kind, "search": manifest.get("search"),
               "decision": manifest.get("decision"), "learning_curve": manifest.get("learning_curve")},
        data={"source": ed.source, "n": len(ed.frame), "split": ed.split, "sha256": ed.sha256,
              "dropped_unknown": ed.dropped_unknown,
              "label_counts": dict(zip(labels, counts.tolist(), strict=True))},
        task=model.task, labels=labels, metrics=metrics, ci=ci,
        per_class=M.per_class(y, proba, pred, labels, multilabel=multilabel),
        confusion=M.confusion(y, pred, len(labels), multilabel=multilabel), slices=slice_rows,
        baseline={k: v for k, v in baseline.items() if isinstance(v, dict)},
        calibration=_calibration_section(model, y, proba, raw, logits, multilabel, calibration_preview),
        threshold=_threshold_section(model, y, proba, labels, multilabel),
        warnings=warns,
        settings={"n_bootstrap": n_bootstrap, "seed": seed, "min_support": min_support,
                  "slice_columns": cols, "slice_metric": slice_metric, "gates": g.to_dict()},
    )
    if robustness is not False:
        from transferops.evaluate.robustness import DEFAULT_ROBUSTNESS_RATE, robustness_section

        rate = robustness_rate if robustness_rate is not None else DEFAULT_ROBUSTNESS_RATE
        say(f"robustness: scoring {len(ed.frame)} rows under {len(robust_names) if robust_names else 'every'} "
            f"perturbation at rate {rate} ...")
        rep.robustness = robustness_section(
            model, ed.texts, y, proba, pred, labels=labels, manifest=manifest, multilabel=multilabel,
            positive_index=pos, perturbations=robust_names, rate=rate, seed=seed,
            predict=lambda t: _probabilities(model, t)[0])
    rep.gates = check_gates(rep, g)
    if json_path:
        rep.to_json(json_path)
    if report:
        rep.to_html(report)
    return rep


# --------------------------------------------------------------------------- calibrate


@dataclass
class CalibrateResult:
    """What ``calibrate`` stored and the operating point it gives on validation and test."""

    path: Path
    temperature: float | None
    ece_before: float | None
    ece_after: float | None
    target: str | None
    positive: str | None = None
    threshold: float | None = None
    thresholds: dict[str, float] | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: the artifact's monitoring reference profile was rebuilt under the new decision rule
    profile_refreshed: bool = False

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["path"] = str(self.path)
        return d

    def summary(self) -> str:
        lines = [f"calibrated {self.path}"]
        if self.temperature is not None:
            lines.append(f"  temperature {self.temperature:.3f}: validation ECE {self.ece_before:.4f} → "
                         f"{self.ece_after:.4f}")
        if self.threshold is not None:
            v, t = self.validation, self.test
            lines.append(f"  threshold {self.threshold:.4f} on P({self.positive}) for {self.target}")
            for name, op in (("validation", v), ("test", t)):
                if op:
                    lines.append(f"    {name:<10} precision {op['precision']:.4f}  "
                                 f"recall {op['recall']:.4f}  F1 {op['f1']:.4f}  "
                                 f"specificity {op['specificity']:.4f}")
        if self.thresholds:
            lines.append(f"  per-label thresholds ({self.target}): "
                         + ", ".join(f"{k}={v:.2f}" for k, v in self.thresholds.items()))
            for name, op in (("validation", self.validation), ("test", self.test)):
                if op:
                    lines.append(f"    {name:<10} micro-F1 {op['micro_f1']:.4f}  "
                                 f"macro-F1 {op['macro_f1']:.4f}")
        if self.profile_refreshed:
            lines.append("  monitoring reference profile rebuilt under the new decision rule")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def calibrate(path: str | Path, *, target: str | ThresholdTarget | None = None, positive: str | None = None,
              temperature: bool = True, report_test: bool = True) -> CalibrateResult:
    """Fit temperature scaling and decision thresholds on the validation split; store them in the artifact.

    Binary: a threshold on P(positive) for ``target`` (default max-F1). Multi-label: per-label thresholds.
    Multi-class: temperature only (``target`` is an error). The operating point is then reported on test.

    >>> calibrate("runs/retina", target="recall>=0.95", positive="referable").threshold   # doctest: +SKIP
    0.32
    """
    from transferops.artifacts import load, update_manifest

    model = load(path)  # a single model or an ensemble folder
    labels, multilabel = model.labels, model.task == "multilabel"
    if len(labels) > 2 and not multilabel and (target is not None or positive is not None):
        raise ConfigError("target: decision thresholds apply to binary and multi-label models; this "
                          f"model is multi-class ({len(labels)} classes) and decides by argmax. Drop "
                          "--target/--positive to fit the temperature only.")
    val = model.split("validation")
    yv, keep, _ = encode_frame_labels(val, labels, multilabel, ignore_unknown=False,
                                      source="validation split")
    vlog = model.logits(val[TEXT_COL][keep].tolist())
    res = CalibrateResult(Path(path), None, None, None, None)
    changes: dict[str, Any] = {}
    t = 1.0
    if temperature:
        cal = calibrate_logits(vlog, yv, multilabel=multilabel)
        t = cal.temperature
        res.temperature, res.ece_before, res.ece_after = cal.temperature, cal.ece_before, cal.ece_after
        changes["calibration"] = cal.manifest_entry()
    elif model.temperature != 1.0:
        t = model.temperature
    pv = scale(vlog, t, multilabel=multilabel)
    tgt = parse_target(target) if (target is not None or len(labels) == 2 or multilabel) else None
    test_df = None
    if report_test and tgt is not None:
        test_df = model.split("test")
    if tgt is not None and multilabel:
        th = choose_label_thresholds(pv, yv, labels, tgt)
        res.target, res.thresholds = str(tgt), th
        changes["thresholds"] = th
        changes["threshold_target"] = str(tgt)
        tv = np.asarray([th[lbl] for lbl in labels])
        res.validation = _ml_point(yv, pv, tv)
        if test_df is not None:
            yt, kt, _ = encode_frame_labels(test_df, labels, True, ignore_unknown=True)
            pt = scale(model.logits(test_df[TEXT_COL][kt].tolist()), t, multilabel=True)
            res.test = _ml_point(yt, pt, tv)
    elif tgt is not None:
        if positive is not None and positive not in labels:
            raise ConfigError(f"positive: {positive!r} is not one of the model's labels "
                              f"({', '.join(labels)})")
        pos = labels.index(positive) if positive is not None else 1
        op = choose_threshold(pv[:, pos], yv == pos, tgt)
        if tgt.kind == "precision" and op.precision < (tgt.value or 0):
            res.warnings.append(f"no threshold reaches precision {tgt.value:g} on validation; using the most "
                                f"precise one ({op.precision:.3f})")
        res.target, res.positive, res.threshold = str(tgt), labels[pos], op.threshold
        res.validation = op.to_dict()
        changes.update(decision_threshold=op.threshold, positive_index=pos, threshold_target=str(tgt))
        if test_df is not None:
            yt, kt, _ = encode_frame_labels(test_df, labels, False, ignore_unknown=True)
            pt = scale(model.logits(test_df[TEXT_COL][kt].tolist()), t)
            res.test = operating_point(pt[:, pos], yt == pos, op.threshold).to_dict()
    if changes:
        update_manifest(path, **changes)
        if (Path(path) / REFERENCE_PROFILE).exists():
            # The decision rule changed: the monitoring profile (class mix, confidence) is rebuilt
            # under it, or drift would compare live traffic with decisions the model no longer makes.
            from transferops.monitor.profile import refresh_profile

            res.profile_refreshed = refresh_profile(path)
    if res.test:
        sha = model.manifest.test_sha256
        if sha:
            from transferops.evaluate.discipline import record_test_evaluation

            model.manifest = Manifest.from_dict({**model.manifest, **changes}, path=model.path)
            res.warnings += record_test_evaluation(model, sha, kind="calibrate")
    return res


def _ml_point(y: np.ndarray, p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    from transferops.metrics import label_metrics

    m = label_metrics(y, (p >= t).astype(int), multilabel=True)
    return {k: m[k] for k in ("micro_f1", "macro_f1", "micro_precision", "micro_recall")}
