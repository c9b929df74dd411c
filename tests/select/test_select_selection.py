"""``select`` end to end on the tiny random BERT: split, cache, baselines, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferops.cli.main import main
from transferops.data import ColumnMap, SplitConfig, load_labeled, make_splits
from transferops.errors import CheckpointNotFoundError, ConfigError, DataError
from transferops.select import SelectConfig, select
from transferops.select.selection import (
    MAJORITY,
    TFIDF,
    embedding_cache_path,
    finetune_top,
    rank_correlations,
    rank_rows,
    selection_split,
    stratified_sample,
)


def test_stratified_sample_is_proportional_with_two_per_class() -> None:
    keys = np.array(["a"] * 90 + ["b"] * 8 + ["c"] * 2)
    idx = stratified_sample(keys, 20, seed=0)
    got = pd.Series(keys[idx]).value_counts().to_dict()
    assert len(idx) == 20 and len(set(idx)) == 20
    assert got["c"] == 2 and got["b"] == 2 and got["a"] == 16
    assert np.array_equal(idx, stratified_sample(keys, 20, seed=0))  # deterministic
    assert len(stratified_sample(keys, 500, seed=0)) == 100  # more than there is: all


def test_selection_split_never_touches_test(bbc_small: pd.DataFrame) -> None:
    data = load_labeled(bbc_small)
    texts, y, n_pool, warnings = selection_split(data, SelectConfig(n=100, seed=3))
    test = make_splits(data, SplitConfig(seed=3)).test
    assert not set(texts) & set(test.texts)
    assert len(texts) == 100 and n_pool == len(bbc_small) - len(test)
    assert pd.Series(y).value_counts().to_dict() == {c: 20 for c in data.labels}
    assert warnings == []


def test_selection_split_with_a_time_column_uses_only_the_past(bbc_small: pd.DataFrame) -> None:
    df = bbc_small.copy()
    df["when"] = pd.date_range("2024-01-01", periods=len(df), freq="h").astype(str)
    data = load_labeled(df, ColumnMap(time="when"))
    texts, _, n_pool, _ = selection_split(data, SelectConfig(n=50))
    test = make_splits(data, SplitConfig(method="temporal")).test
    assert n_pool == len(df) - len(test)
    latest_test = set(test.texts)
    assert not set(texts) & latest_test
    # The test split is the latest 20%: every selected row is older than all of them.
    when = dict(zip(df.text, pd.to_datetime(df.when), strict=True))
    assert max(when[t] for t in texts) < min(when[t] for t in latest_test)


def test_select_scores_candidate_and_baselines_then_uses_the_cache(bbc_small: pd.DataFrame,
                                                                   tiny_bert: Path) -> None:
    res = select(bbc_small, [str(tiny_bert)], n=60, max_length=32)
    names = [r.name for r in res.rows]
    assert set(names) == {str(tiny_bert), MAJORITY, TFIDF}
    assert [r.rank for r in res.rows] == [1, 2, 3]
    vals = [r.probe_macro_f1 for r in res.rows]
    assert vals == sorted(vals, reverse=True)  # ranked by the default score
    cand = res.row(str(tiny_bert))
    assert cand.kind == "checkpoint" and not cand.cached
    assert cand.dim == 32 and cand.params and cand.params > 0 and cand.size_bytes
    assert cand.embed_ms_per_example and cand.embed_ms_per_example > 0
    assert all(v is not None for v in (cand.knn_accuracy, cand.probe_accuracy, cand.logme))
    maj = res.row(MAJORITY)
    assert maj.probe_accuracy == pytest.approx(0.2, abs=0.05)  # 5 balanced classes
    assert res.recommended == [str(tiny_bert)]
    assert res.n == 60 and sum(res.label_counts.values()) == 60
    # A random 2-layer model scores below TF-IDF on news topics: say so.
    assert any("below the TF-IDF baseline" in w for w in res.warnings)

    from transferops.checkpoints import resolve_checkpoint

    sha = resolve_checkpoint(str(tiny_bert)).sha256()
    texts, _, _, _ = selection_split(load_labeled(bbc_small), SelectConfig(n=60, max_length=32))
    cached = embedding_cache_path(sha, texts, 32)
    assert cached.exists() and cached.with_suffix(".json").exists()
    assert np.load(cached).shape == (60, 32)
    again = select(bbc_small, [str(tiny_bert)], n=60, max_length=32)
    c2 = again.row(str(tiny_bert))
    assert c2.cached and c2.embed_ms_per_example == cand.embed_ms_per_example
    assert c2.logme == pytest.approx(cand.logme) and c2.knn_accuracy == cand.knn_accuracy
    # The baselines' cross-validation is cached too, and gives the same numbers.
    assert list(cached.parent.glob("baselines-*.json"))
    assert again.row(TFIDF).to_dict() == {**res.row(TFIDF).to_dict(), "rank": again.row(TFIDF).rank}
    # A different length is a different cache entry.
    third = select(bbc_small, [str(tiny_bert)], n=60, max_length=24)
    assert not third.row(str(tiny_bert)).cached
    d = res.to_dict()
    json.dumps(d)
    assert "rank" in res.table() or "candidate" in res.table()


def test_fewer_examples_than_n_uses_all_and_says_so(bbc_small: pd.DataFrame, tiny_bert: Path) -> None:
    small = bbc_small.groupby("label").head(6).reset_index(drop=True)  # 30 rows, test takes ~6
    res = select(small, [str(tiny_bert)], n=100, max_length=16)
    assert res.n == res.n_pool < 100
    assert any("using all" in w for w in res.warnings)


def _rare_frame(bbc_small: pd.DataFrame) -> pd.DataFrame:
    # 'tech' has 2 rows: the test split takes one, so the selection pool holds a single 'tech'.
    df = bbc_small[bbc_small.label != "tech"].groupby("label").head(10)
    return pd.concat([df, bbc_small[bbc_small.label == "tech"].head(2)], ignore_index=True)


def test_a_class_with_one_example_in_the_split_is_a_clear_error(bbc_small: pd.DataFrame,
                                                                tiny_bert: Path) -> None:
    with pytest.raises(DataError, match=r"fewer than 2 examples: 'tech'.*--merge-rare-classes"):
        select(_rare_frame(bbc_small), [str(tiny_bert)], n=40, max_length=16)


def test_merge_rare_classes_warns_or_errors_when_still_too_small(bbc_small: pd.DataFrame,
                                                                 tiny_bert: Path) -> None:
    df = _rare_frame(bbc_small)
    with pytest.raises(DataError, match="even merged"):
        select(df, [str(tiny_bert)], n=40, max_length=16, rare_classes="merge")
    # Two rare classes ('sport' and 'tech', one each in the pool) merge into one class of 2.
    big = bbc_small[~bbc_small.label.isin(["tech", "sport"])].groupby("label").head(10)
    rare = bbc_small[bbc_small.label.isin(["tech", "sport"])].groupby("label").head(2)
    df2 = pd.concat([big, rare], ignore_index=True)
    res = select(df2, [str(tiny_bert)], n=40, max_length=16, rare_classes="merge")
    assert any("merged" in w for w in res.warnings)
    assert res.label_counts["other(sport+tech)"] == 2


def test_unknown_candidate_lists_the_available_ones(bbc_small: pd.DataFrame) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"candidate 'bert-nope'.*minilm-l6, mpnet-base"):
        select(bbc_small, ["bert-nope"])


def test_folder_that_is_not_a_model_names_the_missing_file(bbc_small: pd.DataFrame, tmp_path: Path,
                                                          tiny_bert: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointNotFoundError, match=r"missing model.safetensors"):
        select(bbc_small, [str(tiny_bert), str(tmp_path)])


def test_multilabel_is_refused_with_a_hint(tiny_bert: Path) -> None:
    df = pd.DataFrame({"text": [f"text number {i}" for i in range(30)],
                       "label": ["a|b", "a", "b"] * 10})
    with pytest.raises(ConfigError, match="multi-label"):
        select(df, [str(tiny_bert)], columns=ColumnMap(label_sep="|"))


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="rank_by"):
        SelectConfig(rank_by="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n:"):
        SelectConfig(n=2)


def test_ties_break_by_logme_and_close_calls_warn() -> None:
    from transferops.select.selection import CandidateScore, _close_call

    a = CandidateScore("a", "checkpoint", probe_macro_f1=0.90, logme=-0.5)
    b = CandidateScore("b", "checkpoint", probe_macro_f1=0.89, logme=-0.1)
    c = CandidateScore("c", "checkpoint", probe_macro_f1=0.60, logme=-0.2)
    tie = CandidateScore("tie", "checkpoint", probe_macro_f1=0.90, logme=-0.3)
    base = CandidateScore("maj", "baseline", probe_macro_f1=0.2)
    ranked = rank_rows([base, a, c, tie, b], "probe_macro_f1")
    assert [r.name for r in ranked] == ["tie", "a", "b", "c", "maj"]  # a/tie tie → higher LogME first
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    assert [r.name for r in rank_rows([a, b, c, base], "logme")] == ["b", "c", "a", "maj"]
    w = _close_call([a, b, c], "probe_macro_f1", 100)
    assert len(w) == 1 and "a and b are within one standard error" in w[0]
    assert _close_call([a, c], "probe_macro_f1", 100) == []
    assert _close_call([a, b], "logme", 100) == []


def test_rank_correlations() -> None:
    c = rank_correlations([0.1, 0.2, 0.3], [0.5, 0.7, 0.9])
    assert c["spearman"] == pytest.approx(1.0) and c["kendall"] == pytest.approx(1.0)
    c = rank_correlations([0.3, 0.2, 0.1], [0.5, 0.7, 0.9])
    assert c["spearman"] == pytest.approx(-1.0)
    assert rank_correlations([0.1], [0.2])["spearman"] is None


def test_finetune_top_reports_fine_tuned_results(bbc_small: pd.DataFrame, tiny_bert: Path,
                                                 tmp_path: Path) -> None:
    res = select(bbc_small, [str(tiny_bert)], n=40, max_length=32)
    out = finetune_top(res, bbc_small, 1, out=tmp_path / "runs", strategy="full", epochs=1, lr=1e-3,
                       max_length=32, check_near_duplicates=False)
    assert len(out.runs) == 1
    run = out.runs[0]
    assert Path(run["path"], "transferops.json").exists()
    assert 0.0 <= run["test_macro_f1"] <= 1.0 and 0.0 < run["baseline_test_macro_f1"] <= 1.0
    assert out.correlations["logme"]["spearman"] is None  # one candidate: undefined
    assert "±1" in out.note
    # With the TF-IDF baseline as a second point the correlation is defined.
    assert abs(out.correlations_with_baseline["probe_macro_f1"]["spearman"]) == pytest.approx(1.0)


def test_cli_select_json_and_plot(bbc_small_csv: Path, tiny_bert: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    png, out_json = tmp_path / "sel.png", tmp_path / "sel.json"
    rc = main(["select", "--data", str(bbc_small_csv), "--candidates", str(tiny_bert), "--n", "50",
               "--max-length", "32", "--json", "--plot", str(png), "--output", str(out_json),
               "--rank-by", "logme"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["rank_by"] == "logme" and d["n"] == 50
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(out_json.read_text())["recommended"] == [str(tiny_bert)]


def test_cli_select_unknown_candidate_exit_2(bbc_small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["select", "--data", str(bbc_small_csv), "--candidates", "nope"])
    assert rc == 2
    assert "minilm-l6" in capsys.readouterr().err


def test_cli_select_finetune_top(bbc_small_csv: Path, tiny_bert: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["select", "--data", str(bbc_small_csv), "--candidates", str(tiny_bert), "--n", "40",
               "--max-length", "32", "--finetune-top", "1", "--strategy", "full", "--epochs", "1",
               "--no-near-duplicates", "--out", str(tmp_path / "runs")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "fine-tuned (test split):" in out and "final ranking:" in out
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if (p / "transferops.json").exists()]
    assert len(run_dirs) == 1
    manifest = json.loads((run_dirs[0] / "transferops.json").read_text())
    assert manifest["strategy"]["name"] == "full" and manifest["config"]["max_length"] == 32
    assert manifest["config"]["check_near_duplicates"] is False


def test_params_from_the_safetensors_header_and_sharded_size(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from transferops.checkpoints import ResolvedCheckpoint
    from transferops.select.selection import count_params, weights_size

    one = tmp_path / "one"
    one.mkdir()
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(one / "model.safetensors"))
    ck = ResolvedCheckpoint(name="one", path=one, source="local")
    assert count_params(ck) == 17
    assert weights_size(ck) == (one / "model.safetensors").stat().st_size

    sharded = tmp_path / "sharded"
    sharded.mkdir()
    save_file({"a": torch.zeros(3, 4)}, str(sharded / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(5)}, str(sharded / "model-00002-of-00002.safetensors"))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    ck2 = ResolvedCheckpoint(name="sharded", path=sharded, source="local")
    assert weights_size(ck2) == sum(f.stat().st_size for f in sharded.glob("model-*.safetensors"))
    assert count_params(ck2) == 17
