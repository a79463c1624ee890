"""The ledger: one SQLite file (WAL) that makes sends exactly-once and resumable.

Tables:

* ``issues``: each issue sent (or being sent), with its rendered content frozen at the
  first send (subject, preheader, HTML, text with placeholder tokens) and a content hash.
  A resumed or repeated send uses this content, never a fresh render.
* ``deliveries``: one row per (issue, recipient), unique on the case-folded address, so
  a subscriber listed twice is folded by the database while the list is streamed in.
  ``state`` is ``pending`` -> ``sent`` (only after the server's 250 to DATA), ``failed``
  (a 5xx: permanent), ``deferred`` (still failing after the retries of one run; the
  next run tries again) or ``suppressed`` (unsubscribed before it was sent).
* ``suppressions``: unsubscribed or bounced addresses, never mailed.
* ``bounces``: each bounce read by ``digest bounces`` (reader, issue, hard or soft, reason),
  once per bounce message: soft bounces are counted here, hard ones suppress at once.
* ``meta``: schema version and the development secret (see ``dev_secret``).

Every write commits at once: a delivery row is durable before the connection that sent
it takes the next recipient. One ``Ledger`` may be shared by threads (one connection,
guarded by a lock); other processes (``digest serve``) may read and write the same file.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import DeliveryError
from .render import RenderedEmail

SCHEMA_VERSION = 1

# Delivery states.
PENDING, SENT, FAILED, DEFERRED, SUPPRESSED = "pending", "sent", "failed", "deferred", "suppressed"
STATES = (PENDING, SENT, FAILED, DEFERRED, SUPPRESSED)
# Issue states: started (content frozen, recipients being queued or mailed) and sent (every
# queued recipient has an outcome).
ISSUE_SENDING, ISSUE_SENT = "sending", "sent"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS issues (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    number       INTEGER,
    subject      TEXT NOT NULL,
    preheader    TEXT NOT NULL,
    html         TEXT NOT NULL,
    text         TEXT NOT NULL,
    lang         TEXT NOT NULL,
    defaults     TEXT NOT NULL,          -- JSON object
    content_hash TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   REAL NOT NULL,          -- unix time
    send_at      TEXT,                   -- ISO 8601, the issue's scheduled send time
    queued_at    REAL,                   -- set once the whole list has been queued
    finished_at  REAL,
    invalid      INTEGER NOT NULL DEFAULT 0,
    duplicates   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    issue       INTEGER NOT NULL REFERENCES issues(seq),
    key         TEXT NOT NULL,           -- the address, case-folded
    email       TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    first_name  TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    message_id  TEXT,
    updated_at  REAL,
    UNIQUE (issue, key)
);
CREATE TABLE IF NOT EXISTS suppressions (
    key        TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bounces (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,            -- hash of the bounce message: read twice, counted once
    key        TEXT NOT NULL,            -- the reader's address, case-folded
    email      TEXT NOT NULL,
    issue      TEXT,                     -- the issue it bounced, when known
    kind       TEXT NOT NULL,            -- 'hard' or 'soft'
    reason     TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (source, key)
);
"""


def fold(email: str) -> str:
    """The key an address is folded to (duplicates and suppressions are case-insensitive)."""
    return email.strip().lower()


