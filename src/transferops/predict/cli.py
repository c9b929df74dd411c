"""``transferops predict``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("predict", help="score a CSV/JSONL/Parquet file in chunks (resumable)")
    p.add_argument("--model", required=True, help="model folder (trained, ensemble, or ONNX export)")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True, help=".parquet or .csv")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column")
    p.add_argument("--keep-column", action="append", default=[], help="copy an input column to the output")
    p.add_argument("--chunk-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                   help="onnx needs a folder made by `transferops export`")
    p.add_argument("--resume", action="store_true", help="skip chunks finished by an interrupted run")
    p.add_argument("--threads", type=int)
    p.add_argument("--encoding", default="utf-8")
    p.set_defaults(func=_predict)


def load_for_runtime(path: str, runtime: str, threads: int | None = None) -> Any:
    from pathlib import Path

    import transferops
    from transferops.constants import EXPORT_MANIFEST
    from transferops.errors import ConfigError

    is_onnx = (Path(path) / EXPORT_MANIFEST).exists()
    if runtime == "onnx" and not is_onnx:
        raise ConfigError(f"--runtime onnx: {path} is not an ONNX export; run `transferops export --model "
                          f"{path} --out {path}-onnx` first")
    if runtime == "torch" and is_onnx:
        raise ConfigError(f"--runtime torch: {path} is an ONNX export; pass the original training folder")
    kw = {"threads": threads} if threads else {}
    return transferops.load(path, **kw)


def _predict(args: argparse.Namespace) -> int:
    from transferops._progress import say
    from transferops.predict.batch import predict_file

    model = load_for_runtime(args.model, args.runtime, args.threads)
    res = predict_file(model, args.input, args.output, text_column=args.text_column, id_column=args.id_column,
                       keep_columns=args.keep_column, chunk_size=args.chunk_size, batch_size=args.batch_size,
                       resume=args.resume, encoding=args.encoding)
    say(f"scored {res.rows} rows in {res.chunks} chunks ({res.chunks_skipped} resumed) in {res.seconds:.1f}s "
        f"— {res.rows_per_second:.1f} rows/s → {res.output}")
    return 0
