"""The ledger: one SQLite file (WAL) that makes sends exactly-once and resumable.

Tables:

* ``issues``: each issue sent (or being sent), with its rendered content frozen at the
  first send (subject, preheader, HTML, text with placeholder tokens) and a content hash.
  A resumed or repeated send uses this content, never a fresh render.
* ``deliveries``: one row per (issue, recipient), unique on the case-folded address, so
  a subscriber listed twice is folded by the database while the list is streamed in,
  and a reader gets one edition of an issue at most (``edition``: its language).
* ``editions``: an issue with one edition per language (``newsletter.languages``): each
  edition's frozen content (none for an edition empty that week).
  ``state`` is ``pending`` -> ``sent`` (only after the server's 250 to DATA), ``failed``
  (a 5xx: permanent), ``deferred`` (still failing after the retries of one run; the
  next run tries again) or ``suppressed`` (unsubscribed before it was sent).
* ``suppressions``: unsubscribed addresses, never mailed.
* ``readers``: the opaque id of each address mail went to (``tokens.reader_id``) ->
  the address, so ``digest serve`` can resolve an unsubscribe token without the token
  carrying the address.
* ``suppressions``: unsubscribed or bounced addresses, never mailed.
* ``bounces``: each bounce read by ``digest bounces`` (reader, issue, hard or soft, reason),
  once per bounce message: soft bounces are counted here, hard ones suppress at once.
* ``meta``: schema version and the development secret (see ``dev_secret``).
* ``signups`` (issue 16): readers who joined through ``digest serve``'s form, an import
  or ``digest subscribers add``, with their consent record: when they signed up, from
  where (``source``: form, import:<tool>, cli), when they confirmed and with which
  confirmation. ``state`` is ``pending`` (a confirmation mail is out) or ``active``
  (mailed with every issue, unless suppressed). The CSV list stays as it was.
* ``export_drafts``: the id of the draft ``digest export --push`` created for an issue at
  a mail service, so pushing again updates it instead of making another.

The file holds every address and the development secret: it is created readable by its
owner only (0600; SQLite gives its -wal and -shm files the same mode), as is the lock
file. ``synchronous = NORMAL`` and an fsync of the WAL every 100 recorded deliveries: a
process crash loses no commit, a power loss at most the last ~100 (``SYNCHRONOUS``). A damaged
file is a ``LedgerError`` naming it and what to do (``digest ledger check``, a backup),
never a traceback.

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import DeliveryError, LedgerError
from .files import create_private
from .model import RenderedEmail

SCHEMA_VERSION = 1

# Delivery states.
PENDING, SENT, FAILED, DEFERRED, SUPPRESSED = "pending", "sent", "failed", "deferred", "suppressed"
STATES = (PENDING, SENT, FAILED, DEFERRED, SUPPRESSED)
# Signup states (issue 16).
SIGNUP_PENDING, SIGNUP_ACTIVE = "pending", "active"
# Suppressions a reader's own confirmed signup lifts; any other (a bounce, a complaint)
# stays: re-subscribing does not make a dead mailbox work.
LIFTED_BY_SIGNUP = ("unsubscribe", "removed")
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
-- Issue 14: the archive index lists issues without reading their HTML and text. The
-- columns it needs sit after those in each row, so without this covering index SQLite
-- walks every issue's overflow pages to reach them (~70 us an issue per request).
CREATE INDEX IF NOT EXISTS issues_listed
    ON issues (created_at, seq, id, subject, preheader, send_at);
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
    edition     TEXT NOT NULL DEFAULT '',  -- its language, of an issue with editions
    UNIQUE (issue, key)
);
-- The editions of an issue with one per language (newsletter.languages), main one first,
-- each frozen at the first send. An edition empty that week has no content (NULL): its
-- readers are not mailed. The issues row holds the first edition that has content.
CREATE TABLE IF NOT EXISTS editions (
    issue_id     TEXT NOT NULL,
    pos          INTEGER NOT NULL,
    lang         TEXT NOT NULL,
    subject      TEXT,
    preheader    TEXT,
    html         TEXT,
    text         TEXT,
    defaults     TEXT,                   -- JSON object
    content_hash TEXT,
    PRIMARY KEY (issue_id, lang)
);
CREATE TABLE IF NOT EXISTS suppressions (
    key        TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS export_drafts (
    issue_id   TEXT NOT NULL,
    service    TEXT NOT NULL,
    remote_id  TEXT NOT NULL,            -- the draft (or template) at the mail service
    updated_at REAL NOT NULL,
    PRIMARY KEY (issue_id, service)
);
-- The span of publication dates each frozen issue covered: it starts where the issue
-- before it closed, and closes when it was frozen (an early send) or at its send time.
CREATE TABLE IF NOT EXISTS windows (
    issue_id   TEXT PRIMARY KEY,
    since      TEXT NOT NULL,            -- ISO 8601
    closed_at  TEXT NOT NULL             -- ISO 8601
);
-- Issue 16: readers who signed up (form, import, cli), with their consent record.
CREATE TABLE IF NOT EXISTS signups (
    key          TEXT PRIMARY KEY,       -- the address, case-folded
    email        TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    lang         TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL,          -- 'pending' or 'active'
    source       TEXT NOT NULL,          -- 'form', 'import:mailchimp', 'cli', ...
    detail       TEXT NOT NULL DEFAULT '', -- the form's page, the imported file...
    created_at   REAL NOT NULL,          -- when they signed up (or were added)
    nonce        TEXT,                   -- the confirmation mail's id, while pending
    confirmed_at REAL,
    confirmation TEXT                    -- the id of the confirmation that confirmed it
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readers (
    id    TEXT PRIMARY KEY,              -- tokens.reader_id: opaque, keyed by the secret
    email TEXT NOT NULL
) WITHOUT ROWID;
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

# How a send commits. In WAL mode a crash of the process loses no commit either way; a
# power loss (or a kernel crash) can. FULL syncs the WAL at every commit (one fsync per
# recorded delivery): measured at +15% to +67% of a 10,000-recipient send's wall time and
# ~+65% of its CPU (BENCHMARKS.md), over our 10% bound. So NORMAL, which syncs only before
# a checkpoint (every ~925 deliveries), plus an fsync of the WAL after every SYNC_EVERY
# recorded deliveries: a power loss rolls back at most the last SYNC_EVERY + (messages in
# flight) deliveries, which are then sent a second time with the same Message-ID.
# NOTES.md, "Durability".
SYNCHRONOUS = "NORMAL"
SYNC_EVERY = 100  # recorded deliveries between two fsyncs of the WAL (0: never)

_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def ledger_error(path: Path, exc: sqlite3.Error) -> LedgerError:
    """An SQLite error on the ledger -> a LedgerError naming the file and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(_DAMAGED) or "malformed" in text or "not a database" in text:
        return LedgerError(
            f"{path}: the ledger is damaged ({text}); stopped. See "
            f"what is wrong with 'digest ledger check'; then put your latest backup in its "
            f"place (README, 'Backups'), or move the file aside and, before the next send, "
            f"import the suppression list you exported ('digest ledger "
            f"import-suppressions FILE'), so no one who unsubscribed is mailed again"
        )
    if name.startswith("SQLITE_FULL"):
        return LedgerError(f"{path}: the disk is full ({text}); free space and run it again")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LedgerError(
            f"{path}: the ledger is busy ({text}): another process holds it; run it again"
        )
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return LedgerError(
            f"{path}: cannot open or write the ledger ({text}); check ledger.path in the "
            "config and that this user may read and write the file and its folder"
        )
    return LedgerError(f"{path}: the ledger failed ({text}); check it with 'digest ledger check'")


