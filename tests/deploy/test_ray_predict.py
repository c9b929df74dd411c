"""``transferops predict --engine ray`` on a real local Ray cluster (2 CPUs): the same rows and columns
as the local engine, row for row; resumable by shard; clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from transferops.errors import ConfigError, DataError

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local():
    from transferops.predict.ray_engine import init_ray

    init_ray(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory, bbc_small: pd.DataFrame) -> Path:
    """2,000 rows with an id column, as one CSV."""
    df = pd.concat([bbc_small] * 10, ignore_index=True)
    df.insert(0, "doc_id", [f"d{i:05d}" for i in range(len(df))])
    p = tmp_path_factory.mktemp("backlog") / "backlog.csv"
    df.to_csv(p, index=False)
    return p


def _local(model_dir: Path, inp: Path, out: Path) -> pd.DataFrame:
    import transferops
    from transferops.predict.batch import predict_file

    predict_file(transferops.load(model_dir), inp, out, text_column="text", id_column="doc_id",
                 keep_columns=["label"], chunk_size=500)
    return pd.read_parquet(out)


def test_ray_engine_equals_local_row_for_row(ray_local: None, tiny_export: Path, backlog: Path,
                                             tmp_path: Path) -> None:
    from transferops.predict.ray_engine import predict_ray, read_output

    local = _local(tiny_export, backlog, tmp_path / "local.parquet")
    res = predict_ray(tiny_export, backlog, tmp_path / "ray", id_column="doc_id", keep_columns=["label"],
                      chunk_size=500, num_workers=2)  # ONNX int8 (the export's default) in 2 actors
    assert (res.rows, res.shards, res.shards_skipped) == (2000, 4, 0)
    got = read_output(tmp_path / "ray")
    assert list(got.columns) == list(local.columns)
    assert got["id"].tolist() == local["id"].tolist()
    assert got["label"].tolist() == local["label"].tolist()
    # Same chunks → same batches: equal to float precision. (With other chunk sizes int8 probabilities
    # move by ~1e-5: dynamic quantisation scales activations per batch, and padding differs.)
    pd.testing.assert_frame_equal(got, local, check_exact=False, atol=1e-6)
    assert not (tmp_path / "ray" / "_input").exists()


def test_ray_engine_folder_of_shards_resumes(ray_local: None, tiny_export: Path, backlog: Path,
                                            tmp_path: Path) -> None:
    from transferops.predict.ray_engine import predict_ray, read_output

    df = pd.read_csv(backlog, dtype=str)
    shards = tmp_path / "shards"
    shards.mkdir()
    df.iloc[:700].to_parquet(shards / "a.parquet", index=False)
    df.iloc[700:1400].to_json(shards / "b.jsonl", orient="records", lines=True)
    df.iloc[1400:].to_csv(shards / "c.csv", index=False)
    out = tmp_path / "scored"
    predict_ray(tiny_export, shards, out, id_column="doc_id", num_workers=1)
    first = read_output(out)
    (out / "part-000001.parquet").unlink()  # as if killed before shard 1 finished
    with pytest.raises(ConfigError, match="--resume"):
        predict_ray(tiny_export, shards, out, id_column="doc_id")
    res = predict_ray(tiny_export, shards, out, id_column="doc_id", num_workers=2, resume=True)
    assert (res.shards, res.shards_skipped, res.rows) == (3, 2, 2000)
    pd.testing.assert_frame_equal(read_output(out), first)
    assert read_output(out)["id"].tolist() == df["doc_id"].tolist()


def test_ray_engine_bad_input_is_one_clear_error(ray_local: None, tiny_export: Path, tmp_path: Path) -> None:
    from transferops.predict.ray_engine import predict_ray

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["fine", "", "also fine"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"row 2, column 'text': empty text"):
        predict_ray(tiny_export, bad, tmp_path / "o1")
    with pytest.raises(DataError, match="no text column 'body'"):
        predict_ray(tiny_export, bad, tmp_path / "o2", text_column="body")
    with pytest.raises(ConfigError, match="folder of Parquet parts"):
        predict_ray(tiny_export, bad, tmp_path / "o3.parquet")


@pytest.mark.slow
def test_cli_engine_ray(tiny_export: Path, backlog: Path, tmp_path: Path) -> None:
    """The CLI starts its own local Ray (a fresh process) and prints one summary line."""
    proc = subprocess.run([sys.executable, "-m", "transferops", "predict", "--model", str(tiny_export), "--input",
                           str(backlog), "--output", str(tmp_path / "cli"), "--engine", "ray", "--num-workers", "1",
                           "--chunk-size", "1000", "--id-column", "doc_id"],
                          capture_output=True, text=True, timeout=600,
                          env={**{k: v for k, v in os.environ.items() if k != "TRANSFEROPS_QUIET"},
                               "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "scored 2000 rows in 2 shards (0 resumed) on 1 Ray workers" in proc.stdout
    assert len(list((tmp_path / "cli").glob("part-*.parquet"))) == 2
