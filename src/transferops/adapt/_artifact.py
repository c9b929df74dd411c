"""Pieces shared with ``finetune/api.py`` for writing a standard artifact from our own loops."""

from __future__ import annotations

import importlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from transferops.cli.main import module_exists
from transferops.constants import DATA_DIR, TEST_SPLIT


def run_post_train_hooks(out: Path, config: Any) -> None:
    """The same stage hooks ``transferops.train`` runs (calibration, monitoring reference profile)."""
    from transferops.finetune.api import POST_TRAIN_HOOKS

    for mod_name in POST_TRAIN_HOOKS:
        if not module_exists(mod_name):
            continue
        hook = getattr(importlib.import_module(mod_name), "post_train", None)
        if hook is None:
            continue
        hook(out, config)  # hooks write their own results into the folder / manifest


def copy_splits(src: Path, out: Path) -> None:
    """Copy an artifact's splits; the test split stays read-only, as ``train`` leaves it."""
    d = out / DATA_DIR
    d.mkdir(parents=True, exist_ok=True)
    for f in sorted((src / DATA_DIR).glob("*.parquet")):
        target = d / f.name
        if target.exists():
            continue
        shutil.copyfile(f, target)
        if f.name == TEST_SPLIT:
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
