"""Progress bars that respect ``--quiet`` (and are silent when stderr is not a terminal in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Also silences the bars of transformers / huggingface_hub (e.g. "Writing model shards")."""
    global _QUIET
    _QUIET = quiet
    if not quiet:
        return
    import sys

    # read when huggingface_hub is imported; a library already imported is switched off directly
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def is_quiet() -> bool:
    # Under accelerate launch / torchrun only rank 0 prints (RANK is set by both launchers).
    return (_QUIET or os.environ.get("TRANSFEROPS_QUIET", "") not in ("", "0")
            or os.environ.get("RANK", "0") not in ("", "0"))


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, **kw: Any) -> Iterator[T]:
    return iter(tqdm(iterable, desc=desc, total=total, disable=is_quiet(), leave=False, **kw))


def bar(*, desc: str, total: int | None = None, **kw: Any) -> tqdm:
    return tqdm(desc=desc, total=total, disable=is_quiet(), leave=False, **kw)


def say(msg: str) -> None:
    """Print a human-facing status line unless quiet."""
    if not is_quiet():
        print(msg, flush=True)
