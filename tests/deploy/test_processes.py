"""``transferops serve --processes N``: real server processes on one loopback port (issue 18)."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server_testing import free_port, server_process
from transferops.cli.main import main

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT groups are Linux")]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _env_of(pid: int, key: str) -> str | None:
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        k, _, v = item.partition(b"=")
        if k.decode() == key:
            return v.decode()
    return None


def _requests_200(metrics: str, model: str) -> float:
    m = re.search(rf'^transferops_requests_total{{model="{model}",status="200"}} (\S+)$', metrics, re.M)
    return float(m.group(1)) if m else 0.0


def _answered_by_each(kids: list[int]) -> None:
    """Each process answered a request: it wrote its own histogram values (latency is observed per request)."""
    folder = _env_of(kids[0], "PROMETHEUS_MULTIPROC_DIR")
    assert folder and all(_env_of(k, "PROMETHEUS_MULTIPROC_DIR") == folder for k in kids)
    for k in kids:
        assert (Path(folder) / f"histogram_{k}.db").exists(), f"process {k} answered no request"


def test_two_processes_share_the_port_and_sum_their_metrics(tiny_export: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    with server_process(["--model", f"news={tiny_export}", "--processes", "2"], env={"OMP_NUM_THREADS": "1"}
                        ) as (proc, base):
        kids = _children(proc.pid)
        assert len(kids) == 2
        for k in kids:  # each was given the cores divided by 2 (at least 1) as --threads
            assert "--threads" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace").split("\0")
        n = 40
        for i in range(n):  # a new connection each: the kernel spreads them over both processes
            r = httpx.post(f"{base}/v1/models/news/predict", json={"texts": [f"stocks fell {i}"]})
            assert r.status_code == 200 and r.json()["predictions"][0]["label"]
        _answered_by_each(kids)
        folder = _env_of(kids[0], "PROMETHEUS_MULTIPROC_DIR")
        # every scrape, whichever process answers it, shows the sum over both
        for _ in range(6):
            assert _requests_200(httpx.get(f"{base}/metrics").text, "news") == n
        # a second server on the same port is refused with one line, not silently added to the group
        port = base.rsplit(":", 1)[1]
        rc = main(["serve", "--model", f"news={tiny_export}", "--port", port, "--processes", "2"])
        assert rc == 2 and "cannot bind" in capsys.readouterr().err
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert not any(Path(f"/proc/{k}").exists() for k in kids), "a server process outlived the supervisor"
    assert folder and not Path(folder).exists(), "the metrics folder was left behind"


def test_every_process_writes_the_one_prediction_log(tiny_export: Path, tmp_path: Path) -> None:
    from transferops.monitor.store import Store

    db = tmp_path / "fresh.db"  # does not exist yet: process 0 creates it before process 1 starts
    with server_process(["--model", f"news={tiny_export}", "--processes", "2", "--db", str(db)],
                        env={"OMP_NUM_THREADS": "1"}) as (proc, base):
        kids = _children(proc.pid)
        ids = []
        for i in range(30):
            r = httpx.post(f"{base}/v1/models/news/predict", json={"texts": [f"match report {i}"]})
            assert r.status_code == 200
            ids.append(r.json()["predictions"][0]["prediction_id"])
        _answered_by_each(kids)
        store = Store(db, create=False)
        assert store.count_predictions() == 30 and all(store.has_prediction(x) for x in ids)
        store.dispose()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


@pytest.mark.parametrize("extra, expect", [
    (["--processes", "0"], "--processes: 0 must be an integer ≥ 1"),
    (["--processes", "2", "--port", "0"], "--port 0"),
    (["--processes", "2", "--admin-token", secrets.token_hex(16)], "--admin-token"),
])
def test_processes_refuses_what_it_cannot_share(tiny_export: Path, capsys: pytest.CaptureFixture[str],
                                                extra: list[str], expect: str) -> None:
    args = ["serve", "--model", f"news={tiny_export}", "--port", str(free_port()), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1


def test_a_start_up_error_is_printed_once(tmp_path: Path) -> None:
    (tmp_path / "not_a_model").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "transferops", "--quiet", "serve", "--model",
                             f"bad={tmp_path / 'not_a_model'}", "--port", str(free_port()), "--processes", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=180)
    lines = [ln for ln in err.decode().splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(lines) == 1, err.decode()
    assert "start-up failed" in lines[0]


def test_a_busy_port_is_one_line_before_anything_loads(tiny_export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for extra in ([], ["--processes", "2"]):
            assert main(["serve", "--model", f"news={tiny_export}", "--port", port, *extra]) == 2
            err = capsys.readouterr().err
            assert f"cannot bind 127.0.0.1:{port}" in err and "pick a free port" in err and err.count("\n") == 1
