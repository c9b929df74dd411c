from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_lora_run(tiny_bert: Path, bbc_small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA artifact over the tiny BERT (1 epoch): its model/ folder is an adapter."""
    import transferops

    out = tmp_path_factory.mktemp("econ-lora") / "tiny-lora"
    transferops.train(bbc_small_csv, out=out, checkpoint=str(tiny_bert), strategy="lora", epochs=1,
                      lr=1e-3, max_length=64, batch_size=16, check_near_duplicates=False)
    return out
