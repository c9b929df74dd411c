"""Strategy ``freeze``: the frozen-prefix cache trains exactly like the uncached path, nothing runs or
backpropagates through the frozen prefix, and the plan is recorded (issue 18, less work per step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from transferops.finetune import frozen_prefix as fp
from transferops.finetune.config import TrainConfig
from transferops.finetune.trainer import FineTuner


def _data(bbc_small: pd.DataFrame) -> tuple[list[str], np.ndarray, list[str]]:
    labels = sorted(bbc_small["label"].unique())
    y = np.array([labels.index(v) for v in bbc_small["label"]])
    return bbc_small["text"].tolist(), y, labels


def _fit(tiny_bert: Path, bbc_small: pd.DataFrame, mode: str, **kw: object) -> FineTuner:
    kw.setdefault("frozen_dropout", False)  # the cache needs a deterministic prefix
    texts, y, labels = _data(bbc_small)
    tr, va = np.arange(0, 200, 4), np.arange(1, 200, 8)  # 50 train rows, 25 validation rows, every class
    cfg = TrainConfig(strategy="freeze", freeze_layers=1, epochs=2, lr=5e-3, batch_size=8, max_length=48,
                      cache_frozen=mode, early_stopping_patience=None, seed=3, precision="fp32",
                      **kw)  # fp32: the equivalence is exact arithmetic, bf16 rounding differs per path  # type: ignore[arg-type]
    return FineTuner(cfg).fit([texts[i] for i in tr], y[tr], [texts[i] for i in va], y[va], labels=labels,
                              task="multiclass", checkpoint_path=tiny_bert)


def test_cached_prefix_trains_like_the_uncached_path(tiny_bert: Path, bbc_small: pd.DataFrame,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    off = _fit(tiny_bert, bbc_small, "off")
    on = _fit(tiny_bert, bbc_small, "on")
    assert off.frozen_cache_ is not None and not off.frozen_cache_["used"]
    assert on.frozen_cache_ is not None and on.frozen_cache_["used"] and on.frozen_cache_["cache_bytes"] > 0
    texts, _, _ = _data(bbc_small)
    probe = texts[2::8]
    lo, ln = off.predict_logits(probe), on.predict_logits(probe)
    # same seed, same batches, same dropout draws in the trained layers: the same training, to rounding
    for a, b in zip(off.result_.history, on.result_.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)
    np.testing.assert_allclose(lo, ln, atol=1e-4)
    # the weights moved (lr 5e-3): an untrained model would make the comparison empty
    assert off.result_.history[0]["train_loss"] != pytest.approx(off.result_.history[1]["train_loss"], abs=1e-4)
    # the comparison is sensitive: with dropout in the frozen layers (the default) the same run trains differently
    legacy = _fit(tiny_bert, bbc_small, "auto", frozen_dropout=True)
    assert legacy.frozen_cache_ is not None and not legacy.frozen_cache_["used"]
    assert "not deterministic" in legacy.frozen_cache_["reason"] and not legacy.frozen_cache_["prefix_eval"]
    assert np.abs(legacy.predict_logits(probe) - ln).max() > 1e-4


def test_cached_training_never_runs_the_prefix(tiny_bert: Path, bbc_small: pd.DataFrame,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Layer 0 (frozen) runs only inside the one encode pass; training and validation run layers 1.. only."""
    calls = {"encode": 0, "elsewhere": 0}
    state = {"encoding": False}
    real = fp.encode_prefix

    def counting(model: torch.nn.Module, enc: dict, k: int, **kw: object) -> list[torch.Tensor]:
        if not calls["encode"] and not calls["elsewhere"]:  # first call: count layer 0 for the whole run
            fp.layers_of(model)[0].register_forward_hook(  # type: ignore[index]
                lambda *a: calls.__setitem__("encode" if state["encoding"] else "elsewhere",
                                             calls["encode" if state["encoding"] else "elsewhere"] + 1))
        state["encoding"] = True
        try:
            return real(model, enc, k, **kw)  # type: ignore[arg-type]
        finally:
            state["encoding"] = False

    monkeypatch.setattr(fp, "encode_prefix", counting)
    ft = _fit(tiny_bert, bbc_small, "on")
    assert calls["encode"] == 1 + 1  # 50 train + 25 validation texts, one batch of 64 each
    assert calls["elsewhere"] == 0
    ft.predict_logits(["a text"])  # the saved/served model is the full model: layer 0 runs again
    assert calls["elsewhere"] == 1


def test_nothing_backpropagates_into_the_frozen_prefix(tiny_bert: Path) -> None:
    from transferops.finetune.strategies import apply_strategy
    from transferops.modeling import build_classifier, load_tokenizer

    cfg = TrainConfig(strategy="freeze", freeze_layers=1)
    model, info = apply_strategy(build_classifier(tiny_bert, ["a", "b"], "multiclass"), cfg, "freeze", "test")
    wrapped = fp.FrozenPrefixEval(model, info.frozen_layers).train()
    prefix = fp.prefix_modules(model, info.frozen_layers)
    assert all(not m.training for m in prefix) and fp.layers_of(model)[1].training  # type: ignore[index]
    outs: list[torch.Tensor] = []
    hook = fp.layers_of(model)[0].register_forward_hook(lambda mod, a, out: outs.append(out))  # type: ignore[index]
    enc = load_tokenizer(tiny_bert)(["one text", "and another one"], padding=True, return_tensors="pt")
    wrapped(**enc).logits.sum().backward()
    hook.remove()
    out = outs[0][0] if isinstance(outs[0], tuple) else outs[0]
    assert not out.requires_grad  # the first trainable layer's input needs no grad: autograd stops there
    assert all(p.grad is None and not p.requires_grad for m in prefix for p in m.parameters())
    assert all(p.grad is not None for p in fp.layers_of(model)[1].parameters())  # type: ignore[index]