def content_hash(r: RenderedEmail) -> str:
    payload = json.dumps(
        [r.subject, r.preheader, r.html, r.text, r.lang, dict(sorted(r.defaults.items()))],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


@dataclass(frozen=True)
class IssueRecord:
    """An issue as frozen in the ledger."""

    id: str
    number: int | None
    subject: str
    preheader: str
    html: str  # with placeholder tokens, as rendered at the first send
    text: str
    lang: str
    defaults: dict[str, str]
    content_hash: str
    state: str  # "sending" or "sent"
    created_at: dt.datetime  # UTC: when the send started (content frozen)
    send_at: str | None
    queued: bool
    finished_at: dt.datetime | None
    invalid: int
    duplicates: int

    @property
    def finished(self) -> bool:
        return self.state == ISSUE_SENT

    def rendered(self) -> RenderedEmail:
        return RenderedEmail(
            issue_id=self.id,
            subject=self.subject,
            preheader=self.preheader,
            html=self.html,
            text=self.text,
            lang=self.lang,
            defaults=dict(self.defaults),
        )


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    email: str
    name: str
    first_name: str
    attempts: int
    suppressed: bool = False


class SendBusy(DeliveryError):
    """Another ``digest send`` holds the ledger's send lock."""


class Ledger:
    """The SQLite ledger. Use as a context manager; safe to share between threads."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.execute("PRAGMA foreign_keys = ON")
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
        except sqlite3.DatabaseError as exc:
            raise DeliveryError(
                f"{self.path}: cannot open the ledger ({exc}); check ledger.path in the config"
            ) from None

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock, self._db:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- suppression list ----------------------------------------------------------------

    def suppress(self, email: str, reason: str = "unsubscribe") -> None:
        """Add an address to the suppression list (idempotent: the first reason stays)."""
        self._write(
            "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
            (fold(email), email.strip(), reason, time.time()),
        )

    def unsuppress(self, email: str, reason: str = "unsubscribe") -> None:
        """Lift a suppression of the given reason only: "subscribe again" undoes the
        reader's own unsubscribe, never a suppression for another cause (a bounce)."""
        self._write("DELETE FROM suppressions WHERE key = ? AND reason = ?", (fold(email), reason))

    def is_suppressed(self, email: str) -> bool:
        return bool(self._read("SELECT 1 FROM suppressions WHERE key = ?", (fold(email),)))

    def suppressions(self) -> Iterator[tuple[str, str, str, float]]:
        """(key, email, reason, created_at) of every suppressed address, streamed."""
        with self._lock:
            cur = self._db.execute("SELECT key, email, reason, created_at FROM suppressions")
            rows = cur.fetchmany(1000)
        while rows:
            yield from rows
            with self._lock:
                rows = cur.fetchmany(1000)

    def copy_suppressions(self, rows: Iterable[tuple[str, str, str, float]]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)", rows)

    # -- bounces (see bounces.py) ----------------------------------------------------------

    def record_bounce(
        self, source: str, email: str, issue: str | None, kind: str, reason: str, at: float
    ) -> bool:
        """Record one bounce of one reader; False if that message was recorded before."""
        cur = self._write(
            "INSERT OR IGNORE INTO bounces (source, key, email, issue, kind, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, fold(email), email.strip(), issue, kind, reason, at),
        )
        return cur.rowcount == 1

    def soft_bounces(self, email: str, since: float) -> int:
        rows = self._read(
            "SELECT COUNT(*) FROM bounces WHERE key = ? AND kind = 'soft' AND created_at >= ?",
            (fold(email), since),
        )
        return int(rows[0][0])

    def bounce_counts(self, issue_id: str) -> dict[str, int]:
        """Bounces recorded for the issue, per kind ({} for a ledger from before bounces)."""
        try:
            rows = self._read(
                "SELECT kind, COUNT(*) FROM bounces WHERE issue = ? GROUP BY kind", (issue_id,)
            )
        except sqlite3.OperationalError:  # a read-only ledger made before the table
            return {}
        return {kind: n for kind, n in rows}

    def recipients(self, issue_id: str) -> Iterator[tuple[str, str]]:
        """(key, email) of every delivery of the issue, streamed."""
        with self._lock:
            cur = self._db.execute(
                "SELECT d.key, d.email FROM deliveries d JOIN issues i ON i.seq = d.issue "
                "WHERE i.id = ?",
                (issue_id,),
            )
            rows = cur.fetchmany(1000)
        while rows:
            yield from rows
            with self._lock:
                rows = cur.fetchmany(1000)

    def last_issue_sent_to(self, email: str) -> str | None:
        rows = self._read(
            "SELECT i.id FROM deliveries d JOIN issues i ON i.seq = d.issue "
            "WHERE d.key = ? AND d.state = 'sent' ORDER BY d.updated_at DESC LIMIT 1",
            (fold(email),),
        )
        return rows[0][0] if rows else None

    # -- issues --------------------------------------------------------------------------

    _ISSUE_COLS = (
        "id, number, subject, preheader, html, text, lang, defaults, content_hash, state, "
        "created_at, send_at, queued_at, finished_at, invalid, duplicates"
    )

    @staticmethod
    def _issue(row: tuple[Any, ...]) -> IssueRecord:
        (id_, number, subject, pre, html, text, lang, defaults, chash, state, created, send_at,
         queued, finished, invalid, dups) = row  # fmt: skip
        return IssueRecord(
            id=id_,
            number=number,
            subject=subject,
            preheader=pre,
            html=html,
            text=text,
            lang=lang,
            defaults=json.loads(defaults),
            content_hash=chash,
            state=state,
            created_at=_utc(created),  # type: ignore[arg-type]
            send_at=send_at,
            queued=queued is not None,
            finished_at=_utc(finished),
            invalid=invalid,
            duplicates=dups,
        )

    def issues(self) -> list[IssueRecord]:
        """Every issue sent or being sent, newest first."""
        rows = self._read(
            f"SELECT {self._ISSUE_COLS} FROM issues ORDER BY created_at DESC, seq DESC"
        )
        return [self._issue(r) for r in rows]

    def unfinished(self) -> list[str]:
        """Ids of issues started but not finished (paused, stopped, crashed), oldest first."""
        rows = self._read(
            "SELECT id FROM issues WHERE state = ? ORDER BY created_at, seq", (ISSUE_SENDING,)
        )
        return [r[0] for r in rows]

    def issue(self, issue_id: str) -> IssueRecord | None:
        rows = self._read(f"SELECT {self._ISSUE_COLS} FROM issues WHERE id = ?", (issue_id,))
        return self._issue(rows[0]) if rows else None

    def freeze(
        self, r: RenderedEmail, *, number: int | None = None, send_at: dt.datetime | None = None
    ) -> IssueRecord:
        """Record the issue's content as sent from now on. A no-op if already frozen."""
        self._write(
            "INSERT OR IGNORE INTO issues (id, number, subject, preheader, html, text, lang, "
            "defaults, content_hash, state, created_at, send_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.issue_id,
                number,
                r.subject,
                r.preheader,
                r.html,
                r.text,
                r.lang,
                json.dumps(dict(r.defaults), ensure_ascii=False),
                content_hash(r),
                ISSUE_SENDING,
                time.time(),
                send_at.isoformat() if send_at else None,
            ),
        )
        rec = self.issue(r.issue_id)
        assert rec is not None
        return rec

    def _seq(self, issue_id: str) -> int:
        rows = self._read("SELECT seq FROM issues WHERE id = ?", (issue_id,))
        if not rows:
            raise KeyError(issue_id)
        return int(rows[0][0])

    def mark_queued(self, issue_id: str, *, invalid: int, duplicates: int) -> None:
        self._write(
            "UPDATE issues SET queued_at = ?, invalid = ?, duplicates = ? WHERE id = ?",
            (time.time(), invalid, duplicates, issue_id),
        )

    def set_issue_state(self, issue_id: str, state: str) -> None:
        finished = time.time() if state == ISSUE_SENT else None
        self._write(
            "UPDATE issues SET state = ?, finished_at = ? WHERE id = ?",
            (state, finished, issue_id),
        )

    # -- deliveries ----------------------------------------------------------------------

    def enqueue(
        self, issue_id: str, rows: Iterable[tuple[str, str, str, str]], *, batch: int = 5000
    ) -> tuple[int, int]:
        """Queue (key, email, name, first_name) rows as pending deliveries, streamed.

        A key already queued for the issue is skipped (duplicates fold here, in the
        database, so the list never has to fit in memory). Commits every ``batch`` rows.
        Returns (inserted, skipped).
        """
        seq = self._seq(issue_id)
        inserted = skipped = 0
        chunk: list[tuple[int, str, str, str, str]] = []

        def flush() -> None:
            nonlocal inserted, skipped
            with self._lock, self._db:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO deliveries (issue, key, email, name, first_name) "
                    "VALUES (?, ?, ?, ?, ?)",
                    chunk,
                )
                added = self._db.total_changes - before
            inserted += added
            skipped += len(chunk) - added
            chunk.clear()

        for key, email, name, first in rows:
            chunk.append((seq, key, email, name, first))
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
        return inserted, skipped

    def is_queued(self, issue_id: str, email: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM deliveries d JOIN issues i ON i.seq = d.issue "
                "WHERE i.id = ? AND d.key = ?",
                (issue_id, fold(email)),
            )
        )

    def suppress_pending(self, issue_id: str) -> int:
        """Mark not-yet-sent deliveries of suppressed addresses ``suppressed``."""
        cur = self._write(
            "UPDATE deliveries SET state = 'suppressed', updated_at = ? "
            "WHERE issue = ? AND state IN ('pending', 'deferred') "
            "AND key IN (SELECT key FROM suppressions)",
            (time.time(), self._seq(issue_id)),
        )
        return cur.rowcount

    def to_send(self, issue_id: str, *, batch: int = 500) -> Iterator[DeliveryRow]:
        """Pending and deferred deliveries in queue order, fetched in batches.

        Rows are read lazily, so an unsubscribe that arrives during the send is seen
        (``suppressed`` is true for those). Rows that change state between batches are
        simply not returned again.
        """
        seq = self._seq(issue_id)
        first = self._read("SELECT MIN(id) FROM deliveries WHERE issue = ?", (seq,))[0][0]
        last = (first or 1) - 1
        while True:
            # "+d.issue" keeps SQLite from using the (issue, key) index here: walking the
            # primary key from the last row seen is linear over the whole send, while the
            # index would sort every remaining row again for each batch.
            rows = self._read(
                "SELECT d.id, d.email, d.name, d.first_name, d.attempts, s.key IS NOT NULL "
                "FROM deliveries d LEFT JOIN suppressions s ON s.key = d.key "
                "WHERE +d.issue = ? AND d.state IN ('pending', 'deferred') AND d.id > ? "
                "ORDER BY d.id LIMIT ?",
                (seq, last, batch),
            )
            if not rows:
                return
            for r in rows:
                yield DeliveryRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
            last = rows[-1][0]

    def mark(
        self,
        delivery_id: int,
        state: str,
        *,
        error: str | None = None,
        message_id: str | None = None,
        attempted: bool = True,
    ) -> None:
        """Record an outcome (commits). ``attempted``: count it as an attempt."""
        self._write(
            "UPDATE deliveries SET state = ?, attempts = attempts + ?, last_error = ?, "
            "message_id = COALESCE(?, message_id), updated_at = ? WHERE id = ?",
            (state, 1 if attempted else 0, error, message_id, time.time(), delivery_id),
        )

    def requeue(self, delivery_ids: Sequence[int]) -> int:
        """Put failed deliveries back in the queue (``pending``), keeping their last error:
        refusals that were the server's fault. Returns how many were failed."""
        n = 0
        with self._lock, self._db:
            for i in range(0, len(delivery_ids), 500):
                chunk = list(delivery_ids[i : i + 500])
                cur = self._db.execute(
                    "UPDATE deliveries SET state = 'pending', updated_at = ? "
                    f"WHERE state = 'failed' AND id IN ({', '.join('?' * len(chunk))})",
                    (time.time(), *chunk),
                )
                n += cur.rowcount
        return n

    def requeue_failed(self, issue_id: str) -> int:
        """Put every failed delivery of the issue back in the queue (``--retry-failed``)."""
        cur = self._write(
            "UPDATE deliveries SET state = 'pending', updated_at = ? "
            "WHERE issue = ? AND state = 'failed'",
            (time.time(), self._seq(issue_id)),
        )
        return cur.rowcount

    def counts(self, issue_id: str) -> dict[str, int]:
        """Deliveries of the issue per state (every state present, 0 if none)."""
        rows = self._read(
            "SELECT d.state, COUNT(*) FROM deliveries d JOIN issues i ON i.seq = d.issue "
            "WHERE i.id = ? GROUP BY d.state",
            (issue_id,),
        )
        out = dict.fromkeys(STATES, 0)
        out.update({state: n for state, n in rows})
        return out

    def failures(self, issue_id: str, limit: int = 50) -> list[tuple[str, str, str, int]]:
        """(email, state, last error, attempts) of failed and deferred deliveries."""
        return [
            (e, s, err or "", a)
            for e, s, err, a in self._read(
                "SELECT d.email, d.state, d.last_error, d.attempts FROM deliveries d "
                "JOIN issues i ON i.seq = d.issue WHERE i.id = ? "
                "AND d.state IN ('failed', 'deferred') ORDER BY d.id LIMIT ?",
                (issue_id, limit),
            )
        ]

    def failure_reasons(self, issue_id: str, limit: int = 20) -> list[tuple[str, int]]:
        """The most common errors of failed and deferred deliveries, with counts."""
        return [
            (err or "", n)
            for err, n in self._read(
                "SELECT d.last_error, COUNT(*) AS n FROM deliveries d "
                "JOIN issues i ON i.seq = d.issue WHERE i.id = ? "
                "AND d.state IN ('failed', 'deferred') GROUP BY d.last_error "
                "ORDER BY n DESC LIMIT ?",
                (issue_id, limit),
            )
        ]

    def sent_since(self, since: float) -> list[float]:
        """Times of every message sent (any issue) after ``since``: for hourly rate limits."""
        return [
            t
            for (t,) in self._read(
                "SELECT updated_at FROM deliveries WHERE state = 'sent' AND updated_at > ? "
                "ORDER BY updated_at",
                (since,),
            )
        ]

    # -- secrets and locks -----------------------------------------------------------------

    def dev_secret(self, *, create: bool = True) -> str | None:
        """A random secret stored in the ledger, for outbox and dry-run sends only.

        Real (SMTP) sends require the secret from the environment; see
        ``message.unsubscribe_secret``.
        """
        rows = self._read("SELECT value FROM meta WHERE key = 'dev_secret'")
        if rows or not create or self.readonly:
            return rows[0][0] if rows else None
        self._write(
            "INSERT OR IGNORE INTO meta VALUES ('dev_secret', ?)", (secrets.token_urlsafe(32),)
        )
        return self.dev_secret(create=False)

    def lock(self, issue_id: str) -> SendLock:
        return SendLock(self.path.with_name(self.path.name + ".lock"), issue_id)


class SendLock:
    """An exclusive, OS-level lock on ``<ledger>.lock``: one send per ledger at a time.

    The operating system releases it when the process ends, even by SIGKILL, so a crash
    never leaves a stale lock. A second send gets ``SendBusy`` naming the running one.
    """

    def __init__(self, path: Path, issue_id: str) -> None:
        self.path = path
        self.issue_id = issue_id
        self._fd: int | None = None

    def __enter__(self) -> SendLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _try_lock(fd)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise SendBusy(
                f"another 'digest send' is running on this ledger ({holder}); "
                f"not sending {self.issue_id} twice at once. Wait for it to finish "
                "(its summary says what was sent) or stop it, then run this again."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, issue {self.issue_id}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


if sys.platform == "win32":  # pragma: no cover - Windows (and mypy knows it)
    import msvcrt

    def _try_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
