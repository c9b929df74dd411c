"""``evaluate`` for a tabular model: per-class metrics, slices, calibration, thresholds, and the
random-split vs time-split comparison recorded at training — as JSON and Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transferops.errors import DataError


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error of the positive class (equal-width bins), Brier score and the bins."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        conf, acc = float(p[m].mean()), float(y[m].mean())
        ece += m.mean() * abs(conf - acc)
        rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(m.sum()), "mean_predicted": round(conf, 4),
                     "observed_rate": round(acc, 4)})
    return {"ece": round(float(ece), 4), "brier": round(float(np.mean((p - y) ** 2)), 4), "bins": rows}


def evaluate_tabular(model_dir: str | Path, *, data: str | Path | None = None, slices: list[str] | None = None,
                     targets: tuple[str, ...] = ("max-f1", "recall>=0.89", "recall>=0.95", "precision>=0.9"),
                     min_support: int = 20) -> dict[str, Any]:
    from sklearn.metrics import classification_report

    from transferops.tabular.api import read_rows, scores
    from transferops.tabular.artifact import TabularModel

    model = TabularModel(model_dir)
    label = model.schema.label
    df = model.split("test") if data is None else read_rows(data)
    if label not in df.columns:
        raise DataError(f"data: label column {label!r} is missing")
    df = df[df[label].notna()].reset_index(drop=True)
    truth = df[label].map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
    unknown = sorted(set(truth) - set(model.labels))
    if unknown:
        raise DataError(f"data: labels {unknown[:3]} were never seen in training (known: {', '.join(model.labels)})")
    y = truth.map({v: i for i, v in enumerate(model.labels)}).to_numpy(dtype=np.int64)
    feats = df[[c for c in df.columns if c in model.schema.names or c in model.schema.passthrough]]
    proba = model.predict_proba(feats)
    th = model.manifest.get("decision_threshold")
    rule = model.decision_rule
    pred = rule.decide(proba)
    out: dict[str, Any] = {"model": str(model.path), "chosen": model.chosen, "rows": len(df),
                           "source": "test split" if data is None else str(data)}
    out["metrics"] = scores(proba, y, th)
    rep = classification_report(y, pred, labels=list(range(len(model.labels))), target_names=model.labels,
                                output_dict=True, zero_division=0)
    out["per_class"] = {lbl: {k: round(float(v), 4) for k, v in rep[lbl].items()} for lbl in model.labels}
    if proba.shape[1] == 2:
        from transferops.evaluate.thresholds import choose_threshold, operating_point

        out["calibration"] = calibration(proba[:, 1], (y == 1).astype(float))
        pts = {}
        for t in targets:
            if (y == 1).any():
                op = choose_threshold(proba[:, 1], y == 1, t)
                pts[t] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in op.to_dict().items()}
        out["thresholds"] = {"stored": th, "stored_target": model.manifest.get("threshold_target"),
                             "at_stored": operating_point(proba[:, 1], y == 1, 0.5 if th is None else th).to_dict(),
                             "oracle_on_this_data": pts,
                             "note": "oracle_on_this_data: thresholds chosen on these rows (optimistic; the "
                                     "stored threshold was chosen on validation)"}
    sl: dict[str, Any] = {}
    for col in (slices if slices is not None else model.schema.slice_columns):
        if col not in df.columns:
            raise DataError(f"slice: column {col!r} is not in the data")
        for v in sorted(df[col].astype(str).unique()):
            m = (df[col].astype(str) == v).to_numpy()
            s = scores(proba[m], y[m], th)
            s["n"] = int(m.sum())
            s["small"] = bool(m.sum() < min_support)
            sl.setdefault(col, {})[v] = s
    out["slices"] = sl
    out["split_comparison"] = model.manifest.get("split_comparison")
    out["search"] = {k: {"val_score": v["val_score"], "test": v["test"]}
                     for k, v in (model.manifest.get("search") or {}).get("candidates", {}).items()}
    return out


def markdown(res: dict[str, Any]) -> str:
    m = res["metrics"]
    lines = [f"# Evaluation of {res['model']} ({res['chosen']}) on {res['source']}, {res['rows']} rows", ""]
    keys = [k for k in ("f1", "precision", "recall", "pr_auc", "roc_auc", "accuracy", "macro_f1", "threshold")
            if k in m]
    lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
              "| " + " | ".join(str(m[k]) for k in keys) + " |",
              "", "## Per class", "", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    for lbl, r in res["per_class"].items():
        lines.append(f"| {lbl} | {r['precision']} | {r['recall']} | {r['f1-score']} | {int(r['support'])} |")
    cmp_ = res.get("split_comparison")
    if cmp_:
        lines += ["", f"## Random split vs time split ({cmp_['model']}, test metrics)", "",
                  "| split | f1 | precision | recall | pr_auc |", "|---|---|---|---|---|"]
        for k in ("random", "temporal"):
            r = cmp_[k]
            lines.append(f"| {k} | {r.get('f1')} | {r.get('precision')} | {r.get('recall')} | {r.get('pr_auc')} |")
    if res.get("calibration"):
        c = res["calibration"]
        lines += ["", f"## Calibration: ECE {c['ece']}, Brier {c['brier']}"]
    if res.get("thresholds"):
        lines += ["", "## Thresholds (positive class)", "", "| target | threshold | precision | recall | f1 |",
                  "|---|---|---|---|---|"]
        for t, op in res["thresholds"]["oracle_on_this_data"].items():
            lines.append(f"| {t} | {op['threshold']} | {op['precision']} | {op['recall']} | {op['f1']} |")
    for col, vals in res.get("slices", {}).items():
        lines += ["", f"## Slice {col}", "", "| value | n | f1 | precision | recall |", "|---|---|---|---|---|"]
        for v, s in vals.items():
            lines.append(f"| {v}{' (small)' if s['small'] else ''} | {s['n']} | {s.get('f1', s.get('macro_f1'))} | "
                         f"{s.get('precision', '')} | {s.get('recall', '')} |")
    if res.get("search"):
        lines += ["", "## Search candidates (test metrics at their own validation threshold)", "",
                  "| candidate | val score | test f1 | test pr_auc |", "|---|---|---|---|"]
        for k, v in res["search"].items():
            lines.append(f"| {k} | {v['val_score']} | {v['test'].get('f1', v['test'].get('macro_f1'))} | "
                         f"{v['test'].get('pr_auc', '')} |")
    return "\n".join(lines) + "\n"


__all__ = ["calibration", "evaluate_tabular", "markdown"]
