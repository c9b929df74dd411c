"""``transferops learning-curve``: does paying for more labels pay, or a different model?

Refits the saved run's chosen recipe (the search winner or the trained strategy, with the run's
config) and the tuned baseline on 12.5 / 25 / 50 / 100 % of the run's training split (stratified
subsamples, fixed seed) and scores both on the run's **validation** split — never on test. The
result is stored in the manifest (``learning_curve``) and shown in the evaluation report.

>>> lc = learning_curve("runs/news")      # doctest: +SKIP
>>> print(lc.table())                     # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferops._progress import say
from transferops.errors import ConfigError

FRACTIONS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)


@dataclass
class LearningCurve:
    recipe: str
    metric: str
    points: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "metric": self.metric, "scored_on": "validation", "points": self.points}

    def table(self) -> str:
        lines = [f"{'labels':>7} {'train rows':>10} {self.recipe:>14} {'tuned baseline':>15}"]
        for p in self.points:
            lines.append(f"{p['fraction']:>7.1%} {p['n_train']:>10} {p['model']:>14.4f} {p['baseline']:>15.4f}")
        return "\n".join(lines)


#: Never extrapolate a fitted curve beyond this multiple of the labels measured.
MAX_EXTRAPOLATION = 10.0


def labels_needed(points: list[dict[str, Any]], target: float, *, key: str = "model") -> dict[str, Any]:
    """Training labels needed for ``target`` on the validation metric, from a learning curve.

    Fits ``metric = a + b·ln(n)`` (least squares over the measured points; learning curves of
    classifiers are close to log-linear over one or two decades) and solves for ``n``. A target already
    reached returns the smallest measured ``n`` that reaches it; a flat or falling curve, or an answer
    beyond ``MAX_EXTRAPOLATION``x the largest measured ``n``, returns ``labels_needed=None`` with the reason.

    >>> labels_needed([{"n_train": 100, "model": 0.6}, {"n_train": 1000, "model": 0.8}], 0.9)["labels_needed"]
    3163
    """
    if not 0 < target <= 1:
        raise ConfigError(f"target: {target!r} must be a metric value in (0, 1]")
    pts = sorted(((int(p["n_train"]), float(p[key])) for p in points), key=lambda t: t[0])
    if len(pts) < 2:
        raise ConfigError("learning curve: at least 2 points are needed to estimate labels for a target")
    out: dict[str, Any] = {"target": target, "curve": key, "method": "least squares metric = a + b*ln(n)",
                           "n_measured": pts[-1][0]}
    reached = [n for n, v in pts if v >= target]
    if reached:
        return {**out, "labels_needed": reached[0], "extrapolated": False,
                "reason": f"already reached with {reached[0]} labels (measured)"}
    x = np.log([n for n, _ in pts])
    y = np.asarray([v for _, v in pts])
    b, a = np.polyfit(x, y, 1)
    if b <= 1e-9:
        return {**out, "labels_needed": None, "extrapolated": True,
                "slope_per_doubling": round(float(b * np.log(2)), 4),
                "reason": "the curve is flat or falling: more labels of this kind do not raise the metric; "
                          "try another model or better labels"}
    n = float(np.exp((target - a) / b))
    out.update({"slope_per_doubling": round(float(b * np.log(2)), 4), "extrapolated": True})
    if n > MAX_EXTRAPOLATION * pts[-1][0]:
        return {**out, "labels_needed": None,
                "reason": f"the fitted curve reaches {target} only at ~{n:,.0f} labels, beyond "
                          f"{MAX_EXTRAPOLATION:g}x the {pts[-1][0]} measured: too far to extrapolate"}
    return {**out, "labels_needed": int(np.ceil(n)),
            "reason": f"extrapolated from {len(pts)} points (+{b * np.log(2):.3f} per doubling of labels)"}


def _subsample(y: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Stratified: ``frac`` of every class, at least 2 per class (1 when a class has a single row)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        keep.append(idx[: max(min(2, len(idx)), int(round(frac * len(idx))))])
    return np.sort(np.concatenate(keep))


def learning_curve(path: str | Path, *, fractions: tuple[float, ...] = FRACTIONS, seed: int = 0,
                   save: bool = True) -> LearningCurve:
    import transferops
    from transferops.artifacts.model import read_manifest, update_manifest
    from transferops.baselines import TfidfBaseline
    from transferops.checkpoints import resolve_checkpoint
    from transferops.finetune.config import TrainConfig
    from transferops.metrics import classification_metrics, encode_labels
    from transferops.modeling import softmax

    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"fractions: each must be in (0, 1], got {fractions!r}")
    m = read_manifest(path)
    if m.members:
        raise ConfigError(f"model: {path} is an ensemble; run learning-curve on one of its members")
    model = transferops.load(path)
    tr, va = model.split("train"), model.split("validation")
    labels, task = m.labels, m.task
    if task == "multilabel":
        raise ConfigError("learning-curve: multi-label runs are not supported yet; use a single-label run")
    y_tr = encode_labels(tr["label"].tolist(), labels, False)
    y_va = encode_labels(va["label"].tolist(), labels, False)
    t_tr, t_va = [str(t) for t in tr["text"]], [str(t) for t in va["text"]]
    recipe = m.strategy_name
    cfg = TrainConfig.from_dict(m.config)
    metric = cfg.metric if cfg.metric != "loss" else "macro_f1"
    ckpt = resolve_checkpoint(m.base.name) if m.base is not None and m.base.name else None
    lc = LearningCurve(recipe, metric)
    enc: Any = None
    for frac in fractions:
        idx = _subsample(y_tr, frac, seed)
        texts, y = [t_tr[i] for i in idx], y_tr[idx]
        t0 = time.perf_counter()
        b = TfidfBaseline(tune=True, seed=seed).fit(texts, y, n_classes=len(labels))
        base_val = classification_metrics(y_va, b.predict_proba(t_va))[metric]
        if recipe == "tfidf_logreg":
            model_val = base_val
        elif recipe in ("probe", "stack"):
            from transferops.finetune.search import ProbeFit, fit_probe_lr, fit_stack
            from transferops.modeling import FrozenEncoder

            assert ckpt is not None
            enc = enc or FrozenEncoder(str(ckpt.path), max_length=cfg.max_length)
            emb, emb_va = enc.embed(texts), enc.embed(t_va)
            pf = ProbeFit(enc, fit_probe_lr(emb, y, multilabel=False, class_weight="balanced", seed=seed),
                          len(labels), False, ckpt.path)
            z = (pf.logits_from_embeddings(emb_va) if recipe == "probe" else
                 fit_stack(b, pf, texts, emb, y, len(labels), seed).logits_from_parts(t_va, emb_va))
            model_val = classification_metrics(y_va, softmax(z))[metric]
        else:
            from transferops.finetune.strategies import make_tuner

            assert ckpt is not None
            ft: Any = make_tuner(TrainConfig.from_dict({**cfg.to_dict(), "strategy": recipe}), recipe,
                                 reason="learning curve")
            if ckpt.frozen is not None:  # a head over a frozen encoder's embeddings (kind "frozen")
                from transferops.finetune.frozen_head import FrozenHeadTuner

                ft = FrozenHeadTuner(cfg, spec=ckpt.frozen, strategy_reason="learning curve")
            ft.fit(texts, y, t_va, y_va, labels=labels, task=task, checkpoint_path=ckpt.path)
            model_val = classification_metrics(y_va, softmax(ft.predict_logits(t_va)))[metric]
        point = {"fraction": frac, "n_train": len(idx), "model": round(float(model_val), 4),
                 "baseline": round(float(base_val), 4), "seconds": round(time.perf_counter() - t0, 1)}
        lc.points.append(point)
        say(f"learning curve {frac:.1%} ({len(idx)} rows): {recipe} {model_val:.4f}, baseline {base_val:.4f}")
    if save:
        update_manifest(path, learning_curve=lc.to_dict())
    return lc


__all__ = ["FRACTIONS", "LearningCurve", "labels_needed", "learning_curve"]
