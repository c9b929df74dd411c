"""``transferops serve --processes N``: N server processes on one port (issue 18, docs/deploy.md).

One process has one GIL and one event loop. On 2 cores with short texts, the event loop and the inference
threads of one process wait for each other. N processes, each with its own model copy, loop and
``cores // N`` intra-op threads, do not. Each process binds its own socket to the same host and port with
``SO_REUSEPORT``, and the kernel spreads the connections over them (Linux only).

The parent only supervises. It starts process 0 and waits until its models are loaded, so a start-up error
is printed once, then starts the others. No process listens before every one has loaded its models: a
connection opened early would otherwise stay on the first process for its whole keep-alive life. The
parent stops them all on SIGTERM or SIGINT, and stops the rest when one exits; a child gets SIGTERM when
the parent dies.
Prometheus metrics are summed over the processes through ``prometheus_client``'s multiprocess mode (a
temporary folder named in ``PROMETHEUS_MULTIPROC_DIR``, removed at exit).

What a separate process cannot share is refused before anything starts: the admin routes (a model swap
would reach one process only), and port 0 (each process would get its own port).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferops.errors import ConfigError
from transferops.hardware import usable_cores

#: set in a child's environment: the index of the child
CHILD_ENV = "TRANSFEROPS_SERVE_CHILD"
#: the folder of the start-up handshake: a child's ``loaded-{index}`` and ``ready-{index}``, the parent's ``go``
READY_DIR_ENV = "TRANSFEROPS_SERVE_READY_DIR"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def check_processes(n: Any, *, port: int, admin_token: str | None) -> int:
    """``n`` as a number of processes, or a one-line :class:`ConfigError` naming the flag and the fix."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--processes: {n!r} must be an integer ≥ 1")
    if n == 1:
        return n
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError(f"--processes {n}: needs Linux (SO_REUSEPORT spreads connections over the "
                          f"processes; this is {sys.platform}); serve with --processes 1")
    if port == 0:
        raise ConfigError(f"--processes {n}: --port 0 would give every process its own port; pick a port")
    if admin_token:
        raise ConfigError(f"--processes {n}: the admin routes (model swaps, champion promotion) would reach "
                          "one process only; serve with --processes 1 to use --admin-token or "
                          "TRANSFEROPS_ADMIN_TOKEN, or unset the token")
    return n


def is_child() -> bool:
    return os.environ.get(CHILD_ENV) is not None


def _bound(host: str, port: int, *, reuseport: bool) -> socket.socket:
    """A TCP socket bound to ``host:port``, or a one-line :class:`ConfigError` naming the flags."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host/--port: cannot bind {host}:{port} ({exc.strerror}); pick a free port") from None
    return sock


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (every process of the group binds its own)."""
    sock = _bound(host, port, reuseport=True)
    sock.set_inheritable(True)
    return sock


def mark(stage: str) -> None:
    """Called by a child: ``loaded`` once its models are loaded, ``ready`` once it accepts connections."""
    folder, index = os.environ.get(READY_DIR_ENV), os.environ.get(CHILD_ENV)
    if folder and index is not None:
        (Path(folder) / f"{stage}-{index}").touch()


async def wait_for_go(should_stop: Any = lambda: False, poll_s: float = 0.05) -> None:
    """In a child, after ``loaded``: wait until the parent says every process has loaded its models (or
    until ``should_stop()``: a SIGTERM during start-up)."""
    import asyncio

    folder = os.environ.get(READY_DIR_ENV)
    while folder and not (Path(folder) / "go").exists() and not should_stop():
        await asyncio.sleep(poll_s)


def check_port_free(host: str, port: int) -> None:
    """A plain bind (no SO_REUSEPORT) fails when anything holds the port, even another SO_REUSEPORT group
    of this user, which the children would otherwise silently join."""
    _bound(host, port, reuseport=False).close()


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as a shell reports it


