"""A fine-tuning method is one new file: register it, and train / the config / the CLI flag accept it.

The method here is BitFit (Ben Zaken et al. 2022: only the bias terms, plus the classification head,
train), written the way docs/architecture/training.md says a new method is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import transferops
from transferops.errors import ConfigError
from transferops.finetune import strategies
from transferops.finetune.config import TrainConfig
from transferops.finetune.strategies import head_modules, register_strategy


def apply_bitfit(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, int]:
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith(".bias"))
    for m in head_modules(model):
        m.requires_grad_(True)
    return model, 0


@pytest.fixture
def bitfit() -> Iterator[str]:
    register_strategy("bitfit", lr=5e-3, epochs=2, help="only biases and the head train")(apply_bitfit)
    yield "bitfit"
    strategies.STRATEGY_REGISTRY.pop("bitfit", None)
    strategies.STRATEGY_FUNCS.pop("bitfit", None)


def test_a_registered_strategy_trains_saves_and_reloads(bitfit: str, tiny_bert: Path, bbc_small_csv: Path,
                                                        tmp_path: Path) -> None:
    assert bitfit in strategies.strategy_names()
    cfg = TrainConfig(strategy=bitfit)  # type: ignore[arg-type]
    assert cfg.resolved_lr(bitfit) == 5e-3 and cfg.resolved_epochs(bitfit) == 2  # the registered defaults
    res = transferops.train(bbc_small_csv, out=tmp_path / "b", checkpoint=str(tiny_bert), strategy=bitfit,
                            max_length=32, batch_size=16, check_near_duplicates=False, baseline=False)
    m = res.manifest
    ends = [h for h in m["history"] if isinstance(h["epoch"], int)]  # not the mid-epoch validation points
    assert m["strategy"]["name"] == bitfit and len(ends) == 2  # the registered default epochs
    assert 0 < m["strategy"]["trainable_params"] < m["strategy"]["total_params"] / 10
    before = load_file(str(tiny_bert / "model.safetensors"))
    after = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    shared = [k for k in after if k in before and "pooler" not in k]
    assert shared
    moved = {k for k in shared if not torch.equal(before[k], after[k])}
    assert moved and all(k.endswith(".bias") for k in moved)  # weights frozen, biases trained
    model = transferops.load(tmp_path / "b")
    test = model.split("test")
    acc = float((model.predict_proba(test["text"].tolist()).argmax(1)
                 == [model.labels.index(y) for y in test["label"]]).mean())
    assert acc == pytest.approx(m["metrics"]["test"]["accuracy"], abs=1e-9)


def test_the_cli_flag_lists_registered_strategies(bitfit: str) -> None:
    from transferops.cli.main import build_parser

    args = build_parser().parse_args(["train", "--data", "x.csv", "--out", "runs/x", "--strategy", bitfit])
    assert args.strategy == bitfit


def test_registration_errors_name_the_problem(bitfit: str) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_strategy("bitfit", lr=1e-3, epochs=1)(lambda model, cfg: (model, 0))
    with pytest.raises(ConfigError, match="reserved"):
        register_strategy("auto", lr=1e-3, epochs=1)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        register_strategy("x", lr=0.0, epochs=1)
    with pytest.raises(ConfigError, match="strategy: 'nope' is not one of"):
        TrainConfig(strategy="nope")  # type: ignore[arg-type]
