"""Batch scoring on Ray: a Ray Data pipeline over input shards, an actor pool that holds the model.

``transferops predict --engine ray`` scores a file or a folder of shards (CSV / JSONL / Parquet) and
writes a folder of Parquet parts, one per input shard, with the same columns as the local engine
(:func:`transferops.predict.batch.score_chunk` is shared). A part exists only when complete, so
``--resume`` re-runs only the shards that have no part yet.

- A folder: each supported file is a shard; the workers read their shard themselves.
- A single file: the driver streams it in ``chunk_size``-row chunks (the same reader as the local
  engine) into staging shards under ``<output>/_input/``, then the workers read those. Memory stays
  bounded by one chunk on the driver; give a folder of shards to skip the staging copy.

The dataset is one row per pending shard, passed as separate blocks (``from_items`` with one
block per shard) rather than ``repartition()``-ed: with two 1-CPU actors on a 2-core machine the
latter hung. On a real cluster the input, the output and the model folder must be on storage every
node sees (NFS, a mounted bucket), and ``transferops`` must be installed on every node.

>>> from transferops.predict.ray_engine import predict_ray          # doctest: +SKIP
>>> predict_ray("runs/news-onnx", "backlog/", "scored/", num_workers=2).rows_per_second  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from transferops._extras import require
from transferops._util import read_json, write_json
from transferops.data.loading import SUPPORTED
from transferops.errors import ConfigError, DataError

STATE_FILE = "_state.json"
STAGING_DIR = "_input"


@dataclass
class RayPredictResult:
    output: Path
    rows: int
    shards: int
    shards_skipped: int
    seconds: float
    num_workers: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "output": str(self.output), "rows_per_second": round(self.rows_per_second, 1)}


def _part(out: Path, shard: int) -> Path:
    return out / f"part-{shard:06d}.parquet"


def read_shard(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """One shard, read with the local engine's rules (CSV as strings, empty cells missing)."""
    from transferops.predict.batch import _iter_chunks

    chunks = list(_iter_chunks(path, 1 << 30, encoding))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


class _ShardScorer:
    """Ray actor: loads the model once, then scores whole shards and writes their parts."""

    def __init__(self, model_path: str, runtime: str, threads: int, out: str, options: dict[str, Any]) -> None:
        from transferops.predict.cli import load_for_runtime

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.model = load_for_runtime(model_path, runtime, threads)
        self.out = Path(out)
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from transferops.predict.batch import score_chunk

        shards, rows = [], []
        for shard, path, offset in zip(batch["shard"], batch["path"], batch["row_offset"], strict=True):
            frame = read_shard(Path(str(path)), self.options["encoding"])
            res = score_chunk(self.model, frame, source=str(self.options["source"]), row_offset=int(offset),
                              text_column=self.options["text_column"], id_column=self.options["id_column"],
                              keep_columns=self.options["keep_columns"], batch_size=self.options["batch_size"])
            part = _part(self.out, int(shard))
            tmp = part.with_suffix(".tmp")
            res.to_parquet(tmp, index=False)
            tmp.rename(part)  # a part exists only when complete
            shards.append(int(shard))
            rows.append(len(res))
        return {"shard": shards, "rows": rows}


def _input_shards(inp: Path) -> list[Path]:
    if inp.is_dir():
        files = sorted(p for p in inp.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED)
        if not files:
            raise DataError(f"{inp}: no .csv/.jsonl/.parquet shards in this folder")
        return files
    if inp.suffix.lower() not in SUPPORTED:
        raise DataError(f"{inp}: unsupported file type '{inp.suffix}'; use .csv, .jsonl or .parquet")
    return [inp]


def _stage(inp: Path, out: Path, chunk_size: int, encoding: str, resume: bool) -> list[tuple[Path, int]]:
    """Split a single input file into Parquet shards of ``chunk_size`` rows (kept for --resume)."""
    from transferops.predict.batch import _iter_chunks

    staging = out / STAGING_DIR
    done = staging / "_complete"
    if resume and done.exists():
        return [(p, int(o)) for p, o in zip(sorted(staging.glob("shard-*.parquet")),
                                            read_json(done)["offsets"], strict=True)]
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shards, offsets, offset = [], [], 0
    for i, chunk in enumerate(_iter_chunks(inp, chunk_size, encoding)):
        p = staging / f"shard-{i:06d}.parquet"
        chunk.reset_index(drop=True).to_parquet(p, index=False)
        shards.append((p, offset))
        offsets.append(offset)
        offset += len(chunk)
    write_json(done, {"offsets": offsets})
    return shards