def _wait_for(procs: list[subprocess.Popen[bytes]], indices: Sequence[int], folder: Path, stage: str,
              timeout_s: float, stopping: dict[str, int]) -> int | None:
    """None once every child in ``indices`` reached ``stage``; else the exit code of the first that ended
    (0 when the supervisor itself was asked to stop)."""
    t0 = time.monotonic()
    while True:
        if stopping["signal"]:
            return 0
        for i in indices:
            rc = procs[i].poll()
            if rc is not None:
                return _exit_code(rc) or 1
        if all((folder / f"{stage}-{i}").exists() for i in indices):
            return None
        if time.monotonic() - t0 > timeout_s:
            raise ConfigError(f"--processes: server process(es) {list(indices)} did not start within "
                              f"{timeout_s:.0f} s")
        time.sleep(0.1)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (a killed supervisor leaves no server behind)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 30.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_processes(argv: Sequence[str], n: int, *, host: str, port: int, threads: int | None, say: Any,
                  startup_timeout_s: float = 600.0) -> int:
    """Supervise ``n`` children running ``python -m transferops <argv>`` (the same ``serve`` command).

    ``threads``: intra-op threads of each child (None: the usable cores divided by ``n``, at least 1).
    Returns the exit code: 0 after a clean stop, else the first failing child's."""
    check_port_free(host, port)
    if n > usable_cores():
        say(f"warning: --processes {n} is more than the {usable_cores()} usable cores; each process loads its own "
            "model copy and they share the cores")
    # Held, bound but never listening (so it gets no connections), until the end: from here on a second
    # server's plain bind fails. Two supervisors started within microseconds could still share the port.
    hold = reuseport_socket(host, port)
    per_child = threads if threads else max(1, usable_cores() // n)
    extra = [] if threads else ["--threads", str(per_child)]
    work = Path(tempfile.mkdtemp(prefix="transferops-serve-"))
    metrics_dir, ready_dir = work / "metrics", work / "ready"
    metrics_dir.mkdir()
    ready_dir.mkdir()
    cmd = [sys.executable, "-m", "transferops", *argv, *extra]
    procs: list[subprocess.Popen[bytes]] = []
    stopping = {"signal": 0}

    def on_signal(signum: int, frame: Any) -> None:
        stopping["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def spawn(i: int) -> None:
        env = {**os.environ, CHILD_ENV: str(i), READY_DIR_ENV: str(ready_dir), METRICS_DIR_ENV: str(metrics_dir)}
        procs.append(subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent))

    try:
        spawn(0)  # first alone: a start-up error (a bad model, a busy port) is printed once
        rc = _wait_for(procs, [0], ready_dir, "loaded", startup_timeout_s, stopping)
        if rc is not None:
            return rc
        for i in range(1, n):
            spawn(i)
        rc = _wait_for(procs, list(range(1, n)), ready_dir, "loaded", startup_timeout_s, stopping)
        if rc is not None:
            return rc
        (ready_dir / "go").touch()  # every model is loaded: all start listening
        rc = _wait_for(procs, list(range(n)), ready_dir, "ready", startup_timeout_s, stopping)
        if rc is not None:
            return rc
        say(f"{n} server processes ready ({per_child} intra-op thread(s) each; pids "
            f"{', '.join(str(p.pid) for p in procs)})")
        while not stopping["signal"]:
            ended = [p for p in procs if p.poll() is not None]
            if ended:  # one server process ended on its own (killed, out of memory): stop the others
                say(f"server process {ended[0].pid} exited with {ended[0].returncode}; stopping the others")
                return _exit_code(ended[0].returncode) or 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(procs)
        hold.close()
        for s, h in old.items():
            signal.signal(s, h)
        shutil.rmtree(work, ignore_errors=True)


__all__ = ["CHILD_ENV", "check_port_free", "check_processes", "is_child", "mark", "reuseport_socket", "run_processes",
           "wait_for_go"]
