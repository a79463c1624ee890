"""Compose signed messages ahead of the sending threads, in threads of their own.

A signed message costs a private-key operation (RSA-2048: ~0.3 ms of OpenSSL, which
lets go of the GIL) on top of the ~35 us of splicing. Composed inside a sending thread,
that time (and the wait to get the GIL back afterwards) is added to every round trip of
its connection, and the send slows down by half. Composed here, a bounded number of
messages ahead (by one thread with RSA, two with Ed25519: ``composing_threads``), it
overlaps with the network waits and uses the second core, while the sending threads
only send.

Each composing thread takes the jobs a batch at a time: one hand-over through the
queue (a lock, a wake-up) per batch, not per message. Signing in child processes
instead, a batch of digests per round trip, was tried and measured no better on 2
cores; numbers in NOTES.md (DKIM).

Nothing about exactly-once changes: the ledger rows are read by these threads (one batch
at a time, in queue order) instead of by the engine, each job is handed out once, and a
job composed ahead but never sent (the send was stopped or paused) stays ``pending`` in
the ledger. A retry of a job is composed again by the sending thread (a fresh Date, the
same Message-ID).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .delivery import Job
from .message import Composed

_DONE = object()
BATCH = 8  # jobs a composing thread takes at a time


def composing_threads(algorithm: str) -> int:
    """One composing thread for RSA: two sign on both cores at once and take the second
    one from the SMTP server and the sending threads (on 2 cores one thread was faster
    in 7 of 8 interleaved pairs, NOTES.md, DKIM). Two for Ed25519, whose signature is
    cheap: there a thread mostly waits to get the GIL back, and the other's runs."""
    return 1 if algorithm == "rsa-sha256" else 2


class Ahead:
    """``jobs()`` and ``compose(job)`` for ``delivery.Engine``, composing ``depth`` ahead
    in ``threads`` threads (``composing_threads``)."""

    def __init__(
        self,
        source: Iterator[Job],
        compose: Callable[[Job], Composed],
        *,
        depth: int = 64,
        threads: int = 2,
        batch: int | None = None,
    ) -> None:
        self._source = source
        self._compose = compose
        self._batch = max(1, batch or BATCH)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth // self._batch))
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

    def _take(self) -> list[Job]:
        with self._source_lock:  # the ledger's rows are read by one thread at a time
            return list(itertools.islice(self._source, self._batch))

    def _one(self, job: Job) -> Composed | BaseException:
        try:
            return self._compose(job)
        except Exception as exc:  # the sending thread reports it for this job
            return exc

    def _run(self) -> None:
        try:
            while jobs := self._take():
                results = [self._one(job) for job in jobs]
                with self._lock:
                    for job, result in zip(jobs, results, strict=True):
                        self._ready[id(job)] = result
                if not self._put(jobs):
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
            yield from item

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
