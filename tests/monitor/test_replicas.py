"""Two server processes (replicas behind a load balancer) against one PostgreSQL prediction log.

Driven concurrently: every answered prediction is stored exactly once, monitoring on either replica
reads both replicas' rows, A/B assignment is the same on both (a hash of the key), and a champion
promoted in the shared registry reaches both replicas through their registry poll.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from monitor_server import server_process

from conftest import _fresh_pg_store, _pg_url
from transferops.abtest.assignment import assign_arm
from transferops.monitor.registry import Registry

pytestmark = [pytest.mark.postgres, pytest.mark.server]

ADMIN = "replica-admin-7f3c9a1e5b"


def test_two_replicas_share_one_postgres_log(tiny_run: Path, tmp_path: Path, bbc_small) -> None:
    url = _pg_url()
    if url is None:
        pytest.skip("TRANSFEROPS_TEST_PG_URL is not set (scripts/start_postgres.sh starts a server)")
    store = _fresh_pg_store(url)
    v2_dir = tmp_path / "news-v2"
    shutil.copytree(tiny_run, v2_dir)
    reg = Registry(store)
    reg.promote(reg.register(tiny_run).version)
    v2 = reg.register(v2_dir)
    texts = bbc_small["text"].tolist()
    # "news" follows the champion alias (the A/B arm "control" serves the same folder: name it explicitly)
    env = {"TRANSFEROPS_CHAMPION_NAME": "news", "TRANSFEROPS_CHAMPION_POLL_S": "0.3",
           "TRANSFEROPS_LOG_FLUSH_S": "0.05", "OMP_NUM_THREADS": "1"}
    args = ["--model", f"news={tiny_run}", "--db-url", url, "--ab", f"control={tiny_run},treatment={v2_dir}",
            "--experiment", "exp", "--max-wait-ms", "2", "--threads", "1", "--admin-token", ADMIN]
    received: dict[str, list[str]] = {"news": [], "exp": []}
    arms: dict[str, set[str]] = {}
    lock = threading.Lock()
    with server_process(args, env=env) as (_pa, a), server_process(args, env=env) as (_pb, b):

        def client(k: int) -> None:
            with httpx.Client(timeout=30) as c:
                for i in range(30):
                    base = (a, b)[(k + i) % 2]  # round-robin, as a load balancer would
                    r = c.post(f"{base}/v1/models/news/predict", json={"texts": [texts[(k * 31 + i) % len(texts)]]})
                    assert r.status_code == 200, r.text
                    user = f"user-{(k * 30 + i) % 40}"
                    e = c.post(f"{base}/v1/experiments/exp/predict", json={"texts": [texts[i]]},
                               headers={"X-User-Id": user})
                    assert e.status_code == 200, e.text
                    with lock:
                        received["news"].append(r.json()["predictions"][0]["prediction_id"])
                        received["exp"].append(e.json()["predictions"][0]["prediction_id"])
                        arms.setdefault(user, set()).add(e.json()["arm"])

        workers = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(300)
        # A/B: one arm per user whichever replica answered, and it is the library's hash.
        assert all(len(s) == 1 for s in arms.values())
        assert all(next(iter(s)) == assign_arm(u, ["control", "treatment"], [0.5, 0.5]) for u, s in arms.items())
        # Monitoring on either replica reads the rows both replicas logged.
        deadline = time.time() + 30
        while time.time() < deadline and store.count_predictions() < 240:
            time.sleep(0.1)
        for base in (a, b):
            rep = httpx.get(f"{base}/v1/monitor/news", params={"last": 10_000}, timeout=60).json()
            assert rep["n"] == 120, rep
        # A champion promoted once, in the shared registry, reaches every replica.
        reg.promote(v2.version)
        for base in (a, b):
            deadline = time.time() + 30
            while time.time() < deadline:
                # file paths are admin-only (the public model info has none)
                listing = httpx.get(f"{base}/admin/models", headers={"Authorization": f"Bearer {ADMIN}"},
                                    timeout=10).json()["models"]
                info = next(m for m in listing if m["name"] == "news")
                if Path(info["path"]).resolve() == v2_dir.resolve():
                    break
                time.sleep(0.2)
            assert Path(info["path"]).resolve() == v2_dir.resolve(), info
    # No lost and no duplicated records: exactly the answered predictions, once each.
    ids = store.read_predictions(columns=["id"])["id"].tolist()
    answered = received["news"] + received["exp"]
    assert len(answered) == 240 and len(set(answered)) == 240
    assert len(ids) == len(set(ids)) == 240
    assert set(ids) == set(answered)
    store.dispose()
