"""The server's named models: load, replace and unload at run time without failing requests.

Each name owns one :class:`~transferops.deploy.batching.DynamicBatcher`; replacing a model swaps
the slot's runner (one attribute assignment) so batches already running finish on the old model
and the next batch uses the new one. The old runner is released after a grace period.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transferops.deploy.batching import BatchSettings, DynamicBatcher
from transferops.deploy.metrics import ServerMetrics
from transferops.deploy.runtime import AdapterPool, Runner, check_safe_folder, model_version, open_runner
from transferops.errors import ArtifactError, ConfigError
from transferops.hardware import usable_cores

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Seconds a replaced model stays loaded for batches that picked it up just before the swap.
RETIRE_GRACE_S = 10.0


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise ConfigError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


@dataclass
class HubSettings:
    """What every model the hub loads shares: runtime threads, ONNX variant, review policy, the
    inference thread pool and its batching (``transferops serve`` flags of the same names)."""

    threads: int | None = field(default=None, metadata={"help": "intra-op threads for ONNX Runtime / PyTorch"})
    variant: str | None = field(default=None, metadata={"help": "ONNX variant: int8 (default) or fp32"})
    inference_workers: int | None = field(default=None, metadata={
        "help": "inference threads = batches of one model run at once; None: the cores divided by --threads "
                "(1 when --threads is not set: one batch then uses every core)"})
    review_threshold: float | None = None
    target_auto_accuracy: float | None = None
    batching: BatchSettings = field(default_factory=BatchSettings)

    def __post_init__(self) -> None:
        w = self.inference_workers
        if w is not None and (not isinstance(w, int) or isinstance(w, bool) or w <= 0):
            raise ConfigError(f"inference_workers: must be a positive number, got {w!r}")
        if self.review_threshold is not None and self.target_auto_accuracy is not None:
            raise ConfigError("review_threshold and target_auto_accuracy: set one, not both")
        if self.review_threshold is not None and not 0 <= self.review_threshold <= 1:
            raise ConfigError(f"review_threshold: {self.review_threshold!r} must be in [0, 1]")
        if self.target_auto_accuracy is not None and not 0 < self.target_auto_accuracy <= 1:
            raise ConfigError(f"target_auto_accuracy: {self.target_auto_accuracy!r} must be in (0, 1]")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"threads: must be positive, got {self.threads!r}")
        if self.variant not in (None, "int8", "fp32"):
            raise ConfigError(f"variant: {self.variant!r} is not one of 'int8', 'fp32'")

    @property
    def workers(self) -> int:
        """Inference threads: ``inference_workers``, or the cores divided by ``threads``. With 1 intra-op
        thread on 2 cores, two batches run at once (measured in ``benchmarks/serve_bench.py``: one
        batch at a time left a core idle while the event loop answered the previous batch)."""
        if self.inference_workers is not None:
            return self.inference_workers
        if not self.threads:
            return 1
        return max(1, usable_cores() // self.threads)


@dataclass
class ModelSlot:
    name: str
    runner: Runner
    batcher: DynamicBatcher
    kind: str = "model"  # model | adapter


def _batch_observer(m: ServerMetrics, name: str) -> Callable[[int, float], None]:
    size, seconds = m.batch_size.labels(name), m.inference.labels(name)

    def observe(n: int, dt: float) -> None:
        size.observe(n)
        seconds.observe(dt)

    return observe


class ModelHub:
    """Named models served by one process.

    >>> hub = ModelHub(HubSettings(threads=1), metrics=ServerMetrics())   # doctest: +SKIP
    >>> hub.load("news", "runs/news-onnx")          # doctest: +SKIP
    >>> hub.load("news", "runs/news-v2-onnx")       # doctest: +SKIP  (atomic swap)
    >>> hub.unload("news")                          # doctest: +SKIP
    """

    def __init__(self, settings: HubSettings, *, metrics: ServerMetrics,
                 executor: Executor | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        # the hub owns the inference threads unless given some (close() shuts its own down)
        self._own_executor = executor is None
        self.executor: Executor = executor or ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="transferops-infer")
        self._slots: dict[str, ModelSlot] = {}
        self._pools: dict[tuple[str, int, str, str], AdapterPool] = {}
        self._lock = threading.RLock()
        self._counter = itertools.count()

    # ------------------------------------------------------------------ queries
    def get(self, name: str) -> ModelSlot:
        """Raises ``KeyError`` for an unknown name."""
        return self._slots[name]

    def names(self) -> list[str]:
        return sorted(self._slots)

    def __contains__(self, name: object) -> bool:
        return name in self._slots

    def info(self) -> list[dict[str, Any]]:
        return [{**s.runner.info(), "kind": s.kind, "queue_depth": s.batcher.depth}
                for s in sorted(self._slots.values(), key=lambda s: s.name)]

    @property
    def adapter_pools(self) -> dict[tuple[str, int, str, str], list[str]]:
        return {k: p.adapters for k, p in self._pools.items()}

    # ------------------------------------------------------------------ changes
    def load(self, name: str, path: str | Path) -> dict[str, Any]:
        """Load (or atomically replace) model ``name`` from an export folder or artifact."""
        check_name(name)
        runner = open_runner(name, path, threads=self.settings.threads, variant=self.settings.variant)
        return self._install(name, runner, "model")

    def load_adapter(self, name: str, path: str | Path) -> dict[str, Any]:
        """Load a PEFT adapter artifact (LoRA, IA3, prompt tuning) as model ``name`` over a shared base model."""
        from transferops.artifacts.model import TransferOpsModel, read_manifest

        check_name(name)
        p = Path(path)
        check_safe_folder(p)
        manifest = read_manifest(p)
        if not manifest.is_adapter:
            raise ArtifactError(f"adapter {name!r}: {p} was trained with strategy "
                                f"{manifest.strategy_name!r}, not lora or another PEFT adapter method "
                                "(ia3, prompt_tuning); serve it with --model")
        key = AdapterPool.key_for(manifest)
        # torch module names cannot contain '.', and a reload needs a fresh id next to the old one
        adapter_id = f"{re.sub(r'[^A-Za-z0-9_]', '_', name)}_{next(self._counter)}"
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = AdapterPool(key, threads=self.settings.threads)
        pool.add(adapter_id, p, manifest)

        def release() -> None:
            with self._lock:
                if pool.remove(adapter_id) and self._pools.get(key) is pool:
                    del self._pools[key]

        runner = Runner(name=name, path=p, runtime="adapter", model=TransferOpsModel(p),
                        forward=pool.forward(adapter_id), tokenizer=pool.tokenizer, version=model_version(p),
                        on_close=release,
                        extra={"adapter_id": adapter_id})
        try:
            return self._install(name, runner, "adapter")
        except Exception:
            release()
            raise

    def _install(self, name: str, runner: Runner, kind: str) -> dict[str, Any]:
        warm = getattr(runner.model, "warmup_inputs", None)  # a non-text modality's own sample inputs
        runner.infer(warm() if callable(warm) else ["warm-up text"])  # first call allocates; not in a request
        runner.set_review(threshold=self.settings.review_threshold,
                          target_auto_accuracy=self.settings.target_auto_accuracy)
        old: Runner | None = None
        with self._lock:
            slot = self._slots.get(name)
            if slot is None:
                m = self.metrics
                slot = ModelSlot(name=name, runner=runner, batcher=None, kind=kind)  # type: ignore[arg-type]
                slot.batcher = DynamicBatcher(
                    slot, executor=self.executor, concurrency=self.settings.workers,
                    **asdict(self.settings.batching),
                    on_batch=_batch_observer(m, name), on_depth=m.queue_depth.labels(name).set)
                self._slots[name] = slot
            else:
                old, slot.runner, slot.kind = slot.runner, runner, kind
            self.metrics.models_loaded.set(len(self._slots))
        if old is not None:
            self._retire(old)
        log.info("model %s loaded from %s (%s, version %s)", name, runner.path, runner.runtime,
                 runner.version)
        return runner.info()

    def unload(self, name: str) -> None:
        """Stop serving ``name``; requests already queued still complete. ``KeyError`` if unknown."""
        with self._lock:
            slot = self._slots.pop(name)
            self.metrics.models_loaded.set(len(self._slots))
        slot.batcher.close()
        self._retire(slot.runner)

    def _retire(self, runner: Runner) -> None:
        if runner.on_close is None:
            return
        t = threading.Timer(RETIRE_GRACE_S, runner.close)
        t.daemon = True
        t.start()

    def close(self) -> None:
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for s in slots:
            s.batcher.close()
            s.runner.close()
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
