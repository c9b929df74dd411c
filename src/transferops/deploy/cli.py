"""``transferops export`` and ``transferops serve``: thin layers over the deploy API."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from transferops.errors import ConfigError, TransferOpsError


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="export a trained model to ONNX (+ int8) with parity/accuracy gates",
                       description="Export to ONNX (fp32 + dynamic int8). Fails (exit 1) when fp32 parity "
                                   "or the int8 accuracy drop gate fails.")
    p.add_argument("--model", required=True, help="trained artifact folder (transferops train --out)")
    p.add_argument("--out", required=True, help="export folder to create")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (only onnx)")
    p.add_argument("--quantize", default="int8", choices=["int8", "dynamic", "static", "auto", "none"],
                   help="int8 mode: dynamic, static (QDQ calibrated on training texts, head and LayerNorm "
                        "in fp32), auto (both, keeps the smaller measured drop); int8 (default) = dynamic; "
                        "'none' exports fp32 only")
    p.add_argument("--max-drop", type=float, default=1.0,
                   help="largest int8 accuracy drop vs fp32, in points (default 1): fails when the lower "
                        "bound of the drop's 95%% CI on validation+test+train rows is above it")
    p.add_argument("--accuracy-rows", type=int, default=2000,
                   help="rows the int8 drop is measured on: all validation and test rows, topped up with "
                        "training rows (default 2000)")
    p.add_argument("--calibration-rows", type=int, default=256,
                   help="training texts that calibrate static int8 activations (default 256)")
    p.add_argument("--per-tensor", action="store_true",
                   help="one int8 scale per weight matrix instead of per output channel")
    p.add_argument("--sample-size", type=int, default=1000, help="validation texts used for the checks")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export in --out")
    p.set_defaults(func=cmd_export)

    s = sub.add_parser("serve", help="serve models over HTTP with dynamic batching and review routing",
                       description="REST server: POST /v1/models/{name}/predict, /healthz, /readyz, "
                                   "/metrics, /docs. Exported folders run on ONNX Runtime, artifacts on "
                                   "PyTorch.")
    s.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH",
                   help="model to serve (export folder or artifact); repeat for several; NAME defaults to "
                        "the folder name")
    s.add_argument("--adapters", help="folder of PEFT adapter artifacts (lora, ia3, prompt_tuning) served "
                                      "over one shared base model each")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-batch-size", type=int, default=32)
    s.add_argument("--max-wait-ms", type=float, default=2.0)
    s.add_argument("--no-adaptive-wait", action="store_true",
                   help="always wait --max-wait-ms for a batch to fill, even for a lone client")
    s.add_argument("--split-min-chars", type=int, default=0, metavar="N",  # = batching.SPLIT_MIN_CHARS
                   help="share queued texts between free inference threads (--workers) only when each share "
                        "holds at least N characters (default 0: whenever threads are free; docs/deploy.md)")
    s.add_argument("--no-fast-path", action="store_true",
                   help="send every predict request through the FastAPI route (the fast path answers "
                        "well-formed ones identically, with less work per request; docs/deploy.md)")
    s.add_argument("--queue-size", type=int, default=4096, help="texts waiting before requests get 503")
    s.add_argument("--max-texts-per-request", type=int, default=1024)
    s.add_argument("--max-chars-per-text", type=int, default=20_000)
    s.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--review-threshold", type=float, help="confidence below this is routed to review")
    g.add_argument("--target-auto-accuracy", type=float,
                   help="derive the threshold from the validation split: smallest review rate whose auto "
                        "predictions reach this accuracy (e.g. 0.98)")
    s.add_argument("--admin-token", help="token for /admin endpoints (or env TRANSFEROPS_ADMIN_TOKEN)")
    s.add_argument("--threads", type=int, help="intra-op threads for ONNX Runtime / PyTorch")
    s.add_argument("--processes", type=int, default=1, metavar="N",
                   help="server processes on the one port (Linux, SO_REUSEPORT), each with its own model copy "
                        "and the cores divided by N as --threads; not with --admin-token (docs/deploy.md)")
    s.add_argument("--workers", type=int, default=None,
                   help="inference threads (batches of one model run in parallel); default: the cores "
                        "divided by --threads, 1 when --threads is not set")
    s.add_argument("--variant", choices=["int8", "fp32"], help="ONNX variant to serve (default int8)")
    s.add_argument("--db", "--db-url", dest="db_url", metavar="URL",
                   help="prediction log database: a file path, sqlite:///x.db or postgresql://... "
                        "(--db-url is an alias)")
    s.add_argument("--log-mode", choices=["durable", "async"], default="durable",
                   help="durable (default): each prediction is committed to the log before its response "
                        "(group commit); async: buffered, a kill -9 loses up to ~0.5 s of traffic")
    s.add_argument("--request-timeout", type=float, default=30.0,
                   help="seconds a request may wait in the queue before it is dropped (504), not computed")
    s.add_argument("--max-header-bytes", type=int, default=16 * 1024, help="total size of request headers")
    s.add_argument("--max-headers", type=int, default=100, help="number of request headers")
    s.add_argument("--ab", help="A/B arms: control=runs/a,treatment=runs/b")
    s.add_argument("--split", default="50/50", help="A/B traffic split (default 50/50)")
    s.add_argument("--ab-key", default="header:X-User-Id",
                   help="assignment key: header:NAME, query:NAME or id")
    s.add_argument("--experiment", help="experiment name (POST /v1/experiments/NAME/predict)")
    s.add_argument("--model-root", action="append", default=[],
                   help="extra folder POST /admin/models may load from (repeatable)")
    s.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=cmd_serve)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item.rstrip("/")).name, item
        if not name or not path:
            raise ConfigError(f"{what}: {item!r} must look like NAME=PATH")
        if name in out:
            raise ConfigError(f"{what}: the name {name!r} is used twice; give one with NAME=PATH")
        out[name] = path
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from transferops.tabular import cli as tabular_cli

    if tabular_cli.is_tabular_folder(args.model):  # issue 16: tables
        return tabular_cli.export(args)
    from transferops.deploy.onnx_export import export_onnx
    from transferops.vision import cli as image_cli

    if image_cli.is_image_model(args.model):  # issue 15: static QDQ int8 with a calibration set
        return image_cli.export(args)
    res = export_onnx(args.model, args.out, quantize=None if args.quantize == "none" else args.quantize,
                      max_drop=args.max_drop / 100.0, sample_size=args.sample_size, overwrite=args.overwrite,
                      per_channel=not args.per_tensor, accuracy_rows=args.accuracy_rows,
                      calibration_rows=args.calibration_rows)
    print(res.summary())
    return 0


def settings_from_args(args: argparse.Namespace) -> Any:
    from transferops.deploy.settings import ServeSettings

    ab = _pairs(args.ab.split(","), "--ab") if args.ab else None
    return ServeSettings(
        models=_pairs(args.model, "--model"), adapters=args.adapters, host=args.host, port=args.port,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
        adaptive_wait=not args.no_adaptive_wait, split_min_chars=args.split_min_chars, fast_path=not args.no_fast_path,
        max_texts_per_request=args.max_texts_per_request, max_chars_per_text=args.max_chars_per_text,
        max_body_bytes=args.max_body_bytes, review_threshold=args.review_threshold,
        target_auto_accuracy=args.target_auto_accuracy, admin_token=args.admin_token, threads=args.threads,
        db_url=args.db_url, ab=ab, ab_split=args.split, ab_key=args.ab_key, experiment=args.experiment,
        variant=args.variant, model_roots=list(args.model_root), inference_workers=args.workers,
        log_mode=args.log_mode, request_timeout_s=args.request_timeout, max_header_bytes=args.max_header_bytes,
        max_headers=args.max_headers)


def cmd_serve(args: argparse.Namespace) -> int:
    from transferops._extras import require
    from transferops._progress import say
    uvicorn = require("uvicorn", "serve")
    require("fastapi", "serve")  # one line naming the extra, before the server module imports it
    from transferops.deploy import processes
    from transferops.deploy.server import create_app

    settings = settings_from_args(args)
    n_proc = processes.check_processes(args.processes, port=settings.port, admin_token=settings.admin.admin_token)
    # fail here with one line rather than with a traceback from the server's startup
    for what, items in (("--model", settings.models), ("--ab", settings.experiments.ab or {})):
        for name, path in items.items():
            if not Path(path).is_dir():
                raise ConfigError(f"{what} {name}: {path} is not a folder (an export or a trained artifact)")
    if settings.adapters and not Path(settings.adapters).is_dir():
        raise ConfigError(f"--adapters: {settings.adapters} is not a folder")
    if settings.adapters:
        check_adapters_folder(Path(settings.adapters))
    child = processes.is_child()
    if n_proc > 1 and not child:
        say(f"serving on http://{settings.host}:{settings.port} with {n_proc} processes  (docs at /docs, "
            "metrics at /metrics)")
        return processes.run_processes(args.argv, n_proc, host=settings.host, port=settings.port,
                                        threads=args.threads, say=say)
    if not child and settings.port != 0:
        processes.check_port_free(settings.host, settings.port)  # one line, not uvicorn's bind error after start-up
    app = create_app(settings)

    class _NoStartupTraceback(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return app.state.startup_error is None  # the error is printed as one line below

    logging.getLogger("uvicorn.error").addFilter(_NoStartupTraceback())
    if not child:
        say(f"serving on http://{settings.host}:{settings.port}  (docs at /docs, metrics at /metrics)")
    try:
        # h11 (when used) also bounds the header block while it is read; the app checks size and count
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=args.log_level,
                                access_log=False, h11_max_incomplete_event_size=settings.edge.max_header_bytes + 1024)
        server = _uvicorn_server()(config)
        # a child of --processes binds its own SO_REUSEPORT socket; uvicorn listens on it after start-up
        server.run(sockets=[processes.reuseport_socket(settings.host, settings.port)] if child else None)
        if not server.started:
            sys.exit(3)  # what uvicorn.run does when start-up failed
    except SystemExit:
        err = app.state.startup_error
        if err is None:
            raise
        if isinstance(err, TransferOpsError):
            raise ConfigError(f"start-up failed: {err}") from err
        first = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"start-up failed: {type(err).__name__}: {first}") from err
    return 0


def _uvicorn_server() -> Any:
    """``uvicorn.Server`` that also marks a ``--processes`` child ready once it accepts connections."""
    import uvicorn

    from transferops.deploy import processes

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            if processes.is_child():
                app_startup = self.lifespan.startup

                async def startup_then_wait() -> None:
                    await app_startup()  # the models load here
                    if not self.lifespan.should_exit:
                        processes.mark("loaded")
                        await processes.wait_for_go(lambda: self.should_exit)  # listen once all have loaded

                self.lifespan.startup = startup_then_wait  # type: ignore[method-assign]
            await super().startup(sockets=sockets)
            if self.started:
                processes.mark("ready")

    return Server


def check_adapters_folder(root: Path) -> None:
    """One-line errors before start-up: every adapter in ``root`` is a PEFT adapter artifact inside it."""
    from transferops.artifacts.model import read_manifest
    from transferops.constants import MANIFEST_NAME
    from transferops.deploy.runtime import check_safe_folder

    base = root.resolve()
    for sub in sorted(root.iterdir()):
        if sub.is_symlink() and not sub.resolve().is_relative_to(base):
            raise ConfigError(f"--adapters: {sub} is a symlink out of the adapters folder; copy the adapter "
                              "in or remove the link")
        if not sub.is_dir() or not (sub / MANIFEST_NAME).exists():
            continue
        check_safe_folder(sub)
        sm = read_manifest(sub)
        if not sm.is_adapter:
            raise ConfigError(f"--adapters: {sub} was trained with strategy {sm.strategy_name!r}, not lora or "
                              "another PEFT adapter method (ia3, prompt_tuning); serve it with --model NAME=PATH, "
                              "or move it out of the adapters folder")
