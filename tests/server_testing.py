"""One helper for every stage's server tests: a real uvicorn server on a free loopback port, in a
thread (no mocks, no TestClient)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
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
