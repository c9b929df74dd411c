"""Training precision (issue 18, lever 1): the pure auto rule, config/CLI refusals, and a real bf16 run
(autocast seen by a forward hook, fp32 weights saved, the choice and its reason in the manifest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from transferops.errors import ConfigError
from transferops.finetune.config import TrainConfig
from transferops.finetune.loop import LoopConfig, TrainLoop, make_adamw
from transferops.finetune.precision import cpu_has_native_bf16, resolve_precision

SAPPHIRE = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\nprocessor\t: 1\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"


def test_auto_is_a_pure_function_of_the_machine() -> None:
    assert cpu_has_native_bf16(SAPPHIRE) and not cpu_has_native_bf16(SKYLAKE)
    used, reason = resolve_precision("auto", device_type="cpu", cpuinfo=SAPPHIRE)
    assert used == "bf16" and "avx512_bf16" in reason and "amx_bf16" in reason
    assert resolve_precision("auto", device_type="cpu", cpuinfo=SKYLAKE)[0] == "fp32"
    assert resolve_precision("auto", device_type="cpu", cpuinfo="")[0] == "fp32"
    assert resolve_precision("auto", device_type="cuda", cuda_bf16=True)[0] == "bf16"
    assert resolve_precision("auto", device_type="cuda", cuda_bf16=False)[0] == "fp32"  # never fp16 by itself
    assert resolve_precision("fp16", device_type="cuda")[0] == "fp16"
    assert resolve_precision("fp32", device_type="cpu", cpuinfo=SAPPHIRE) == ("fp32", "fp32 requested")
    # the same inputs give the same answer
    assert resolve_precision("auto", device_type="cpu", cpuinfo=SAPPHIRE) == (used, reason)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU.*--precision bf16"):
        resolve_precision("fp16", device_type="cpu", cpuinfo=SAPPHIRE)


def test_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="precision: must be one of"):
        LoopConfig(lr=1e-3, precision="half")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
            TrainConfig(precision="fp16")
    assert TrainConfig().precision == "auto"
    assert TrainConfig.from_dict({"precision": "bf16"}).precision == "bf16"  # YAML path


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed on a CUDA machine")
def test_cli_refuses_fp16_on_cpu(tmp_path: Path, bbc_small_csv: Path, tiny_bert: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.cli.main import main

    rc = main(["train", "--data", str(bbc_small_csv), "--checkpoint", str(tiny_bert), "--strategy", "full",
               "--precision", "fp16", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "fp16 needs a CUDA GPU" in err and "--precision bf16" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # refused before any work


def test_fused_adamw_is_the_default_where_available() -> None:
    params = [torch.nn.Parameter(torch.randn(3, 3))]
    opt, kind = make_adamw(params, lr=1e-3, weight_decay=0.0)
    assert kind == "fused" and opt.param_groups[0]["fused"] is True
    # parameters without a fused kernel (float64 on CPU... or any refusal) fall back to foreach
    try:
        torch.optim.AdamW([torch.nn.Parameter(torch.randn(2, dtype=torch.float64))], fused=True)
        fused_f64 = True
    except RuntimeError:
        fused_f64 = False
    _, kind64 = make_adamw([torch.nn.Parameter(torch.randn(2, dtype=torch.float64))], lr=1e-3, weight_decay=0.0)
    assert kind64 == ("fused" if fused_f64 else "foreach")


class _CE:
    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        x, y = batch
        return torch.nn.functional.cross_entropy(module(x).float(), y), int(y.shape[0])


class _Source:
    def __len__(self) -> int:
        return 3

    def batches(self, epoch: int, start: int = 0) -> Any:
        g = torch.Generator().manual_seed(epoch)
        for _ in range(start, 3):
            yield torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g)


def test_loop_autocasts_only_in_bf16() -> None:
    seen: dict[str, list[torch.dtype]] = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        seen[precision] = []
        model[0].register_forward_hook(lambda m, i, o, p=precision: seen[p].append(o.dtype))
        res = TrainLoop(LoopConfig(lr=1e-2, epochs=1, precision=precision, save_epochs=False)).run(
            model, _CE(), _Source())
        assert res.precision["used"] == precision and res.optimizer == "fused"
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert set(seen["fp32"]) == {torch.float32}
    assert set(seen["bf16"]) == {torch.bfloat16}


def test_validation_runs_in_the_training_precision() -> None:
    """The loop's evaluate (epoch ends and eval_every points) runs under the training autocast."""
    seen: dict[str, list[torch.dtype]] = {"fp32": [], "bf16": []}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

        def evaluate(m: torch.nn.Module, p: str = precision) -> dict[str, float]:
            with torch.no_grad():
                seen[p].append(m(torch.randn(3, 4)).dtype)
            return {"score": 0.0}

        res = TrainLoop(LoopConfig(lr=1e-2, epochs=1, precision=precision, metric="score", eval_every=2,
                                   save_epochs=False)).run(model, _CE(), _Source(), evaluate=evaluate)
        assert res.validation["evaluations"] == 2  # step 2 (mid-epoch) and the epoch end
    assert set(seen["fp32"]) == {torch.float32} and set(seen["bf16"]) == {torch.bfloat16}


def test_bf16_run_records_precision_and_saves_fp32(tmp_path: Path, bbc_small_csv: Path, tiny_bert: Path) -> None:
    import transferops
    from transferops.finetune import trainer

    dtypes: list[torch.dtype] = []
    original = trainer.ClassificationLoss.loss

    def spy(self: Any, module: torch.nn.Module, batch: Any) -> Any:
        # the classifier's first linear layer output inside the loop's forward
        layer = module.base_model.encoder.layer[0].attention.self.query  # type: ignore[union-attr]
        h = layer.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
        try:
            return original(self, module, batch)
        finally:
            h.remove()

    trainer.ClassificationLoss.loss = spy  # type: ignore[method-assign]
    try:
        res = transferops.train(bbc_small_csv, out=tmp_path / "bf16", checkpoint=str(tiny_bert), strategy="full",
                                epochs=1, max_length=32, batch_size=16, baseline=False, check_near_duplicates=False,
                                early_stopping_patience=None, precision="bf16")
    finally:
        trainer.ClassificationLoss.loss = original  # type: ignore[method-assign]
    assert dtypes and set(dtypes) == {torch.bfloat16}
    m = json.loads((tmp_path / "bf16" / "transferops.json").read_text())
    assert m["config"]["precision"] == "bf16"
    assert m["training"]["precision"]["used"] == "bf16" and m["timings"]["precision"] == "bf16"
    assert m["training"]["precision"]["reason"].startswith("bf16 requested")
    assert m["training"]["optimizer"] == "fused"
    assert "train_seconds" in m["history"][0]
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(tmp_path / "bf16" / "model" / "model.safetensors")).values()} == {
        torch.float32}
    assert res.model.predict(["shares rose"])  # inference unchanged (fp32)


def test_head_strategy_ignores_precision_and_says_why(tmp_path: Path, bbc_small_csv: Path, tiny_bert: Path) -> None:
    import transferops

    transferops.train(bbc_small_csv, out=tmp_path / "head", checkpoint=str(tiny_bert), strategy="head", epochs=2,
                      max_length=32, baseline=False, check_near_duplicates=False, precision="bf16")
    p = json.loads((tmp_path / "head" / "transferops.json").read_text())["training"]["precision"]
    assert p["used"] == "fp32" and "cached fp32 features" in p["reason"] and "requested bf16" in p["reason"]
