"""Model search under a time budget: the tuned baseline, a frozen-encoder probe and the fine-tuning
strategies, scored on the **validation split only**; the winner is what ``train`` saves.

Candidates, cheapest first (so a short budget still gets the cheap ones):

* ``tfidf_logreg`` — the tuned TF-IDF + LR baseline (:mod:`transferops.baselines`), always first;
* ``probe``  — mean-pooled embeddings of the frozen checkpoint + a class-balanced-if-needed LR;
* ``stack``  — baseline + probe combined by a class-balanced LR meta-learner on their 5-fold
  out-of-fold log-probabilities (single-label tasks); kept only when it wins on validation;
* ``contrastive`` — SetFit-style: the body tuned on labeled pairs, then the probe's LR on its embeddings
  (:mod:`transferops.finetune.contrastive`); single-label, up to 64 training examples per class on
  average (few labels, where it pays); before the classifier fine-tunes, so a short budget reaches it;
* ``head``, ``freeze``, ``lora``, ``full`` — :class:`~transferops.finetune.trainer.FineTuner` with
  epochs and learning rates for the data size (:func:`candidate_config`).

Before each fine-tuning candidate the cost is estimated from the probe's measured forward speed;
a candidate that cannot finish in what is left of the budget gets fewer epochs, or is skipped
(recorded with the reason). The trainer's early stopping stops a loser that stops improving.
A transfer candidate wins only when it is strictly better than the baseline on validation: ties go
to the baseline ("the boring solution often wins").
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferops._progress import say
from transferops.errors import ConfigError, TransferOpsError
from transferops.evaluate.paired import paired_accuracy_difference
from transferops.finetune.config import TrainConfig
from transferops.finetune.probe_head import fit_probe_lr
from transferops.finetune.strategies import get_strategy
from transferops.metrics import classification_metrics
from transferops.modeling import sigmoid, softmax

#: ``train`` searches by default (no ``--strategy`` given) when the training split is at most this
#: large: few labels are where the choice matters most and where every candidate is affordable.
SEARCH_DEFAULT_MAX_TRAIN = 1_000
#: Default budget (seconds) of a search: ``--time-budget``.
DEFAULT_TIME_BUDGET = 15 * 60.0
CANDIDATES: tuple[str, ...] = ("tfidf_logreg", "probe", "stack", "contrastive", "head", "freeze", "lora", "full")
#: Training cost of one example relative to one inference forward pass, per strategy (backward ≈ 2x
#: forward; a frozen half skips most of it; head trains on cached features; ``contrastive``: per text of
#: each of its steps, every parameter trains).
COST_FACTOR = {"contrastive": 3.0, "head": 0.05, "freeze": 1.7, "lora": 2.5, "full": 3.0}


class SearchError(TransferOpsError, RuntimeError):
    """Every candidate of a model search failed."""


def parse_budget(value: str | float | int | None) -> float:
    """``"15m"``, ``"90s"``, ``"1h"``, ``"1h30m"`` or a number of seconds → seconds."""
    if value is None:
        return DEFAULT_TIME_BUDGET
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        s = str(value).strip().lower()
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?", s)
        if not s or parts is None or not any(parts.groups()):
            raise ConfigError(f"time_budget: {value!r} is not a duration; write e.g. 15m, 90s, 1h30m")
        h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
        secs = h * 3600 + m * 60 + sec
    if not secs > 0:
        raise ConfigError(f"time_budget: must be > 0, got {value!r}")
    return secs


def candidate_config(cfg: TrainConfig, strategy: str, n_train: int, n_layers: int) -> TrainConfig:
    """Epochs and LR for a fine-tuning candidate: more epochs on small data (fewer steps per epoch),
    the strategy's default LR, and for ``freeze`` the source text's layer rule for the data size."""
    from transferops.finetune.strategies import choose_auto

    d = cfg.to_dict()
    d["strategy"] = strategy
    if cfg.epochs is None:
        scale = 2.0 if n_train < 300 else 1.5 if n_train < 1000 else 1.0
        d["epochs"] = int(math.ceil(get_strategy(strategy).epochs * (1.0 if strategy == "head" else scale)))
    if strategy == "freeze" and cfg.freeze_layers is None and cfg.freeze_fraction is None:
        d.update(choose_auto(n_train, n_layers)[1] if n_train <= 10_000 else {"freeze_fraction": 0.5})
    return TrainConfig.from_dict(d)


@dataclass
class CandidateResult:
    """One leaderboard row."""

    name: str
    status: str  # ok | skipped | failed
    metric: str
    value: float | None = None
    ci: tuple[float, float] | None = None
    train_seconds: float = 0.0
    size_mb: float | None = None
    latency_ms: float | None = None
    reason: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ci"] = list(self.ci) if self.ci is not None else None
        return d


@dataclass
class SearchResult:
    leaderboard: list[CandidateResult]
    winner: str
    fitted: Any  # the winner: TfidfBaseline | ProbeFit | FineTuner
    reason: str
    budget_seconds: float
    seconds: float
    warnings: list[str] = field(default_factory=list)
    #: at few labels, when another candidate outscored ``contrastive``: the paired test of its lead
    #: (:func:`prior_stands`), with ``"kept"`` saying whether contrastive stayed the winner
    few_shot_check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"winner": self.winner, "reason": self.reason, "budget_seconds": round(self.budget_seconds, 1),
             "seconds": round(self.seconds, 1), "scored_on": "validation",
             "leaderboard": [c.to_dict() for c in self.leaderboard]}
        if self.few_shot_check is not None:
            d["few_shot_check"] = self.few_shot_check
        return d

    def table(self) -> str:
        lines = [f"{'candidate':<13} {'validation':>10} {'95% CI':>15} {'train s':>8} {'MB':>7} {'ms/text':>8}"]
        for c in self.leaderboard:
            if c.status != "ok":
                lines.append(f"{c.name:<13} {c.status:>10}  {c.reason}")
                continue
            ci = f"[{c.ci[0]:.3f}, {c.ci[1]:.3f}]" if c.ci else "-"
            mark = "  ← saved" if c.name == self.winner else ""
            lines.append(f"{c.name:<13} {c.value:>10.4f} {ci:>15} {c.train_seconds:>8.1f} "
                         f"{(c.size_mb or 0):>7.1f} {(c.latency_ms or 0):>8.2f}{mark}")
        return "\n".join(lines)


class ProbeFit:
    """A fitted probe: frozen checkpoint (mean-pooled) + LR; ``logits(texts)`` like the others."""

    def __init__(self, encoder: Any, clf: Any, n_classes: int, multilabel: bool, checkpoint_path: Any) -> None:
        self.encoder, self.clf, self.n_classes, self.multilabel = encoder, clf, n_classes, multilabel
        self.checkpoint_path = checkpoint_path

    def logits_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        from transferops.artifacts.linear import lr_logits

        ests = list(self.clf.estimators_) if self.multilabel else [self.clf]
        return lr_logits(ests, np.asarray(emb, dtype=np.float64), self.n_classes, self.multilabel)

    def logits(self, texts: list[str]) -> np.ndarray:
        return self.logits_from_embeddings(self.encoder.embed(texts, desc="probe"))


class StackFit:
    """Fitted stack: baseline and probe (fitted on all of train) + the meta-learner."""

    def __init__(self, baseline: Any, probe: ProbeFit, meta: Any, n_classes: int, folds: int) -> None:
        self.baseline, self.probe, self.meta, self.n_classes, self.folds = baseline, probe, meta, n_classes, folds

    def logits_from_parts(self, texts: list[str], emb: np.ndarray) -> np.ndarray:
        from transferops.artifacts.linear import lr_logits, stack_features

        feats = stack_features(self.baseline.predict_proba(texts),
                               softmax(self.probe.logits_from_embeddings(emb)))
        return lr_logits([self.meta], feats, self.n_classes, False)

    def logits(self, texts: list[str]) -> np.ndarray:
        return self.logits_from_parts(texts, self.probe.encoder.embed(texts, desc="stack"))


def fit_stack(baseline: Any, probe: ProbeFit, texts: list[str], emb: np.ndarray, y: np.ndarray, n_classes: int,
              seed: int) -> StackFit:
    """Out-of-fold probabilities of both members (their chosen hyper-parameters, refit per fold), then
    a class-balanced LR meta-learner on their log-probabilities."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    from transferops.artifacts.linear import stack_features
    from transferops.baselines import TfidfBaseline

    counts = np.bincount(y, minlength=n_classes)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2:
        raise ConfigError("stack: a class has a single training example; out-of-fold probabilities need 2+")
    oof_b = np.zeros((len(y), n_classes))
    oof_p = np.zeros((len(y), n_classes))
    arr = np.asarray(texts, dtype=object)
    for tr, va in StratifiedKFold(folds, shuffle=True, random_state=seed).split(arr, y):
        b = TfidfBaseline(C=baseline.C_, class_weight=baseline.class_weight_, seed=seed).fit(
            list(arr[tr]), y[tr], n_classes=n_classes)
        oof_b[va] = b.predict_proba(list(arr[va]))
        with threadpool_limits(1):
            clf = clone(probe.clf).fit(emb[tr], y[tr])
        oof_p[va] = softmax(ProbeFit(None, clf, n_classes, False, None).logits_from_embeddings(emb[va]))
    with threadpool_limits(1):
        meta = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000, random_state=seed).fit(
            stack_features(oof_b, oof_p), y)
    return StackFit(baseline, probe, meta, n_classes, folds)


