"""One short run with the real, bundled all-MiniLM-L6-v2 checkpoint (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import transferops
from transferops.checkpoints import checkpoint_table, resolve_checkpoint

pytestmark = pytest.mark.slow


def test_bundled_minilm_resolves_offline() -> None:
    ck = resolve_checkpoint("minilm-l6")
    assert (ck.path / "model.safetensors").exists() and ck.source == "bundled"
    assert len(ck.sha256()) == 64
    row = next(r for r in checkpoint_table() if r["name"] == "minilm-l6")
    assert row["installed"] and row["params"] == 22_713_216


def test_minilm_head_strategy_on_bbc(bbc_small_csv: Path, tmp_path: Path) -> None:
    res = transferops.train(bbc_small_csv, out=tmp_path / "m", checkpoint="minilm-l6", strategy="head",
                            epochs=30, max_length=128, check_near_duplicates=True)
    t = res.manifest["metrics"]["test"]
    # Pretrained features separate BBC topics; chance is 0.2.
    assert t["accuracy"] > 0.6, t
    assert res.manifest["base"]["sha256"] == resolve_checkpoint("minilm-l6").sha256()
    assert res.manifest["leakage"]["near_checked"] is True
    m = transferops.load(tmp_path / "m")
    pred = m.predict(["The striker scored twice in the second half of the league match",
                      "Shares fell after the bank reported lower quarterly profits"])
    assert pred[0] == "sport"
    emb = m.embed(["a"])
    assert emb.shape == (1, 384) and np.isfinite(emb).all()


def test_minilm_lora_few_steps(bbc_small_csv: Path, tmp_path: Path) -> None:
    res = transferops.train(bbc_small_csv, out=tmp_path / "l", checkpoint="minilm-l6", strategy="lora",
                            max_steps=12, epochs=1, max_length=64, check_near_duplicates=False)
    adapter = tmp_path / "l" / "model" / "adapter_model.safetensors"
    assert adapter.exists() and adapter.stat().st_size < 3_000_000
    p1 = transferops.load(tmp_path / "l").predict_proba(["a match report"])
    p2 = transferops.load(tmp_path / "l").predict_proba(["a match report"])
    assert np.allclose(p1, p2)
    assert res.manifest["strategy"]["trainable_params"] < 0.05 * res.manifest["strategy"]["total_params"]