# Errors of our own use of the connection (a closed connection, a bad parameter): bugs,
# not a damaged file; they keep their traceback.
_NOT_THE_FILE = (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.IntegrityError)


def address_key(email: str) -> str:
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
    edition: str = ""  # the edition's language ("" for an issue in one language)


@dataclass(frozen=True)
class Frozen:
    """What the ledger knows of an issue's place in time."""

    id: str
    number: int | None
    send_at: dt.datetime  # scheduled
    since: dt.datetime | None  # the span it covered: since <= date < closed
    closed: dt.datetime


class SendBusy(DeliveryError):
    """Another ``digest send`` holds the ledger's send lock."""


class Ledger:
    """The SQLite ledger. Use as a context manager; safe to share between threads."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._unsynced = 0  # deliveries recorded since the WAL was last synced
        self._wal_fd: int | None = None
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                create_private(self.path)
                self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
                self._db.execute("PRAGMA foreign_keys = ON")
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                    self._add_columns()
        except _NOT_THE_FILE:
            raise
        except sqlite3.Error as exc:
            raise ledger_error(self.path, exc) from None
        except OSError as exc:
            raise LedgerError(
                f"{self.path}: cannot create the ledger ({exc.strerror}); check ledger.path "
                "in the config"
            ) from None

    def _add_columns(self) -> None:
        """Columns a ledger made by an older digest lacks (CREATE TABLE IF NOT EXISTS
        leaves its tables as they are); its rows get the default. Read-only opens do not
        migrate: a table missing there (``_missing``) means the columns are missing too."""
        have = {r[1] for r in self._db.execute("PRAGMA table_info(deliveries)")}
        if "edition" not in have:  # before editions per language
            self._db.execute("ALTER TABLE deliveries ADD COLUMN edition TEXT NOT NULL DEFAULT ''")

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._wal_fd is not None:  # after SQLite: it holds no lock on the WAL then
                os.close(self._wal_fd)
                self._wal_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite errors of the file (damaged, disk full, busy) -> a LedgerError."""
        try:
            yield
        except _NOT_THE_FILE:
            raise
        except sqlite3.Error as exc:
            if self.readonly and getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY":
                raise  # a write through a reader: our bug, not the file's
            raise ledger_error(self.path, exc) from None

    def _write(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock, self._guard(), self._db:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._guard():
            return self._db.execute(sql, args).fetchall()

    # -- suppression list ----------------------------------------------------------------

    def suppress(self, email: str, reason: str = "unsubscribe") -> None:
        """Add an address to the suppression list (idempotent: the first reason stays)."""
        self._write(
            "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
            (address_key(email), email.strip(), reason, time.time()),
        )

    def unsuppress(self, email: str, reason: str = "unsubscribe") -> None:
        """Lift a suppression of the given reason only: "subscribe again" undoes the
        reader's own unsubscribe, never a suppression for another cause (a bounce)."""
        self._write(
            "DELETE FROM suppressions WHERE key = ? AND reason = ?", (address_key(email), reason)
        )

    def is_suppressed(self, email: str) -> bool:
        return bool(self._read("SELECT 1 FROM suppressions WHERE key = ?", (address_key(email),)))

    def suppressions(self) -> Iterator[tuple[str, str, str, float]]:
        """(key, email, reason, created_at) of every suppressed address, streamed."""
        yield from self._stream(
            "SELECT key, email, reason, created_at FROM suppressions ORDER BY created_at"
        )

    def copy_suppressions(self, rows: Iterable[tuple[str, str, str, float]]) -> int:
        """Add (key, email, reason, created_at) rows; an address already suppressed keeps
        its first reason. Returns how many were new."""
        with self._lock, self._guard(), self._db:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)", rows)
            return self._db.total_changes - before

    # -- signups (issue 16) ----------------------------------------------------------------

    def signup(
        self, email: str, *, name: str = "", lang: str = "", source: str, detail: str = "",
        nonce: str, now: float | None = None,
    ) -> str | None:  # fmt: skip
        """Record a pending signup with the confirmation ``nonce`` now mailed. An address
        already active is left as it is (returns "active"); a pending one gets the new
        nonce (the latest mail's link is the one that works). Returns the state before
        (None for a new address)."""
        key, when = address_key(email), time.time() if now is None else now
        with self._lock, self._guard(), self._db:
            row = self._db.execute("SELECT state FROM signups WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] == SIGNUP_ACTIVE:
                return SIGNUP_ACTIVE
            self._db.execute(
                "INSERT INTO signups (key, email, name, lang, state, source, detail, "
                "created_at, nonce) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET email = excluded.email, name = excluded.name, "
                "lang = excluded.lang, source = excluded.source, detail = excluded.detail, "
                "created_at = excluded.created_at, nonce = excluded.nonce",
                (key, email.strip(), name, lang, source, detail, when, nonce),
            )
            return None if row is None else str(row[0])

    def confirm_signup(self, nonce: str, *, now: float | None = None) -> tuple[str, str]:
        """Confirm the pending signup mailed with ``nonce``: ("confirmed", email), or
        ("used", email) when that confirmation already confirmed it, or ("unknown", "")
        (never mailed, or superseded by a later signup mail). A confirmation lifts the
        reader's own unsubscribe (``LIFTED_BY_SIGNUP``), never a bounce."""
        when = time.time() if now is None else now
        with self._lock, self._guard(), self._db:
            row = self._db.execute(
                "SELECT key, email FROM signups WHERE nonce = ? AND state = 'pending'", (nonce,)
            ).fetchone()
            if row is None:
                used = self._db.execute(
                    "SELECT email FROM signups WHERE confirmation = ?", (nonce,)
                ).fetchone()
                return ("used", used[0]) if used else ("unknown", "")
            key, email = row
            self._db.execute(
                "UPDATE signups SET state = 'active', nonce = NULL, confirmed_at = ?, "
                "confirmation = ? WHERE key = ?",
                (when, nonce, key),
            )
            self._db.executemany(
                "DELETE FROM suppressions WHERE key = ? AND reason = ?",
                [(key, r) for r in LIFTED_BY_SIGNUP],
            )
            return "confirmed", str(email)

    def nonce_state(self, nonce: str) -> str | None:
        """ "pending" if a pending signup waits for this confirmation, "used" if it
        confirmed one, else None."""
        rows = self._read(
            "SELECT state = 'pending' AND nonce = ? FROM signups WHERE nonce = ? "
            "OR confirmation = ?",
            (nonce, nonce, nonce),
        )
        if not rows:
            return None
        return "pending" if rows[0][0] else "used"

    def add_signup(
        self, email: str, *, name: str = "", state: str = SIGNUP_ACTIVE, source: str,
        detail: str = "", created_at: float | None = None, confirmed_at: float | None = None,
        lang: str = "",
    ) -> bool:  # fmt: skip
        """Add a reader directly (``digest subscribers add``/``import``): no confirmation
        mail; the consent record names ``source``. An address already present keeps its
        row (and its consent record). True if added."""
        created = time.time() if created_at is None else created_at
        confirmed = confirmed_at if confirmed_at is not None else (
            created if state == SIGNUP_ACTIVE else None
        )  # fmt: skip
        cur = self._write(
            "INSERT OR IGNORE INTO signups (key, email, name, lang, state, source, detail, "
            "created_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                address_key(email),
                email.strip(),
                name,
                lang,
                state,
                source,
                detail,
                created,
                confirmed,
            ),
        )
        return cur.rowcount > 0

    def remove_signup(self, email: str) -> bool:
        """Take a signup out (the consent record goes with it). True if there was one."""
        return self._write("DELETE FROM signups WHERE key = ?", (address_key(email),)).rowcount > 0

    def signup_state(self, email: str) -> str | None:
        rows = self._read("SELECT state FROM signups WHERE key = ?", (address_key(email),))
        return str(rows[0][0]) if rows else None

    def signups(self, state: str | None = None) -> Iterator[tuple[Any, ...]]:
        """(key, email, name, lang, state, source, detail, created_at, confirmed_at,
        confirmation) of every signup (of ``state``), oldest first, streamed."""
        sql = (
            "SELECT key, email, name, lang, state, source, detail, created_at, confirmed_at, "
            "confirmation FROM signups"
        )
        args: tuple[str, ...] = ()
        if state is not None:
            sql, args = sql + " WHERE state = ?", (state,)
        if not self._missing("signups"):
            yield from self._stream(sql + " ORDER BY created_at, key", args)

    def count_signups(self, state: str = SIGNUP_ACTIVE) -> int:
        if self._missing("signups"):
            return 0
        return int(self._read("SELECT COUNT(*) FROM signups WHERE state = ?", (state,))[0][0])

    def suppression(self, email: str) -> str | None:
        """Why an address is suppressed, or None."""
        rows = self._read("SELECT reason FROM suppressions WHERE key = ?", (address_key(email),))
        return str(rows[0][0]) if rows else None

    # -- readers (the ids in unsubscribe tokens) -----------------------------------------

    def remember_readers(self, rows: Iterable[tuple[str, str]], *, batch: int = 5000) -> None:
        """Record (id, address) pairs (``tokens.remember``), streamed in batches."""
        chunk: list[tuple[str, str]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                self._remember(chunk)
                chunk = []
        if chunk:
            self._remember(chunk)

    def _remember(self, chunk: list[tuple[str, str]]) -> None:
        with self._lock, self._guard(), self._db:
            self._db.executemany("INSERT OR IGNORE INTO readers VALUES (?, ?)", chunk)

    def reader(self, reader_id: str) -> str | None:
        """The address with that token id, if mail went to it."""
        if self._missing("readers"):  # a ledger from before opaque tokens
            return None
        rows = self._read("SELECT email FROM readers WHERE id = ?", (reader_id,))
        return rows[0][0] if rows else None

    def _missing(self, table: str) -> bool:
        """Whether ``table`` is absent: a ledger made by an older digest, opened read-only
        (a writable open creates every table)."""
        return self.readonly and not self._read(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        )

    def _stream(self, sql: str, args: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of a query, fetched a thousand at a time (memory stays flat)."""
        with self._lock, self._guard():
            cur = self._db.execute(sql, args)
            rows = cur.fetchmany(1000)
        while rows:
            yield from rows
            with self._lock, self._guard():
                rows = cur.fetchmany(1000)

    def queued_addresses(self, issue_id: str) -> Iterator[str]:
        """Addresses still to be sent for the issue (pending, deferred), streamed."""
        for row in self.to_send(issue_id, batch=5000):
            yield row.email

    # -- bounces (see bounces.py) ----------------------------------------------------------

    def record_bounce(
        self, source: str, email: str, issue: str | None, kind: str, reason: str, at: float
    ) -> bool:
        """Record one bounce of one reader; False if that message was recorded before."""
        cur = self._write(
            "INSERT OR IGNORE INTO bounces (source, key, email, issue, kind, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, address_key(email), email.strip(), issue, kind, reason, at),
        )
        return cur.rowcount == 1

    def soft_bounces(self, email: str, since: float) -> int:
        rows = self._read(
            "SELECT COUNT(*) FROM bounces WHERE key = ? AND kind = 'soft' AND created_at >= ?",
            (address_key(email), since),
        )
        return int(rows[0][0])

    def bounce_counts(self, issue_id: str) -> dict[str, int]:
        """Bounces recorded for the issue, per kind ({} for a ledger from before bounces)."""
        if self._missing("bounces"):
            return {}
        rows = self._read(
            "SELECT kind, COUNT(*) FROM bounces WHERE issue = ? GROUP BY kind", (issue_id,)
        )
        return {kind: n for kind, n in rows}

    def recipients(self, issue_id: str) -> Iterator[tuple[str, str]]:
        """(key, email) of every delivery of the issue, streamed."""
        yield from self._stream(
            "SELECT d.key, d.email FROM deliveries d JOIN issues i ON i.seq = d.issue "
            "WHERE i.id = ?",
            (issue_id,),
        )

    def last_issue_sent_to(self, email: str) -> str | None:
        rows = self._read(
            "SELECT i.id FROM deliveries d JOIN issues i ON i.seq = d.issue "
            "WHERE d.key = ? AND d.state = 'sent' ORDER BY d.updated_at DESC LIMIT 1",
            (address_key(email),),
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

    def listed(self) -> list[tuple[str, str, str, dt.datetime, str | None]]:
        """(id, subject, preheader, created_at, send_at) of every issue, newest first:
        an archive index without each issue's HTML and text (issue 14)."""
        rows = self._read(
            "SELECT id, subject, preheader, created_at, send_at FROM issues "
            "ORDER BY created_at DESC, seq DESC"
        )
        return [(i, subj, pre, _utc(c), at) for i, subj, pre, c, at in rows]  # type: ignore[misc]

    def listed_version(self) -> tuple[int, int]:
        """(count, highest seq) of the issues: changes when one is frozen or removed (a
        frozen issue's listed fields never change), so a listing can be reused."""
        ((count, top),) = self._read("SELECT count(*), coalesce(max(seq), 0) FROM issues")
        return int(count), int(top)

    def unfinished(self) -> list[str]:
        """Ids of issues started but not finished (paused, stopped, crashed), oldest first."""
        rows = self._read(
            "SELECT id FROM issues WHERE state = ? ORDER BY created_at, seq", (ISSUE_SENDING,)
        )
        return [r[0] for r in rows]

    def history(self) -> list[Frozen]:
        """Every frozen issue with a send time: number, send time and the span it covered
        (for issues frozen before spans were kept: its week up to the send time)."""
        if not self._missing("windows"):
            rows = self._read(
                "SELECT i.id, i.number, i.send_at, w.since, w.closed_at FROM issues i "
                "LEFT JOIN windows w ON w.issue_id = i.id WHERE i.send_at IS NOT NULL"
            )
        else:
            rows = [
                (*r, None, None)
                for r in self._read(
                    "SELECT id, number, send_at FROM issues WHERE send_at IS NOT NULL"
                )
            ]
        out = []
        for id_, number, send_at, since, closed in rows:
            at = dt.datetime.fromisoformat(send_at)
            out.append(
                Frozen(
                    id_,
                    number,
                    at,
                    dt.datetime.fromisoformat(since) if since else None,
                    dt.datetime.fromisoformat(closed) if closed else at,
                )
            )
        return sorted(out, key=lambda f: f.send_at.astimezone(dt.UTC))

    def issue(self, issue_id: str) -> IssueRecord | None:
        rows = self._read(f"SELECT {self._ISSUE_COLS} FROM issues WHERE id = ?", (issue_id,))
        return self._issue(rows[0]) if rows else None

    def freeze(
        self,
        r: RenderedEmail,
        *,
        number: int | None = None,
        send_at: dt.datetime | None = None,
        window: tuple[dt.datetime, dt.datetime] | None = None,
        editions: Sequence[tuple[str, RenderedEmail | None]] = (),
    ) -> IssueRecord:
        """Record the issue's content as sent from now on. A no-op if already frozen.

        ``window``: (since, closed) the publication dates it covers; the next issue
        starts where this one closed, so no article is lost or sent twice. ``editions``:
        (language, content or None when empty) of an issue with one edition per
        language, main one first; frozen in the same transaction as the issue, so a
        resume never finds an issue without its editions."""
        with self._lock, self._guard(), self._db:
            self._freeze(r, number, send_at, window, editions)
        rec = self.issue(r.issue_id)
        assert rec is not None
        return rec

    def _freeze(
        self,
        r: RenderedEmail,
        number: int | None,
        send_at: dt.datetime | None,
        window: tuple[dt.datetime, dt.datetime] | None,
        editions: Sequence[tuple[str, RenderedEmail | None]],
    ) -> None:
        if window is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO windows VALUES (?, ?, ?)",
                (r.issue_id, window[0].isoformat(), window[1].isoformat()),
            )
        for pos, (lang, e) in enumerate(editions):
            content: tuple[str | None, ...] = (None,) * 6  # empty that week
            if e is not None:
                defaults = json.dumps(dict(e.defaults), ensure_ascii=False)
                content = (e.subject, e.preheader, e.html, e.text, defaults, content_hash(e))
            self._db.execute(
                "INSERT OR IGNORE INTO editions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.issue_id, pos, lang, *content),
            )
        self._db.execute(
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

    def editions(self, issue_id: str) -> list[tuple[str, RenderedEmail | None]]:
        """(language, frozen content or None when it was empty) of each edition of the
        issue, main one first; [] for an issue in one language."""
        if self._missing("editions"):
            return []
        rows = self._read(
            "SELECT lang, subject, preheader, html, text, defaults FROM editions "
            "WHERE issue_id = ? ORDER BY pos",
            (issue_id,),
        )
        return [
            (lang, None if html is None else RenderedEmail(
                issue_id, subject, preheader, html, text, lang, json.loads(defaults)))
            for lang, subject, preheader, html, text, defaults in rows
        ]  # fmt: skip

    def edition_pages(self) -> dict[str, list[str]]:
        """Issue id -> the languages of its editions that had content, main one first (an
        archive index in one query; issues in one language are absent)."""
        if self._missing("editions"):
            return {}
        found: dict[str, list[str]] = {}
        rows = self._read(
            "SELECT issue_id, lang FROM editions WHERE html IS NOT NULL ORDER BY issue_id, pos"
        )
        for issue_id, lang in rows:
            found.setdefault(issue_id, []).append(lang)
        return found

    def edition_langs(self, issue_id: str) -> list[tuple[str, bool]]:
        """(language, whether it had content) of each edition, main one first; [] for an
        issue in one language. Without reading the content."""
        if self._missing("editions"):
            return []
        rows = self._read(
            "SELECT lang, html IS NOT NULL FROM editions WHERE issue_id = ? ORDER BY pos",
            (issue_id,),
        )
        return [(lang, bool(full)) for lang, full in rows]

    def edition_counts(self, issue_id: str) -> dict[str, dict[str, int]]:
        """Deliveries of the issue per edition and state ({} for one language)."""
        langs = [lang for lang, _ in self.edition_langs(issue_id)]
        if not langs:
            return {}
        out = {lang: dict.fromkeys(STATES, 0) for lang in langs}
        for lang, state, n in self._read(
            "SELECT d.edition, d.state, COUNT(*) FROM deliveries d "
            "JOIN issues i ON i.seq = d.issue WHERE i.id = ? GROUP BY d.edition, d.state",
            (issue_id,),
        ):
            out.setdefault(lang, dict.fromkeys(STATES, 0))[state] = n
        return out

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
        self, issue_id: str, rows: Iterable[tuple[str, ...]], *, batch: int = 5000
    ) -> tuple[int, int]:
        """Queue (key, email, name, first_name[, edition]) rows as pending deliveries,
        streamed.

        A key already queued for the issue is skipped (duplicates fold here, in the
        database, so the list never has to fit in memory). Commits every ``batch`` rows.
        Returns (inserted, skipped).
        """
        seq = self._seq(issue_id)
        inserted = skipped = 0
        chunk: list[tuple[int, str, str, str, str, str]] = []

        def flush() -> None:
            nonlocal inserted, skipped
            with self._lock, self._guard(), self._db:
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO deliveries (issue, key, email, name, first_name, "
                    "edition) VALUES (?, ?, ?, ?, ?, ?)",
                    chunk,
                )
                added = self._db.total_changes - before
            inserted += added
            skipped += len(chunk) - added
            chunk.clear()

        for key, email, name, first, *edition in rows:
            chunk.append((seq, key, email, name, first, edition[0] if edition else ""))
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
        return inserted, skipped

    def last_delivery_id(self) -> int:
        """The highest delivery id so far: rows queued after this call have higher ids."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM deliveries")[0][0])

    def unqueue_after(self, issue_id: str, after: int) -> int:
        """Remove the issue's pending deliveries with ids above ``after``: the rows of one
        pass over the subscriber list that cannot be trusted (the file changed during
        it). Nothing of them was sent: delivery starts only after a trusted pass."""
        cur = self._write(
            "DELETE FROM deliveries WHERE issue = ? AND id > ? AND state = 'pending'",
            (self._seq(issue_id), after),
        )
        return cur.rowcount

    def is_queued(self, issue_id: str, email: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM deliveries d JOIN issues i ON i.seq = d.issue "
                "WHERE i.id = ? AND d.key = ?",
                (issue_id, address_key(email)),
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
                "SELECT d.id, d.email, d.name, d.first_name, d.attempts, s.key IS NOT NULL, "
                "d.edition FROM deliveries d LEFT JOIN suppressions s ON s.key = d.key "
                "WHERE +d.issue = ? AND d.state IN ('pending', 'deferred') AND d.id > ? "
                "ORDER BY d.id LIMIT ?",
                (seq, last, batch),
            )
            if not rows:
                return
            for r in rows:
                yield DeliveryRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6])
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
        """Record an outcome (commits; see ``SYNC_EVERY`` for power losses).
        ``attempted``: count it as an attempt."""
        self._write(
            "UPDATE deliveries SET state = ?, attempts = attempts + ?, last_error = ?, "
            "message_id = COALESCE(?, message_id), updated_at = ? WHERE id = ?",
            (state, 1 if attempted else 0, error, message_id, time.time(), delivery_id),
        )
        if SYNC_EVERY and SYNCHRONOUS != "FULL":
            with self._lock:
                self._unsynced += 1
                due = self._unsynced >= SYNC_EVERY
                if due:
                    self._unsynced = 0
            if due:
                self._sync_wal()

    def _sync_wal(self) -> None:
        """fsync the WAL: every commit written to it so far survives a power loss.

        Outside the lock, so the other connections' threads go on committing meanwhile;
        a frame half-written during the sync is not a commit (SQLite's checksums end the
        log there on recovery). One fd is kept open for the ledger's life: closing an fd
        of a file drops the process's POSIX locks on it, so it is closed after SQLite."""
        with self._lock:
            if self._wal_fd is None:
                try:
                    self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
                except OSError:
                    return  # no WAL (nothing written yet): nothing to sync
            fd = self._wal_fd
        try:
            os.fsync(fd)
        except OSError as exc:  # a file system without fsync: FULL would fail the same
            raise ledger_error(self.path, sqlite3.OperationalError(f"fsync: {exc}")) from None

    def requeue(self, delivery_ids: Sequence[int]) -> int:
        """Put failed deliveries back in the queue (``pending``), keeping their last error:
        refusals that were the server's fault. Returns how many were failed."""
        n = 0
        with self._lock, self._guard(), self._db:
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

    # -- drafts at mail services (export --push) ----------------------------------------

    def export_draft(self, issue_id: str, service: str) -> str | None:
        rows = self._read(
            "SELECT remote_id FROM export_drafts WHERE issue_id = ? AND service = ?",
            (issue_id, service),
        )
        return rows[0][0] if rows else None

    def record_export_draft(self, issue_id: str, service: str, remote_id: str) -> None:
        self._write(
            "INSERT INTO export_drafts VALUES (?, ?, ?, ?) ON CONFLICT (issue_id, service) "
            "DO UPDATE SET remote_id = excluded.remote_id, updated_at = excluded.updated_at",
            (issue_id, service, remote_id, time.time()),
        )

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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
