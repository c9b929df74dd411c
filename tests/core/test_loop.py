"""The shared training loop on a toy regression: accumulation, mid-epoch kill + resume, best state,
early stopping, config errors. (The three real methods on it are tested in test_finetune,
test_exact_resume, test_multiprocess and tests/adapt.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from transferops.errors import ConfigError
from transferops.finetune.loop import Callback, LoopConfig, LoopState, TrainLoop


class MSE:
    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        x, y = batch
        return torch.nn.functional.mse_loss(module(x).squeeze(-1), y), int(y.shape[0])


class PureBatches:
    """Batch k of epoch e is a function of (e, k) only: a resume may start mid-epoch."""

    def __init__(self, n: int = 5) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for k in range(start, self.n):
            rng = np.random.default_rng([epoch, k])
            x = torch.as_tensor(rng.normal(size=(4, 3)), dtype=torch.float32)
            yield x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, state: LoopState) -> None:
        if state.step == self.step:
            raise Crash


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))


CFG = {"lr": 0.05, "epochs": 2, "grad_accum": 2, "warmup_ratio": 0.2, "clip_grad_norm": 1.0, "save_every": 2,
       "log_every": 1}


def test_killed_mid_epoch_and_resumed_matches_a_straight_run(tmp_path: Path) -> None:
    straight = _model()
    ref = TrainLoop(LoopConfig(**CFG)).run(straight, MSE(), PureBatches())
    assert ref.steps == 6  # 2 epochs x ceil(5 micro-batches / 2): a short last group per epoch
    assert [h["step"] for h in ref.history] == [1, 2, 3, 4, 5, 6]
    assert ref.history[-1]["loss"] < ref.history[0]["loss"]

    state = tmp_path / "state"
    with pytest.raises(Crash):  # after the mid-epoch checkpoint of step 4 (epoch 2, 2 micro-batches in)
        TrainLoop(LoopConfig(**CFG), callbacks=[CrashAt(5)]).run(_model(), MSE(), PureBatches(), state_dir=state)
    resumed = _model()
    res = TrainLoop(LoopConfig(**CFG)).run(resumed, MSE(), PureBatches(), state_dir=state, resume=True)
    assert res.resumed_from_epoch == 1 and res.steps == 6
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [h["loss"] for h in res.history] == [h["loss"] for h in ref.history]


def test_best_epoch_is_restored_and_patience_stops() -> None:
    model = _model()
    scores, snaps = iter([3.0, 1.0, 2.0, 5.0]), []

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        snaps.append([p.detach().clone() for p in m.parameters()])
        return {"score": next(scores)}

    res = TrainLoop(LoopConfig(lr=0.05, epochs=4, metric="score", patience=2)).run(
        model, MSE(), PureBatches(), evaluate=evaluate)
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 1 and res.best_metric == 3.0
    assert [h["val_score"] for h in res.history] == [3.0, 1.0, 2.0]
    for p, s in zip(model.parameters(), snaps[0], strict=True):
        assert torch.equal(p, s)  # the weights of epoch 1, not of the last epoch
    assert not any(torch.equal(p, s) for p, s in zip(model.parameters(), snaps[-1], strict=True))


def test_mid_epoch_validation_picks_a_step_inside_an_epoch() -> None:
    """eval_every=1 over 5 steps an epoch: 4 mid-epoch points + the epoch end; the best is mid-epoch 2 and
    its weights (not an epoch end's) are the ones restored; validation time is not training time."""
    model = _model()
    scores = iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0, 7.0, 6.0, 5.0])
    snaps: list[list[torch.Tensor]] = []

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        snaps.append([p.detach().clone() for p in m.parameters()])
        return {"score": next(scores)}

    res = TrainLoop(LoopConfig(lr=0.05, epochs=2, metric="score", eval_every=1)).run(
        model, MSE(), PureBatches(), evaluate=evaluate)
    assert [h["epoch"] for h in res.history] == [0.2, 0.4, 0.6, 0.8, 1, 1.2, 1.4, 1.6, 1.8, 2]
    assert [h["step"] for h in res.history] == list(range(1, 11))
    assert res.best_step == 7 and res.best_epoch == 2 and res.best_metric == 9.0
    for p, s in zip(model.parameters(), snaps[6], strict=True):
        assert torch.equal(p, s)
    assert res.validation["evaluations"] == 10 and res.validation["every"] == 1
    times = [h["train_seconds"] for h in res.history]
    assert times == sorted(times) and res.train_seconds >= times[-1] - 1e-3  # records round to ms


def test_patience_counts_epochs_however_often_it_validates() -> None:
    """patience=1 with 5 validations an epoch: no improvement after the first point stops after one epoch's
    worth of steps (step 6), not after the next validation (step 2)."""
    scores = iter([5.0] + [1.0] * 20)
    res = TrainLoop(LoopConfig(lr=0.05, epochs=4, metric="score", patience=1, eval_every=1)).run(
        _model(), MSE(), PureBatches(), evaluate=lambda m: {"score": next(scores)})
    assert res.stopped_early and res.steps == 6 and res.history[-1]["step"] == 6
    assert res.best_step == 1


def test_killed_mid_epoch_with_mid_epoch_validation_resumes_exactly(tmp_path: Path) -> None:
    cfg = {**CFG, "metric": "score", "eval_every": 1, "patience": 3}

    def score(m: torch.nn.Module) -> dict[str, float]:  # a pure function of the weights
        return {"score": -float(sum(p.detach().abs().sum() for p in m.parameters()))}

    ref = TrainLoop(LoopConfig(**cfg)).run(_model(), MSE(), PureBatches(), evaluate=score)
    state = tmp_path / "state"
    with pytest.raises(Crash):
        TrainLoop(LoopConfig(**cfg), callbacks=[CrashAt(5)]).run(_model(), MSE(), PureBatches(), evaluate=score,
                                                                 state_dir=state)
    res = TrainLoop(LoopConfig(**cfg)).run(_model(), MSE(), PureBatches(), evaluate=score, state_dir=state,
                                           resume=True)
    keys = ("step", "epoch", "val_score")
    assert [tuple(h.get(k) for k in keys) for h in res.history] == [tuple(h.get(k) for k in keys)
                                                                    for h in ref.history]
    assert (res.best_step, res.best_metric) == (ref.best_step, ref.best_metric)


@pytest.mark.parametrize("bad", [{"grad_accum": 0}, {"epochs": 1.5}, {"warmup_ratio": 2.0}, {"lr": -1.0},
                                 {"save_every": True}, {"eval_every": 0}, {"eval_every": "often"},
                                 {"eval_every": True}])
def test_config_errors_name_the_field(bad: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        LoopConfig(**{"lr": 1e-3, **bad})
