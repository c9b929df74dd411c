"""Hugging Face quietening, in a leaf module so the modalities and the model code can both use it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence 'newly initialized weights' chatter: a new classifier head is expected here."""
    from transformers.utils import logging as hf_logging

    from transferops._progress import is_quiet

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bars_were_on = hf_logging.is_progress_bar_enabled()
    if is_quiet():
        hf_logging.disable_progress_bar()
    # No HF_HUB_OFFLINE here: that would switch the whole process offline from a library call. Every
    # load passes ``local_files_only=True``; the CLI entry point sets the offline variables for its run.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
        if bars_were_on:
            hf_logging.enable_progress_bar()
