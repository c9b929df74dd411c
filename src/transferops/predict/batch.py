"""Stream a file through a model chunk by chunk; each finished chunk is a Parquet part on disk, so an
interrupted run resumes where it stopped (``resume=True`` skips finished chunks)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferops._progress import bar
from transferops._util import read_json, sha256_file, write_json
from transferops.data.loading import SUPPORTED, missing_column
from transferops.errors import ConfigError, DataError


@dataclass
class BatchPredictResult:
    output: Path
    rows: int
    chunks: int
    chunks_skipped: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "output": str(self.output), "rows_per_second": round(self.rows_per_second, 1)}


def _iter_chunks(path: Path, chunk_size: int, encoding: str) -> Iterator[pd.DataFrame]:
    suf = path.suffix.lower()
    if suf not in SUPPORTED:
        raise DataError(f"{path}: unsupported file type '{suf}'; use .csv, .jsonl or .parquet")
    try:
        if suf in (".csv", ".tsv"):
            yield from pd.read_csv(path, sep="\t" if suf == ".tsv" else ",", chunksize=chunk_size, dtype=str,
                                   keep_default_na=False, na_values=[""], encoding=encoding)
        elif suf in (".jsonl", ".ndjson"):
            yield from pd.read_json(path, lines=True, chunksize=chunk_size, dtype=False, encoding=encoding)
        elif suf in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            for b in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield b.to_pandas()
        else:
            from transferops.data.loading import read_table

            df = read_table(path, encoding=encoding)
            for s in range(0, len(df), chunk_size):
                yield df.iloc[s:s + chunk_size]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid {encoding} text; re-save as UTF-8 or pass --encoding") from exc
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: could not be read ({exc})") from exc


def _count_rows(path: Path, encoding: str) -> int | None:
    suf = path.suffix.lower()
    if suf in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None  # counting CSV rows properly means parsing quotes: not worth a second pass


def score_chunk(model: Any, chunk: pd.DataFrame, *, source: str, row_offset: int = 0, text_column: str = "text",
                id_column: str | None = None, keep_columns: list[str] | None = None,
                batch_size: int = 64, review_threshold: float | None = None) -> pd.DataFrame:
    """Score one chunk: [id], kept columns, label, confidence, ``p_<label>`` per class (shared by the
    local engine and the Ray engine, so both write the same columns)."""
    labels = list(model.labels)
    multilabel = getattr(model, "task", "") == "multilabel"
    own = getattr(model, "inputs_from_frame", None)  # a non-text modality (tables) reads its own columns
    if callable(own):
        inputs = own(chunk, source=source, row_offset=row_offset)
    else:
        if text_column not in chunk.columns:
            raise missing_column(source, text_column, "text", chunk)
        texts = chunk[text_column]
        empty = texts.isna() | (texts.astype(str).str.strip() == "")
        if empty.any():
            j = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{source}: row {row_offset + j + 1}, column '{text_column}': empty text "
                            "(remove the row or fill it)")
        inputs = texts.astype(str).tolist()
    res = pd.DataFrame(index=chunk.index)
    if id_column:
        if id_column not in chunk.columns:
            raise missing_column(source, id_column, "id", chunk)
        res["id"] = chunk[id_column].to_numpy()
    for c in keep_columns or []:
        if c not in chunk.columns:
            raise missing_column(source, c, "keep", chunk)
        res[c] = chunk[c].to_numpy()
    if hasattr(model, "task_frame"):  # a multi-task model: label, confidence, p_ columns per task, one pass
        per_task = model.task_frame(inputs, batch_size=batch_size)
        for c in per_task.columns:
            res[c] = per_task[c].to_numpy()
        return res.reset_index(drop=True)
    proba = model.predict_proba(inputs, batch_size=batch_size)
    decided, confidence = model.decision_rule.apply(proba)  # the server's label and confidence
    res["label"] = ["|".join(d) for d in decided] if multilabel else decided
    res["confidence"] = confidence
    for j, lbl in enumerate(labels):
        res[f"p_{lbl}"] = proba[:, j]
    if review_threshold is not None:  # the server's review route (confidence below the threshold)
        res["route"] = np.where(np.asarray(confidence) < review_threshold, "review", "auto")
    return res.reset_index(drop=True)


def predict_file(model: Any, input: str | Path, output: str | Path, *, text_column: str = "text",
                 id_column: str | None = None, keep_columns: list[str] | None = None, chunk_size: int = 1000,
                 batch_size: int = 64, resume: bool = False, encoding: str = "utf-8",
                 review_threshold: float | None = None) -> BatchPredictResult:
    """Score every row of ``input`` and write label, confidence and per-class probabilities.

    >>> m = transferops.load("runs/news")                                  # doctest: +SKIP
    >>> predict_file(m, "new.csv", "preds.parquet").rows_per_second        # doctest: +SKIP
    """
    inp, out = Path(input), Path(output)
    if not inp.exists():
        raise DataError(f"{inp}: file not found")
    if out.suffix.lower() not in (".parquet", ".csv", ".jsonl"):
        raise ConfigError(f"output: {out} must end in .parquet, .csv or .jsonl")
    if review_threshold is not None and not 0 <= review_threshold <= 1:
        raise ConfigError(f"review_threshold: {review_threshold} must be in [0, 1]")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size: must be >= 1, got {chunk_size}")
    parts = out.with_name(out.name + ".parts")
    state_file = parts / "state.json"
    fingerprint = {"input": str(inp.resolve()), "sha256": sha256_file(inp), "chunk_size": chunk_size,
                   "model": str(getattr(model, "path", "")), "text_column": text_column}
    if parts.exists():
        if resume and state_file.exists() and read_json(state_file) == fingerprint:
            pass
        elif resume:
            raise ConfigError(f"resume: {parts} belongs to a different input, model or chunk size; delete it "
                              "or run without --resume")
        else:
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    write_json(state_file, fingerprint)

    t0 = time.perf_counter()
    n_rows = skipped = n_chunks = 0
    row_offset = 0
    with bar(desc="score", total=_count_rows(inp, encoding), unit="row") as pb:
        for i, chunk in enumerate(_iter_chunks(inp, chunk_size, encoding)):
            n_chunks += 1
            part = parts / f"part-{i:06d}.parquet"
            if part.exists():
                skipped += 1
                n_rows += len(chunk)
                row_offset += len(chunk)
                pb.update(len(chunk))
                continue
            res = score_chunk(model, chunk, source=str(inp), row_offset=row_offset, text_column=text_column,
                              id_column=id_column, keep_columns=keep_columns, batch_size=batch_size,
                              review_threshold=review_threshold)
            tmp = part.with_suffix(".tmp")
            res.reset_index(drop=True).to_parquet(tmp, index=False)
            tmp.rename(part)  # a part exists only when complete
            n_rows += len(chunk)
            row_offset += len(chunk)
            pb.update(len(chunk))
    seconds = time.perf_counter() - t0
    files = sorted(parts.glob("part-*.parquet"))
    full = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()
    if out.suffix.lower() == ".csv":
        full.to_csv(out, index=False)
    elif out.suffix.lower() == ".jsonl":
        full.to_json(out, orient="records", lines=True)
    else:
        full.to_parquet(out, index=False)
    shutil.rmtree(parts)
    return BatchPredictResult(out, n_rows, n_chunks, skipped, seconds)


def summary_json(res: BatchPredictResult) -> str:
    return json.dumps(res.to_dict(), indent=2)
