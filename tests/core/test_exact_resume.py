"""Exact resume (issue 12): kill -9 after an epoch checkpoint + ``resume`` gives bit-identical weights
to an uninterrupted run — the checkpoint holds the Python, NumPy, torch (and CUDA) RNG states, and
the sampler restarts at the saved epoch boundary (its shuffle is seeded per epoch)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import transferops.artifacts.model

KW = dict(strategy="full", epochs=3, early_stopping_patience=None, max_length=32, batch_size=16, lr=1e-3,
          check_near_duplicates=False, baseline=False, select_best=False)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    files = sorted((out / "model").glob("*.safetensors"))
    assert files
    w: dict[str, torch.Tensor] = {}
    for f in files:
        w.update(load_file(str(f)))
    return w


def _train_cmd(data: Path, out: Path, ckpt: Path, **extra: object) -> list[str]:
    code = ("import sys, transferops; transferops.train(sys.argv[1], out=sys.argv[2], checkpoint=sys.argv[3], "
            f"**{ {**KW, **extra}!r})")
    return [sys.executable, "-c", code, str(data), str(out), str(ckpt)]


def test_kill_9_and_resume_gives_the_same_weights(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path) -> None:
    # Every run in a fresh process: an earlier test may have changed this process's torch thread count,
    # and CPU kernels sum in a thread-dependent order (the runs must differ only by the kill).
    ref = tmp_path / "uninterrupted"
    subprocess.run(_train_cmd(bbc_small_csv, ref, tiny_bert), check=True, stdout=subprocess.DEVNULL)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(bbc_small_csv, out, tiny_bert, keep_state=True),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "training_state" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not state.exists():
        time.sleep(0.02)
        assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "transferops.json").exists()
    saved = state if state.exists() else out / "training_state.old" / "state.json"
    assert json.loads(saved.read_text())["epoch"] < KW["epochs"] - 1  # killed before the end
    subprocess.run(_train_cmd(bbc_small_csv, out, tiny_bert, resume=True), check=True, stdout=subprocess.DEVNULL)
    res = transferops.artifacts.model.read_manifest(out)
    assert res["training"]["resumed_from_epoch"] is not None
    a, b = _weights(ref), _weights(out)
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert diff == [], f"{len(diff)} tensors differ, e.g. {diff[:3]}"
    ha = [h["train_loss"] for h in json.loads((ref / "transferops.json").read_text())["history"]]
    hb = [h["train_loss"] for h in res["history"]]
    assert ha == hb
