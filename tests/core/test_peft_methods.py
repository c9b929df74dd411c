"""More PEFT methods as strategies (issue 17, item 3): IA3, prompt tuning, prefix tuning.

Each is one file behind the strategy registry; the artifact is a PEFT adapter like LoRA's, so it is
saved, loaded, predicted, exported (IA3 merges; prompt learning is refused, saying why) and served over
one shared base (``--adapters``) by the same code. Tiny random BERT from tests/conftest.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import transferops
from transferops.artifacts.model import load_torch_classifier, read_manifest
from transferops.constants import MODEL_DIR
from transferops.errors import ArtifactError, ConfigError
from transferops.finetune import strategies

ADMIN_TOKEN = "peft-admin-token-0123456789"
TEXTS = ["Shares rose sharply after the results", "The striker scored twice in the final",
         "The election campaign enters its last week", "A new phone with a faster chip",
         "The film won three awards", "Interest rates were left unchanged"]


def _train(strategy: str, out: Path, tiny_bert: Path, csv: Path) -> Path:
    transferops.train(csv, out=out, checkpoint=str(tiny_bert), strategy=strategy, epochs=2, max_length=32,
                      batch_size=16, check_near_duplicates=False, baseline=False)
    return out


@pytest.fixture(scope="module")
def ia3_run(tiny_bert: Path, bbc_small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train("ia3", tmp_path_factory.mktemp("ia3") / "ia3", tiny_bert, bbc_small_csv)


@pytest.fixture(scope="module")
def prompt_run(tiny_bert: Path, bbc_small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train("prompt_tuning", tmp_path_factory.mktemp("prompt") / "prompt", tiny_bert, bbc_small_csv)


def _test_accuracy(run: Path) -> tuple[float, float]:
    model = transferops.load(run)
    test = model.split("test")
    acc = float((model.predict_proba(test["text"].tolist()).argmax(1)
                 == [model.labels.index(y) for y in test["label"]]).mean())
    return acc, float(model.manifest["metrics"]["test"]["accuracy"])


@pytest.mark.parametrize(("fixture", "peft_type", "trained_key"), [
    ("ia3_run", "IA3", "ia3_l"), ("prompt_run", "PROMPT_TUNING", "prompt_embeddings")])
def test_trains_saves_an_adapter_reloads_and_predicts(fixture: str, peft_type: str, trained_key: str,
                                                      request: pytest.FixtureRequest, tiny_bert: Path) -> None:
    run: Path = request.getfixturevalue(fixture)
    m = read_manifest(run)
    assert m.is_adapter and m.peft_type == peft_type and m["strategy"]["peft_type"] == peft_type
    assert 0 < m["strategy"]["trainable_params"] < m["strategy"]["total_params"] / 10
    mdir = run / MODEL_DIR
    assert (mdir / "adapter_config.json").exists() and not (mdir / "model.safetensors").exists()
    weights = load_file(str(mdir / "adapter_model.safetensors"))
    learned = [v for k, v in weights.items() if trained_key in k]
    assert learned and any("classifier" in k for k in weights)  # the method's weights + the head
    if peft_type == "IA3":  # IA3 vectors start at 1: training moved them
        assert any(not np.allclose(v, 1.0) for v in learned)
    assert (mdir / "adapter_model.safetensors").stat().st_size < (tiny_bert / "model.safetensors").stat().st_size
    acc, recorded = _test_accuracy(run)  # reloaded over its base, the manifest's test accuracy again
    assert acc == pytest.approx(recorded, abs=1e-9)
    model = transferops.load(run)
    # a second load over a freshly built base gives the same numbers (the whole head is saved)
    np.testing.assert_allclose(model.predict_proba(TEXTS), transferops.load(run).predict_proba(TEXTS), atol=1e-6)
    emb = model.embed(TEXTS[:3])
    assert emb.shape == (3, 32) and np.isfinite(emb).all()  # prompt tuning: the real tokens only


def test_prompt_tuning_embedding_pools_the_real_tokens_only(prompt_run: Path) -> None:
    """The pooled embedding of a prompt-tuned model is the mean over the real tokens of the last layer."""
    import torch

    from transferops.inference import encode

    model = transferops.load(prompt_run)
    enc = encode(model.tokenizer, TEXTS[:2], model.max_length)
    with torch.inference_mode():
        hidden = model.torch_model(**enc, output_hidden_states=True).hidden_states[-1]
    n = enc["attention_mask"].shape[1]
    assert hidden.shape[1] == n + 20  # 20 virtual tokens in front
    mask = enc["attention_mask"].unsqueeze(-1).float()
    want = ((hidden[:, -n:, :] * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(model.embed(TEXTS[:2]), want, atol=1e-5)


def test_prefix_tuning_is_refused_where_the_model_takes_no_prefixes(tiny_bert: Path, bbc_small_csv: Path,
                                                                    tmp_path: Path) -> None:
    assert "prefix_tuning" in strategies.strategy_names()
    with pytest.raises(ConfigError, match=r"prefix_tuning: .* past_key_values.*--strategy prompt_tuning"):
        _train("prefix_tuning", tmp_path / "p", tiny_bert, bbc_small_csv)


def test_ia3_is_merged_for_export(ia3_run: Path, tmp_path: Path, bbc_small: Any) -> None:
    from transferops.deploy.onnx_export import MAX_PROB_DIFF, export_onnx

    merged = load_torch_classifier(read_manifest(ia3_run), ia3_run / MODEL_DIR, merge_adapter=True)
    assert not hasattr(merged, "peft_config")  # plain transformers weights
    res = export_onnx(ia3_run, tmp_path / "ia3-onnx", quantize=None)
    assert res.passed and res.int8 is None
    texts = bbc_small["text"].tolist()[:40]
    np.testing.assert_allclose(transferops.load(tmp_path / "ia3-onnx").predict_proba(texts),
                               transferops.load(ia3_run).predict_proba(texts), atol=MAX_PROB_DIFF)


def test_prompt_tuning_export_is_refused_saying_why(prompt_run: Path, tmp_path: Path) -> None:
    from transferops.deploy.onnx_export import export_onnx

    with pytest.raises(ConfigError, match=r"ONNX export .* is refused: .*prompt_tuning adapter.*cannot merge.*"
                                          r"--strategy ia3 or lora"):
        export_onnx(prompt_run, tmp_path / "x", quantize=None)
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(ArtifactError, match="cannot merge"):
        load_torch_classifier(read_manifest(prompt_run), prompt_run / MODEL_DIR, merge_adapter=True)


def test_cli_export_refusal_is_one_line_exit_2(prompt_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.cli.main import main

    assert main(["export", "--model", str(prompt_run), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "refused" in err


def _variants(src: Path, dst: Path, names: list[str], seed: int) -> None:
    """Copies of an adapter artifact with different random head weights (different answers)."""
    rng = np.random.default_rng(seed)
    for name in names:
        shutil.copytree(src, dst / name)
        f = dst / name / MODEL_DIR / "adapter_model.safetensors"
        w = load_file(str(f))
        for k, v in w.items():
            if "classifier" in k:
                w[k] = (rng.standard_normal(v.shape) * 3.0 / np.sqrt(v.shape[-1])).astype(v.dtype)
        save_file(w, str(f))


@pytest.fixture(scope="module")
def served_adapters(ia3_run: Path, prompt_run: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[tuple[httpx.Client, Path]]:
    from server_testing import running
    from transferops.deploy.server import ServeSettings, create_app

    d = tmp_path_factory.mktemp("peft-adapters")
    _variants(ia3_run, d, ["ia3a", "ia3b"], seed=3)
    _variants(prompt_run, d, ["prompt"], seed=4)
    app = create_app(ServeSettings(adapters=str(d), admin_token=ADMIN_TOKEN, max_wait_ms=5))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, d


@pytest.mark.server
def test_ia3_and_prompt_adapters_are_served_over_shared_bases(served_adapters: tuple[httpx.Client, Path]
                                                              ) -> None:
    c, d = served_adapters
    answers = {}
    for name in ("ia3a", "ia3b", "prompt"):
        r = c.post(f"/v1/models/{name}/predict", json={"texts": TEXTS})
        assert r.status_code == 200, r.text
        alone = transferops.load(d / name)
        got = np.array([[p["probabilities"][lbl] for lbl in alone.labels] for p in r.json()["predictions"]])
        np.testing.assert_allclose(got, alone.predict_proba(TEXTS), atol=1e-5)  # same as loading it alone
        answers[name] = got
    assert np.abs(answers["ia3a"] - answers["ia3b"]).max() > 1e-3  # each adapter answers with its own head
    pools = c.get("/admin/models", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["adapter_pools"]
    by_type = {p["peft_type"]: sorted(a.rsplit("_", 1)[0] for a in p["adapters"]) for p in pools}
    assert by_type == {"IA3": ["ia3a", "ia3b"], "PROMPT_TUNING": ["prompt"]}  # PEFT cannot mix methods


def test_manifest_reads_the_peft_method_old_lora_folders_included() -> None:
    from transferops.artifacts.manifest import Manifest

    old_lora = Manifest.from_dict({"strategy": {"name": "lora"}})  # written before strategy.peft_type
    assert old_lora.is_adapter and old_lora.peft_type == "LORA"
    ia3 = Manifest.from_dict({"strategy": {"name": "ia3", "peft_type": "IA3"}})
    assert ia3.is_adapter and ia3.peft_type == "IA3"
    full = Manifest.from_dict({"strategy": {"name": "full"}})
    assert not full.is_adapter and full.peft_type is None
    assert "peft_type" not in strategies.StrategyInfo("full", "r").to_dict()  # full-model entries unchanged
