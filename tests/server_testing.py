"""One helper for every stage's server tests: a real uvicorn server on a free loopback port, in a
thread (no mocks, no TestClient), or ``transferops serve`` as a child process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(app: Any, *, startup_timeout: float = 180.0) -> Iterator[str]:
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


@contextlib.contextmanager
def server_process(args: list[str], env: dict[str, str] | None = None, startup_timeout: float = 240.0
                   ) -> Iterator[tuple[subprocess.Popen, str]]:
    """``transferops serve ARGS`` as a child process (so it can be killed with SIGKILL); its output goes to a
    log file quoted when it fails to start. Stopped with SIGTERM on exit unless the test stopped it."""
    import httpx

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


def post_and_hang_up(url: str, path: str, payload: dict[str, Any], *, linger_s: float = 0.05) -> None:
    """Send one JSON POST over a raw socket and close the connection without reading the answer (a client
    that goes away while its request is queued)."""
    import json

    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(payload).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
                  + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(linger_s)
