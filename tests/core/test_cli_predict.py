"""The CLI over the same API: train, predict (chunks, resume), checkpoints, lr-find; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import transferops
from transferops.cli.main import main
from transferops.predict import predict_file


def test_checkpoints_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checkpoints", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"minilm-l6", "mpnet-base"}


def test_cli_train_and_predict(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(["-q", "train", "--data", str(bbc_small_csv), "--checkpoint", str(tiny_bert), "--strategy", "lora",
               "--epochs", "1", "--max-length", "48", "--no-near-duplicates", "--out", str(out)])
    assert rc == 0
    assert "baseline TF-IDF+LR" in capsys.readouterr().out
    src = tmp_path / "new.jsonl"
    pd.DataFrame({"text": ["a football match", "bank profits", "election news"], "id": [1, 2, 3]}).to_json(
        src, orient="records", lines=True)
    rc = main(["-q", "predict", "--model", str(out), "--input", str(src), "--output", str(tmp_path / "p.parquet"),
               "--id-column", "id"])
    assert rc == 0
    preds = pd.read_parquet(tmp_path / "p.parquet")
    assert list(preds["id"]) == [1, 2, 3]
    assert {"label", "confidence", "p_sport"} <= set(preds.columns)
    assert preds[[c for c in preds.columns if c.startswith("p_")]].sum(axis=1).round(4).eq(1).all()


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("body,label\nhello,a\n")
    rc = main(["train", "--data", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "no text column 'text'" in err and "Traceback" not in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rate: 0.1\n")
    rc = main(["train", "--data", str(bad), "--out", str(tmp_path / "o"), "--config", str(cfg)])
    assert rc == 2 and "unknown key 'learning_rate'. Did you mean 'lr'?" in capsys.readouterr().err


def test_predict_file_resumes_finished_chunks(tiny_run: Path, tmp_path: Path, bbc_small: pd.DataFrame) -> None:
    src = tmp_path / "in.parquet"
    bbc_small[["text"]].to_parquet(src)
    out = tmp_path / "out.csv"
    model = transferops.load(tiny_run)
    full = predict_file(model, src, out, chunk_size=50)
    assert full.rows == 200 and full.chunks == 4 and full.chunks_skipped == 0
    ref = pd.read_csv(out)
    # Simulate an interrupted run: two finished parts are left from an earlier attempt.
    parts = out.with_name(out.name + ".parts")
    first = predict_file(model, src, tmp_path / "tmp.csv", chunk_size=50)
    assert first.rows == 200
    # Re-create the parts folder by running with resume on a half-done state.
    import shutil

    from transferops._util import sha256_file, write_json

    parts.mkdir()
    write_json(parts / "state.json", {"input": str(src.resolve()), "sha256": sha256_file(src), "chunk_size": 50,
                                      "model": str(model.path), "text_column": "text"})
    for i in range(2):
        ref.iloc[i * 50:(i + 1) * 50].to_parquet(parts / f"part-{i:06d}.parquet", index=False)
    res = predict_file(model, src, out, chunk_size=50, resume=True)
    assert res.chunks_skipped == 2 and res.rows == 200
    again = pd.read_csv(out)
    pd.testing.assert_frame_equal(again, ref)
    assert not parts.exists()
    shutil.rmtree(tmp_path / "tmp.csv", ignore_errors=True)


def test_predict_rejects_empty_text_with_row(tiny_run: Path, tmp_path: Path) -> None:
    src = tmp_path / "e.csv"
    src.write_text("text\nfine\n\"  \"\n")
    with pytest.raises(transferops.DataError, match="row 2, column 'text': empty text"):
        predict_file(transferops.load(tiny_run), src, tmp_path / "o.parquet")


def test_lr_find_suggests_an_lr_and_plots(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path) -> None:
    plot = tmp_path / "lr.png"
    rc = main(["-q", "lr-find", "--data", str(bbc_small_csv), "--checkpoint", str(tiny_bert), "--strategy",
               "full", "--max-length", "32", "--steps", "30", "--plot", str(plot)])
    assert rc == 0 and plot.stat().st_size > 1000
    import numpy as np

    from transferops.finetune.lr_find import suggest

    lrs = np.logspace(-6, -1, 50)
    loss = np.concatenate([np.linspace(2, 2, 20), np.linspace(2, 0.5, 20), np.linspace(0.5, 3, 10)])
    s, m = suggest(lrs, loss)
    assert lrs[20] <= s <= lrs[39] and m == pytest.approx(lrs[39])


def test_cli_train_seeds_makes_an_ensemble(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "ens"
    rc = main(["-q", "train", "--data", str(bbc_small_csv), "--checkpoint", str(tiny_bert), "--strategy", "head",
               "--epochs", "2", "--max-length", "32", "--no-near-duplicates", "--seeds", "2", "--out", str(out)])
    assert rc == 0
    ens = transferops.load(out)
    members = [transferops.load(p) for p in sorted((out / "members").iterdir())]
    assert len(members) == 2
    p = ens.predict_proba(["a football match"])
    import numpy as np

    assert np.allclose(p, np.mean([m.predict_proba(["a football match"]) for m in members], axis=0), atol=1e-6)
    # Same split for every member (the split seed is fixed), different model seeds.
    assert members[0].manifest["splits"]["test_sha256"] == members[1].manifest["splits"]["test_sha256"]
    assert members[0].manifest["seed"] != members[1].manifest["seed"]
