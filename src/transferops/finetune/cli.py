"""``transferops train`` and ``transferops lr-find``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from transferops._util import dumps
from transferops.errors import ConfigError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="CSV, JSONL or Parquet file with labeled texts")
    g.add_argument("--text-column", default="text")
    g.add_argument("--label-column", default="label", help="label column (multi-label: lists or --label-sep)")
    g.add_argument("--label-columns", help="comma-separated 0/1 columns for multi-label")
    g.add_argument("--label-sep", help="separator inside the label column for multi-label, e.g. '|'")
    g.add_argument("--time-column", help="time column: enables a temporal split")
    g.add_argument("--group-column", help="group column: no group on both sides of a split")
    g.add_argument("--id-column")
    g.add_argument("--slice-column", action="append", default=[], help="kept with the splits for evaluation")
    g.add_argument("--split", choices=["stratified", "temporal", "group", "random"], default=None)
    g.add_argument("--validation-size", type=float, default=0.1)
    g.add_argument("--test-size", type=float, default=0.2)
    g.add_argument("--skip-bad-rows", action="store_true", help="write bad rows to rejects.csv and go on")
    g.add_argument("--encoding", default="utf-8")


def _eval_every(value: str) -> int | str:
    """``--eval-every``: an integer, auto, or none (stored as the string 'none', mapped to None)."""
    v = value.strip().lower()
    if v in ("auto", "none"):
        return v
    try:
        k = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer number of steps, auto or none, got {value!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (or auto / none), got {k}")
    return k


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    g.add_argument("--config", help="YAML file of TrainConfig fields (command-line flags win)")
    g.add_argument("--checkpoint", help="bundled name (minilm-l6, mpnet-base), HF folder, or cached repo id")
    from transferops.finetune.strategies import strategy_names  # the registry (torch-free)

    g.add_argument("--strategy", choices=strategy_names())
    g.add_argument("--task", choices=["auto", "binary", "multiclass", "multilabel"])
    g.add_argument("--epochs", type=int)
    g.add_argument("--max-steps", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--grad-accum", type=int)
    g.add_argument("--max-length", type=int)
    g.add_argument("--warmup-ratio", type=float)
    g.add_argument("--loss", choices=["ce", "focal"])
    g.add_argument("--focal-gamma", type=float)
    g.add_argument("--class-weight", choices=["balanced"])
    g.add_argument("--oversample", action="store_true", default=None)
    g.add_argument("--patience", type=int, dest="early_stopping_patience")
    g.add_argument("--eval-every", type=_eval_every, metavar="STEPS|auto|none",
                   help="also validate every STEPS optimiser steps inside an epoch (best weights, early "
                        "stopping); auto (default): up to 4 times an epoch, as many as keep validation within "
                        "~10%% of an epoch, judged from the split sizes; none: at epoch ends only")
    g.add_argument("--metric", choices=["macro_f1", "accuracy", "micro_f1", "weighted_f1", "loss"])
    g.add_argument("--seed", type=int)
    g.add_argument("--freeze-layers", type=int)
    g.add_argument("--freeze-fraction", type=float)
    g.add_argument("--lora-r", type=int)
    g.add_argument("--lora-alpha", type=int)
    g.add_argument("--lora-dropout", type=float)
    g.add_argument("--lora-targets", help="comma-separated module names")
    g.add_argument("--dedupe", action="store_true", default=None, help="drop train rows leaking into test")
    g.add_argument("--no-near-duplicates", action="store_false", dest="check_near_duplicates", default=None,
                   help="skip the embedding-based near-duplicate check")
    g.add_argument("--calibrate", action="store_true", default=None, help="fit temperature scaling on validation")
    g.add_argument("--threads", type=int)
    g.add_argument("--augment", type=float, metavar="RATE",
                   help="add RATE perturbed copies per training row (0.5: half the rows; train split only)")
    g.add_argument("--augment-strength", type=float, help="share of words each copy perturbs (default 0.15)")
    g.add_argument("--augment-perturbations", help="comma-separated: char_insert, char_delete, char_substitute, "
                   "char_swap, keyboard, leetspeak, token_mask, token_replace (default: all)")
    g.add_argument("--augment-slice", action="append", default=None, metavar="COL=VALUE",
                   help="oversample this slice by augmentation (COL must be a --slice-column; repeatable)")
    g.add_argument("--augment-slice-copies", type=int, help="copies per row of each --augment-slice (default 2)")
    # less work per step (issue 18): docs/finetune.md "Less work per step"
    g.add_argument("--truncation", choices=("head", "head_tail"),
                   help="cut long texts at the head (default) or keep the first 1/4 + last 3/4 of max_length")
    g.add_argument("--frozen-dropout", action=argparse.BooleanOptionalAction, default=None,
                   help="strategy freeze: the frozen layers keep their dropout while the rest trains (default); "
                        "--no-frozen-dropout runs them in eval mode, which lets --cache-frozen compute them once")
    g.add_argument("--cache-frozen", choices=("auto", "on", "off"),
                   help="strategy freeze: compute the frozen layers once and train the rest on cached states "
                        "(auto: with --no-frozen-dropout, when it fits --cache-frozen-max-mb and there are >= 2 "
                        "epochs; on needs --no-frozen-dropout)")
    g.add_argument("--cache-frozen-max-mb", type=int, help="memory budget of the frozen-prefix cache (default 2048)")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="training precision: auto (default: bf16 where the CPU/GPU has native bf16, else fp32), "
                   "fp32, bf16, fp16 (CUDA only); saved weights are fp32")


_CONFIG_FLAGS = ("checkpoint", "strategy", "task", "epochs", "max_steps", "lr", "batch_size", "grad_accum",
                 "max_length", "warmup_ratio", "loss", "focal_gamma", "class_weight", "oversample",
                 "early_stopping_patience", "eval_every", "metric", "seed", "freeze_layers", "freeze_fraction",
                 "dedupe",
                 "check_near_duplicates", "calibrate", "threads", "augment", "augment_strength",
                 "augment_slice", "augment_slice_copies", "precision", "truncation", "cache_frozen",
                 "cache_frozen_max_mb", "frozen_dropout")


def explicit_keys(args: argparse.Namespace) -> set[str]:
    """TrainConfig fields the user set (YAML keys and flags): ``auto`` never overrides these."""
    keys = {k for k in _CONFIG_FLAGS if getattr(args, k, None) is not None}
    if getattr(args, "config", None) and Path(args.config).exists():
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if isinstance(loaded, dict):
            keys |= set(loaded)
    return keys


def config_from_args(args: argparse.Namespace) -> Any:
    from transferops.finetune.config import TrainConfig

    base: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        if not path.exists():
            raise ConfigError(f"--config: {path} not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config: {path} is not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config: {path} must be a mapping of TrainConfig fields")
        from transferops.finetune.multitask import split_config_keys

        base, _ = split_config_keys(loaded)  # tasks / task_weights: multi-task keys, read by _train
    for k in _CONFIG_FLAGS:
        v = getattr(args, k, None)
        if v is not None:
            base[k] = None if (k == "eval_every" and v == "none") else v
    if getattr(args, "augment_perturbations", None):
        base["augment_perturbations"] = [t.strip() for t in args.augment_perturbations.split(",") if t.strip()]
    if "lora" in base and not isinstance(base["lora"], dict):
        return TrainConfig.from_dict(base)  # TrainConfig names the key and the expected type
    lora = dict(base.get("lora") or {})
    for flag, key in (("lora_r", "r"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout")):
        if getattr(args, flag, None) is not None:
            lora[key] = getattr(args, flag)
    if getattr(args, "lora_targets", None):
        lora["target_modules"] = [t.strip() for t in args.lora_targets.split(",") if t.strip()]
    if lora:
        base["lora"] = lora
    return TrainConfig.from_dict(base)


def _data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "text_column": args.text_column,
        "label_column": None if args.label_columns else args.label_column,
        "label_columns": [c.strip() for c in args.label_columns.split(",")] if args.label_columns else None,
        "label_sep": args.label_sep,
        "time_column": args.time_column,
        "group_column": args.group_column,
        "id_column": args.id_column,
        "slice_columns": args.slice_column,
        "skip_bad_rows": args.skip_bad_rows,
        "encoding": args.encoding,
    }


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="fine-tune a checkpoint on labeled data and save the model folder",
                       description="Fine-tune a pretrained checkpoint. Example: transferops train --data "
                       "news.csv --checkpoint minilm-l6 --strategy lora --out runs/news")
    _add_data_args(p)
    _add_train_args(p)
    from transferops.tabular.cli import add_train_args as add_tabular_args  # issue 16: tables

    add_tabular_args(p)
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--keep-state", action="store_true", help="keep training_state/ (resumable checkpoints)")
    p.add_argument("--seeds", type=int, help="train N seeds and save an ensemble (averaged probabilities)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    g = p.add_argument_group("model search and own splits")
    g.add_argument("--search", action="store_true", default=None,
                   help="try the tuned baseline, a frozen probe and every strategy; save the best on validation "
                        "(default when no --strategy is given and train has <= 1,000 rows)")
    g.add_argument("--no-search", action="store_false", dest="search", help="never search; train one strategy")
    g.add_argument("--time-budget", help="search budget, e.g. 15m, 90s, 1h (default 15m)")
    g.add_argument("--search-ensemble", type=int, metavar="K",
                   help="save the mean of up to K of the best search candidates (0: one model, needed for "
                        "ONNX export); default: 5 when the validation split has 30-99 rows and > 16 training "
                        "rows a class, else 0 (docs/search.md)")
    g.add_argument("--validation-data", help="your own validation file (same columns as --data)")
    g.add_argument("--test-data", help="your own test file; no internal test split is cut from --data")
    g.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                   help="after choosing, refit the recipe on train + validation (default: only a contrastive "
                        "search winner at <= 16 training rows a class; --no-refit never)")
    c = p.add_argument_group("add classes to a trained run (continual learning)")
    c.add_argument("--init-from", help="a trained run folder: extend its head to the old + new labels and "
                   "continue it on --data (docs/finetune.md, 'Adding classes')")
    c.add_argument("--replay", type=float, help="share of each old class's training rows replayed (0-1; "
                   "default 0.25)")
    c.add_argument("--l2-to-old", type=float, default=0.0, help="L2 penalty towards the old weights (default 0)")
    c.add_argument("--max-forgetting", type=float, help="gate: old-class macro-F1 may drop by at most this "
                   "(e.g. 0.02); exit code 1 when it drops more")
    mt = p.add_argument_group("multi-task: one backbone, a head per label column (docs/multitask.md)")
    mt.add_argument("--tasks", help="name=column pairs, e.g. topic=label,urgency=priority (a type may follow: "
                    "tags=tags:multilabel); trains one model with one head per task")
    mt.add_argument("--task-weights", help="loss weight per task, e.g. topic=1,urgency=0.5 (default 1 each)")
    from transferops.vision.cli import add_train_args as _image_args  # issue 15: --modality image ...

    _image_args(p)
    p.set_defaults(func=_train)

    lc = sub.add_parser("learning-curve", help="validation metric of the run's recipe and the tuned baseline at "
                        "12.5/25/50/100%% of the labels", description="Refit the saved run's recipe and the tuned "
                        "baseline on growing shares of its training split; scored on its validation split.")
    lc.add_argument("--model", required=True, help="trained model folder")
    lc.add_argument("--fractions", default="0.125,0.25,0.5,1", help="comma-separated shares of the labels")
    lc.add_argument("--seed", type=int, default=0)
    lc.add_argument("--target", type=float, help="also estimate the training labels needed for this validation "
                    "metric value (e.g. 0.9); `cost --labels-from RUN --target-metric X` prices them")
    lc.add_argument("--json", action="store_true")
    lc.set_defaults(func=_learning_curve)

    lf = sub.add_parser("lr-find", help="exponential learning-rate sweep (Smith 2017) with a plot")
    _add_data_args(lf)
    _add_train_args(lf)
    lf.add_argument("--steps", type=int, default=100)
    lf.add_argument("--min-lr", type=float, default=1e-7)
    lf.add_argument("--max-lr", type=float, default=1e-1)
    lf.add_argument("--plot", default="lr_find.png", help="where to write the loss-vs-LR plot (PNG)")
    lf.add_argument("--json", action="store_true")
    lf.set_defaults(func=_lr_find)


def _split_cfg(args: argparse.Namespace, seed: int) -> Any:
    from transferops.data import SplitConfig

    if args.split is None and args.validation_size == 0.1 and args.test_size == 0.2:
        return None
    method: Any = args.split or ("temporal" if args.time_column else "group" if args.group_column else "stratified")
    return SplitConfig(method=method, validation_size=args.validation_size, test_size=args.test_size, seed=seed)


def _train(args: argparse.Namespace) -> int:
    import transferops
    from transferops.tabular import cli as tabular_cli

    if tabular_cli.wants_tabular(args):  # a table without a text column, or --modality tabular
        return tabular_cli.train(args)
    from transferops.vision import cli as image_cli

    if image_cli.wants_images(args):  # an image folder or --modality image (issue 15)
        return image_cli.train(args)
    cfg = config_from_args(args)
    split = _split_cfg(args, cfg.seed)
    from transferops.finetune.multitask import multitask_args

    mt = multitask_args(args)
    if mt is not None:  # --tasks (or tasks: in --config): one backbone, one head per task
        from transferops.finetune.multitask import run_train_cli

        return run_train_cli(args, cfg, split, *mt)
    if args.seeds and getattr(args, "init_from", None):
        raise ConfigError("--seeds and --init-from: an ensemble cannot continue one old model; drop one of them")
    if args.seeds:
        from transferops.adapt.ensemble import train_seeds

        # --seed fixes the split; members use seeds seed, seed+1, ... for initialisation and data order.
        path = train_seeds(args.data, args.out, seeds=list(range(cfg.seed, cfg.seed + args.seeds)),
                           config=cfg, split=split, seed=cfg.seed, resume=args.resume, **_data_kwargs(args))
        print(f"ensemble of {args.seeds} seeds saved to {path}")
        return 0
    if getattr(args, "search", None) and args.strategy not in (None, "auto"):
        raise ConfigError(f"--search and --strategy {args.strategy}: mutually exclusive (the search tries every "
                          "strategy); drop one of them")
    res = transferops.train(args.data, out=args.out, config=cfg, split=split, resume=args.resume,
                            keep_state=args.keep_state, search=getattr(args, "search", None),
                            time_budget=getattr(args, "time_budget", None),
                            search_ensemble=getattr(args, "search_ensemble", None),
                            validation_data=getattr(args, "validation_data", None),
                            test_data=getattr(args, "test_data", None), explicit=explicit_keys(args),
                            refit=getattr(args, "refit", None),
                            init_from=getattr(args, "init_from", None), replay=getattr(args, "replay", None),
                            l2_to_old=getattr(args, "l2_to_old", 0.0) or 0.0,
                            max_forgetting=getattr(args, "max_forgetting", None),
                            **_data_kwargs(args))
    from transferops import distributed

    if distributed.is_main_process():  # under accelerate launch / torchrun, print once
        print(dumps(res.manifest) if args.json else res.summary())
    if res.manifest.get("continual"):
        from transferops.finetune.continual import raise_if_forgot

        raise_if_forgot(res.manifest["continual"]["report"], res.path)  # exit code 1 when it forgot
    return 0


def _learning_curve(args: argparse.Namespace) -> int:
    from transferops.finetune.learning_curve import learning_curve

    try:
        fractions = tuple(float(f) for f in args.fractions.split(",") if f.strip())
    except ValueError as exc:
        raise ConfigError(f"--fractions: {args.fractions!r} is not a comma-separated list of numbers") from exc
    res = learning_curve(args.model, fractions=fractions, seed=args.seed)
    out = res.to_dict()
    if args.target is not None:
        from transferops.finetune.learning_curve import labels_needed

        out["labels_for_target"] = labels_needed(res.points, args.target)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(res.table())
        if args.target is not None:
            est = out["labels_for_target"]
            print(f"labels for {res.metric} {args.target}: {est['labels_needed'] or 'not reachable'} — {est['reason']}")
    return 0


def _lr_find(args: argparse.Namespace) -> int:
    from transferops.finetune.lr_find import lr_find

    cfg = config_from_args(args)
    res = lr_find(args.data, config=cfg, steps=args.steps, min_lr=args.min_lr, max_lr=args.max_lr,
                  **{k: v for k, v in _data_kwargs(args).items() if k != "skip_bad_rows"})
    if args.plot:
        res.plot(args.plot)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(f"suggested lr: {res.suggested_lr:.2e} (steepest descent); minimum loss at {res.min_loss_lr:.2e}"
              + (f"; plot: {args.plot}" if args.plot else ""))
    return 0
