"""``transferops predict``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("predict", help="score a CSV/JSONL/Parquet file in chunks (resumable)")
    p.add_argument("--model", required=True, help="model folder (trained, ensemble, or ONNX export)")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True, help=".parquet, .csv or .jsonl (--engine ray: a folder of Parquet parts)")
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
    p.add_argument("--review-threshold", type=float, help="add a route column: review below this confidence")
    g = p.add_argument_group("Ray engine (pip install 'transferops[ray]')")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: an actor pool scores the shards of a file or folder (see docs/scale.md)")
    g.add_argument("--address", help="Ray cluster: 'auto' or 'ray://host:10001' (default: start a local Ray)")
    g.add_argument("--num-workers", type=int, default=1, help="model-holding Ray actors (1 CPU each)")
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
    from transferops.vision import cli as image_cli

    if image_cli.is_image_model(args.model):  # issue 15: an image model scores a folder of images
        return image_cli.predict(args)
    if args.engine == "ray":
        from transferops.predict.ray_engine import predict_ray

        rr = predict_ray(args.model, args.input, args.output, text_column=args.text_column,
                         id_column=args.id_column, keep_columns=args.keep_column, chunk_size=args.chunk_size,
                         batch_size=args.batch_size, num_workers=args.num_workers, address=args.address,
                         runtime=args.runtime, threads=args.threads or 1, resume=args.resume,
                         encoding=args.encoding)
        say(f"scored {rr.rows} rows in {rr.shards} shards ({rr.shards_skipped} resumed) on {rr.num_workers} Ray "
            f"workers in {rr.seconds:.1f}s — {rr.rows_per_second:.1f} rows/s → {rr.output}")
        return 0
    model = load_for_runtime(args.model, args.runtime, args.threads)
    res = predict_file(model, args.input, args.output, text_column=args.text_column, id_column=args.id_column,
                       keep_columns=args.keep_column, chunk_size=args.chunk_size, batch_size=args.batch_size,
                       resume=args.resume, encoding=args.encoding, review_threshold=args.review_threshold)
    say(f"scored {res.rows} rows in {res.chunks} chunks ({res.chunks_skipped} resumed) in {res.seconds:.1f}s "
        f"— {res.rows_per_second:.1f} rows/s → {res.output}")
    return 0
