"""Dynamic batching: texts from many requests are coalesced into one model call.

With ``concurrency`` > 1, up to that many batches run at once (the executor needs as many threads);
the next batch forms while the last computes. A batch closes at ``max_batch_size`` texts or
``max_wait_ms`` after its first text, whichever comes first (with ``adaptive_wait`` the wait is
skipped while traffic is one request at a time, so a lone client never pays it; texts arriving during
a model call always form the next batch);
requests larger than ``max_batch_size`` are split into chunks so no batch exceeds it.
Inference runs in a thread pool (never on the event loop). The queue is bounded in texts: when a
request does not fit, :class:`Overloaded` is raised at once (the server answers 503 + Retry-After)
instead of growing memory without limit.

Isolation: when a batch fails (one request's text crashed the tokenizer, say), each of its requests
is run again on its own, so only the request that fails alone gets the error; the others get their
results. Deadlines: a request whose deadline passed while it waited is dropped from the queue with
:class:`DeadlineExceeded` (never computed); a request whose caller cancelled (the client
disconnected) is dropped the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from transferops.deploy.runtime import InferResult, Runner
from transferops.errors import ConfigError

#: A batch is shared between free inference threads only when each share holds this many characters.
#: 0 (was 2,048, ~500 tokens; 2026-12-02): since the fast path halved the event loop's cost per request,
#: short texts gain from the second core too — serve_bench short texts at 32 clients, 3 interleaved rounds:
#: 681.5 req/s shared vs 466.1 in one batch (benchmarks/results/serve_split_c8_s24.md; docs/deploy.md).
SPLIT_MIN_CHARS = 0


@dataclass
class BatchSettings:
    """How one named model's batcher coalesces requests (``transferops serve`` flags of the same
    names); the keyword arguments of :class:`DynamicBatcher`, validated here once."""

    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    queue_size: int = 4096
    adaptive_wait: bool = True
    #: share a batch between free inference threads when each share holds at least this many characters
    #: (0: always share when threads are free)
    split_min_chars: int = SPLIT_MIN_CHARS

    def __post_init__(self) -> None:
        if isinstance(self.split_min_chars, bool) or not isinstance(self.split_min_chars, int) \
                or self.split_min_chars < 0:
            raise ConfigError(f"split_min_chars: must be an integer >= 0, got {self.split_min_chars!r}")
        for name in ("max_batch_size", "queue_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name}: must be a positive number, got {v!r}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms: must be >= 0, got {self.max_wait_ms!r}")


class Overloaded(Exception):
    """The queue cannot take the request now; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"queue full; retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class BatcherClosed(Exception):
    """The model behind this batcher was unloaded."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its batch started: it was not computed."""


class HasRunner(Protocol):
    runner: Runner


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[tuple[Runner, InferResult]]
    deadline: float | None = None  # loop.time() after which the job is dropped, not computed


