"""Compose messages ahead of the sending threads, in a thread of their own.

A signed message costs a private-key operation (RSA-2048: ~0.25 ms of OpenSSL, which
lets go of the GIL) on top of the ~35 us of splicing. Composed inside a sending thread,
that time (and the wait to get the GIL back afterwards) is added to every round trip of
its connection, and the send slows down by half. Composed here, a bounded number of
messages ahead by two threads, it overlaps with the network waits and uses the second
core, while the sending threads only send.

Nothing about exactly-once changes: the ledger rows are read by these threads (one at a
time, in queue order) instead of by the engine, each job is handed out once, and a job
composed ahead but never sent (the send was stopped or paused) stays ``pending`` in the
ledger. A retry of a job is composed again by the sending thread (a fresh Date, the same
Message-ID).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .delivery import Job
from .message import Composed

_DONE = object()


class Ahead:
    """``jobs()`` and ``compose(job)`` for ``delivery.Engine``, composing ``depth`` ahead
    in ``threads`` threads: while one waits to get the GIL back after a private-key
    operation, another's runs (one thread alone was the bottleneck of RSA sends)."""

    def __init__(
        self,
        source: Iterator[Job],
        compose: Callable[[Job], Composed],
        depth: int = 64,
        threads: int = 2,
    ) -> None:
        self._source = source
        self._compose = compose
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._ready: dict[int, Composed | BaseException] = {}
        self._lock = threading.Lock()
        self._source_lock = threading.Lock()
        self._closed = threading.Event()
        self._running = threads
        self._threads = [
            threading.Thread(target=self._run, name=f"digest-compose-{i}", daemon=True)
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _next(self) -> Job | None:
        with self._source_lock:  # the ledger's rows are read by one thread at a time
            return next(self._source, None)

    def _run(self) -> None:
        try:
            while (job := self._next()) is not None:
                try:
                    result: Composed | BaseException = self._compose(job)
                except Exception as exc:  # the sending thread reports it for this job
                    result = exc
                with self._lock:
                    self._ready[id(job)] = result
                if not self._put(job):
                    return
        except BaseException as exc:  # reading the queue failed: the engine reports it
            self._put(exc)
        finally:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self._put(_DONE)

    def jobs(self) -> Iterator[Job]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def compose(self, job: Job) -> Composed:
        with self._lock:
            result = self._ready.pop(id(job), None)
        if result is None:  # a retry: compose it now
            return self._compose(job)
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        self._closed.set()
        for t in self._threads:
            t.join(timeout=5)