def test_plan_records_why_the_cache_is_skipped(tiny_bert: Path) -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from transferops.modeling import build_classifier

    model = build_classifier(tiny_bert, ["a", "b"], "multiclass")
    kw = {"frozen_layers": 1, "n_tokens": 1000, "budget_mb": 2048}
    assert fp.plan_cache(model, mode="auto", epochs=3, **kw).used  # type: ignore[arg-type]
    assert fp.plan_cache(model, mode="auto", epochs=3, **kw).cache_bytes == 1000 * 32 * 4  # type: ignore[arg-type]
    one = fp.plan_cache(model, mode="auto", epochs=1, **kw)  # type: ignore[arg-type]
    assert not one.used and "one epoch" in one.reason
    assert fp.plan_cache(model, mode="on", epochs=1, **kw).used  # type: ignore[arg-type]
    big = fp.plan_cache(model, mode="auto", epochs=3, frozen_layers=1, n_tokens=10**7, budget_mb=10)
    assert not big.used and "cache_frozen_max_mb=10" in big.reason
    off = fp.plan_cache(model, mode="off", epochs=3, **kw)  # type: ignore[arg-type]
    assert not off.used and off.reason == "cache_frozen=off"
    moving = fp.plan_cache(model, mode="on", epochs=3, deterministic=False, **kw)  # type: ignore[arg-type]
    assert not moving.used and "change between epochs" in moving.reason
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=100, dim=16, n_layers=2, n_heads=2,
                                                                  hidden_dim=32))
    other = fp.plan_cache(distil, mode="on", epochs=3, **kw)  # type: ignore[arg-type]
    assert not other.used and "distilbert" in other.reason


def test_train_records_the_cache_and_truncation_and_reloads_them(tiny_bert: Path, bbc_small: pd.DataFrame,
                                                          tmp_path: Path) -> None:
    import transferops
    from transferops.artifacts.manifest import read_manifest

    out = tmp_path / "run"
    transferops.train(bbc_small, out=out, checkpoint=str(tiny_bert), strategy="freeze", epochs=2, lr=5e-3,
                      max_length=32, batch_size=16, check_near_duplicates=False, baseline=False, seed=0,
                      augment=0.5, search=False, truncation="head_tail", frozen_dropout=False)
    m = read_manifest(out)
    fc = m["training"]["frozen_cache"]
    # augmentation makes its copies once, before training: the texts are fixed, so the cache stays on
    assert fc["used"] and fc["mode"] == "auto" and fc["reason"].startswith("auto:")
    assert fc["frozen_layers"] == 1 and fc["cache_bytes"] > 0 and fc["prefix_eval"] is True
    assert m["augmentation"]["rows_added"] > 0 and m["config"]["cache_frozen"] == "auto"
    assert m["config"]["frozen_dropout"] is False
    off = tmp_path / "off"
    transferops.train(bbc_small, out=off, checkpoint=str(tiny_bert), strategy="freeze", epochs=1, lr=5e-3,
                      max_length=32, batch_size=16, check_near_duplicates=False, baseline=False, seed=0,
                      search=False)
    fc1 = read_manifest(off)["training"]["frozen_cache"]
    # the default keeps the frozen layers' dropout, so no cache; the record says why and how to get it
    assert not fc1["used"] and "--no-frozen-dropout" in fc1["reason"] and fc1["prefix_eval"] is False
    # head_tail: recorded, and the reloaded model (what serve / batch scoring / evaluate load) cuts the same way
    from transferops.finetune.batching import tokenize
    from transferops.inference import encode
    from transferops.truncation import truncation_of

    assert m["config"]["truncation"] == "head_tail"
    loaded = transferops.load(out)
    assert truncation_of(loaded.tokenizer) == "head_tail"
    long_text = " ".join(bbc_small["text"].tolist()[:3])
    trained = tokenize(loaded.tokenizer, [long_text], 32)["input_ids"][0]
    assert encode(loaded.tokenizer, [long_text], loaded.max_length)["input_ids"][0].tolist() == trained
    assert trained[-2] == loaded.tokenizer(long_text, add_special_tokens=False)["input_ids"][-1]
    assert loaded.predict([long_text])  # the saved model is the full model
    assert truncation_of(transferops.load(off).tokenizer) == "head"


def test_cache_on_needs_frozen_layers_without_dropout() -> None:
    from transferops.errors import ConfigError

    with pytest.raises(ConfigError, match="--no-frozen-dropout"):
        TrainConfig(strategy="freeze", cache_frozen="on")
    assert TrainConfig(strategy="freeze", cache_frozen="on", frozen_dropout=False).cache_frozen == "on"