def _proba(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    return sigmoid(logits) if multilabel else softmax(logits)


def _ci(y: np.ndarray, proba: np.ndarray, metric: str, multilabel: bool, seed: int) -> tuple[float, float] | None:
    from transferops.evaluate.metrics import bootstrap_ci

    pred = (proba >= 0.5).astype(int) if multilabel else proba.argmax(1)
    ci = bootstrap_ci(y, pred, proba.shape[1], multilabel=multilabel, n=500, seed=seed).get(metric)
    return (round(float(ci[0]), 4), round(float(ci[1]), 4)) if ci else None


def _latency_ms(fn: Any, texts: list[str]) -> float:
    sample = texts[:32] or ["a short text"]
    t0 = time.perf_counter()
    fn(sample)
    return round((time.perf_counter() - t0) * 1000.0 / len(sample), 3)


def run_search(train_texts: list[str], y_tr: np.ndarray, val_texts: list[str], y_va: np.ndarray, *,
               labels: list[str], task: str, cfg: TrainConfig, checkpoint: Any, baseline: Any,
               budget_seconds: float, candidates: tuple[str, ...] = CANDIDATES,
               state_dir: Any = None, ensemble: int | None = None) -> SearchResult:
    """Fit each candidate on train, score it on validation, return the leaderboard and the winner.

    ``baseline`` is the already fitted tuned :class:`~transferops.baselines.TfidfBaseline`.
    ``ensemble``: ship the mean of up to this many of the best candidates instead of one
    (:func:`ensemble_size`; ``None`` = the rule for the split sizes, 0 or 1 = one model).
    """
    from transferops.finetune.trainer import FineTuner

    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown or not candidates:
        raise ConfigError(f"candidates: {unknown or 'none given'} — choose from {', '.join(CANDIDATES)}")
    multilabel = task == "multilabel"
    n_ens = ensemble_size(ensemble, n_train=len(train_texts), n_val=len(val_texts), n_labels=len(labels),
                          multilabel=multilabel)
    metric = cfg.metric if cfg.metric != "loss" else "macro_f1"
    t0 = time.perf_counter()
    board: list[CandidateResult] = []
    fitted: dict[str, Any] = {}
    warnings_: list[str] = []
    n_layers = int(checkpoint.config().get("num_hidden_layers", 6))
    n_params = 0
    val_correct: dict[str, np.ndarray] = {}  # single-label: which validation rows each candidate got right
    val_proba: dict[str, np.ndarray] = {}  # for the ensemble: each candidate's validation probabilities

    def left() -> float:
        return budget_seconds - (time.perf_counter() - t0)

    def score(name: str, logits: np.ndarray, seconds: float, size_mb: float | None, latency: float | None,
              params: dict[str, Any]) -> None:
        p = _proba(logits, multilabel)
        val = classification_metrics(y_va, p, multilabel=multilabel)[metric]
        if not multilabel:
            val_correct[name] = p.argmax(1) == np.asarray(y_va)
            val_proba[name] = p
        board.append(CandidateResult(name, "ok", metric, round(float(val), 4), _ci(y_va, p, metric, multilabel,
                                                                                    cfg.seed),
                                     round(seconds, 2), size_mb, latency, params=params))
        say(f"search: {name:<13} validation {metric} {val:.4f}  ({seconds:.1f}s; {left():.0f}s of budget left)")

    # 1. the tuned baseline (already fitted on train): always a candidate
    if "tfidf_logreg" in candidates:
        vec = baseline.vectorizer_
        nnz = sum(int(getattr(e, "coef_", np.zeros(0)).size) for e in
                  (baseline.classifier_.estimators_ if multilabel else [baseline.classifier_]))
        size = (len(vec.vocabulary_) * 20 + 8 * (len(vec.idf_) + nnz)) / 1e6
        lat = _latency_ms(baseline.predict_proba, val_texts)
        score("tfidf_logreg", np.log(np.clip(baseline.predict_proba(val_texts), 1e-12, 1.0)) if not multilabel
              else _logit(baseline.predict_proba(val_texts)), baseline.fit_seconds_ or 0.0, round(size, 2), lat,
              baseline.params())
        fitted["tfidf_logreg"] = baseline

    # 2. the probe: also measures the forward speed that the budget estimates use
    fwd_per_text: float | None = None
    if "probe" in candidates and left() <= 0:
        board.append(CandidateResult("probe", "skipped", metric, reason="budget spent"))
    elif "probe" in candidates:
        try:
            from transferops.modeling import FrozenEncoder

            ts = time.perf_counter()
            enc = FrozenEncoder(str(checkpoint.path), max_length=cfg.max_length, batch_size=cfg.eval_batch_size)
            enc.load()
            tf = time.perf_counter()  # the forward speed the estimates use: without the one-off model load
            emb_tr = enc.embed(train_texts, desc="probe: train")
            emb_va = enc.embed(val_texts, desc="probe: validation")
            fwd_per_text = (time.perf_counter() - tf) / max(len(train_texts) + len(val_texts), 1)
            cw = cfg.class_weight
            if cw is None and not multilabel:
                counts = np.bincount(y_tr)
                cw = "balanced" if counts.max() / max(counts[counts > 0].min(), 1) > 1.5 else None
            clf = fit_probe_lr(emb_tr, y_tr, multilabel=multilabel, class_weight=cw, seed=cfg.seed)
            pf = ProbeFit(enc, clf, len(labels), multilabel, checkpoint.path)
            n_params = sum(p.numel() for p in enc._model.parameters())
            coef_n = sum(int(e.coef_.size) for e in (clf.estimators_ if multilabel else [clf]))
            score("probe", pf.logits_from_embeddings(emb_va), time.perf_counter() - ts,
                  round((n_params * 4 + coef_n * 8) / 1e6, 1), _latency_ms(pf.logits, val_texts),
                  {"pooling": "mean", "class_weight": cw,
                   "C": float(clf.estimator.C if multilabel else clf.C)})
            fitted["probe"] = pf
        except Exception as exc:  # a failing candidate must not sink the search
            board.append(CandidateResult("probe", "failed", metric, reason=f"{type(exc).__name__}: {exc}"))

    # 2b. the stack of the two cheap views (the fraud case of the source text: a meta-learner on top)
    if "stack" in candidates:
        if multilabel or "probe" not in fitted or "tfidf_logreg" not in fitted:
            board.append(CandidateResult("stack", "skipped", metric, reason=(
                "single-label tasks only" if multilabel else "needs both the baseline and the probe")))
        elif left() <= 0:
            board.append(CandidateResult("stack", "skipped", metric, reason="budget spent"))
        else:
            try:
                ts = time.perf_counter()
                sf = fit_stack(baseline, fitted["probe"], train_texts, emb_tr, y_tr, len(labels), cfg.seed)
                logits = sf.logits_from_parts(val_texts, emb_va)
                probe_row = next(c for c in board if c.name == "probe")
                base_row = next(c for c in board if c.name == "tfidf_logreg")
                score("stack", logits, time.perf_counter() - ts + probe_row.train_seconds + base_row.train_seconds,
                      round((probe_row.size_mb or 0) + (base_row.size_mb or 0), 1),
                      round((probe_row.latency_ms or 0) + (base_row.latency_ms or 0), 3),
                      {"meta": "logistic regression, class_weight=balanced, on out-of-fold log-probabilities",
                       "folds": sf.folds})
                fitted["stack"] = sf
            except Exception as exc:  # a failing candidate must not sink the search
                board.append(CandidateResult("stack", "failed", metric, reason=f"{type(exc).__name__}: {exc}"))

    # 3. fine-tuning candidates
    for strategy in [c for c in candidates if c in COST_FACTOR]:
        if (strategy != "contrastive" and "contrastive" in fitted and tuple(candidates) == CANDIDATES
                and _few_shot(len(train_texts), len(labels))):
            board.append(CandidateResult(strategy, "skipped", metric, reason=(
                f"few labels (≤ {FEW_SHOT_PER_CLASS} per class) and contrastive fitted: the classifier fine-tunes "
                "are skipped at this size (docs/contrastive.md); name them in candidates to run them")))
            continue
        if strategy == "contrastive":
            _contrastive_candidate(train_texts, y_tr, val_texts, y_va, labels=labels, task=task, cfg=cfg,
                                   checkpoint=checkpoint, fwd_per_text=fwd_per_text, left=left, board=board,
                                   fitted=fitted, score=score, metric=metric, keep=max(1, n_ens))
            continue
        ccfg = candidate_config(cfg, strategy, len(train_texts), n_layers)
        epochs = ccfg.resolved_epochs(strategy)
        per_epoch = None
        if fwd_per_text is not None:
            per_epoch = (len(train_texts) * fwd_per_text * COST_FACTOR[strategy] + len(val_texts) * fwd_per_text)
            if strategy == "head":
                per_epoch = len(train_texts) * fwd_per_text * COST_FACTOR["head"]
            fixed = (len(train_texts) + len(val_texts)) * fwd_per_text if strategy == "head" else 0.0
            room = left() - fixed - len(val_texts) * fwd_per_text
            fit_epochs = int(room // max(per_epoch, 1e-9)) if room > 0 else 0
            if fit_epochs < 1:
                board.append(CandidateResult(strategy, "skipped", metric, reason=(
                    f"budget: ~{per_epoch:.0f}s per epoch estimated, {max(left(), 0):.0f}s left")))
                continue
            if fit_epochs < epochs:
                ccfg = TrainConfig.from_dict({**ccfg.to_dict(), "epochs": fit_epochs})
                epochs = fit_epochs
        elif left() <= 0:
            board.append(CandidateResult(strategy, "skipped", metric, reason="budget spent"))
            continue
        try:
            ts = time.perf_counter()
            ft = FineTuner(ccfg, strategy=strategy, strategy_reason=f"model search candidate '{strategy}'")
            ft.fit(train_texts, y_tr, val_texts, y_va, labels=labels, task=task, checkpoint_path=checkpoint.path,
                   state_dir=None)
            seconds = time.perf_counter() - ts
            info = ft.strategy_info
            size = (info.trainable_params if strategy == "lora" else info.total_params) * 4 / 1e6
            score(strategy, ft.predict_logits(val_texts), seconds, round(size, 1),
                  _latency_ms(ft.predict_logits, val_texts),
                  {"epochs": epochs, "lr": ccfg.resolved_lr(strategy), "best_epoch": ft.result_.best_epoch,
                   "stopped_early": ft.result_.stopped_early})
            fitted[strategy] = ft
            # keep only the best fine-tuned model(s) in memory (as many as the ensemble may take)
            _drop_losers(board, fitted, keep=max(1, n_ens))
        except Exception as exc:  # a failing candidate must not sink the search
            board.append(CandidateResult(strategy, "failed", metric, reason=f"{type(exc).__name__}: {exc}"))

    ok = [c for c in board if c.status == "ok"]
    if not ok:
        raise SearchError("model search: every candidate failed (" + "; ".join(
            f"{c.name}: {c.reason}" for c in board) + "); check the data and the checkpoint, or train one "
            "strategy with --strategy to see its full error")
    # Strictly better wins; ties keep the earlier (cheaper) candidate — the baseline is first.
    best = ok[0]
    for c in ok[1:]:
        if (c.value or 0.0) > (best.value or 0.0) + 1e-9:
            best = c
        elif c.name == "contrastive" and (c.value or 0.0) >= (best.value or 0.0) - 1e-9:
            # the one exception to "ties keep the cheaper": it runs at few labels only, where the validation
            # split is a handful of rows (ties are the rule) and it measured best (docs/contrastive.md)
            best = c
    con = next((c for c in ok if c.name == "contrastive"), None)
    prior_kept = False
    paired: dict[str, Any] | None = None  # the few-shot check (SearchResult.few_shot_check)
    if con is not None and best is not con and _few_shot(len(train_texts), len(labels)):
        # few labels: the validation split is a handful of rows; the candidate that measured best at this size
        # stays unless the other one is right on significantly more of the same rows (docs/contrastive.md)
        kept, stats = prior_stands(val_correct[best.name], val_correct[con.name])
        paired = {"challenger": best.name, "kept": kept, **stats}
        if kept:
            best, prior_kept = con, True
    single = best
    if n_ens >= 2:
        # the best candidate first, then the next by validation score: those the validation rows cannot tell
        # apart from it (the paired 95 % interval of its lead includes 0), at most n_ens (docs/search.md)
        rest = sorted((c for c in ok if c is not best and c.name in fitted), key=lambda c: -(c.value or 0.0))
        ranked = [best, *rest]
        members = [c for c in ranked if c is best or prior_stands(val_correct[best.name], val_correct[c.name])[0]]
        members = members[:n_ens]
        if len(members) >= 2:
            names = [c.name for c in members]
            fitted["ensemble"] = EnsembleFit({n: fitted[n] for n in names}, len(labels))
            p = np.mean([val_proba[n] for n in names], axis=0)
            val = classification_metrics(y_va, p, multilabel=False)[metric]
            row = CandidateResult(
                "ensemble", "ok", metric, round(float(val), 4), _ci(y_va, p, metric, False, cfg.seed),
                round(sum(c.train_seconds for c in members), 2),
                round(sum(c.size_mb or 0.0 for c in members), 1), round(sum(c.latency_ms or 0.0 for c in members), 3),
                params={"members": names, "combine": "mean probability",
                        "note": "members chosen on these validation rows: this score is optimistic"})
            board.append(row)
            say(f"search: ensemble      validation {metric} {val:.4f}  (mean of {', '.join(names)})")
            best = row
    transfer_ok = [c for c in ok if c.name in COST_FACTOR]
    if not transfer_ok and any(c.name in COST_FACTOR for c in board):
        warnings_.append("the time budget was too short for any fine-tuning candidate ("
                         + "; ".join(f"{c.name}: {c.reason}" for c in board if c.name in COST_FACTOR)
                         + "); raise --time-budget to try them")
    base = next((c for c in ok if c.name == "tfidf_logreg"), None)
    if best.name == "tfidf_logreg":
        others = [c for c in ok if c.name != "tfidf_logreg"]
        runner = max(others, key=lambda c: c.value or 0.0) if others else None
        reason = ("the tuned TF-IDF + logistic-regression baseline scored best on validation "
                  f"({best.value:.4f} {metric}"
                  + (f" vs {runner.value:.4f} for {runner.name}" if runner else "")
                  + "): the saved model IS the baseline — smaller, faster and at least as good here "
                  "(source text, Mistake 1: the boring solution often wins)")
    else:
        reason = (f"{best.name} scored best on validation ({best.value:.4f} {metric}"
                  + (f" vs {base.value:.4f} for the tuned baseline" if base else "") + ")")
        if best.name == "ensemble":
            reason = (f"the mean of {', '.join(best.params['members'])} is saved: the validation split has "
                      f"{len(y_va)} rows, too few to tell them apart (the best single candidate, {single.name}, "
                      f"scored {single.value:.4f}; docs/search.md, 'Ensemble at small validation splits'); "
                      "--search-ensemble 0 saves that one model instead")
        elif prior_kept and paired is not None:
            reason += (f"; kept at few labels: no candidate was right on significantly more of the {len(y_va)} "
                       f"validation rows (paired 95% CI of the accuracy lead [{paired['ci_low']:+.2f}, "
                       f"{paired['ci_high']:+.2f}], {paired['discordant']} rows differ; docs/contrastive.md)")
        elif best.name == "contrastive" and any(c is not best and abs((c.value or 0.0) - (best.value or 0.0)) <= 1e-9
                                                for c in ok):
            reason += "; tied on validation: at few labels contrastive is preferred (docs/contrastive.md)"
    return SearchResult(board, best.name, fitted[best.name], reason, budget_seconds,
                        time.perf_counter() - t0, warnings_, paired)


#: At most this many training examples per class on average, a fitted ``contrastive`` candidate ends the
#: search: the classifier fine-tunes (head, freeze, lora, full) are skipped (docs/contrastive.md).
FEW_SHOT_PER_CLASS = 16


def prior_stands(challenger_correct: np.ndarray, prior_correct: np.ndarray) -> tuple[bool, dict[str, Any]]:
    """At few labels: does the prior (``contrastive``) stay the winner against a challenger that scored higher?
    Yes unless the challenger is right on significantly more of the same validation rows (the paired 95 %
    interval of its accuracy lead lies above 0). Returns ``(kept, the paired statistics)``.

    >>> kept, d = prior_stands(np.array([True] * 5), np.array([True] * 4 + [False]))
    >>> kept, d["discordant"]
    (True, 1)
    """
    d = paired_accuracy_difference(challenger_correct, prior_correct)
    stats = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()
             if k in ("n", "difference", "ci_low", "ci_high", "discordant", "exact_mcnemar_p")}
    return bool(d["ci_low"] <= 0.0), stats


#: With this many validation rows or more, up to ENSEMBLE_MAX_VALIDATION, the search ships the mean of its best
#: candidates by default (above FEW_SHOT_PER_CLASS training rows a class): a 30-row split cannot tell
#: candidates ~5 points apart, and on 10 development runs at 30 rows the mean of the top 3 beat the
#: validation pick (headlines 0.850 vs 0.829, BBC 0.963 vs 0.961; benchmarks/results/selection_study.md).
#: Below 30 rows the paired test cannot reject even a 13-point worse member, and it was not measured: off.
ENSEMBLE_MIN_VALIDATION = 30
ENSEMBLE_MAX_VALIDATION = 100
#: At most this many members (the validation-best first). 5 (was 3; 2026-12-03): on 25 development runs at
#: 64 a class and 30 validation rows the mean of up to 5 beat up to 3 on headlines by +0.69 pt (15 runs, 11
#: better, 3 worse, bootstrap 95 % [+0.07, +1.25]) and was level on BBC articles (+0.09 pt, 10 runs), where
#: fewer candidates fit the budget (benchmarks/results/selection_study_k64_s28.md, docs/search.md).
ENSEMBLE_SIZE = 5


def ensemble_size(requested: int | None, *, n_train: int, n_val: int, n_labels: int, multilabel: bool) -> int:
    """How many candidates the search averages: ``requested`` when given (0 or 1: one model), else
    :data:`ENSEMBLE_SIZE` for a single-label task whose validation split has from
    :data:`ENSEMBLE_MIN_VALIDATION` to fewer than :data:`ENSEMBLE_MAX_VALIDATION` rows and more than
    :data:`FEW_SHOT_PER_CLASS` training rows a class (at fewer labels the ``contrastive`` prior decides,
    docs/contrastive.md), else 0.

    >>> ensemble_size(None, n_train=288, n_val=32, n_labels=5, multilabel=False)
    5
    >>> ensemble_size(None, n_train=900, n_val=100, n_labels=5, multilabel=False)
    0
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
            raise ConfigError(f"search_ensemble: {requested!r} must be an integer >= 0 (0 or 1: save one model)")
        if multilabel and requested >= 2:
            raise ConfigError("search_ensemble: the search's ensemble is for single-label tasks; drop "
                              "--search-ensemble (or pass 0)")
        return requested
    if (multilabel or not ENSEMBLE_MIN_VALIDATION <= n_val < ENSEMBLE_MAX_VALIDATION
            or _few_shot(n_train, n_labels)):
        return 0
    return ENSEMBLE_SIZE


class EnsembleFit:
    """The search's ``ensemble`` winner: the mean of its fitted members' class probabilities."""

    def __init__(self, members: dict[str, Any], n_classes: int) -> None:
        self.members = members
        self.n_classes = n_classes

    def member_proba(self, texts: list[str]) -> dict[str, np.ndarray]:
        return {n: candidate_proba(n, m, texts) for n, m in self.members.items()}

    def logits(self, texts: list[str]) -> np.ndarray:
        p = np.mean(list(self.member_proba(texts).values()), axis=0)
        return np.log(np.clip(p, 1e-12, 1.0))


def candidate_proba(name: str, fitted: Any, texts: list[str]) -> np.ndarray:
    """Class probabilities of one fitted single-label search candidate, whatever its kind."""
    if name == "tfidf_logreg":
        return np.asarray(fitted.predict_proba(texts))
    fn = getattr(fitted, "predict_logits", None) or fitted.logits  # trainers | ProbeFit, StackFit
    return np.asarray(softmax(np.asarray(fn(texts))))


def _few_shot(n_train: int, n_labels: int) -> bool:
    return n_train <= FEW_SHOT_PER_CLASS * max(n_labels, 1)


def refit_by_default(winner: str, n_train: int, n_val: int, n_labels: int) -> str | None:
    """Why the search's winner is refit on train + validation when the user did not say (``None``: it is not).

    At few labels (≤ ``FEW_SHOT_PER_CLASS`` a class) a kept ``contrastive`` is refit: its validation rows
    decide nothing inside it (no early stopping, a fixed pair budget), and they are an eighth of the data.
    Measured on development seeds 3-12 (headlines 8/class, 300 development rows from the training pool;
    docs/contrastive.md): 0.763 → 0.775 mean macro-F1, better on 8 of 10 seeds
    (``benchmarks/results/contrastive_refit_study.md``; BBC 8/class in the same study too)."""
    if winner != "contrastive" or n_val == 0 or not _few_shot(n_train, n_labels):
        return None
    return (f"auto: contrastive at few labels ({n_train} training rows, ≤ {FEW_SHOT_PER_CLASS} a class) is refit "
            f"with its {n_val} validation rows, which it does not use to stop (--no-refit keeps the searched model)")


def _contrastive_candidate(train_texts: list[str], y_tr: np.ndarray, val_texts: list[str], y_va: np.ndarray, *,
                           labels: list[str], task: str, cfg: TrainConfig, checkpoint: Any,
                           fwd_per_text: float | None, left: Any, board: list[CandidateResult],
                           fitted: dict[str, Any], score: Any, metric: str, keep: int = 1) -> None:
    """The ``contrastive`` candidate (SetFit-style, :mod:`transferops.finetune.contrastive`): tried on
    single-label tasks up to ``SEARCH_MAX_PER_CLASS`` training examples per class on average, when its
    estimated cost (its steps' texts × the cost factor, plus one pass to embed train and validation) fits."""
    from transferops.finetune.contrastive import MIN_BATCH, SEARCH_MAX_PER_CLASS, ContrastiveTuner, plan_steps

    name = "contrastive"
    if task == "multilabel":
        board.append(CandidateResult(name, "skipped", metric, reason="single-label tasks only"))
        return
    if len(train_texts) > SEARCH_MAX_PER_CLASS * len(labels):
        board.append(CandidateResult(name, "skipped", metric, reason=(
            f"{len(train_texts)} training examples > {SEARCH_MAX_PER_CLASS} per class: the search tries it on "
            "few labels only (--strategy contrastive trains it at any size)")))
        return
    tuner = ContrastiveTuner(TrainConfig.from_dict({**cfg.to_dict(), "strategy": name}),
                             strategy_reason=f"model search candidate '{name}'")
    batch = max(cfg.batch_size, MIN_BATCH)
    steps, _ = plan_steps(len(train_texts), batch, tuner.pairs_per_example)
    if fwd_per_text is not None:
        est = (steps * min(batch, len(train_texts)) * COST_FACTOR[name]
               + len(train_texts) + 2 * len(val_texts)) * fwd_per_text
        if est > left():
            board.append(CandidateResult(name, "skipped", metric, reason=(
                f"budget: ~{est:.0f}s estimated, {max(left(), 0):.0f}s left")))
            return
    elif left() <= 0:
        board.append(CandidateResult(name, "skipped", metric, reason="budget spent"))
        return
    try:
        ts = time.perf_counter()
        tuner.fit(train_texts, y_tr, val_texts, y_va, labels=labels, task=task, checkpoint_path=checkpoint.path)
        seconds = time.perf_counter() - ts
        n_params = tuner.strategy_info.total_params
        info = tuner.contrastive_
        size = round((n_params * 4 + tuner.clf_.coef_.size * 8) / 1e6, 1)
        score(name, tuner.predict_logits(val_texts), seconds, size,
              _latency_ms(tuner.predict_logits, val_texts),
              {k: info[k] for k in ("loss", "pairs", "steps", "batch_texts", "lr", "precision")} | info["head"])
        fitted[name] = tuner
        _drop_losers(board, fitted, keep=keep)
    except Exception as exc:  # a failing candidate must not sink the search
        fitted.pop(name, None)  # nor count as fitted (that would skip the classifier fine-tunes)
        board.append(CandidateResult(name, "failed", metric, reason=f"{type(exc).__name__}: {exc}"))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def _drop_losers(board: list[CandidateResult], fitted: dict[str, Any], keep: int = 1) -> None:
    """Free all but the ``keep`` best fine-tuned candidates (models of ~100 MB each)."""
    tuned = [c for c in board if c.status == "ok" and c.name in COST_FACTOR and c.name in fitted]
    if len(tuned) <= keep:
        return
    kept = {c.name for c in sorted(tuned, key=lambda c: -(c.value or 0.0))[:keep]}
    for c in tuned:
        if c.name not in kept:
            fitted.pop(c.name, None)


__all__ = [
    "CANDIDATES",
    "DEFAULT_TIME_BUDGET",
    "ENSEMBLE_MAX_VALIDATION",
    "ENSEMBLE_MIN_VALIDATION",
    "ENSEMBLE_SIZE",
    "SEARCH_DEFAULT_MAX_TRAIN",
    "CandidateResult",
    "EnsembleFit",
    "ProbeFit",
    "SearchError",
    "SearchResult",
    "StackFit",
    "candidate_config",
    "candidate_proba",
    "ensemble_size",
    "fit_stack",
    "parse_budget",
    "prior_stands",
    "refit_by_default",
    "run_search",
]
