"""Batched, bounded prediction logger with two modes.

**Durable** (the server's default, ``--log-mode durable``): ``commit(records)`` queues the records
and returns a :class:`concurrent.futures.Future` that completes once they are committed; the
server awaits it before it answers, so a ``prediction_id`` a client holds is in the database (kill
-9 of the server loses no acknowledged prediction). Group commit keeps throughput: the writer
thread wakes as soon as records arrive and writes everything waiting in one transaction, so
requests arriving while a transaction runs share the next one. A failed write fails the waiting
requests' futures (the server answers 503) rather than acknowledging what is not stored. At most
``max_buffer`` records wait; more are refused at once.

**Async** (``--log-mode async``): ``submit(records)`` only appends to an in-memory deque under a
lock (microseconds; never touches the database), so it can be called from the request path. The
background thread flushes the buffer every ``flush_interval`` seconds in one transaction. If the
database is slow, locked or down the buffer keeps what it can up to ``max_buffer`` records and
drops the overflow, counting it and logging a line (rate-limited); serving is never blocked and
never fails because of the log. Bound: a ``kill -9`` loses at most the records submitted since the
last successful flush, i.e. about ``flush_interval`` seconds of traffic (default 0.5 s), plus the
batch being written.

>>> logger = PredictionLogger(Store("runs/monitor.db")).start()   # doctest: +SKIP
>>> logger.commit([record]).result(timeout=5)                     # doctest: +SKIP  (durable)
>>> logger.submit([record]); logger.close()                       # doctest: +SKIP  (async)
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from transferops.errors import ConfigError
from transferops.monitor.records import RecordLike

log = logging.getLogger("transferops.monitor.logger")


class PredictionLogger:
    """Background batch writer of prediction records into a :class:`~transferops.monitor.store.Store`.

    Records are :class:`~transferops.monitor.records.PredictionRecord` or the server's dicts; the
    logger never looks inside them (the store converts them with one function, ``to_row``)."""

    def __init__(self, store: Any, *, flush_interval: float = 0.5, max_buffer: int = 100_000,
                 batch_size: int = 5_000, log_every_s: float = 10.0) -> None:
        if not 0 < flush_interval <= 1.0:
            raise ConfigError(f"flush_interval: {flush_interval!r} must be in (0, 1] seconds")
        if max_buffer < 1 or batch_size < 1:
            raise ConfigError("max_buffer and batch_size: must be >= 1")
        self.store = store
        self.flush_interval = float(flush_interval)
        self.max_buffer = int(max_buffer)
        self.batch_size = int(batch_size)
        self.log_every_s = float(log_every_s)
        self._buf: collections.deque[RecordLike] = collections.deque()
        # durable mode: (records, future) groups waiting for the next group commit
        self._pending: collections.deque[tuple[list[RecordLike], concurrent.futures.Future[int]]] = \
            collections.deque()
        self._pending_n = 0
        self.commits = 0  # durable transactions (each may carry many requests' records)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.flushes = 0
        self.max_seen_buffer = 0
        self.last_error: str | None = None
        self.last_flush_ts: float | None = None
        self._last_log = 0.0

    # ------------------------------------------------------------------ request path
    def submit(self, records: Sequence[RecordLike]) -> None:
        """Queue records for writing; drops (and counts) what does not fit. Never blocks on I/O."""
        if not records:
            return
        dropped = 0
        with self._lock:
            room = self.max_buffer - len(self._buf)
            if room >= len(records):
                self._buf.extend(records)
            else:
                keep = max(room, 0)
                self._buf.extend(records[:keep])
                dropped = len(records) - keep
                self.dropped += dropped
            self.submitted += len(records)
            self.max_seen_buffer = max(self.max_seen_buffer, len(self._buf))
        if dropped:
            self._log_drop()

    __call__ = submit

    def commit(self, records: Sequence[RecordLike]) -> concurrent.futures.Future[int]:
        """Durable mode: queue ``records`` for the next group commit; the future completes (with the
        number of rows) once they are committed, or fails with the write's error."""
        fut: concurrent.futures.Future[int] = concurrent.futures.Future()
        rows = list(records)
        if not rows:
            fut.set_result(0)
            return fut
        with self._lock:
            if self._pending_n + len(rows) > self.max_buffer:
                self.dropped += len(rows)
                fut.set_exception(OverflowError(f"prediction log backlog full ({self.max_buffer} records)"))
                return fut
            self._pending.append((rows, fut))
            self._pending_n += len(rows)
            self.submitted += len(rows)
            self.max_seen_buffer = max(self.max_seen_buffer, self._pending_n + len(self._buf))
        self._wake.set()
        return fut

    def _commit_pending(self) -> int:
        """Write the waiting groups, up to ``batch_size`` records per transaction."""
        written = 0
        while True:
            with self._lock:
                if not self._pending:
                    break
                groups: list[tuple[list[RecordLike], concurrent.futures.Future[int]]] = []
                n = 0
                while self._pending and (not groups or n + len(self._pending[0][0]) <= self.batch_size):
                    g = self._pending.popleft()
                    groups.append(g)
                    n += len(g[0])
                self._pending_n -= n
            written += self._write_groups(groups)
        if written:
            self.last_flush_ts = time.time()
        return written

    def _write_groups(self, groups: list[tuple[list[RecordLike], concurrent.futures.Future[int]]]) -> int:
        rows = [r for g in groups for r in g[0]]
        try:
            self.store.insert_predictions(rows)
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            if _is_duplicate(exc) and len(groups) > 1:  # one group's id clash must not fail the others
                return sum(self._write_groups([g]) for g in groups)
            self.dropped += len(rows)
            for _, fut in groups:
                if not fut.done():
                    fut.set_exception(exc)
            now = time.monotonic()
            if now - self._last_log >= self.log_every_s:
                self._last_log = now
                log.warning("prediction log: commit failed (%s); %d requests answered 503", self.last_error,
                            len(groups))
            return 0
        self.written += len(rows)
        self.commits += 1
        self.flushes += 1
        for g_rows, fut in groups:
            if not fut.done():
                fut.set_result(len(g_rows))
        return len(rows)

    def _log_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            log.warning("prediction log buffer full (%d records); dropped %d so far; last error: %s",
                        self.max_buffer, self.dropped, self.last_error)

    @property
    def buffered(self) -> int:
        return len(self._buf) + self._pending_n

    def stats(self) -> dict[str, Any]:
        return {"submitted": self.submitted, "written": self.written, "dropped": self.dropped,
                "errors": self.errors, "buffered": self.buffered, "max_buffer": self.max_buffer,
                "max_seen_buffer": self.max_seen_buffer, "flushes": self.flushes, "commits": self.commits,
                "flush_interval_s": self.flush_interval, "last_error": self.last_error}

    # ------------------------------------------------------------------ background
    def start(self) -> PredictionLogger:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="transferops-prediction-logger", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._commit_pending()
            self.flush()
        self._commit_pending()
        self.flush()

    def flush(self) -> int:
        """Write everything buffered now (in batches); on failure keep the records for the next try."""
        written = 0
        while True:
            with self._lock:
                if not self._buf:
                    break
                n = min(self.batch_size, len(self._buf))
                batch = [self._buf.popleft() for _ in range(n)]
            try:
                self.store.insert_predictions(batch)
            except Exception as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                self._requeue(batch, exc)
                break
            written += len(batch)
            self.written += len(batch)
            self.flushes += 1
        if written:
            self.last_flush_ts = time.time()
        return written

    def _requeue(self, batch: list[RecordLike], exc: Exception) -> None:
        # Put the failed batch back in front, keeping the bound: the oldest overflow is dropped.
        with self._lock:
            room = self.max_buffer - len(self._buf)
            keep = batch[len(batch) - room:] if room < len(batch) else batch
            lost = len(batch) - len(keep)
            self._buf.extendleft(reversed(keep))
            self.dropped += max(lost, 0)
        if _is_duplicate(exc):
            # A batch with an id already stored would fail forever: fall back to row by row.
            with self._lock:
                rows = [self._buf.popleft() for _ in range(len(keep))]
            self._insert_rows_individually(rows)
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            log.warning("prediction log: write failed (%s); %d records buffered, %d dropped so far",
                        self.last_error, self.buffered, self.dropped)

    def _insert_rows_individually(self, rows: list[RecordLike]) -> None:
        for r in rows:
            try:
                self.store.insert_predictions([r])
                self.written += 1
            except Exception:
                self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread after a final flush (called on server shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._commit_pending()
        self.flush()


def _is_duplicate(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "unique" in msg or "duplicate key" in msg


__all__ = ["PredictionLogger"]