class DynamicBatcher:
    """Coalesces ``submit`` calls for one named model into batches run by ``slot.runner``.

    The runner is read at the start of every batch, so swapping ``slot.runner`` replaces the model
    without failing requests already in a batch (they finish on the old one).
    """

    def __init__(self, slot: HasRunner, *, executor: Executor, max_batch_size: int = 32,
                 max_wait_ms: float = 2.0, queue_size: int = 2048, adaptive_wait: bool = True,
                 concurrency: int = 1, split_min_chars: int = SPLIT_MIN_CHARS,
                 on_batch: Callable[[int, float], None] | None = None,
                 on_depth: Callable[[int], None] | None = None,
                 on_drop: Callable[[str], None] | None = None) -> None:
        self.slot = slot
        self.executor = executor
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency: must be an integer >= 1, got {concurrency!r}")
        self.concurrency = concurrency  # batches in flight at once (the executor's threads run them)
        self._inflight: set[asyncio.Task[None]] = set()
        self._busy = 0  # batches computing now
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.adaptive_wait = adaptive_wait
        self.split_min_chars = split_min_chars
        self._last_jobs = 0  # requests in the previous batch (adaptive wait)
        self.queue_size = queue_size
        self.on_batch = on_batch
        self.on_depth = on_depth
        self.on_drop = on_drop  # called with "deadline" / "cancelled" for each job dropped unrun
        self.dropped = {"deadline": 0, "cancelled": 0}
        self.isolated_failures = 0  # requests that failed on their own after their batch failed
        self._jobs: deque[_Job] = deque()
        self._queued = 0  # texts waiting (not yet in a running batch)
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ema_batch_s = 0.05  # running estimate of one batch's time, for Retry-After

    @property
    def depth(self) -> int:
        return self._queued

    def _set_depth(self, delta: int) -> None:
        self._queued += delta
        if self.on_depth is not None:
            self.on_depth(self._queued)

    async def submit(self, texts: list[str], *, timeout_s: float | None = None
                     ) -> list[tuple[Runner, InferResult]]:
        """Queue ``texts`` (split into chunks of at most ``max_batch_size``); await all results.

        With ``timeout_s``, chunks still queued that long after submission are dropped and
        :class:`DeadlineExceeded` is raised. Cancelling the caller drops its queued chunks."""
        if self._closed:
            raise BatcherClosed("model unloaded")
        n = len(texts)
        if self._queued + n > self.queue_size:
            batches_ahead = (self._queued + n) / max(self.max_batch_size, 1)
            raise Overloaded(retry_after=max(1.0, batches_ahead * self._ema_batch_s))
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._worker())
        deadline = None if timeout_s is None else loop.time() + timeout_s
        futures = []
        for s in range(0, n, self.max_batch_size):
            fut: asyncio.Future[tuple[Runner, InferResult]] = loop.create_future()
            self._jobs.append(_Job(texts[s:s + self.max_batch_size], fut, deadline))
            futures.append(fut)
        self._set_depth(n)
        assert self._wake is not None
        self._wake.set()
        try:
            return list(await asyncio.gather(*futures))
        except BaseException:
            # one chunk failed or the caller went away: the other chunks need not be computed
            for f in futures:
                if not f.done():
                    f.cancel()
            raise

    def close(self) -> None:
        """Stop taking requests; queued ones still finish. Safe to call from any thread."""
        self._closed = True
        if self._loop is not None and self._wake is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._wake.set()
            elif not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._wake.set)

    def _drop(self, job: _Job, why: str) -> None:
        self._set_depth(-len(job.texts))
        self.dropped[why] += 1
        if self.on_drop is not None:
            self.on_drop(why)

    def _queued_size(self) -> int:
        """Characters queued (a non-text input counts as heavy): decides whether a batch is worth sharing."""
        heavy = max(self.split_min_chars, 1)
        return sum(len(t) if isinstance(t, str) else heavy for j in self._jobs for t in j.texts)

    def _take_batch(self, now: float, limit: int | None = None) -> list[_Job]:
        cap = self.max_batch_size if limit is None else max(1, min(limit, self.max_batch_size))
        batch: list[_Job] = []
        size = 0
        while self._jobs and (not batch or size + len(self._jobs[0].texts) <= cap):
            job = self._jobs.popleft()
            if job.future.done():  # the client went away (its request was cancelled): drop its texts
                self._drop(job, "cancelled")
                continue
            if job.deadline is not None and now > job.deadline:
                job.future.set_exception(DeadlineExceeded("deadline passed while queued; not computed"))
                self._drop(job, "deadline")
                continue
            batch.append(job)
            size += len(job.texts)
        return batch

    async def _worker(self) -> None:
        assert self._wake is not None and self._loop is not None
        wake, loop = self._wake, self._loop
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            if not self._jobs:
                if self._closed:
                    return
                wake.clear()
                await wake.wait()
                continue
            # A free slot first: while every slot computes, arriving texts queue up and form the next
            # batch (with concurrency > 1 the next batch starts while the event loop answers the last).
            await slots.acquire()
            concurrent = len(self._jobs) > 1 or self._last_jobs > 1 or not self.adaptive_wait
            if self._queued < self.max_batch_size and self.max_wait_s > 0 and concurrent:
                deadline = loop.time() + self.max_wait_s
                while self._queued < self.max_batch_size and not self._closed:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), remaining)
                    except TimeoutError:
                        break
            # Several free slots: share the queue between them (32 texts as 2 batches of 16 on 2 cores, not one
            # of 32 beside an idle core: +73% req/s for long texts, +46% for short ones in serve_bench), unless
            # split_min_chars asks for heavier shares.
            free = self.concurrency - self._busy
            limit = None
            if free > 1 and self._queued > 1 and self._queued_size() >= free * self.split_min_chars:
                limit = -(-self._queued // free)
            batch = self._take_batch(loop.time(), limit)
            if not batch:
                slots.release()
                continue
            self._last_jobs = len(batch)
            self._busy += 1
            task = loop.create_task(self._run_batch(batch, slots))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _run_batch(self, batch: list[_Job], slots: asyncio.Semaphore) -> None:
        """One batch on the executor; every job gets its slice (or, when the batch fails, its own run)."""
        assert self._loop is not None
        try:
            texts = [t for job in batch for t in job.texts]
            self._set_depth(-len(texts))
            runner = self.slot.runner
            t0 = time.perf_counter()
            try:
                result = await self._loop.run_in_executor(self.executor, runner.infer, texts)
            except Exception as exc:
                if len(batch) == 1:
                    self.isolated_failures += 1
                    if not batch[0].future.done():
                        batch[0].future.set_exception(exc)
                else:
                    await self._run_individually(runner, batch)
                return
            dt = time.perf_counter() - t0
            self._ema_batch_s = 0.8 * self._ema_batch_s + 0.2 * dt
            if self.on_batch is not None:
                self.on_batch(len(texts), dt)
            off = 0
            for job in batch:
                k = len(job.texts)
                if not job.future.done():
                    job.future.set_result((runner, result.slice(off, off + k)))
                off += k
        finally:
            self._busy -= 1
            slots.release()

    async def _run_individually(self, runner: Runner, batch: list[_Job]) -> None:
        """A batch failed: run each request on its own so only the one that fails alone fails."""
        assert self._loop is not None
        for job in batch:
            if job.future.done():
                continue
            try:
                res = await self._loop.run_in_executor(self.executor, runner.infer, job.texts)
            except Exception as exc:
                self.isolated_failures += 1
                if not job.future.done():
                    job.future.set_exception(exc)
                continue
            if not job.future.done():
                job.future.set_result((runner, res))
