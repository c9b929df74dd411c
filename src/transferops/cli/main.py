"""``transferops`` entry point.

Each stage owns its commands in ``transferops/<stage>/cli.py`` exposing ``register(subparsers)``;
this module only wires them together, so adding a command is one new module plus one line in
:data:`COMMAND_MODULES`. Handlers return an exit code. Errors derived from
:class:`~transferops.errors.TransferOpsError` print one clear line (no traceback) and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from transferops.errors import GateFailedError, TransferOpsError
from transferops.hooks import module_exists  # re-exported: tests and older code import it from here

#: Modules contributing sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "transferops.checkpoints.cli",
    "transferops.select.cli",
    "transferops.finetune.cli",
    "transferops.predict.cli",
    "transferops.evaluate.cli",
    "transferops.deploy.cli",
    "transferops.monitor.cli",
    "transferops.abtest.cli",
    "transferops.economics.cli",
    "transferops.adapt.cli",
    "transferops.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferops",
        description="Transfer learning from a few hundred labels to a monitored production model.",
    )
    for flags, help_ in GLOBAL_OPTIONS:
        parser.add_argument(*flags, action="store_true", help=help_)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if not module_exists(name):
            continue
        module = importlib.import_module(name)
        module.register(sub)
    _add_global_options(sub)
    return parser


#: Options every command accepts, before or after its name (``transferops -q train`` or ``train -q``).
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("--quiet", "-q"), "no progress bars or status lines"),
    (("--verbose", "-v"), "debug logging"),
)


def _add_global_options(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Give every sub-command (and sub-sub-command) the global options. SUPPRESS as default: a flag
    not repeated after the command keeps the value given before it."""
    for p in sub.choices.values():
        for flags, help_ in GLOBAL_OPTIONS:
            free = [f for f in flags if f not in p._option_string_actions]
            if free:
                p.add_argument(*free, action="store_true", default=argparse.SUPPRESS, help=help_,
                               dest=flags[0].lstrip("-"))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_global_options(action)


def main(argv: Sequence[str] | None = None) -> int:
    # Offline by design: never let transformers/huggingface_hub reach the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # serve --processes re-runs the same command
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from transferops._progress import set_quiet

    set_quiet(bool(args.quiet))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GateFailedError as exc:
        print(f"gate failed: {exc}", file=sys.stderr)
        return 1
    except TransferOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
