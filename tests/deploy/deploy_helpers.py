"""Test helpers: LoRA adapter variants (the server helper lives in tests/server_testing.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from server_testing import free_port, running

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
