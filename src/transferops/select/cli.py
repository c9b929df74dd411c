"""``transferops advise`` and ``transferops select``: thin layers over :func:`advise` and :func:`select`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transferops._progress import say
from transferops._util import dumps, write_json
from transferops.data import ColumnMap


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (same columns as train)")
    g.add_argument("--data", required=True, help="CSV, JSONL or Parquet file with labeled texts")
    g.add_argument("--text-column", default="text")
    g.add_argument("--label-column", default="label")
    g.add_argument("--label-sep", help="separator inside the label column for multi-label, e.g. '|'")
    g.add_argument("--time-column", help="time column (advise: temporal split; select: draws like train)")
    g.add_argument("--group-column", help="group column")
    g.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _columns(args: argparse.Namespace) -> ColumnMap:
    return ColumnMap(text=args.text_column, label=args.label_column, label_sep=args.label_sep,
                     time=args.time_column, group=args.group_column)


def register(sub: Any) -> None:
    a = sub.add_parser("advise", help="should this task transfer? strategy, loss, split and checkpoints",
                       description="Profile labeled data and apply the transfer-learning decision table.")
    _data_args(a)
    a.add_argument("--unlabeled", help="file of unlabeled texts (continued pretraining pays off > 10k)")
    a.add_argument("--unlabeled-text-column", default="text")
    a.add_argument("--latency-ms", type=float, help="serving latency budget per request")
    a.add_argument("--team-size", type=int, help="people who will build and run the model")
    a.add_argument("--no-relevant-checkpoint", action="store_true",
                   help="no pretrained model covers this domain or language")
    a.add_argument("--checkpoints", help="comma-separated checkpoints to measure token lengths with "
                   "(default: the installed bundled ones)")
    a.set_defaults(func=_advise)

    s = sub.add_parser("select", help="rank candidate checkpoints with cheap scores on a small split",
                       description="kNN, logistic-probe and LogME scores on frozen embeddings of a "
                       "stratified selection split (never the test split), next to majority and TF-IDF "
                       "baselines.")
    _data_args(s)
    s.add_argument("--candidates", required=True,
                   help="comma-separated: bundled names (minilm-l6, mpnet-base), HF folders, cached repo ids")
    s.add_argument("--n", type=int, default=100, help="selection split size (default 100)")
    s.add_argument("--seed", type=int, default=0, help="same seed as train, so the test split is the same")
    s.add_argument("--max-length", type=int, default=128)
    s.add_argument("--image-size", type=int, help="image folders: crop side in pixels (default: the checkpoint's)")
    s.add_argument("--rank-by", default="probe_macro_f1",
                   choices=["probe_macro_f1", "probe_accuracy", "knn_accuracy", "logme"])
    s.add_argument("--top", type=int, default=3, help="how many candidates to recommend")
    s.add_argument("--knn-k", type=int, default=5)
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--merge-rare-classes", action="store_true",
                   help="merge classes with < 2 examples in the split into one class (default: error)")
    s.add_argument("--no-cache", action="store_true", help="recompute embeddings")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="embedding pass: auto = bf16 on a CPU with native bf16 (avx512_bf16/amx_bf16), else fp32")
    s.add_argument("--plot", help="write a bar plot of the scores to this PNG")
    s.add_argument("--output", help="also write the JSON result to this file")
    f = s.add_argument_group("fine-tune the top K (the expensive check of the cheap scores)")
    f.add_argument("--finetune-top", type=int, default=0, metavar="K")
    f.add_argument("--out", default="select-runs", help="folder for the fine-tuned models")
    f.add_argument("--strategy", choices=["auto", "head", "freeze", "full", "lora"], default="auto")
    f.add_argument("--epochs", type=int)
    f.add_argument("--max-steps", type=int)
    f.add_argument("--no-near-duplicates", action="store_true",
                   help="skip train's embedding-based near-duplicate check (faster)")
    s.set_defaults(func=_select)


def _quiet_for_json(args: argparse.Namespace) -> None:
    # Status lines go to stdout; with --json stdout must hold only the JSON document.
    if args.json:
        from transferops._progress import set_quiet

        set_quiet(True)


def _advise(args: argparse.Namespace) -> int:
    from transferops.select.advise import advise

    _quiet_for_json(args)
    cks = [c.strip() for c in args.checkpoints.split(",") if c.strip()] if args.checkpoints else None
    adv = advise(args.data, columns=_columns(args), unlabeled=args.unlabeled,
                 unlabeled_text_column=args.unlabeled_text_column, latency_ms=args.latency_ms,
                 team_size=args.team_size, no_relevant_checkpoint=args.no_relevant_checkpoint,
                 checkpoints=cks)
    print(dumps(adv.to_dict()) if args.json else adv.table())
    return 0


def _select(args: argparse.Namespace) -> int:
    from transferops.select.selection import SelectConfig, finetune_top, select
    from transferops.vision.data import is_image_folder

    if is_image_folder(args.data):  # issue 15: image checkpoints ranked on frozen features
        from transferops.vision.select import format_selection, select_images

        ires = select_images(args.data, args.candidates.split(","), n=args.n, seed=args.seed, knn_k=args.knn_k,
                             folds=args.folds, image_size=getattr(args, "image_size", None))
        print(dumps(ires) if args.json else format_selection(ires))
        return 0
    _quiet_for_json(args)
    cfg = SelectConfig(n=args.n, seed=args.seed, max_length=args.max_length, knn_k=args.knn_k,
                       folds=args.folds, rank_by=args.rank_by, top=args.top,
                       rare_classes="merge" if args.merge_rare_classes else "error",
                       use_cache=not args.no_cache, precision=args.precision)
    cm = _columns(args)
    res = select(args.data, args.candidates.split(","), columns=cm, config=cfg)
    if args.finetune_top:
        kw: dict[str, Any] = {"strategy": args.strategy, "max_length": args.max_length}
        if args.epochs:
            kw["epochs"] = args.epochs
        if args.max_steps:
            kw["max_steps"] = args.max_steps
        if args.no_near_duplicates:
            kw["check_near_duplicates"] = False
        res.finetune = finetune_top(res, args.data, args.finetune_top, out=args.out, columns=cm,
                                    seed=args.seed, **kw)
    if args.plot:
        from transferops.select.plot import plot_selection

        plot_selection(res, args.plot)
        say(f"plot written to {args.plot}")
    if args.output:
        write_json(Path(args.output), res.to_dict())
    print(dumps(res.to_dict()) if args.json else res.table())
    return 0
