"""``transferops.train``: data in, a saved, documented, baseline-compared model folder out."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferops import distributed
from transferops._progress import say
from transferops._util import package_versions, sha256_file, sha256_texts
from transferops.artifacts.manifest import Manifest, read_manifest, write_manifest
from transferops.artifacts.model import TransferOpsModel
from transferops.baselines import baseline_report
from transferops.checkpoints import resolve_checkpoint
from transferops.constants import (
    DATA_DIR,
    LABEL_COL,
    MANIFEST_NAME,
    MEMBERS_DIR,
    MODEL_DIR,
    TEST_SPLIT,
    TEXT_COL,
    TRAIN_SPLIT,
    TRAINING_STATE_DIR,
    VALIDATION_SPLIT,
)
from transferops.data import (
    ColumnMap,
    LabeledData,
    SplitConfig,
    Splits,
    find_leakage,
    load_labeled,
    make_splits,
)
from transferops.errors import ConfigError, DataError
from transferops.finetune.config import TrainConfig
from transferops.finetune.recipe import RecipeChoice
from transferops.finetune.strategies import STRATEGY_REGISTRY, make_tuner
from transferops.finetune.trainer import FineTuner
from transferops.hooks import BUILTIN_PLUGINS, run_post_train
from transferops.metrics import classification_metrics, encode_labels
from transferops.modality import get_modality
from transferops.modeling import set_threads, sigmoid, softmax

#: Kept for code that read the list: the hooks themselves now live in :mod:`transferops.hooks`, where later
#: stages register them (``@register_post_train``); this stage never imports those stages.
POST_TRAIN_HOOKS: tuple[str, ...] = BUILTIN_PLUGINS

#: Transfer must beat the baseline by this much (absolute, on the headline metric) — Mistake 1.
BASELINE_MARGIN = 0.05


@dataclass
class TrainResult:
    path: Path
    manifest: Manifest
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> TransferOpsModel:
        return TransferOpsModel(self.path)

    @property
    def test_metrics(self) -> dict[str, float]:
        return dict(self.manifest["metrics"]["test"])

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "warnings": self.warnings, **self.manifest}

    def summary(self) -> str:
        m = self.manifest
        t, v = m["metrics"]["test"], m["metrics"]["validation"]
        lines = [
            f"model saved to {self.path}",
            f"  base {m['base']['name']} · strategy {m['strategy']['name']} · task {m['task']} · "
            f"{len(m['labels'])} labels · splits {m['splits']['sizes']}",
            f"  validation: accuracy {v['accuracy']:.4f}  macro-F1 {v['macro_f1']:.4f}",
            f"  test:       accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}",
        ]
        b = m.get("baseline", {}).get("tfidf_logreg")
        if b and m.get("kind") != "baseline":
            bm = b["metrics"]
            gap = t["macro_f1"] - bm["macro_f1"]
            lines.append(f"  tuned baseline TF-IDF+LR test: accuracy {bm['accuracy']:.4f}  macro-F1 "
                         f"{bm['macro_f1']:.4f}  (gap {gap:+.4f})")
        if m.get("search"):
            from transferops.finetune.search import CandidateResult, SearchResult

            sr = m["search"]
            rows = [CandidateResult(**{**c, "ci": tuple(c["ci"]) if c.get("ci") else None})
                    for c in sr["leaderboard"]]
            table = SearchResult(rows, sr["winner"], None, sr["reason"], sr["budget_seconds"], sr["seconds"]).table()
            lines.append(f"  model search ({sr['seconds']:.0f}s of {sr['budget_seconds']:.0f}s budget; "
                         "scored on validation):")
            lines += ["    " + ln for ln in table.splitlines()]
            lines.append(f"  → {sr['reason']}")
        if (m.get("refit") or {}).get("done"):
            r = m["refit"]
            lines.append(f"  refit on train + validation ({r['rows']} rows): {r.get('reason', 'set by the user')}; "
                         "the test metrics are the refit model's, the validation ones from before it")
        if m.get("decision"):
            d = m["decision"]
            lines.append(f"  decision rule: per-class logit offsets (validation {d['metric']} "
                         f"{d['validation_before']:.4f} → {d['validation_after']:.4f})")
        auto = [c for c in m.get("recipe", []) if c.get("source") == "advise"]
        if auto:
            lines.append("  auto recipe: " + ", ".join(f"{c['field']}={c['value']}" for c in auto))
        lk = m.get("leakage", {})
        if lk:
            lines.append(f"  leakage train↔test: {lk.get('exact_duplicates', 0)} exact, "
                         f"{lk.get('near_duplicates', 0)} near-duplicate pairs"
                         + (" (removed from train)" if m["config"].get("dedupe") else ""))
        if m.get("continual"):
            from transferops.finetune.continual import format_report

            c = m["continual"]
            lines.append(f"  continued from {c['init_from']} (replay {c['replay']:g}: {c['replay_rows']} old rows"
                         + (f", L2-to-old {c['l2_to_old']:g}" if c.get("l2_to_old") else "") + "); test split:")
            lines += ["    " + ln for ln in format_report(c["report"]).splitlines()]
        tm = m["timings"]
        lines.append(f"  training {tm['train_seconds']:.1f}s · {tm['examples_per_second']:.1f} examples/s"
                     + (f" · {tm['precision']}" if tm.get("precision") else ""))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def train(
    data: str | Path | pd.DataFrame,
    *,
    out: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    label_columns: list[str] | None = None,
    label_sep: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    id_column: str | None = None,
    slice_columns: list[str] | None = None,
    config: TrainConfig | None = None,
    split: SplitConfig | None = None,
    skip_bad_rows: bool = False,
    resume: bool = False,
    keep_state: bool = False,
    encoding: str = "utf-8",
    name: str | None = None,
    validation_data: str | Path | pd.DataFrame | None = None,
    test_data: str | Path | pd.DataFrame | None = None,
    search: bool | None = None,
    time_budget: str | float | None = None,
    refit: bool | None = None,
    candidates: Sequence[str] | None = None,
    search_ensemble: int | None = None,
    explicit: Collection[str] | None = None,
    init_from: str | Path | None = None,
    replay: float | None = None,
    l2_to_old: float = 0.0,
    max_forgetting: float | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a classifier and save it as an artifact folder.

    >>> res = transferops.train("news.csv", out="runs/news", checkpoint="minilm-l6",
    ...                         strategy="lora", epochs=2)                          # doctest: +SKIP
    >>> print(res.summary())                                                        # doctest: +SKIP

    ``validation_data`` and ``test_data`` (same columns as ``data``) use predefined splits instead of
    cutting them from ``data``; each works alone (the other split is still cut from ``data``).

    ``auto`` is the whole recipe: every field the user did not set (``explicit``; by default the
    keyword overrides and the config fields that differ from the defaults) follows ``advise`` —
    loss / class weighting under imbalance, max length from the token lengths, dedupe, strategy —
    recorded with its reason under ``manifest["recipe"]``.

    ``search=True`` (the default when no strategy is given and the training split has at most
    :data:`~transferops.finetune.search.SEARCH_DEFAULT_MAX_TRAIN` examples) runs the model search
    within ``time_budget`` (``"15m"``) and saves the winner on validation — possibly the tuned
    baseline itself. ``search=True`` with an explicit strategy is an error. ``refit=True`` refits the chosen
    recipe on train + validation; ``None`` (the default) refits only a ``contrastive`` search winner at few
    labels (:func:`~transferops.finetune.search.refit_by_default`), ``False`` never.

    ``init_from`` (a trained run folder) continues that model on ``data``: its head is extended to the
    old + new labels, training adds a ``replay`` share of the old run's training split (default
    :data:`~transferops.finetune.continual.DEFAULT_REPLAY`) and optionally an ``l2_to_old`` penalty, the old
    run's validation and test splits join the new ones, and ``manifest["continual"]`` records the lineage
    and the old-class / new-class macro-F1 of the old and the new model with the ``max_forgetting`` gate
    (:mod:`transferops.finetune.continual`; the CLI exits 1 when it fails).
    """
    from transferops.finetune.recipe import explicit_fields

    explicit_set = set(explicit) if explicit is not None else explicit_fields(config, overrides)
    cfg = config or TrainConfig()
    if overrides:
        merged = {**cfg.to_dict(), **overrides}
        cfg = TrainConfig.from_dict(merged)
    split_cfg = split or SplitConfig(seed=cfg.seed)
    set_threads(cfg.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(out)
    if (out / MANIFEST_NAME).exists() and not resume:
        raise ConfigError(f"out: {out} already holds a trained model; choose another --out, or delete it")
    if out.exists() and not resume and (out / TRAINING_STATE_DIR).exists():
        raise ConfigError(f"out: {out} holds an interrupted run; pass --resume to continue it, or delete it")
    cont = old_run = None
    if init_from is not None:
        from transferops.finetune.continual import DEFAULT_REPLAY, ContinualConfig, load_old_run

        cont = ContinualConfig(str(init_from), DEFAULT_REPLAY if replay is None else replay, l2_to_old,
                               max_forgetting)
        if label_columns:
            raise ConfigError("label_columns: --init-from continues a single-label model; give one --label-column")
        if validation_data is not None or test_data is not None:
            raise ConfigError("validation_data/test_data: with --init-from the splits are the new data's plus the "
                              "old run's stored ones; drop --validation-data/--test-data")
        if search:
            raise ConfigError("search: --init-from continues one model; drop --search")
        if refit:
            raise ConfigError("refit: --init-from does not refit on train + validation; drop --refit")
        old_run = load_old_run(cont.init_from, label_column=label_column)
        old_strategy = old_run.manifest.strategy_name or "full"
        cont_cfg = {"checkpoint": str(old_run.model_dir)}
        if "strategy" not in explicit_set or cfg.strategy == "auto":
            cont_cfg["strategy"] = old_strategy if old_strategy in STRATEGY_REGISTRY else "full"
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **cont_cfg})
        explicit_set |= {"strategy", "checkpoint"}
        search = False
    elif replay is not None or l2_to_old or max_forgetting is not None:
        raise ConfigError("replay/l2_to_old/max_forgetting: these continue an old run; pass --init-from runs/old")
    ckpt = resolve_checkpoint(cfg.checkpoint)
    if ckpt.frozen is not None:  # a frozen (multilingual) encoder: strategy head only, one run, no search
        from transferops.finetune.frozen_head import frozen_run_config

        cfg, search = frozen_run_config(ckpt.name, cfg, explicit_set, search=search, refit=bool(refit),
                                         init_from=init_from)
    t_start = time.perf_counter()
    # Under accelerate launch / torchrun: join the process group now; rank 0 alone writes files.
    distributed.init()
    main_rank = distributed.is_main_process()

    columns = ColumnMap(text=text_column, label=label_column, label_columns=label_columns, label_sep=label_sep,
                        time=time_column, group=group_column, id=id_column, slices=list(slice_columns or []))
    if time_column and split is None:
        split_cfg = SplitConfig(method="temporal", seed=cfg.seed)
    elif group_column and split is None:
        split_cfg = SplitConfig(method="group", seed=cfg.seed)
    rejects = out / "rejects.csv"
    with distributed.main_process_first():
        labeled = load_labeled(data, columns, task=cfg.task, skip_bad_rows=skip_bad_rows,
                               rejects_path=rejects, encoding=encoding,
                               base_labels=old_run.labels if old_run is not None else None)
    if labeled.n_rejected:
        say(f"skipped {labeled.n_rejected} bad rows; see {labeled.rejects_path}")
    modality = get_modality(labeled.modality)  # text today: tokenizer, leakage key, baseline, slices
    if cfg.baseline:  # memory guard before splitting and leakage checks (all rows: an upper bound)
        modality.check_baseline_fits(labeled.texts, len(labeled.labels))
    if old_run is not None and labeled.task == "multilabel":
        raise ConfigError(f"task: the old run {old_run.path} is single-label but this data is multi-label")
    if cfg.task != "auto" and cfg.task != labeled.task and not (cfg.task == "multiclass" and labeled.task == "binary"):
        raise ConfigError(f"task: '{cfg.task}' requested but the data looks {labeled.task}")
    task = labeled.task
    multilabel = task == "multilabel"

    predefined = None
    if validation_data is not None or test_data is not None:
        predefined = _predefined_splits(labeled, columns, split_cfg, validation_data, test_data, encoding)
    replay_rows = 0
    if old_run is not None and cont is not None:
        from transferops.finetune.continual import read_old_split, replay_sample

        def _old(frame: pd.DataFrame) -> LabeledData:
            return LabeledData(frame, labeled.task, labeled.labels, labeled.columns, str(old_run.path))

        cut = make_splits(labeled, split_cfg)
        replayed = replay_sample(read_old_split(old_run, TRAIN_SPLIT), cont.replay, cfg.seed)
        replay_rows = len(replayed)
        predefined = Splits(_concat(cut.train, _old(replayed)),
                            _concat(cut.validation, _old(read_old_split(old_run, VALIDATION_SPLIT))),
                            _concat(cut.test, _old(read_old_split(old_run, TEST_SPLIT))))
        say(f"init from {old_run.path}: {len(old_run.labels)} old + {len(labeled.labels) - len(old_run.labels)} "
            f"new labels; replaying {replay_rows} of the old training rows ({cont.replay:g} per class)"
            + (f", L2-to-old {cont.l2:g}" if cont.l2 else ""))
    with distributed.main_process_first():  # rank 0 writes the splits, the others read them back
        splits = _load_or_make_splits(labeled, split_cfg, out, resume, predefined)
    data_dir = out / DATA_DIR
    test_sha = sha256_file(data_dir / TEST_SPLIT)

    # Leakage: exact + near-duplicates on the checkpoint's own embeddings.
    leak = _leakage(splits, cfg, ckpt.name)
    warnings_: list[str] = []
    if leak.exact_pairs or leak.near_pairs:
        warnings_.append(leak.summary() + ("; removed from train (--dedupe)" if cfg.dedupe
                                           else "; pass --dedupe to drop them from train"))
    train_part = splits.train
    if cfg.dedupe and leak.train_indices_to_drop:
        keep = np.setdiff1d(np.arange(len(train_part)), leak.train_indices_to_drop)
        train_part = train_part.subset(keep)
    advise_part = train_part  # advise reads the real rows, not the augmented copies
    from transferops.finetune.augment import augment_train

    train_part, augmentation = augment_train(train_part, cfg)  # TRAIN rows only; never validation/test
    if augmentation:
        say(f"augmentation: {augmentation['rows_added']} perturbed copies added to {augmentation['train_rows']} "
            f"training rows ({', '.join(f'{k} {v}' for k, v in augmentation['by_perturbation'].items())})")

    labels = labeled.labels
    y_tr = encode_labels(train_part.y, labels, multilabel)
    y_va = encode_labels(splits.validation.y, labels, multilabel)
    y_te = encode_labels(splits.test.y, labels, multilabel)

    # ---- the recipe: what advise recommends, for every field the user left alone ----------------
    from transferops.finetune.recipe import apply_recipe, recommend_strategy
    from transferops.select.advise import advise as _advise

    n_layers = int(ckpt.config().get("num_hidden_layers", 6))
    advice = _advise(advise_part, checkpoints=[str(ckpt.path)], seed=cfg.seed)
    cfg, recipe = apply_recipe(cfg, advice, explicit_set)
    for c in recipe:
        if c.source == "advise":
            say(f"auto {c.field}: {c.value} — {c.reason}")

    strategy_explicit = "strategy" in explicit_set and cfg.strategy != "auto"
    if search and strategy_explicit:
        raise ConfigError(f"search and strategy: --search tries every strategy itself; drop --strategy "
                          f"{cfg.strategy} (or drop --search to train that one strategy)")
    from transferops.finetune.search import CANDIDATES, SEARCH_DEFAULT_MAX_TRAIN, parse_budget, run_search

    # Default search: no strategy given at all (``strategy="auto"`` given explicitly means "one
    # strategy chosen by the rules", no search) and a small training split.
    if search and distributed.is_distributed():
        raise ConfigError("search: the model search runs in one process; drop --search (or launch without "
                          "accelerate/torchrun) — data-parallel training takes one --strategy")
    # The search is one process's job: under accelerate/torchrun the default is the rule-based strategy.
    do_search = bool(search) if search is not None else (
        "strategy" not in explicit_set and cfg.strategy == "auto" and len(train_part) <= SEARCH_DEFAULT_MAX_TRAIN
        and not resume and not distributed.is_distributed())
    budget = parse_budget(time_budget) if do_search else None
    if not do_search and search_ensemble not in (None, 0, 1):
        raise ConfigError(f"search_ensemble: {search_ensemble} averages the model search's best candidates, but "
                          "this run does not search; drop --search-ensemble (or --strategy, to search)")
    if refit and search_ensemble not in (None, 0, 1):  # before the search spends its budget
        raise ConfigError("refit: refit refits one recipe, but --search-ensemble asks for an ensemble — "
                          "pass --search-ensemble 0 with --refit")

    baseline: dict[str, Any] = {}
    fitted_baseline = None
    one_class = not multilabel and len(np.unique(y_tr)) < 2  # --init-from --replay 0 on one new class
    if one_class and cfg.baseline:
        warnings_.append("the training split holds one class (no replay): the TF-IDF baseline was not fitted")
    if (cfg.baseline and main_rank and not one_class) or do_search:  # only the manifest (and the search) use it
        say("fitting the tuned TF-IDF + logistic-regression baseline (C and class weight by CV on train) ...")
        fitted_baseline = modality.baseline(multilabel=multilabel, seed=cfg.seed, tune=True).fit(
            train_part.texts, y_tr, n_classes=len(labels))
        baseline = baseline_report(train_part.texts, y_tr, splits.test.texts, y_te, n_classes=len(labels),
                                   multilabel=multilabel, seed=cfg.seed, fitted=fitted_baseline,
                                   validation=(splits.validation.texts, y_va))

    search_res = None
    ft: Any = None
    strategy: str = cfg.strategy
    reason = ""
    if do_search:
        assert budget is not None and fitted_baseline is not None
        say(f"model search within {budget:.0f}s, scored on the validation split ...")
        search_res = run_search(train_part.texts, y_tr, splits.validation.texts, y_va, labels=labels, task=task,
                                cfg=cfg, checkpoint=ckpt, baseline=fitted_baseline, budget_seconds=budget,
                                candidates=tuple(candidates) if candidates else CANDIDATES,
                                ensemble=0 if refit and search_ensemble is None else search_ensemble)
        say("model search leaderboard (validation):\n" + search_res.table())
        say(search_res.reason)
        warnings_ += search_res.warnings
        winner = search_res.fitted
        strategy = search_res.winner
        reason = "model search: " + search_res.reason
        if strategy in STRATEGY_REGISTRY:
            ft = winner
            cfg = ft.config
    else:
        if strategy == "auto":
            strategy, extra, reason = recommend_strategy(advice, len(train_part), n_layers)
            cfg = TrainConfig.from_dict({**cfg.to_dict(), **extra})
            say(f"auto strategy: {strategy} — {reason}")
        tuner = STRATEGY_REGISTRY[strategy].tuner if strategy in STRATEGY_REGISTRY else None
        if tuner is not None and old_run is not None:
            raise ConfigError(f"strategy: '{strategy}' does not continue an old run; drop --init-from")
        ft = make_tuner(cfg, strategy, reason=reason,
                        init_from=old_run.model_dir if old_run is not None else None,
                        l2_to_old=cont.l2 if cont is not None else 0.0)
        if ckpt.frozen is not None:  # a head over the frozen encoder's cached embeddings
            from transferops.finetune.frozen_head import FrozenHeadTuner

            ft = FrozenHeadTuner(cfg, spec=ckpt.frozen, strategy=strategy, strategy_reason=reason)
        ft.fit(train_part.texts, y_tr, splits.validation.texts, y_va, labels=labels, task=task,
               checkpoint_path=ckpt.path, state_dir=out / TRAINING_STATE_DIR, resume=resume)
    recipe.append(RecipeChoice("strategy", strategy, "user" if strategy_explicit else
                               ("search" if do_search else "advise"), reason or "set by the user"))

    if not main_rank:
        distributed.barrier()  # wait for rank 0 to write the model folder and manifest, then read them
        return TrainResult(out, read_manifest(out), warnings_)
    kind = "model" if ft is not None else {"tfidf_logreg": "baseline", "probe": "probe", "stack": "stack",
                                           "ensemble": "ensemble"}[strategy]
    kind = getattr(ft, "artifact_kind", kind)  # a head over a frozen encoder is kind "frozen"
    predict_logits: Any
    if ft is not None:
        predict_logits = ft.predict_logits
    elif kind == "baseline":
        fb: Any = fitted_baseline
        predict_logits = lambda t: _log_proba(fb.predict_proba(t), multilabel)  # noqa: E731
    else:
        predict_logits = search_res.fitted.logits  # type: ignore[union-attr]
    val_logits = predict_logits(splits.validation.texts)
    refit_entry: dict[str, Any] = {}
    refit_reason = "set by the user" if refit else None
    if refit is None and search_res is not None:
        from transferops.finetune.search import refit_by_default

        refit_reason = refit_by_default(strategy, len(train_part), len(splits.validation), len(labels))
    if refit_reason is not None:
        say(f"refitting {strategy} on train + validation ({len(train_part) + len(splits.validation)} rows) ..."
            + ("" if refit else f" ({refit_reason})"))
        ft, fitted_baseline, predict_logits, refit_entry = _refit(
            kind, strategy, ft, fitted_baseline, search_res, train_part, splits.validation, y_tr, y_va,
            labels=labels, task=task, cfg=cfg, ckpt=ckpt)
        refit_entry["reason"] = refit_reason
        if search_res is not None and kind != "model":
            search_res.fitted = refit_entry.pop("_fitted", ft)  # (a trainer's own refit returns it as ft)
        if fitted_baseline is not None:  # the gap stays like for like: the baseline is refit too
            baseline = baseline_report(train_part.texts + splits.validation.texts, np.concatenate([y_tr, y_va]),
                                       splits.test.texts, y_te, n_classes=len(labels), multilabel=multilabel,
                                       seed=cfg.seed, fitted=fitted_baseline)
    test_logits = predict_logits(splits.test.texts)
    to_p = sigmoid if multilabel else softmax

    # ---- decision rule tuned for the metric on validation (multi-class: logit offsets) ---------
    from transferops.decision import decide_indices, tune_offsets

    decision = None
    if not multilabel and len(labels) > 2 and cfg.tune_decision:
        decision = tune_offsets(np.log(np.clip(to_p(val_logits), 1e-300, 1.0)), y_va, labels,
                                metric=cfg.metric)
        if decision:
            say(f"decision rule: per-class logit offsets raise validation {decision['metric']} "
                f"{decision['validation_before']:.4f} → {decision['validation_after']:.4f}")
    dmf: dict[str, Any] = {"decision": decision} if decision else {}

    def _metrics(y: np.ndarray, z: np.ndarray) -> dict[str, float]:
        p = to_p(z)
        m = classification_metrics(y, p, multilabel=multilabel)
        if decision:  # headline F1/accuracy under the stored decision rule
            m.update(_hard_metrics(y, decide_indices(p, dmf, labels, multilabel), len(labels)))
            m["decision_rule"] = "logit_offsets"  # type: ignore[assignment]
        return m

    metrics = {"validation": _metrics(y_va, val_logits), "test": _metrics(y_te, test_logits)}
    continual: dict[str, Any] = {}
    if old_run is not None and cont is not None:
        from transferops.finetune.continual import forgetting_report, format_report

        new_pred = decide_indices(to_p(test_logits), dmf, labels, multilabel)
        report = forgetting_report(old_run, y_te, np.asarray(new_pred), splits.test.texts, labels,
                                   cont.max_forgetting)
        say("old vs new model on the test split (old run's test rows + the new data's):\n" + format_report(report))
        continual = {"continual": {"init_from": str(old_run.path), "old_name": old_run.manifest.get("name"),
                                   "old_labels": list(old_run.labels), "replay": cont.replay,
                                   "replay_rows": replay_rows, "l2_to_old": cont.l2,
                                   "max_forgetting": cont.max_forgetting, "report": report}}

    members: list[dict[str, Any]] = []
    if kind == "ensemble":
        assert search_res is not None
        for mname, fitted_m in search_res.fitted.members.items():
            mkind = _save_fitted(out / MEMBERS_DIR / mname, mname, fitted_m, ckpt=ckpt, multilabel=multilabel)
            members.append({"path": f"{MEMBERS_DIR}/{mname}", "name": mname, "kind": mkind, "seed": cfg.seed,
                            "base": ckpt.name, "strategy": mname})
    else:
        _save_fitted(out, strategy, ft if ft is not None else (
            fitted_baseline if kind == "baseline" else search_res.fitted),  # type: ignore[union-attr]
            ckpt=ckpt, multilabel=multilabel)

    bm = baseline.get("tfidf_logreg", {}).get("metrics")
    if bm and kind != "baseline":
        gap = metrics["test"]["macro_f1"] - bm["macro_f1"]
        if gap < 0:
            warnings_.append(f"negative transfer: the fine-tuned model is {-gap:.3f} macro-F1 BELOW the "
                             "tuned TF-IDF baseline on test (source text §5.1); ship the baseline (train "
                             "--search saves it when it wins on validation) or revisit the checkpoint choice")
        elif gap < BASELINE_MARGIN and kind != "baseline":
            warnings_.append(f"transfer beats the TF-IDF baseline by only {gap:.3f} macro-F1 (< "
                             f"{BASELINE_MARGIN:.2f}): question the added complexity (source text, Mistake 1)")

    if ft is not None:
        strategy_entry = ft.strategy_info.to_dict()
        history, training = ft.result_.history, ft.result_.to_dict()
        if getattr(ft, "frozen_cache_", None):  # strategy freeze: was the frozen prefix cached, its size, why
            training["frozen_cache"] = ft.frozen_cache_
        if getattr(ft, "contrastive_", None):  # strategy contrastive: pairs, steps, loss, seconds, head
            training["contrastive"] = ft.contrastive_
        timings = {"train_seconds": round(ft.result_.train_seconds, 2),
                   "examples_per_second": round(ft.result_.examples_per_second, 2),
                   "precision": ft.result_.precision.get("used", "fp32")}  # why: training.precision.reason
        params = ft.strategy_info.total_params
    else:
        row = next(c for c in search_res.leaderboard if c.name == strategy)  # type: ignore[union-attr]
        strategy_entry = {"name": strategy, "reason": reason, "trainable_params": 0, "total_params": 0,
                          "frozen_layers": 0}
        history, training = [], {"candidate": row.to_dict()}
        timings = {"train_seconds": row.train_seconds,
                   "examples_per_second": round(len(train_part) / row.train_seconds, 2) if row.train_seconds else 0}
        params = 0
    timings["total_seconds"] = round(time.perf_counter() - t_start, 2)
    manifest: dict[str, Any] = {
        "kind": kind,
        "name": name or out.name,
        "base": {"name": ckpt.name, "path": str(ckpt.path), "source": ckpt.source, "sha256": ckpt.sha256(),
                 "params": params},
        "task": task,
        "labels": labels,
        "strategy": strategy_entry,
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "recipe": [c.to_dict() for c in recipe],
        "data": {"source": labeled.source, "fingerprint": sha256_texts(labeled.texts, labeled.y),
                 "rows": len(labeled) + labeled.n_rejected, "rows_used": len(labeled),
                 "rejected": labeled.n_rejected, "rejects_file": labeled.rejects_path,
                 "columns": columns.__dict__, "label_counts": labeled.label_counts()},
        "splits": {"method": split_cfg.method, "seed": split_cfg.seed, "sizes": splits.sizes(),
                   "train_used": len(advise_part), "test_sha256": test_sha,
                   "predefined": {"validation": validation_data is not None, "test": test_data is not None},
                   "files": {"train": f"{DATA_DIR}/{TRAIN_SPLIT}", "validation": f"{DATA_DIR}/{VALIDATION_SPLIT}",
                             "test": f"{DATA_DIR}/{TEST_SPLIT}"}},
        "leakage": leak.to_dict(),
        **({"augmentation": augmentation} if augmentation else {}),
        "metrics": metrics,
        "baseline": baseline,
        # what the user asked of the search, so that `retrain` searches the challenger the same way
        **({"search": {**search_res.to_dict(), "requested": {
            "candidates": list(candidates) if candidates else None,
            "search_ensemble": search_ensemble, "refit": refit}}} if search_res is not None else {}),
        **({"members": members, "combine": "mean_proba"} if members else {}),
        **({"refit": refit_entry} if refit_entry else {}),
        **dmf,
        **continual,
        "history": history,
        "training": training,
        "timings": timings,
        "versions": package_versions(),
        "warnings": warnings_,
        "evaluations": [],
    }
    write_manifest(out, manifest)
    for mem in members:  # each member folder loads on its own too (transferops.load(out/members/<name>))
        member_cfg = getattr(search_res.fitted.members[mem["name"]], "config", cfg)  # type: ignore[union-attr]
        write_manifest(out / mem["path"], {
            **{k: v for k, v in manifest.items() if k not in ("members", "combine", "search", "metrics")},
            "kind": mem["kind"], "name": mem["name"], "config": member_cfg.to_dict(), "metrics": {},
            "strategy": {"name": mem["name"], "reason": f"member of the model search's ensemble {manifest['name']}"}})
    run_post_train(out, cfg)  # calibration, monitoring reference profile... (registered by those stages)
    if not keep_state:
        shutil.rmtree(out / TRAINING_STATE_DIR, ignore_errors=True)
    distributed.barrier()
    return TrainResult(out, read_manifest(out), warnings_)


