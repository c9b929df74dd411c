"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
            "load_avg_at_start": [round(x, 2) for x in load],
            "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).parent).stdout.strip()}


def save(name: str, payload: dict[str, Any], table_md: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **payload}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(table_md.rstrip() + "\n")
    print(table_md)


def bbc_split(seed: int = 0) -> tuple[Any, Any]:
    """The fixed stratified 80/20 BBC split (random_state=0) used by every benchmark."""
    from sklearn.model_selection import train_test_split

    from transferops.data.bundled import load_bbc

    df = load_bbc()
    tr, te = train_test_split(df, test_size=0.2, stratify=df["label"], random_state=seed)
    return tr.reset_index(drop=True), te.reset_index(drop=True)
