"""Retrain with a promotion gate: champion vs challenger on the same fresh, time-based holdout.

1. New labelled rows come from ``new_data`` (a CSV/Parquet with ``text``, ``label`` and optionally a
   time column) and/or the store's feedback within ``window`` (logged text + ground truth).
2. The newest ``holdout_fraction`` of those rows (by time; file order when there is no time) is
   the *fresh holdout*: neither model trained on it, and it looks like today's traffic.
3. The challenger is trained with the champion's saved config on the champion's data (all three
   saved splits) plus the rest of the new rows, and registered with the champion as parent.
4. Both models predict the holdout; the challenger is promoted only if it beats the champion on
   ``metric`` by at least ``margin`` and no gate fails (``transferops.evaluate.gates`` when
   installed; gate names may also use ``margin``). Otherwise it stays the ``challenger`` alias.

>>> res = retrain(Store("runs/monitor.db"), new_data="labeled.csv", out="runs/news-v2")   # doctest: +SKIP
>>> res.promoted, res.champion_metrics["macro_f1"], res.challenger_metrics["macro_f1"]   # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from transferops._progress import say
from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.constants import LABEL_COL, TEXT_COL
from transferops.errors import ConfigError, DataError
from transferops.hooks import module_exists
from transferops.monitor.registry import CHALLENGER, CHAMPION, Registry
from transferops.monitor.store import Store, parse_window, to_epoch

TIME_COLUMNS = ("ts", "time", "timestamp", "date", "created_at")


@dataclass
class RetrainConfig:
    """Promotion policy."""

    metric: str = field(default="macro_f1", metadata={"help": "holdout metric compared"})
    margin: float = field(default=0.01, metadata={"help": "challenger must win by at least this"})
    holdout_fraction: float = field(default=0.3, metadata={"help": "newest share of new rows held out"})
    min_holdout: int = field(default=10, metadata={"help": "fewest holdout rows accepted"})
    time_column: str | None = field(default=None, metadata={"help": "time column of new data (auto)"})
    gates: Any = field(default=None, metadata={"help": "gates file/mapping checked on the challenger"})
    add_classes: bool = field(default=False, metadata={"help": "continue the champion (train --init-from): "
                              "extend its head, replay old rows, gate forgetting"})
    replay: float | None = field(default=None, metadata={"help": "with add_classes: old rows replayed (0-1)"})
    max_forgetting: float | None = field(default=None, metadata={"help": "with add_classes: old-class "
                                         "macro-F1 drop that blocks promotion"})

    _parameter_constraints: ClassVar[Constraints] = {
        "metric": Options("macro_f1", "accuracy", "weighted_f1", "balanced_accuracy"),
        "holdout_fraction": Interval(Real, 0.05, 0.9),
        "margin": Interval(Real, -1.0, 1.0, closed="neither"),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)
        if not self.add_classes and (self.replay is not None or self.max_forgetting is not None):
            raise ConfigError("replay/max_forgetting: these apply to --add-classes only; add --add-classes")


@dataclass
class RetrainResult:
    promoted: bool
    reason: str
    champion_version: str
    challenger_version: str | None
    challenger_path: str | None
    champion_metrics: dict[str, float]
    challenger_metrics: dict[str, float]
    delta: float | None
    holdout_size: int
    train_new_rows: int
    gates: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False
    drift_status: str | None = None
    metric: str = "macro_f1"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def exit_code(self) -> int:
        """0: promoted or nothing to do; 3: challenger trained but not promoted."""
        return 0 if (self.promoted or self.skipped) else 3

    def summary(self) -> str:
        if self.skipped:
            return f"retrain skipped: {self.reason}"
        m = self.metric
        cm, hm = self.champion_metrics, self.challenger_metrics
        return "\n".join([
            f"holdout: {self.holdout_size} newest labelled rows; challenger trained with "
            f"{self.train_new_rows} new rows",
            f"  champion   {self.champion_version:<6} accuracy {cm.get('accuracy', float('nan')):.4f}  "
            f"macro-F1 {cm.get('macro_f1', float('nan')):.4f}",
            f"  challenger {self.challenger_version or '-':<6} accuracy {hm.get('accuracy', float('nan')):.4f}  "
            f"macro-F1 {hm.get('macro_f1', float('nan')):.4f}  (Δ {m} {self.delta:+.4f})"
            if self.delta is not None else "  challenger: n/a",
            f"{'PROMOTED' if self.promoted else 'NOT promoted'}: {self.reason}",
        ])


def holdout_metrics(model: Any, texts: list[str], y_true: list[str]) -> dict[str, float]:
    """Accuracy and F1 scores from string labels (works even if the label sets differ: classes are
    the union of both, as scikit-learn does for strings)."""
    from transferops.metrics import label_metrics

    pred = [str(p) for p in model.predict(texts)]
    truth = [str(t) for t in y_true]
    index = {lab: i for i, lab in enumerate(sorted(set(truth) | set(pred)))}
    m = label_metrics(np.asarray([index[t] for t in truth], dtype=np.int64),
                      np.asarray([index[p] for p in pred], dtype=np.int64), n_classes=len(index))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "weighted_f1": m["weighted_f1"],
            "balanced_accuracy": m["balanced_accuracy"], "n": float(len(truth))}


def _time_order(df: pd.DataFrame, time_column: str | None) -> tuple[pd.DataFrame, str | None]:
    col = time_column or next((c for c in TIME_COLUMNS if c in df.columns), None)
    if time_column and time_column not in df.columns:
        raise DataError(f"time_column: {time_column!r} is not a column of the new data ({list(df.columns)})")
    if col is None:
        return df.reset_index(drop=True), None
    key = pd.Series([to_epoch(v) if v is not None and v == v else np.nan for v in df[col]], index=df.index)
    return df.assign(_t=key).sort_values("_t", kind="mergesort").drop(columns="_t").reset_index(drop=True), col


def collect_new_rows(store: Store, new_data: str | Path | pd.DataFrame | None, window: str | None
                     ) -> pd.DataFrame:
    """New labelled rows (text, label, ts) from a file and/or the store's feedback in ``window``."""
    parts = []
    if new_data is not None:
        from transferops.data import read_table

        df = new_data.copy() if isinstance(new_data, pd.DataFrame) else read_table(new_data)
        for col in (TEXT_COL, LABEL_COL):
            if col not in df.columns:
                raise DataError(f"{new_data if not isinstance(new_data, pd.DataFrame) else 'new data'}: "
                                f"column '{col}' is missing; new data needs text and label columns")
        df = df[df[LABEL_COL].notna() & (df[LABEL_COL].astype(str).str.strip() != "")]
        parts.append(df)
    if window is not None:
        since = time.time() - parse_window(window)
        fb = store.read_feedback_joined(since=since, with_text=True)
        fb = fb[fb["text"].notna()]
        parts.append(pd.DataFrame({TEXT_COL: fb["text"], LABEL_COL: fb["true"], "ts": fb["ts"]}))
    if not parts:
        raise ConfigError("retrain: give --new-data FILE and/or --window 90d (feedback from the store)")
    out = pd.concat(parts, ignore_index=True)
    out[LABEL_COL] = out[LABEL_COL].astype(str)
    return out


