"""The tabular path behind the existing commands (``train``, ``evaluate``, ``export``, ``monitor``, ``adapt``,
``retrain``, ``predict``): each stage's command calls :func:`wants_tabular` / :func:`is_tabular_folder` first and
hands the parsed arguments here. ``serve`` needs nothing here: the shared server takes tabular models
(:mod:`transferops.deploy.routers.tables`). Part of the CLI layer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transferops._util import dumps
from transferops.errors import ConfigError, DataError
from transferops.tabular.artifact import is_tabular_folder


def add_modality_arg(p: argparse.ArgumentParser) -> None:
    """The one ``--modality`` flag of ``train`` / ``adapt`` (every modality: text, tabular, image)."""
    p.add_argument("--modality", choices=["auto", "text", "tabular", "image"], default="auto",
                   help="what an input is: auto (default) takes the image path for a folder of class sub-folders, "
                        "the tabular path for a CSV/Parquet without the text column, else text")


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_modality_arg(p)
    g = p.add_argument_group("tables (--modality tabular; also --epochs, --lr, --batch-size, --seed, --loss, "
                             "--focal-gamma, --class-weight, --checkpoint PRETRAINED_DIR)")
    g.add_argument("--feature-columns", help="comma-separated feature columns (default: every other column)")
    g.add_argument("--models", help="candidates of the search: trees, transformer, stack (default: all three; "
                   "trees are always trained)")
    g.add_argument("--positive-weight", type=float, help="weight of the positive class, any ratio (e.g. 100)")
    g.add_argument("--smote", action="store_true", help="oversample the training split with SMOTE (imbalanced-learn)")
    g.add_argument("--threshold-target", help="decision threshold chosen on validation: max-f1 (default), "
                   "recall>=0.89, precision>=0.9")
    g.add_argument("--positive-label", help="the positive class of a binary label (default: the minority class)")
    g.add_argument("--folds", type=int, help="folds of the stack's out-of-fold predictions (default 3)")
    g.add_argument("--no-split-comparison", action="store_true",
                   help="with --time-column, skip refitting on a random split for the optimism comparison")


def wants_tabular(args: argparse.Namespace) -> bool:
    mod = getattr(args, "modality", "auto") or "auto"
    if mod == "tabular":
        return True
    if mod in ("text", "image") or getattr(args, "config", None):  # --config is the text trainer's YAML: the text path
        return False
    from transferops.tabular.api import looks_tabular

    return bool(getattr(args, "data", None)) and looks_tabular(args.data, getattr(args, "text_column", "text"))


def _csv(v: str | None) -> list[str] | None:
    return [c.strip() for c in v.split(",") if c.strip()] if v else None


def train(args: argparse.Namespace) -> int:
    from transferops.tabular.api import CANDIDATES, TabularConfig, train_tabular

    if getattr(args, "positive_weight", None) is not None and getattr(args, "class_weight", None):
        raise ConfigError("--positive-weight and --class-weight: give one of them")
    kw: dict[str, Any] = {}
    for flag, key in (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch_size"), ("seed", "seed"),
                      ("loss", "loss"), ("focal_gamma", "focal_gamma"), ("folds", "folds"),
                      ("threshold_target", "threshold_target"), ("positive_label", "positive_label"),
                      ("validation_size", "validation_size"), ("test_size", "test_size")):
        v = getattr(args, flag, None)
        if v is not None:
            kw[key] = v
    if getattr(args, "class_weight", None):
        kw["class_weight"] = args.class_weight
    if getattr(args, "positive_weight", None) is not None:
        kw["class_weight"] = args.positive_weight
    if getattr(args, "smote", False):
        kw["smote"] = True
    if getattr(args, "models", None):
        kw["models"] = tuple(_csv(args.models) or CANDIDATES)
    if getattr(args, "split", None):
        kw["split"] = args.split
    if getattr(args, "no_split_comparison", False):
        kw["compare_random_split"] = False
    cfg = TabularConfig(**kw)
    pre = getattr(args, "checkpoint", None)
    inferred = (getattr(args, "modality", "auto") or "auto") == "auto"
    tc = getattr(args, "text_column", "text")
    if pre and not (Path(pre) / "pretrained.json").exists() and inferred:
        # the table was inferred from the missing text column, but the checkpoint is not a table's:
        # most likely a text run whose column is named otherwise
        raise DataError(f"{args.data}: no text column {tc!r} (it would be read as a table, but --checkpoint {pre} "
                        "is not a tabular pretrained folder); for text, pass --text-column NAME")
    if pre and not (Path(pre) / "pretrained.json").exists():
        raise ConfigError(f"--checkpoint: {pre} is not a tabular pretrained folder (make one with transferops adapt "
                          "--modality tabular --unlabeled FILE --out DIR)")
    try:
        m = train_tabular(args.data, out=args.out, label_column=args.label_column,
                          feature_columns=_csv(getattr(args, "feature_columns", None)), time_column=args.time_column,
                          group_column=args.group_column, id_column=args.id_column,
                          slice_columns=list(args.slice_column or []), config=cfg, pretrained=pre)
    except DataError as exc:
        if not inferred:
            raise
        # the table was inferred from the missing text column: say so, the user may have meant text
        raise DataError(f"{args.data}: no text column {tc!r}, so it was read as a table (--modality tabular); "
                        f"as a table: {exc} (for text, pass --text-column NAME)") from None
    if getattr(args, "json", False):
        print(dumps(m))
        return 0
    t = m["metrics"]["test"]
    print(f"tabular model saved to {args.out}: {m['model']} (chosen on {m['search']['selected_by']})")
    for name, c in m["search"]["candidates"].items():
        ts = c["test"]
        print(f"  {name:<12} val {c['val_score']:.4f}  test f1 {ts.get('f1', ts.get('macro_f1'))}  "
              f"pr_auc {ts.get('pr_auc', '-')}  ({c['train_seconds']} s)")
    if m.get("split_comparison"):
        sc = m["split_comparison"]
        print(f"  random split f1 {sc['random'].get('f1')} vs time split f1 {sc['temporal'].get('f1')} "
              "(the time split is the honest estimate)")
    shown = ("f1", "precision", "recall", "pr_auc", "accuracy", "macro_f1")
    print("  test: " + ", ".join(f"{k} {v}" for k, v in t.items() if k in shown))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from transferops.tabular.report import evaluate_tabular, markdown

    res = evaluate_tabular(args.model, data=args.data, slices=list(args.slices) or None,
                           min_support=args.min_support)
    md = markdown(res)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(dumps(res))
    if args.report:
        import html

        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        text = md if str(args.report).endswith(".md") else (
            f"<!doctype html><meta charset='utf-8'><title>transferops tabular evaluation</title>"
            f"<pre>{html.escape(md)}</pre>")
        Path(args.report).write_text(text, encoding="utf-8")
    print(md)
    return 0


def export(args: argparse.Namespace) -> int:
    from transferops.tabular.export import export_tabular

    info = export_tabular(args.model, args.out, overwrite=args.overwrite, sample_size=args.sample_size)
    par = info.get("parity")
    print(f"exported {args.model} -> {args.out}: trees {info['trees']}" +
          (f"; transformer ONNX parity max |diff| {par['max_abs_diff']:.2e}, labels agree {par['label_agreement']:.4f} "
           f"on {par['rows']} validation rows" if par else "; no transformer"))
    return 0


def monitor(args: argparse.Namespace, db: str) -> int:
    from transferops.tabular.monitoring import monitor_tabular, summary

    rep = monitor_tabular(args.model, db=db, model_name=getattr(args, "model_name", None), last=args.last,
                          window=args.window, warn=args.warn, retrain=args.retrain)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(dumps(rep), encoding="utf-8")
    print(dumps(rep) if args.json else summary(rep))
    return int(rep["exit_code"])


def retrain(args: argparse.Namespace, db: str | None) -> int:
    from transferops.tabular.retrain import retrain_tabular

    if not args.new_data:
        raise ConfigError("--new-data: a tabular retrain needs the new labeled rows (CSV/Parquet)")
    if args.if_drift:
        if not db:
            raise ConfigError("--if-drift: needs --db (the prediction log)")
        from transferops.tabular.monitoring import monitor_tabular

        rep = monitor_tabular(args.model, db=db, window=args.drift_window)
        if rep["status"] != "retrain":
            print(f"skipped: drift status is {rep['status']} (retrain needs 'retrain')")
            return 0
    metric = "pr_auc" if args.metric == "macro_f1" else args.metric  # the text default means PR-AUC for tables
    res = retrain_tabular(args.model, args.new_data, out=args.out, db=db, metric=metric, margin=args.margin,
                          holdout_fraction=args.holdout_fraction, epochs=args.epochs, promote=not args.no_promote)
    if args.json:
        print(dumps(res))
    else:
        c, h = res["champion"]["holdout"][metric], res["challenger"]["holdout"][metric]
        print(f"{res['winner']} wins on {res['holdout_rows']} holdout rows: {metric} champion {c} vs challenger {h} "
              f"(gain {res['gain']:+.4f}, margin {res['margin']}){'; promoted' if res['promoted'] else ''}")
    return int(res["exit_code"])


def adapt(args: argparse.Namespace) -> int:
    from transferops.tabular.pretraining import pretrain_tabular

    doc = pretrain_tabular(args.unlabeled, out=args.out, feature_columns=_csv(getattr(args, "feature_columns", None)),
                           drop_columns=_csv(getattr(args, "drop_columns", None)) or [], steps=args.steps,
                           lr=args.lr if args.lr != 5e-5 else 1e-3, batch_size=max(args.batch_size, 64),
                           seed=args.seed)
    if args.json:
        print(dumps(doc))
    else:
        s = doc["summary"]
        print(f"pretrained FT-Transformer ({s['objective']}) on {s['rows']} unlabeled rows, {s['steps']} steps, "
              f"{s['train_seconds']} s -> {args.out}; fine-tune with: transferops train --data LABELED "
              f"--checkpoint {args.out} ...")
    return 0


__all__ = ["adapt", "add_modality_arg", "add_train_args", "evaluate", "export", "is_tabular_folder", "monitor",
           "retrain", "train", "wants_tabular"]
