"""Test helpers: a real uvicorn server on a free loopback port, LoRA adapter variants."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(app: Any, *, startup_timeout: float = 180.0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    t0 = time.monotonic()
    while not server.started:
        if errors or not th.is_alive():
            raise RuntimeError(f"server failed to start: {errors}")
        if time.monotonic() - t0 > startup_timeout:
            raise RuntimeError("server did not start in time")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        th.join(30)


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
