"""Pieces shared with ``finetune/api.py`` for writing a standard artifact from our own loops."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

from transferops.constants import DATA_DIR, TEST_SPLIT
from transferops.hooks import run_post_train


def run_post_train_hooks(out: Path, config: Any) -> None:
    """The same stage hooks ``transferops.train`` runs (calibration, monitoring reference profile)."""
    run_post_train(out, config)  # hooks write their own results into the folder / manifest


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