def search_kwargs(manifest: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """How the champion was searched, as ``transferops.train`` arguments, so the challenger is searched the
    same way: the same time budget, candidates, ensemble and refit requests (``--no-refit`` included). A
    champion that was not searched, or ``overrides`` that name a strategy, give ``{}``. Manifests from before
    the ``requested`` entry: the budget, and the candidates when they were not the default set."""
    from transferops.finetune.search import CANDIDATES

    sr = manifest.get("search")
    if not sr or "strategy" in (overrides or {}):
        return {}
    req = sr.get("requested") or {}
    kw: dict[str, Any] = {"search": True, "time_budget": float(sr["budget_seconds"])}
    if "requested" in sr:
        cands = req.get("candidates")
    else:
        names = [c["name"] for c in sr.get("leaderboard", []) if c["name"] != "ensemble"]
        cands = names if names and set(names) != set(CANDIDATES) else None
    if cands:
        kw["candidates"] = list(cands)
    if req.get("search_ensemble") is not None:
        kw["search_ensemble"] = int(req["search_ensemble"])
    if req.get("refit") is not None:  # --refit / --no-refit as asked; None: the search decides again
        kw["refit"] = bool(req["refit"])
    elif "requested" not in sr:  # older manifests: a refit the user asked for says so in its reason
        refit = manifest.get("refit") or {}
        if refit.get("done") and not str(refit.get("reason", "")).startswith("auto"):
            kw["refit"] = True
    return kw


def retrain(store: Store | str | Path, *, model: str = CHAMPION, new_data: str | Path | pd.DataFrame | None = None,
            window: str | None = None, out: str | Path | None = None, config: RetrainConfig | None = None,
            overrides: dict[str, Any] | None = None, promote: bool = True) -> RetrainResult:
    """Train a challenger from the champion's config on old + new data and promote it if it wins."""
    import transferops
    from transferops.artifacts.model import load
    from transferops.finetune.config import TrainConfig

    cfg = config or RetrainConfig()
    st = store if isinstance(store, Store) else Store(store)
    reg = Registry(st)
    if Path(model).exists():
        champ = next((v for v in reg.list() if Path(v.path) == Path(model).resolve()), None) or reg.register(model)
        if reg.alias(CHAMPION) is None:
            reg.promote(champ.version, reason="first champion")
    else:
        champ = reg.resolve(model)
    champ_model = load(champ.path)

    new = collect_new_rows(st, new_data, window)
    new, _ = _time_order(new, cfg.time_column)
    n_hold = max(cfg.min_holdout, int(round(cfg.holdout_fraction * len(new))))
    if len(new) - n_hold < 1 or n_hold < cfg.min_holdout:
        raise DataError(f"retrain: {len(new)} new labelled rows are too few; need more than {cfg.min_holdout} "
                        f"(the newest {cfg.holdout_fraction:.0%} become the fresh holdout)")
    holdout, new_train = new.iloc[-n_hold:], new.iloc[:-n_hold]

    old = pd.concat([champ_model.split(s)[[TEXT_COL, LABEL_COL]] for s in ("train", "validation", "test")],
                    ignore_index=True)
    train_df = pd.concat([old, new_train[[TEXT_COL, LABEL_COL]]], ignore_index=True)
    hold_norm = set(holdout[TEXT_COL].astype(str))
    train_df = train_df[~train_df[TEXT_COL].astype(str).isin(hold_norm)].reset_index(drop=True)

    stamp = int(time.time())
    out_dir = Path(out) if out is not None else Path(champ.path).parent / f"{Path(champ.path).name}-retrain-{stamp}"
    tcfg = TrainConfig.from_dict({**champ_model.manifest.config, **(overrides or {})})
    if cfg.add_classes:
        # Continual learning: the champion itself is continued on the new rows (plus a replay sample of
        # its training split), its head extended to any new labels; the forgetting gate joins the gates.
        label_col = (champ_model.manifest.get("data", {}).get("columns") or {}).get("label") or LABEL_COL
        nt = new_train[[TEXT_COL, LABEL_COL]].rename(columns={LABEL_COL: label_col})
        nt = nt[~nt[TEXT_COL].astype(str).isin(set(holdout[TEXT_COL].astype(str)))]
        say(f"continuing the champion on {len(nt)} new rows (--add-classes) → {out_dir}")
        res = transferops.train(nt, out=out_dir, config=tcfg, label_column=label_col, init_from=champ.path,
                                replay=cfg.replay, max_forgetting=cfg.max_forgetting)
    else:
        say(f"training challenger on {len(old)} old + {len(new_train)} new rows → {out_dir}")
        res = transferops.train(train_df, out=out_dir, config=tcfg,
                                **search_kwargs(champ_model.manifest, overrides))
    chal = reg.register(res.path, parent=champ.version, note=f"retrain of {champ.version}")
    reg.set_alias(CHALLENGER, chal.version, reason="retrain")

    texts, truth = holdout[TEXT_COL].astype(str).tolist(), holdout[LABEL_COL].astype(str).tolist()
    cm = holdout_metrics(champ_model, texts, truth)
    hm = holdout_metrics(load(res.path), texts, truth)
    delta = hm[cfg.metric] - cm[cfg.metric]
    gate_results = _check_gates({**hm, "margin": delta}, cfg.gates)
    fg = (res.manifest.get("continual") or {}).get("report", {}).get("gate")
    if fg:
        gate_results.append({"name": "forgetting", "kind": "metric", "passed": bool(fg["passed"]),
                             "observed": fg["observed"], "required": f"<= {fg['max_forgetting']:g}",
                             "detail": "old-class macro-F1 lost on the test split", "skipped": False})
    promoted, reason = decide(cm, hm, cfg, gate_results)
    if promoted and promote:
        reg.promote(chal.version, reason=f"retrain: {reason}")
    return RetrainResult(promoted=promoted and promote, reason=reason if promote or not promoted else
                         f"would promote ({reason}) but promotion is off", champion_version=champ.version,
                         challenger_version=chal.version, challenger_path=str(res.path), champion_metrics=cm,
                         challenger_metrics=hm, delta=delta, holdout_size=len(holdout),
                         train_new_rows=len(new_train), gates=gate_results, metric=cfg.metric)


def decide(champion: dict[str, float], challenger: dict[str, float], cfg: RetrainConfig,
           gate_results: list[dict[str, Any]] | None = None) -> tuple[bool, str]:
    """Promotion rule: the challenger wins by at least ``cfg.margin`` and no gate failed."""
    delta = challenger[cfg.metric] - champion[cfg.metric]
    failed = [g for g in gate_results or [] if not g["passed"] and not g.get("skipped")]
    if delta < cfg.margin:
        return False, (f"challenger {cfg.metric} {challenger[cfg.metric]:.4f} vs champion "
                       f"{champion[cfg.metric]:.4f}: Δ {delta:+.4f} < margin {cfg.margin}")
    if failed:
        return False, "gate(s) failed: " + "; ".join(g["name"] for g in failed)
    return True, f"challenger wins by {delta:+.4f} {cfg.metric} (margin {cfg.margin})"


def _check_gates(metrics: dict[str, float], gates: Any) -> list[dict[str, Any]]:
    if gates is None or not module_exists("transferops.evaluate.gates"):
        return []
    from transferops.evaluate import gates as g

    parsed = g.load_gates(gates, extra_metrics=("margin",))
    return [r.to_dict() for r in g.check_gates(metrics, parsed)]


def skipped(reason: str, champion: str, drift_status: str | None = None) -> RetrainResult:
    return RetrainResult(promoted=False, reason=reason, champion_version=champion, challenger_version=None,
                         challenger_path=None, champion_metrics={}, challenger_metrics={}, delta=None,
                         holdout_size=0, train_new_rows=0, skipped=True, drift_status=drift_status)


__all__ = ["RetrainConfig", "RetrainResult", "collect_new_rows", "decide", "holdout_metrics", "retrain",
           "search_kwargs", "skipped"]