def init_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """Start (or join) Ray with telemetry and the dashboard off."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require("ray", "ray")
    require("ray.data", "ray")
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kw["address"] = address
        elif num_cpus:
            kw["num_cpus"] = num_cpus
        ray.init(**kw)
    from transferops._progress import is_quiet

    ray.data.DataContext.get_current().enable_progress_bars = not is_quiet()
    return ray


def predict_ray(model_path: str | Path, input: str | Path, output: str | Path, *, text_column: str = "text",
                id_column: str | None = None, keep_columns: list[str] | None = None, chunk_size: int = 1000,
                batch_size: int = 64, num_workers: int = 1, address: str | None = None, runtime: str = "auto",
                threads: int = 1, resume: bool = False, encoding: str = "utf-8") -> RayPredictResult:
    """Score ``input`` on Ray with ``num_workers`` model-holding actors; parts go to folder ``output``.

    ``address``: ``None`` starts a local Ray (``num_workers`` CPUs), ``"auto"`` joins the cluster this
    machine belongs to, ``"ray://host:10001"`` connects a client."""
    inp, out = Path(input), Path(output)
    if not inp.exists():
        raise DataError(f"{inp}: file or folder not found")
    if num_workers < 1:
        raise ConfigError(f"num_workers: must be >= 1, got {num_workers}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size: must be >= 1, got {chunk_size}")
    if out.suffix.lower() in (".parquet", ".csv"):
        raise ConfigError(f"output: the Ray engine writes a folder of Parquet parts; give a folder name, not {out}")
    if runtime not in ("auto", "torch", "onnx"):
        raise ConfigError(f"runtime: {runtime!r} is not one of 'auto', 'torch', 'onnx'")
    files = _input_shards(inp)
    fingerprint = {"input": str(inp.resolve()), "files": [[f.name, f.stat().st_size] for f in files],
                   "chunk_size": chunk_size if not inp.is_dir() else None,
                   "model": str(Path(model_path).resolve()), "text_column": text_column, "engine": "ray"}
    state = out / STATE_FILE
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise ConfigError(f"output: {out} is not empty; pass --resume to finish it, or choose another folder")
        if not state.exists() or read_json(state) != fingerprint:
            raise ConfigError(f"resume: {out} belongs to a different input, model or chunk size; delete it or "
                              "choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(state, fingerprint)

    t0 = time.perf_counter()
    if inp.is_dir():
        shards = [(f, 0) for f in files]
    else:
        shards = _stage(inp, out, chunk_size, encoding, resume)
    pending = [{"shard": i, "path": str(p), "row_offset": o} for i, (p, o) in enumerate(shards)
               if not _part(out, i).exists()]
    skipped = len(shards) - len(pending)
    import pyarrow.parquet as pq

    rows = sum(int(pq.ParquetFile(_part(out, i)).metadata.num_rows) for i in range(len(shards))
               if _part(out, i).exists())
    if pending:
        ray = init_ray(address, num_cpus=num_workers)
        options = {"text_column": text_column, "id_column": id_column, "keep_columns": list(keep_columns or []),
                   "batch_size": batch_size, "encoding": encoding, "source": str(inp)}
        ds = ray.data.from_items(pending, override_num_blocks=len(pending))
        try:
            done = ds.map_batches(
                _ShardScorer, batch_size=1, batch_format="numpy", num_cpus=1,
                compute=ray.data.ActorPoolStrategy(size=num_workers),
                fn_constructor_kwargs={"model_path": str(Path(model_path).resolve()), "runtime": runtime,
                                       "threads": threads, "out": str(out.resolve()), "options": options},
            ).take_all()
        except Exception as exc:
            user = _transferops_cause(exc)
            if user is None:
                raise
            raise type(user)(str(user)) from exc
        rows += sum(int(r["rows"]) for r in done)
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
    return RayPredictResult(out, rows, len(shards), skipped, time.perf_counter() - t0, num_workers)


def _transferops_cause(exc: BaseException) -> BaseException | None:
    """The TransferOpsError a Ray worker raised (bad input), unwrapped from Ray's exception wrappers."""
    from transferops.errors import TransferOpsError

    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, TransferOpsError):
            return e
        stack += [e.__cause__, e.__context__, getattr(e, "cause", None)]
    # Ray does not always carry the original exception across processes: read it from the traceback text.
    import re

    from transferops import errors

    m = re.search(r"transferops\.errors\.(\w+): (.+)", str(exc))
    cls = getattr(errors, m.group(1), None) if m else None
    if m and isinstance(cls, type) and issubclass(cls, TransferOpsError):
        return cls(m.group(2).strip())
    return None


def read_output(output: str | Path) -> pd.DataFrame:
    """All parts of a Ray-engine output folder, in input order."""
    parts = sorted(Path(output).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()
