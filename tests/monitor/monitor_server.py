"""A real uvicorn server on a free loopback port, in a thread or as a separate process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from server_testing import free_port, running

__all__ = ["free_port", "running", "server_process"]


@contextlib.contextmanager
def server_process(args: list[str], env: dict[str, str] | None = None, startup_timeout: float = 240.0
                   ) -> Iterator[tuple[subprocess.Popen, str]]:
    """``transferops serve ARGS`` as a child process (so it can be killed with SIGKILL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "transferops", "serve", *args, "--port", str(port)]
    full_env = {**os.environ, **(env or {})}
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"transferops-serve-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - t0 > startup_timeout:
                proc.kill()
                raise RuntimeError(f"server not ready in time: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        try:
            yield proc, url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
