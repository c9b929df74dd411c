"""Commands: ``monitor``, ``label-queue``, ``label-import``, ``registry``, ``retrain``.

Exit codes of ``monitor``: 0 ok (or too little data), 3 warn, 4 retrain — so cron/alerting can act.
``retrain``: 0 promoted or skipped (no drift), 3 challenger not promoted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from transferops._util import dumps

DB_HELP = ("database URL or SQLite file (default: $TRANSFEROPS_DB or ./transferops.db); "
           "postgresql://user@host:port/db for PostgreSQL")


def _db(args: argparse.Namespace, *, must_exist: bool = True) -> str:
    """The store URL; a SQLite file that does not exist is an error for commands that read it
    (a typo must not silently create an empty store and report "no data")."""
    from transferops.errors import ConfigError
    from transferops.monitor.store import normalise_url

    url = normalise_url(str(args.db or os.environ.get("TRANSFEROPS_DB") or "transferops.db"))
    if must_exist and url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            raise ConfigError(f"db: {path} does not exist; point --db at the store the server logs to "
                              "(transferops serve --db-url ...)")
    return url


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", "--db-url", default=None, help=DB_HELP + " (--db-url is an alias)")


def _add_window(p: argparse.ArgumentParser, dest_prefix: str = "") -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(f"--{dest_prefix}window", dest=f"{dest_prefix.replace('-', '_')}window", default=None,
                   help="time window ending now: 30m, 12h, 1d, 2w")
    g.add_argument(f"--{dest_prefix}last", dest=f"{dest_prefix.replace('-', '_')}last", type=int, default=None,
                   help="the newest N predictions")


def register(sub: Any) -> None:
    p = sub.add_parser("monitor", help="drift of logged predictions vs the model's reference profile",
                       description="Compare a window of the prediction log with the reference profile "
                                   "(exit 0 ok, 3 warn, 4 retrain).")
    p.add_argument("--model", required=True, help="model folder, or a registry alias/version (champion, v3)")
    _add_db(p)
    _add_window(p)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--report", default=None, help="write the HTML dashboard to this file")
    p.add_argument("--warn", type=float, default=0.1, help="PSI/embedding score that warns (default 0.1)")
    p.add_argument("--retrain", type=float, default=0.25, help="PSI/embedding score meaning retrain (0.25)")
    p.add_argument("--accuracy-warn", type=float, default=0.05, help="accuracy drop that warns")
    p.add_argument("--accuracy-retrain", type=float, default=0.10, help="accuracy drop meaning retrain")
    p.add_argument("--raw-psi", action="store_true", help="do not subtract the small-sample PSI noise floor")
    p.add_argument("--no-embedding", action="store_true", help="skip the embedding (sketch) drift")
    p.add_argument("--model-name", default=None, help="only predictions logged under this model name")
    p.add_argument("--buckets", type=int, default=24, help="time buckets in the dashboard series")
    p.add_argument("--build-profile", action="store_true",
                   help="(re)build the reference profile from the model's validation split first")
    p.add_argument("--per-task", action="store_true",
                   help="multi-task model: also a drift report per task (against its own reference profile)")
    p.add_argument("--images", help="image models: a folder of new images; report input drift (size, brightness, "
                   "contrast, colour) + embedding drift vs the reference profile (exit 4 on drift)")
    p.set_defaults(func=cmd_monitor)

    q = sub.add_parser("label-queue", help="export the most uncertain unlabeled predictions to CSV")
    _add_db(q)
    q.add_argument("--k", type=int, default=200, help="how many items (default 200)")
    q.add_argument("--strategy", choices=("entropy", "margin", "least-confidence"), default="entropy")
    q.add_argument("--diverse", action="store_true", help="spread picks across predicted classes")
    q.add_argument("--window", default=None, help="only predictions from this window (e.g. 7d)")
    q.add_argument("--model-name", default=None)
    q.add_argument("--out", default="label_queue.csv", help="CSV to write (default label_queue.csv)")
    q.set_defaults(func=cmd_label_queue)

    i = sub.add_parser("label-import", help="read an annotated label queue back as training data")
    i.add_argument("file", help="the annotated CSV (label column filled in)")
    i.add_argument("--out", default="labeled.csv", help="training CSV to write (text,label[,ts])")
    i.add_argument("--append-to", default=None, help="also append the rows to this existing training CSV")
    i.add_argument("--db", "--db-url", default=None, help="also record the labels as feedback in this store")
    i.add_argument("--model", default=None, help="model folder: reject labels it does not know")
    i.set_defaults(func=cmd_label_import)

    r = sub.add_parser("registry", help="model registry: list, register, promote, rollback")
    rsub = r.add_subparsers(dest="registry_cmd", metavar="ACTION")
    rl = rsub.add_parser("list", help="versions with lineage and aliases")
    _add_db(rl)
    rl.add_argument("--json", action="store_true")
    rr = rsub.add_parser("register", help="add a model folder as a new version")
    rr.add_argument("path")
    _add_db(rr)
    rr.add_argument("--parent", default=None)
    rr.add_argument("--promote", action="store_true", help="make it the champion right away")
    rp = rsub.add_parser("promote", help="make a version the champion")
    rp.add_argument("version")
    _add_db(rp)
    rb = rsub.add_parser("rollback", help="restore the previous champion")
    _add_db(rb)
    r.set_defaults(func=cmd_registry)
    for sp in (rl, rr, rp, rb):
        sp.set_defaults(func=cmd_registry)

    t = sub.add_parser("retrain", help="train a challenger on old + new data; promote it only if it wins",
                       description="Exit 0: promoted (or skipped: no drift); 3: challenger not promoted.")
    _add_db(t)
    t.add_argument("--model", default="champion", help="champion alias, version or model folder")
    t.add_argument("--new-data", default=None, help="labelled CSV/Parquet (text,label[,ts])")
    t.add_argument("--window", default=None, help="also use store feedback from this window (e.g. 90d)")
    t.add_argument("--out", default=None, help="folder for the challenger (default: next to the champion)")
    t.add_argument("--metric", default="macro_f1")
    t.add_argument("--margin", type=float, default=0.01, help="win needed on the holdout (default 0.01)")
    t.add_argument("--holdout-fraction", type=float, default=0.3)
    t.add_argument("--time-column", default=None)
    t.add_argument("--gates", default=None, help="gates YAML checked on the challenger's holdout metrics")
    t.add_argument("--if-drift", action="store_true", help="only retrain if monitoring says retrain")
    t.add_argument("--drift-window", default="1d", help="window checked by --if-drift (default 1d)")
    t.add_argument("--no-promote", action="store_true", help="evaluate, but never move the champion alias")
    t.add_argument("--epochs", type=int, default=None, help="override the champion's epochs")
    t.add_argument("--add-classes", action="store_true", help="continue the champion (train --init-from): "
                   "extend its head to new labels, replay old rows, gate forgetting")
    t.add_argument("--replay", type=float, default=None, help="with --add-classes: old rows replayed (default 0.25)")
    t.add_argument("--max-forgetting", type=float, default=None,
                   help="with --add-classes: old-class macro-F1 drop that blocks promotion (e.g. 0.02)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_retrain)


# ---------------------------------------------------------------------------- handlers
def cmd_monitor(args: argparse.Namespace) -> int:
    from transferops.tabular import cli as tabular_cli

    if tabular_cli.is_tabular_folder(args.model):  # issue 16: tables
        return tabular_cli.monitor(args, _db(args))
    from transferops.monitor.api import monitor, resolve_model_path
    from transferops.monitor.dashboard import render_dashboard
    from transferops.monitor.drift import DriftConfig
    from transferops.monitor.profile import profile_artifact
    from transferops.monitor.store import Store

    if getattr(args, "images", None):  # issue 15: image input drift from a folder
        from transferops.vision import cli as image_cli

        return image_cli.monitor(args)
    store = Store(_db(args))
    if args.build_profile:
        profile_artifact(resolve_model_path(args.model, store))
    cfg = DriftConfig(warn=args.warn, retrain=args.retrain, accuracy_warn=args.accuracy_warn,
                      accuracy_retrain=args.accuracy_retrain, correct_small_sample=not args.raw_psi,
                      embedding=not args.no_embedding)
    res = monitor(args.model, db=store, window=args.window, last=args.last, config=cfg, buckets=args.buckets,
                  model_name=args.model_name)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(render_dashboard(res.to_dict()), encoding="utf-8")
    per_task: dict[str, Any] = {}
    if getattr(args, "per_task", False):
        from transferops.monitor.multitask import monitor_tasks

        per_task = monitor_tasks(args.model, db=store, window=args.window, last=args.last, config=cfg,
                                 model_name=args.model_name)
    if args.json:
        print(dumps({**res.to_dict(), **({"tasks": {k: r.to_dict() for k, r in per_task.items()}}
                                         if per_task else {})}))
    else:
        print(res.report.summary())
        for name, rep in per_task.items():
            print(f"\ntask {name}:\n{rep.summary()}")
        if args.report:
            print(f"dashboard written to {args.report}")
    return max([res.report.exit_code, *(r.exit_code for r in per_task.values())])


def cmd_label_queue(args: argparse.Namespace) -> int:
    from transferops.monitor.active import label_queue, write_queue
    from transferops.monitor.api import window_bounds
    from transferops.monitor.store import Store

    since, _ = window_bounds(args.window)
    q = label_queue(Store(_db(args)), k=args.k, strategy=args.strategy, diverse=args.diverse, since=since,
                    model=args.model_name)
    write_queue(q, args.out)
    print(f"{len(q)} items to label written to {args.out} (strategy {args.strategy}"
          f"{', diverse' if args.diverse else ''})")
    return 0


def cmd_label_import(args: argparse.Namespace) -> int:
    import pandas as pd

    from transferops.monitor.active import import_labels
    from transferops.monitor.store import Store

    known = None
    if args.model:
        from transferops.artifacts.model import read_manifest

        known = [str(x) for x in read_manifest(args.model)["labels"]]
    df = import_labels(args.file, store=Store(_db(args)) if args.db else None, known_labels=known)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    msg = f"{len(df)} labelled rows written to {args.out}"
    if args.append_to:
        target = Path(args.append_to)
        if target.exists():
            base = pd.read_csv(target)
            cols = [c for c in base.columns if c in df.columns] or ["text", "label"]
            pd.concat([base, df[cols]], ignore_index=True).to_csv(target, index=False)
        else:
            df.to_csv(target, index=False)
        msg += f"; appended to {target}"
    print(msg + (" and recorded as feedback" if args.db else ""))
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from transferops.monitor.registry import Registry

    action = getattr(args, "registry_cmd", None)
    if action is None:
        print("usage: transferops registry {list,register,promote,rollback} --db URL", file=sys.stderr)
        return 2
    reg = Registry(_db(args, must_exist=action != "register"))
    if action == "list":
        versions = reg.list()
        if args.json:
            print(dumps([v.to_dict() for v in versions]))
            return 0
        if not versions:
            print("registry is empty (add a model: transferops registry register runs/x --promote)")
        for v in versions:
            f1 = (v.metrics.get("test") or {}).get("macro_f1")
            print(f"{v.version:<5} {','.join(v.aliases) or '-':<20} parent {v.parent or '-':<5} "
                  f"base {v.base_checkpoint or '-':<12} test macro-F1 {'-' if f1 is None else f'{f1:.4f}'}  {v.path}")
        return 0
    if action == "register":
        v = reg.register(args.path, parent=args.parent)
        if args.promote:
            reg.promote(v.version, reason="register --promote")
        print(f"registered {args.path} as {v.version}" + (" (champion)" if args.promote else ""))
        return 0
    if action == "promote":
        v = reg.promote(args.version, reason="manual promote")
        print(f"{v.version} is now the champion ({v.path})")
        return 0
    v = reg.rollback()
    print(f"rolled back: champion is {v.version} again ({v.path})")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from transferops.tabular import cli as tabular_cli

    if tabular_cli.is_tabular_folder(args.model):  # issue 16: tables
        return tabular_cli.retrain(args, _db(args, must_exist=False) if args.db else None)
    from transferops.monitor.registry import Registry
    from transferops.monitor.retrain import RetrainConfig, retrain, skipped
    from transferops.monitor.store import Store

    store = Store(_db(args))
    if args.if_drift:
        from transferops.monitor.api import monitor

        champ = Registry(store).resolve(args.model) if not Path(args.model).exists() else None
        model_ref = champ.path if champ else args.model
        rep = monitor(model_ref, db=store, window=args.drift_window).report
        if rep.status != "retrain":
            res = skipped(f"drift status is {rep.status} (retrain needs 'retrain')",
                          champ.version if champ else str(args.model), rep.status)
            print(dumps(res.to_dict()) if args.json else res.summary())
            return res.exit_code
    cfg = RetrainConfig(metric=args.metric, margin=args.margin, holdout_fraction=args.holdout_fraction,
                        time_column=args.time_column, gates=args.gates, add_classes=args.add_classes,
                        replay=args.replay, max_forgetting=args.max_forgetting)
    overrides = {"epochs": args.epochs} if args.epochs else None
    res = retrain(store, model=args.model, new_data=args.new_data, window=args.window, out=args.out, config=cfg,
                  overrides=overrides, promote=not args.no_promote)
    print(dumps(res.to_dict()) if args.json else res.summary())
    return res.exit_code
