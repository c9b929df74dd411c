"""Prediction listeners: callables that receive the records of each answered request, run on one
background thread so a slow or failing listener never slows or fails a response."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferops.monitor.records import PredictionRecord

log = logging.getLogger("transferops.deploy.server")


class ListenerDispatcher:
    """Runs prediction listeners on one background thread; a bounded queue drops (and counts) records
    rather than slowing requests when a listener falls behind."""

    def __init__(self, listeners: list[Callable[[list[PredictionRecord]], None]],
                 on_error: Callable[[str], None], maxsize: int = 1000) -> None:
        self.listeners = listeners
        self.on_error = on_error
        self._q: queue.Queue[list[PredictionRecord] | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._failed: set[int] = set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="transferops-listeners", daemon=True)
            self._thread.start()

    def submit(self, records: list[PredictionRecord]) -> None:
        try:
            self._q.put_nowait(records)
        except queue.Full:
            self.on_error("dropped")

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            for fn in list(self.listeners):
                try:
                    fn(item)
                except Exception:
                    # a listener must never break serving: full traceback once, then only the counter
                    if id(fn) not in self._failed:
                        self._failed.add(id(fn))
                        log.exception("prediction listener %r failed (further failures are only counted "
                                      "in transferops_listener_errors_total)", fn)
                    self.on_error("error")

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._q.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None
