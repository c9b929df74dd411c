"""Deploy fixtures: an ONNX export of the tiny run, LoRA adapters over the tiny BERT."""

from __future__ import annotations

from pathlib import Path

import pytest

from .deploy_helpers import make_adapter_variants

ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="session")
def tiny_export(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transferops.deploy.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("exports") / "tiny-onnx"
    export_onnx(tiny_run, out, quantize="int8", max_drop=1.0)
    return out


@pytest.fixture(scope="session")
def tiny_lora(tiny_bert: Path, bbc_small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import transferops

    out = tmp_path_factory.mktemp("lora") / "tiny-lora"
    transferops.train(bbc_small_csv, out=out, checkpoint=str(tiny_bert), strategy="lora", epochs=1,
                      lr=1e-3, max_length=64, batch_size=16, check_near_duplicates=False)
    return out


@pytest.fixture(scope="session")
def adapters_dir(tiny_lora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three LoRA artifacts over the same base whose random LoRA/head weights differ."""
    d = tmp_path_factory.mktemp("adapters")
    make_adapter_variants(tiny_lora, d, ["alpha", "beta", "gamma"], seed=7)
    return d