def _refit(kind: str, strategy: str, ft: Any, fitted_baseline: Any, search_res: Any, train_part: LabeledData,
           val_part: LabeledData, y_tr: np.ndarray, y_va: np.ndarray, *, labels: list[str], task: str,
           cfg: TrainConfig, ckpt: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Refit the chosen recipe on train + validation with the hyper-parameters the search chose
    (fine-tuning: the best epoch count, no early stopping — there is no held-out data left)."""
    multilabel = task == "multilabel"
    texts = train_part.texts + val_part.texts
    y = np.concatenate([y_tr, y_va])
    entry: dict[str, Any] = {"done": True, "rows": len(texts), "recipe": strategy,
                             "note": "validation metrics and the decision rule are from before the refit"}
    new_base = None
    if fitted_baseline is not None:
        new_base = get_modality(train_part.modality).baseline(multilabel=multilabel, seed=cfg.seed,
                                                              tune=True).fit(texts, y, n_classes=len(labels))
    if hasattr(ft, "refit"):  # a trainer with its own refit (contrastive): same recipe on train + validation
        new_ft = ft.refit(texts, y, val_part.texts, y_va)
        return new_ft, new_base, new_ft.predict_logits, entry
    if kind == "model":
        epochs = max(int(ft.result_.best_epoch or cfg.resolved_epochs(ft.strategy)), 1)
        rcfg = TrainConfig.from_dict({**cfg.to_dict(), "epochs": epochs, "early_stopping_patience": None,
                                      "max_steps": None, "eval_every": None})
        new_ft = FineTuner(rcfg, strategy=ft.strategy, strategy_reason=ft.strategy_reason + " (refit)")
        new_ft.fit(texts, y, val_part.texts, y_va, labels=labels, task=task, checkpoint_path=ckpt.path)
        entry["epochs"] = epochs
        return new_ft, new_base, new_ft.predict_logits, entry
    if kind == "baseline":
        nb: Any = new_base
        entry["_fitted"] = nb
        return None, nb, (lambda t: _log_proba(nb.predict_proba(t), multilabel)), entry
    from transferops.finetune.search import ProbeFit, fit_probe_lr, fit_stack

    old = search_res.fitted
    probe_old = old if kind == "probe" else old.probe
    emb = probe_old.encoder.embed(texts, desc="refit")
    cw = probe_old.clf.estimator.class_weight if multilabel else probe_old.clf.class_weight
    pf = ProbeFit(probe_old.encoder, fit_probe_lr(emb, y, multilabel=multilabel, class_weight=cw, seed=cfg.seed),
                  len(labels), multilabel, ckpt.path)
    fitted = pf if kind == "probe" else fit_stack(new_base, pf, texts, emb, y, len(labels), cfg.seed)
    entry["_fitted"] = fitted
    return None, new_base, fitted.logits, entry


def _save_fitted(folder: Path, name: str, fitted: Any, *, ckpt: Any, multilabel: bool) -> str:
    """Write one fitted model's files into ``folder`` (not its manifest); returns its artifact kind.
    ``fitted``: a trainer (FineTuner, ContrastiveTuner, ...), the tuned baseline, a ProbeFit or a StackFit."""
    from transferops.artifacts.linear import save_baseline, save_probe, save_stack

    folder.mkdir(parents=True, exist_ok=True)
    mdir = folder / MODEL_DIR
    if mdir.exists():
        shutil.rmtree(mdir)
    if hasattr(fitted, "save_artifact"):  # a trainer that writes its own kind's files (contrastive: a probe)
        fitted.save_artifact(folder)
        return str(fitted.artifact_kind)
    if hasattr(fitted, "model_"):  # a fine-tuned transformer
        fitted.model_.save_pretrained(str(mdir), safe_serialization=True)
        fitted.tokenizer_.save_pretrained(str(mdir))
        return str(getattr(fitted, "artifact_kind", "model"))
    if name == "tfidf_logreg":
        save_baseline(folder, fitted, tokenizer_from=ckpt.path)
        return "baseline"
    if name == "probe":
        save_probe(folder, fitted.clf, encoder_from=ckpt.path, multilabel=multilabel)
        return "probe"
    save_stack(folder, fitted.baseline, fitted.probe.clf, fitted.meta, encoder_from=ckpt.path)
    return "stack"


def _log_proba(p: np.ndarray, multilabel: bool) -> np.ndarray:
    """Logits whose softmax (sigmoid for multi-label) gives back ``p``."""
    p = np.clip(p, 1e-12, 1.0 - (1e-12 if multilabel else 0.0))
    return np.log(p / (1.0 - p)) if multilabel else np.log(p)


def _hard_metrics(y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, float]:
    from transferops.metrics import label_metrics

    m = label_metrics(y, pred, n_classes=k)
    return {name: m[name] for name in ("accuracy", "macro_f1", "weighted_f1", "balanced_accuracy")}


def _predefined_splits(labeled: LabeledData, columns: ColumnMap, split_cfg: SplitConfig,
                       validation_data: Any, test_data: Any, encoding: str) -> Splits:
    """Use the user's validation and/or test file; the missing one is cut from ``data`` as usual
    (with only ``test_data``, no internal test split is cut: train/validation share ``data``)."""
    def read(d: Any) -> LabeledData:
        return load_labeled(d, columns, task=labeled.task, encoding=encoding, known_labels=labeled.labels)

    val_l = read(validation_data) if validation_data is not None else None
    test_l = read(test_data) if test_data is not None else None
    if val_l is not None and test_l is not None:
        return Splits(labeled, val_l, test_l)
    cut = make_splits(labeled, split_cfg)
    if test_l is not None:
        # Only a validation split is needed: the rows of the internal test split go back to training
        # (temporal: the latest rows are the validation split, the middle ones train).
        if split_cfg.method == "temporal":
            return Splits(_concat(cut.train, cut.validation), cut.test, test_l)
        return Splits(_concat(cut.train, cut.test), cut.validation, test_l)
    assert val_l is not None  # only a test split is cut; the internal validation rows train
    return Splits(_concat(cut.train, cut.validation), val_l, cut.test)


def _concat(a: LabeledData, b: LabeledData) -> LabeledData:
    return LabeledData(pd.concat([a.frame, b.frame], ignore_index=True), a.task, a.labels, a.columns, a.source)


def _save_split(part: LabeledData, path: Path) -> None:
    df = part.frame.copy()
    if part.task == "multilabel":
        df[LABEL_COL] = df[LABEL_COL].apply(list)
    df.to_parquet(path, index=False)


def _load_or_make_splits(labeled: LabeledData, cfg: SplitConfig, out: Path, resume: bool,
                         predefined: Splits | None = None) -> Splits:
    d = out / DATA_DIR
    paths = [d / TRAIN_SPLIT, d / VALIDATION_SPLIT, d / TEST_SPLIT]
    if all(p.exists() for p in paths):
        parts = []
        for p in paths:
            df = pd.read_parquet(p)
            if labeled.task == "multilabel":
                df[LABEL_COL] = df[LABEL_COL].apply(list)
            parts.append(LabeledData(df, labeled.task, labeled.labels, labeled.columns, labeled.source))
        fresh = predefined or make_splits(labeled, cfg)
        if sha256_texts(fresh.test.texts) != sha256_texts(parts[2].texts):
            raise DataError(f"{out}: the saved test split differs from the one this data and seed produce; "
                            "resume with the same data, or train into a new --out")
        return Splits(*parts)
    splits = predefined or make_splits(labeled, cfg)
    d.mkdir(parents=True, exist_ok=True)
    _save_split(splits.train, d / TRAIN_SPLIT)
    _save_split(splits.validation, d / VALIDATION_SPLIT)
    _save_split(splits.test, d / TEST_SPLIT)
    # The test split is write-once: read-only on disk, fingerprinted in the manifest.
    os.chmod(d / TEST_SPLIT, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return splits


def _leakage(splits: Splits, cfg: TrainConfig, checkpoint: str) -> Any:
    train_texts, test_texts = splits.train.texts, splits.test.texts
    if not cfg.check_near_duplicates:
        return find_leakage(train_texts, test_texts, modality=splits.train.modality)
    from transferops.modeling import FrozenEncoder

    say("checking train/test leakage (exact + near-duplicate embeddings) ...")
    # 64 tokens are plenty to recognise a near-copy and halve the cost of this pass.
    enc = FrozenEncoder(checkpoint, max_length=64, batch_size=64)
    emb_tr = enc.embed(train_texts, desc="leakage: train")
    emb_te = enc.embed(test_texts, desc="leakage: test")
    return find_leakage(train_texts, test_texts, train_emb=emb_tr, test_emb=emb_te,
                        threshold=cfg.near_duplicate_threshold, modality=splits.train.modality)


__all__ = ["TEXT_COL", "TrainResult", "train"]
