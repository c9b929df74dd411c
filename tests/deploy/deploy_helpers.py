"""Test helpers: LoRA adapter variants (the server helper lives in tests/server_testing.py)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from server_testing import free_port, running
from transferops.monitor.records import PredictionRecord

__all__ = ["free_port", "make_adapter_variants", "running"]


def make_adapter_variants(src: Path, dst: Path, names: list[str], *, seed: int = 0,
                          scale: float = 3.0) -> list[Path]:
    """Copies of a LoRA artifact with different random LoRA-B and head weights (different answers)."""
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(seed)
    out = []
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        d = dst / name
        shutil.copytree(src, d)
        f = d / "model" / "adapter_model.safetensors"
        w = load_file(str(f))
        for k, v in w.items():
            if "lora_B" in k or "classifier" in k:
                w[k] = (rng.standard_normal(v.shape) * scale / np.sqrt(v.shape[-1])).astype(v.dtype)
        save_file(w, str(f))
        out.append(d)
    return out


class Collector:
    """A prediction-log sink for the server's ``log_sink``: keeps every record (thread-safe)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, records: list[PredictionRecord]) -> None:
        with self.lock:
            self.records.extend(r.to_dict() for r in records)

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        t0 = time.monotonic()
        while len(self.records) < n and time.monotonic() - t0 < timeout:
            time.sleep(0.02)
        with self.lock:
            return list(self.records)
