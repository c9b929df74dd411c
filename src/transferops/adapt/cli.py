"""``transferops adapt`` (continued MLM pretraining), ``distill`` and ``ensemble``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from transferops._util import dumps


def register(sub: Any) -> None:
    p = sub.add_parser("adapt", help="continue MLM pretraining of a checkpoint on unlabeled in-domain text",
                       description="Masked-language-model training (15% whole-word masking) on unlabeled "
                                   "texts; writes a new checkpoint folder usable as --checkpoint anywhere.")
    p.add_argument("--checkpoint", default="minilm-l6", help="parent checkpoint: bundled name or HF folder")
    p.add_argument("--unlabeled", required=True, help="CSV, JSONL or Parquet file of texts")
    p.add_argument("--text-column", default="text")
    p.add_argument("--out", required=True, help="folder for the adapted checkpoint")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.06)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--mlm-probability", type=float, default=0.15)
    p.add_argument("--no-whole-word", action="store_false", dest="whole_word", help="mask single tokens")
    p.add_argument("--head-warmup-steps", type=int, default=None,
                   help="steps training a freshly initialised MLM head alone (default: auto)")
    p.add_argument("--forgetting-factor", type=float, default=1.5,
                   help="warn when general-text perplexity rises by more than this factor")
    p.add_argument("--save-every", type=int, default=50, help="resumable state every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print the lineage manifest as JSON")
    from transferops.tabular.cli import add_modality_arg  # issue 16: tables

    add_modality_arg(p)
    p.add_argument("--feature-columns", help="tables: comma-separated feature columns (default: all)")
    p.add_argument("--drop-columns", help="tables: comma-separated columns to leave out (e.g. a label, an id)")
    g = p.add_argument_group("images (issue 15): SimCLR contrastive pretraining; --unlabeled is a folder")
    g.add_argument("--image-size", type=int, help="crop side in pixels (default: the checkpoint's)")
    g.add_argument("--temperature", type=float, default=0.5, help="NT-Xent temperature")
    g.add_argument("--probe-data", help="labeled image folder: probe macro-F1 before/after (the honest gain)")
    p.set_defaults(func=_adapt)

    d = sub.add_parser("distill", help="distil a trained model into a smaller student",
                       description="Soft-label knowledge distillation (KL at temperature T + gold CE) from a "
                                   "trained teacher into a student checkpoint or a layer-truncated teacher.")
    d.add_argument("--teacher", required=True, help="trained model folder (or ensemble)")
    d.add_argument("--student", help="student checkpoint (name or HF folder) or trained artifact with the "
                                     "same labels; omit with --layers to truncate the teacher")
    d.add_argument("--layers", type=int, help="keep only the first K encoder layers of the student "
                                              "(or of the teacher when --student is omitted)")
    d.add_argument("--unlabeled", help="extra texts scored by the teacher (soft labels only)")
    d.add_argument("--text-column", default="text")
    d.add_argument("--out", required=True)
    d.add_argument("--temperature", type=float, default=2.0)
    d.add_argument("--alpha", type=float, default=0.5, help="weight of the soft term (1-alpha: gold CE)")
    d.add_argument("--epochs", type=int, default=3)
    d.add_argument("--max-steps", type=int)
    d.add_argument("--lr", type=float, default=1e-4)
    d.add_argument("--batch-size", type=int, default=16)
    d.add_argument("--max-length", type=int)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--latency-texts", type=int, default=50, help="test texts timed one by one (0: skip)")
    d.add_argument("--onnx", action="store_true", help="also time both models as ONNX int8 (needs [onnx])")
    d.add_argument("--threads", type=int)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_distill)

    e = sub.add_parser("ensemble", help="average the probabilities of several trained runs",
                       description="Build an ensemble folder from trained runs that share labels and test "
                                   "split; `transferops.load` and every stage treat it as one model.")
    e.add_argument("--members", required=True, help="comma-separated run folders")
    e.add_argument("--out", required=True)
    e.add_argument("--no-copy", action="store_false", dest="copy",
                   help="reference the members by relative path instead of copying them in")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_ensemble)


def _adapt(args: argparse.Namespace) -> int:
    if getattr(args, "modality", "auto") == "tabular":  # issue 16: self-supervised pretraining on rows
        from transferops.tabular import cli as tabular_cli

        return tabular_cli.adapt(args)
    from transferops.adapt.mlm import AdaptConfig, adapt

    if getattr(args, "modality", "text") == "image":  # issue 15: SimCLR on unlabeled images
        from transferops.vision.simclr import SimCLRConfig, adapt_images, format_adapt

        ck = "mobilenet-v2" if args.checkpoint == "minilm-l6" else args.checkpoint
        doc = adapt_images(args.unlabeled, out=args.out, probe_data=args.probe_data, config=SimCLRConfig(
            checkpoint=ck, steps=args.steps if args.steps != 1000 else 50, lr=args.lr if args.lr != 5e-5 else 1e-4,
            batch_size=args.batch_size if args.batch_size != 16 else 32, temperature=args.temperature,
            image_size=args.image_size, seed=args.seed))
        print(dumps(doc) if args.json else format_adapt(doc))
        return 0
    cfg = AdaptConfig(checkpoint=args.checkpoint, steps=args.steps, lr=args.lr,
                      warmup_ratio=args.warmup_ratio, batch_size=args.batch_size,
                      grad_accum=args.grad_accum, max_length=args.max_length,
                      mlm_probability=args.mlm_probability, whole_word=args.whole_word,
                      head_warmup_steps=args.head_warmup_steps, forgetting_factor=args.forgetting_factor,
                      save_every=args.save_every, seed=args.seed, threads=args.threads)
    res = adapt(args.unlabeled, out=args.out, text_column=args.text_column, config=cfg, resume=args.resume)
    print(dumps(res.to_dict()) if args.json else res.summary())
    return 0


def _distill(args: argparse.Namespace) -> int:
    from transferops.adapt.distill import DistillConfig, distill

    cfg = DistillConfig(student=args.student, layers=args.layers, temperature=args.temperature,
                        alpha=args.alpha, epochs=args.epochs, max_steps=args.max_steps, lr=args.lr,
                        batch_size=args.batch_size,
                        max_length=args.max_length, seed=args.seed, latency_texts=args.latency_texts,
                        threads=args.threads)
    res = distill(args.teacher, out=args.out, unlabeled=args.unlabeled, text_column=args.text_column,
                  config=cfg, onnx=args.onnx)
    print(dumps(res.to_dict()) if args.json else res.summary())
    return 0


def _ensemble(args: argparse.Namespace) -> int:
    from transferops.adapt.ensemble import build_ensemble
    from transferops.artifacts.model import read_manifest

    members = [m.strip() for m in args.members.split(",") if m.strip()]
    path = build_ensemble(members, args.out, copy=args.copy)
    m = read_manifest(path)
    if args.json:
        print(json.dumps(m, indent=2, default=str))
        return 0
    print(f"ensemble of {len(m.members)} saved to {path}")
    for name, split in (("validation", "validation"), ("test", "test")):
        if split in m.metrics:
            r = m.metrics[split]
            print(f"  {name:<11} accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}")
    for entry in m.members:
        t = entry.get("metrics", {}).get("test")
        if t:
            print(f"  member {entry['name']:<16} test accuracy {t['accuracy']:.4f}  "
                  f"macro-F1 {t['macro_f1']:.4f}")
    return 0
