"""Data-parallel training in 2 CPU processes (gloo): ``accelerate launch`` and ``torchrun`` run
``python -m transferops train`` and give the model one process trains with the same global batch.

A tiny random BERT without dropout, at a learning rate where training is stable (at 5e-3 a 1e-6 rounding
difference grows into a different model after a few epochs), makes the runs comparable weight for weight: the only
difference left is the order of float additions in the gradient all-reduce.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import transferops

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
COMMON = {"strategy": "full", "epochs": 10, "lr": 1e-3, "max_length": 64, "batch_size": 10,
          "early_stopping_patience": 100, "check_near_duplicates": False, "threads": 1, "baseline": True,
          # N processes = one process exactly holds in fp32; bf16 autocast rounds per shard (issue 18)
          "precision": "fp32"}


def _cli_args(data: Path, ckpt: Path, out: Path, **kw: object) -> list[str]:
    cfg = {**COMMON, **kw}
    return ["-m", "transferops", "train", "--data", str(data), "--checkpoint", str(ckpt), "--out", str(out),
            "--strategy", str(cfg["strategy"]), "--epochs", str(cfg["epochs"]), "--lr", str(cfg["lr"]),
            "--max-length", str(cfg["max_length"]), "--batch-size", str(cfg["batch_size"]),
            "--patience", str(cfg["early_stopping_patience"]), "--no-near-duplicates", "--threads", "1",
            "--precision", str(cfg["precision"])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.pop("TRANSFEROPS_QUIET", None)  # the test counts the status lines
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    return env


def _accelerate(args: list[str]) -> list[str]:
    # `--multi_gpu` is accelerate's multi-process launcher; without CUDA it runs gloo on CPU. (`--cpu
    # --num_processes 2` starts ONE process in accelerate 1.x unless an MPI hostfile is given.)
    return [str(VENV_BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *args]


def _torchrun(args: list[str]) -> list[str]:
    return [str(VENV_BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port()), *args]


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "model" / "model.safetensors"))


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def tiny_bert_nodrop(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """tiny_bert with dropout off, so two runs differ only by float rounding."""
    import shutil

    out = tmp_path_factory.mktemp("tiny-bert-nodrop")
    for f in tiny_bert.iterdir():
        shutil.copy(f, out / f.name)
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def _single(data: Path, ckpt: Path, out: Path, **kw: object) -> Path:
    transferops.train(data, out=out, checkpoint=str(ckpt), **{**COMMON, **kw})
    return out


def test_accelerate_launch_two_processes_match_one(tmp_path: Path, tiny_bert_nodrop: Path,
                                                   bbc_small_csv: Path) -> None:
    """Head strategy on cached features (its own DDP module) under accelerate launch."""
    ref = _single(bbc_small_csv, tiny_bert_nodrop, tmp_path / "single", strategy="head", epochs=6, lr=1e-2)
    out = tmp_path / "acc"
    proc = subprocess.run(_accelerate([*_cli_args(bbc_small_csv, tiny_bert_nodrop, out, strategy="head",
                                                  epochs=6, lr=1e-2), "--keep-state"]),
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Output printed once (rank 0 only): the summary and every epoch line.
    assert proc.stdout.count("model saved to") == 1
    assert proc.stdout.count("epoch 1: train_loss") == 1
    # Checkpoint written once, by rank 0 of 2; no half-written copies left behind.
    state = json.loads((out / "training_state" / "state.json").read_text())
    assert (state["world_size"], state["written_by_rank"]) == (2, 0)
    assert not (out / "training_state.tmp").exists() and not (out / "training_state.old").exists()
    # The saved model loads and predicts; metrics logged once, the same as one process logged.
    model = transferops.load(out)
    assert len(model.predict(["a football match report", "shares fell"])) == 2
    m, r = json.loads((out / "transferops.json").read_text()), json.loads((ref / "transferops.json").read_text())
    assert len(m["history"]) == 6 and [h["epoch"] for h in m["history"]] == list(range(1, 7))
    assert m["training"]["examples_seen"] == r["training"]["examples_seen"]
    for hm, hr in zip(m["history"], r["history"], strict=True):
        assert hm["train_loss"] == pytest.approx(hr["train_loss"], abs=1e-4)
        assert hm["val_loss"] == pytest.approx(hr["val_loss"], abs=1e-4)
    assert "tfidf_logreg" in m["baseline"]
    assert _max_diff(out, ref) < 1e-4


def test_torchrun_killed_then_resumed_matches_one_process(tmp_path: Path, tiny_bert_nodrop: Path,
                                                          bbc_small_csv: Path) -> None:
    """Full fine-tuning under torchrun, killed (-9, agent and workers) after a checkpoint, resumed."""
    ref = _single(bbc_small_csv, tiny_bert_nodrop, tmp_path / "single")
    out = tmp_path / "tr"
    cmd = _torchrun(_cli_args(bbc_small_csv, tiny_bert_nodrop, out))
    proc = subprocess.Popen([*cmd, "--keep-state"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env())
    state = out / "training_state" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not state.exists():
        time.sleep(0.02)
        assert proc.poll() is None, "training ended before it could be killed"
    # torchrun starts each worker in its own session: kill the agent and every worker (a node crash).
    import psutil

    for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(psutil.Process().children(recursive=True), timeout=10)
    assert not (out / "transferops.json").exists()
    saved = state if state.exists() else out / "training_state.old" / "state.json"
    done_epochs = json.loads(saved.read_text())["epoch"] + 1
    quiet = _cli_args(bbc_small_csv, tiny_bert_nodrop, out)
    quiet.insert(2, "--quiet")
    res = subprocess.run([*_torchrun(quiet), "--resume", "--json"],
                         capture_output=True, text=True, env=_env(), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads(res.stdout)  # one JSON document: printed once, by rank 0
    assert manifest == json.loads((out / "transferops.json").read_text())
    assert manifest["training"]["resumed_from_epoch"] == done_epochs
    # no epoch lost or repeated, nor any mid-epoch validation point
    assert [h["epoch"] for h in manifest["history"] if isinstance(h["epoch"], int)] == list(range(1, 11))
    steps = [h["step"] for h in manifest["history"]]
    assert steps == sorted(set(steps))
    assert not (out / "training_state").exists()  # removed once done (no --keep-state on the resume)
    assert _max_diff(out, ref) < 1e-4
    r = json.loads((ref / "transferops.json").read_text())
    assert manifest["metrics"]["test"]["accuracy"] == pytest.approx(r["metrics"]["test"]["accuracy"], abs=1e-9)


def test_sampler_shards_cover_each_global_batch_once() -> None:
    """Each of N shards gets a contiguous part of every global batch; together exactly the batch."""
    import numpy as np

    from transferops.finetune.batching import BucketBatchSampler

    lengths = np.random.default_rng(0).integers(5, 60, size=141)  # 141 = 14 batches of 10 + 1 row
    one = BucketBatchSampler(lengths, 10, seed=3)
    shards = [BucketBatchSampler(lengths, 10, seed=3, num_shards=2, shard=r) for r in range(2)]
    for s in [one, *shards]:
        s.set_epoch(2)
    glob = shards[0].global_batches()
    assert len(glob) == len(shards[0]) == len(shards[1]) == 14  # the 1-row batch merged into another
    assert sorted(i for b in glob for i in b) == sorted(i for b in one for i in b) == list(range(141))
    for g, a, b in zip(glob, *shards, strict=True):
        assert a + b == g and abs(len(a) - len(b)) <= 1
