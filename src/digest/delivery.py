"""Messages -> an SMTP server or an outbox folder, with retries, rate limits and pauses.

A small transport interface: ``Transport.connect()`` gives a ``Connection`` whose
``send()`` returns an ``Outcome`` for one recipient (``sent`` after the server's 250 to
DATA, ``permanent`` for a 5xx, ``transient`` for a 4xx, a timeout or a dropped
connection). Problems that no retry can fix (an untrusted certificate, a refused login, a
refused sender) raise ``Fatal`` and stop the whole send; the caller says what was sent
before (a login can be refused on a reconnect halfway through). A 4xx to AUTH is
temporary like any other 4xx.

``Engine`` runs one send: ``concurrency`` worker threads, each with its own reused
connection, take jobs from a shared source, compose, send, and hand each outcome to a
``record`` callback *before* taking the next job (the pipeline commits it to the ledger
there). A message that cannot be composed (an address or value the Composer refuses) is
a permanent failure of that recipient, not of the send. Transient failures are retried
with exponential backoff and jitter; after ``pause_after`` failures in a row, or when no
connection can be made, the engine stops taking jobs and reports itself paused. Setting
``stop`` (SIGTERM, Ctrl-C) lets the messages in flight finish, then returns.

Threads, not asyncio: the socket calls release the GIL, smtplib gives STARTTLS and AUTH
that are known to work, and the per-message path is a few ``sendall``s of pre-built
bytes. SMTP PIPELINING (RFC 2920) is used when offered: MAIL, RCPT and DATA go out in one
write, which halves the round trips per message.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import logging
import os
import random
import re
import smtplib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from .errors import ConfigError, DeliveryError
from .message import Composed

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)


class Fatal(DeliveryError):
    """A problem no retry fixes: the whole send stops (and can be resumed once fixed)."""


class Transient(Exception):
    """A connection could not be made or was lost; worth retrying later."""


@dataclass(frozen=True)
class Outcome:
    kind: Literal["sent", "permanent", "transient"]
    detail: str = ""  # the server's reply or what went wrong, one line

    @property
    def ok(self) -> bool:
        return self.kind == "sent"


class Connection(Protocol):
    alive: bool

    def send(
        self, sender: str, recipient: str, data: bytes, message_id: str, *, dot_safe: bool = False
    ) -> Outcome: ...

    def close(self) -> None: ...


class Transport(Protocol):
    throttled: bool  # whether rate limits apply

    @property
    def name(self) -> str: ...  # "smtp mail.example.com:587 (starttls)", "outbox ./outbox"

    def connect(self) -> Connection: ...


# -- SMTP --------------------------------------------------------------------------------


def _reply_text(code: int, msg: bytes | str) -> str:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
    return f"{code} {' '.join(text.split())}".strip()


_LINE_END = re.compile(rb"\r\n|\r|\n")


def smtp_data(data: bytes) -> bytes:
    """``data`` as SMTP DATA must carry it: CRLF line ends only and dot-stuffed (RFC 5321
    4.5.2). A bare LF or CR next to a "." is read as the end of the data by some servers,
    so the rest would run as SMTP commands ("SMTP smuggling"). Messages the Composer
    verified as ``dot_safe`` skip this pass (it costs as much as composing one)."""
    body = _LINE_END.sub(b"\r\n", data).replace(b"\r\n.", b"\r\n..")
    return b"." + body if body.startswith(b".") else body


class _NoDelay:
    """Mixin: TCP_NODELAY on the socket. Without it Nagle's algorithm and delayed ACKs
    stall every command after a large write (about 10x slower with STARTTLS + AUTH)."""

    def _get_socket(self, host, port, timeout):  # type: ignore[no-untyped-def]
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        with contextlib.suppress(OSError):  # not TCP
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class _SMTP(_NoDelay, smtplib.SMTP):
    pass


class _SMTPS(_NoDelay, smtplib.SMTP_SSL):
    pass


class SmtpConnection:
    def __init__(self, smtp: smtplib.SMTP, pipelining: bool, where: str) -> None:
        self.smtp = smtp
        self.pipelining = pipelining
        self.where = where
        self.alive = True

    def _reply(self) -> tuple[int, str]:
        code, msg = self.smtp.getreply()
        return code, _reply_text(code, msg)

    def _fail(self, code: int, text: str, stage: str) -> Outcome:
        if code == 421 or code < 0:  # the server is closing the connection
            self.alive = False
        kind: Literal["permanent", "transient"] = "permanent" if 500 <= code < 600 else "transient"
        return Outcome(kind, f"{stage}: {text}")

    def _reset(self) -> None:
        if not self.alive:
            return
        self.smtp.send(b"RSET\r\n")
        code, _ = self._reply()
        if code != 250:
            self.alive = False

    def send(
        self, sender: str, recipient: str, data: bytes, message_id: str, *, dot_safe: bool = False
    ) -> Outcome:
        try:
            return self._send(sender.encode("ascii"), recipient.encode("ascii"), data, dot_safe)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.alive = False
            return Outcome("transient", f"connection lost: {exc or type(exc).__name__}")

    def _send(self, sender: bytes, recipient: bytes, data: bytes, dot_safe: bool) -> Outcome:
        mail = b"MAIL FROM:<%s>\r\n" % sender
        rcpt = b"RCPT TO:<%s>\r\n" % recipient
        if self.pipelining:
            self.smtp.send(mail + rcpt + b"DATA\r\n")
            m, r, d = self._reply(), self._reply(), self._reply()
        else:
            self.smtp.send(mail)
            m = self._reply()
            r = d = (0, "")
            if m[0] == 250:
                self.smtp.send(rcpt)
                r = self._reply()
                if r[0] in (250, 251):
                    self.smtp.send(b"DATA\r\n")
                    d = self._reply()
        failure: Outcome | None = None
        if m[0] != 250:
            if 500 <= m[0] < 600:
                self._abandon_data(d[0])
                raise Fatal(
                    f"the SMTP server ({self.where}) refused the sender address "
                    f"{sender.decode()}: {m[1]}. Check sender.email (bounces.address) and that "
                    "your relay allows it (and smtp.username if the server needs a login)."
                )
            failure = self._fail(m[0], m[1], "MAIL")
        elif r[0] not in (250, 251):
            failure = self._fail(r[0], r[1], "RCPT")
        elif d[0] != 354:
            failure = self._fail(d[0], d[1], "DATA")
        if failure is not None:
            self._abandon_data(d[0])
            self._reset()
            return failure
        body = data if dot_safe else smtp_data(data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.smtp.send(body + b".\r\n")
        code, text = self._reply()
        if code == 250:
            return Outcome("sent", text)
        return self._fail(code, text, "end of DATA")

    def _abandon_data(self, data_code: int) -> None:
        # A pipelined DATA may have been accepted although MAIL or RCPT failed (servers
        # should refuse it, RFC 2920 3.1): send an empty message so the session is back
        # in step. The server must not deliver it without accepted recipients.
        if self.alive and data_code == 354:
            self.smtp.send(b".\r\n")
            self._reply()

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.smtp.quit()
        with contextlib.suppress(OSError):
            self.smtp.close()


@dataclass
class SmtpTransport:
    host: str
    port: int
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str | None = field(default=None, repr=False)  # never in a log or traceback
    password_env: str = ""
    ca_file: Path | None = None
    timeout: float = 30.0
    local_hostname: str | None = None
    throttled: bool = True

    @property
    def name(self) -> str:
        return f"smtp {self.host}:{self.port} ({self.security})"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise Fatal(
                f"smtp.ca_file: cannot load {self.ca_file} ({exc}); it must be a PEM file "
                "with the CA certificate of your relay"
            ) from None

    def _tls_error(self, exc: ssl.SSLError) -> Fatal:
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or str(exc)
            hint = (
                "set smtp.ca_file to the CA certificate (PEM) that signed it"
                if not self.ca_file
                else f"it is not signed by the CA in smtp.ca_file ({self.ca_file}) or does "
                f"not name {self.host}"
            )
            return Fatal(
                f"TLS: the certificate of the SMTP server {self.where} is not trusted ({why}). "
                f"If this is your own relay with a private certificate, {hint}."
            )
        return Fatal(f"TLS with the SMTP server {self.where} failed: {exc}.")

    def connect(self) -> SmtpConnection:
        ctx = self._context() if self.security != "none" else None
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = _SMTPS(
                    self.host, self.port, self.local_hostname, timeout=self.timeout, context=ctx
                )
            else:
                smtp = _SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout)
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from None
        except socket.gaierror as exc:
            raise Fatal(
                f"cannot find the SMTP server {self.host!r} ({exc}); check smtp.host"
            ) from None
        except smtplib.SMTPConnectError as exc:
            text = _reply_text(exc.smtp_code, exc.smtp_error)
            if 500 <= exc.smtp_code < 600:
                raise Fatal(
                    f"the SMTP server {self.where} refused the connection: {text}"
                ) from None
            raise Transient(f"{self.where} refused the connection: {text}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Transient(f"cannot connect to {self.where}: {exc}") from None
        try:
            return self._session(smtp, ctx)
        except BaseException:
            smtp.close()
            raise

    def _session(self, smtp: smtplib.SMTP, ctx: ssl.SSLContext | None) -> SmtpConnection:
        try:
            code, msg = smtp.ehlo()
            if code != 250:
                code, msg = smtp.helo()
                if code != 250:
                    raise Transient(f"{self.where} refused HELO: {_reply_text(code, msg)}")
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise Fatal(
                        f"the SMTP server {self.where} does not offer STARTTLS; set "
                        "smtp.security = 'tls' if it expects TLS from the start (port 465), "
                        "or 'none' only for a relay on a trusted network."
                    )
                try:
                    code, msg = smtp.starttls(context=ctx)
                except ssl.SSLError as exc:
                    raise self._tls_error(exc) from None
                smtp.ehlo()
            if self.username:
                if not smtp.has_extn("auth"):
                    raise Fatal(
                        f"the SMTP server {self.where} offers no login (AUTH)"
                        + (" without TLS" if self.security == "none" else "")
                        + "; check smtp.security, or remove smtp.username if it needs none"
                    )
                try:
                    smtp.login(self.username, self.password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    text = _reply_text(exc.smtp_code, exc.smtp_error)
                    if 400 <= exc.smtp_code < 500:  # e.g. 454: try again later
                        raise Transient(f"{self.where} cannot log us in now: {text}") from None
                    raise Fatal(
                        f"the SMTP server {self.where} refused the login for user "
                        f"{self.username!r}: {text}. Check smtp.username and the password in "
                        f"${self.password_env}."
                    ) from None
                except smtplib.SMTPNotSupportedError:
                    raise Fatal(
                        f"the SMTP server {self.where} offers no login method we support"
                    ) from None
                except smtplib.SMTPException as exc:
                    raise Fatal(f"login to the SMTP server {self.where} failed: {exc}") from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise Transient(f"{self.where} closed the connection during setup: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            text = _reply_text(exc.smtp_code, exc.smtp_error)
            if 500 <= exc.smtp_code < 600:
                raise Fatal(f"the SMTP server {self.where} refused the session: {text}") from None
            raise Transient(f"{self.where}: {text}") from None
        return SmtpConnection(smtp, smtp.has_extn("pipelining"), self.where)


# -- outbox ------------------------------------------------------------------------------


class Sample:
    """How many more messages a dry run writes (shared by its connections)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.skipped = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left > 0:
                self.left -= 1
                return True
            self.skipped += 1
            return False


class OutboxConnection:
    alive = True

    def __init__(self, folder: Path, sample: Sample | None = None) -> None:
        self.folder = folder
        self.sample = sample

    def send(
        self, sender: str, recipient: str, data: bytes, message_id: str, *, dot_safe: bool = False
    ) -> Outcome:
        if self.sample is not None and not self.sample.take():
            # Composed in full (a message that cannot be built still fails), not written.
            return Outcome("sent", "composed and counted, not written (delivery.dry_run_sample)")
        # Named after the Message-ID: a message written again after a crash replaces
        # the first copy, so the outbox never holds a duplicate.
        name = hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".eml"
        tmp = self.folder / "tmp" / name
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.folder / "new" / name)
        except OSError as exc:
            raise Fatal(f"cannot write to the outbox {self.folder}: {exc}") from None
        return Outcome("sent", f"written to {self.folder / 'new' / name}")

    def close(self) -> None:
        pass


@dataclass
class OutboxTransport:
    """A Maildir-style folder (tmp/, new/, cur/) of ``.eml`` files: nothing to run."""

    folder: Path
    throttled: bool = False
    sample: Sample | None = None  # a dry run: write only the first messages

    @property
    def name(self) -> str:
        return f"outbox {self.folder}"

    def connect(self) -> OutboxConnection:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Fatal(f"cannot create the outbox {self.folder}: {exc}") from None
        return OutboxConnection(self.folder, self.sample)


# -- pacing ------------------------------------------------------------------------------


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base... up to cap."""
    return min(cap, base * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.5)


IDLE_RECONNECT = 10.0  # seconds a connection may sit idle (rate limits) before reconnecting


class RateLimiter:
    """At most ``per_second`` messages a second (evenly spaced) and ``per_hour`` in any
    hour, counting ``recent`` (times of messages sent in the last hour, from the ledger,
    so a restarted send keeps to the hourly limit)."""

    def __init__(
        self, per_second: float = 0, per_hour: int = 0, recent: Sequence[float] = ()
    ) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.per_hour = per_hour
        self._next = 0.0
        self._hour: deque[float] = deque(list(recent)[-per_hour:] if per_hour else ())
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.interval or self.per_hour)

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False if ``stop`` was set while waiting."""
        if not self.active:
            return not stop.is_set()
        with self._lock:
            wait_until = 0.0
            now_wall = time.time()
            if self.per_hour:
                while self._hour and self._hour[0] <= now_wall - 3600:
                    self._hour.popleft()
                if len(self._hour) >= self.per_hour:
                    wait_until = self._hour[-self.per_hour] + 3600
            mono = time.monotonic()
            slot = max(mono, self._next, mono + (wait_until - now_wall if wait_until else 0))
            self._next = slot + self.interval
            if self.per_hour:
                self._hour.append(now_wall + (slot - mono))
        delay = slot - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return False
        return not stop.is_set()


# -- the engine --------------------------------------------------------------------------


@dataclass
class Job:
    id: int  # the ledger's delivery id (0 for previews)
    email: str
    name: str = ""
    first_name: str = ""
    tries: int = 0  # attempts in this run
    edition: str = ""  # the language of the edition it gets ("" for one language)


# What ``record`` is told: the job, its outcome kind, the detail and the Message-ID.
# "retry" means a transient failure that will be tried again in this run; "deferred" a
# transient failure after the last attempt of this run.
Record = Callable[[Job, str, str, str], None]
Compose = Callable[[Job], Composed]
# Asked just before each message goes (after any wait for the rate limit): True means do
# not send it (the reader unsubscribed meanwhile); the job is recorded as "suppressed".
Skip = Callable[[Job], bool]


@dataclass
class EngineResult:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    retried: int = 0
    suppressed: int = 0  # skipped by ``skip`` just before sending
    paused: str = ""  # why the engine stopped taking jobs early ("" if it did not)
    interrupted: bool = False
    fatal: BaseException | None = None
    seconds: float = 0.0
    # Jobs refused for good (5xx) in the run of failures that paused or stopped the send:
    # likely the server's fault, not theirs, so the caller puts them back in the queue.
    requeue: list[int] = field(default_factory=list)


@dataclass
class Settings:
    sender: str
    concurrency: int = 4
    max_attempts: int = 5
    pause_after: int = 20
    retry_base: float = 2.0
    retry_max: float = 300.0


class Engine:
    def __init__(
        self,
        transport: Transport,
        jobs: Iterator[Job],
        *,
        compose: Compose,
        record: Record,
        settings: Settings,
        limiter: RateLimiter | None = None,
        stop: threading.Event | None = None,
        skip: Skip | None = None,
    ) -> None:
        self.transport = transport
        self.jobs = jobs
        self.compose = compose
        self.record = record
        self.skip = skip
        self.s = settings
        self.limiter = limiter or RateLimiter()
        self.stop = stop or threading.Event()
        self.result = EngineResult()
        self._cond = threading.Condition()
        self._retry: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._source_done = False
        self._in_flight = 0
        self._halt = ""
        self._consecutive = 0
        self._workers_left = 0
        self._last_failure = ""
        self._streak: list[int] = []  # jobs refused for good since the last one sent

    # -- job hand-out ------------------------------------------------------------------

    def _next_job(self) -> Job | None:
        with self._cond:
            while True:
                if self.stop.is_set() or self._halt:
                    return None
                now = time.monotonic()
                if self._retry and self._retry[0][0] <= now:
                    job = heapq.heappop(self._retry)[2]
                    self._in_flight += 1
                    return job
                if not self._source_done:
                    fresh = next(self.jobs, None)
                    if fresh is not None:
                        self._in_flight += 1
                        return fresh
                    self._source_done = True
                if not self._retry and self._in_flight == 0:
                    self._cond.notify_all()
                    return None
                wait = self._retry[0][0] - now if self._retry else 0.2
                self._cond.wait(min(max(wait, 0.001), 0.2))

    def _done(self, job: Job, retry_in: float | None = None) -> None:
        with self._cond:
            self._in_flight -= 1
            if retry_in is not None:
                heapq.heappush(self._retry, (time.monotonic() + retry_in, next(self._seq), job))
            self._cond.notify_all()

    def _halt_with(self, reason: str) -> None:
        with self._cond:
            if not self._halt:
                self._halt = reason
            self._cond.notify_all()

    def _failure(self, detail: str) -> None:
        with self._cond:
            self._consecutive += 1
            self._last_failure = detail
            n = self._consecutive
        if n >= self.s.pause_after:
            self._halt_with(
                f"paused after {n} failures in a row (last: {detail}); the server may be "
                "down or refusing us."
            )

    # -- one job -------------------------------------------------------------------------

    def _settle(self, job: Job, outcome: Outcome, message_id: str) -> float | None:
        """Record the outcome; return a retry delay if the job should be tried again."""
        job.tries += 1
        if outcome.kind == "sent":
            self.record(job, "sent", outcome.detail, message_id)
            with self._cond:
                self._consecutive = 0
                self._streak.clear()
                self.result.sent += 1
            return None
        self._failure(outcome.detail)
        if outcome.kind == "permanent":
            self.record(job, "failed", outcome.detail, message_id)
            with self._cond:
                self._streak.append(job.id)
                self.result.failed += 1
            return None
        if job.tries >= self.s.max_attempts:
            self.record(job, "deferred", outcome.detail, message_id)
            with self._cond:
                self.result.deferred += 1
            return None
        self.record(job, "retry", outcome.detail, message_id)
        with self._cond:
            self.result.retried += 1
        return backoff(job.tries, self.s.retry_base, self.s.retry_max)

    def _worker(self) -> None:
        conn: Connection | None = None
        connect_failures = 0
        gave_up = False
        try:
            while True:
                job = self._next_job()
                if job is None:
                    return
                retry_in: float | None = None
                try:
                    if self.transport.throttled:
                        waiting = time.monotonic()
                        if not self.limiter.acquire(self.stop):
                            self._done(job)  # stopped while waiting: not attempted
                            job = None
                            return
                        if conn is not None and time.monotonic() - waiting > IDLE_RECONNECT:
                            conn.close()  # servers drop idle sessions: start a fresh one
                            conn = None
                    if conn is None:
                        try:
                            conn = self.transport.connect()
                            connect_failures = 0
                        except Transient as exc:
                            connect_failures += 1
                            self._failure(str(exc))
                            self._done(job, 0.0)  # not attempted: back in line at once
                            job = None
                            if connect_failures >= self.s.max_attempts:
                                gave_up = True  # see the finally below
                                return
                            delay = backoff(connect_failures, self.s.retry_base, self.s.retry_max)
                            self.stop.wait(delay)
                            continue
                    # The last moment before the message goes: rows are read ahead in
                    # batches, and at a low hourly rate a batch lasts hours.
                    if self.skip is not None and self.skip(job):
                        self.record(job, "suppressed", "", "")
                        with self._cond:
                            self.result.suppressed += 1
                        continue
                    try:
                        m = self.compose(job)
                    except Exception as exc:  # this recipient's message cannot be built
                        log.debug("cannot compose the message to %s", job.email, exc_info=True)
                        why = f"not sent: cannot compose the message: {exc}"
                        retry_in = self._settle(job, Outcome("permanent", why), "")
                        continue
                    message_id = m.message_id
                    outcome = conn.send(  # a VERP sender per reader, if the message has one
                        m.sender or self.s.sender, job.email, m.data, message_id,
                        dot_safe=m.dot_safe,
                    )  # fmt: skip
                    if not conn.alive:
                        conn.close()
                        conn = None
                    retry_in = self._settle(job, outcome, message_id)
                except BaseException as exc:
                    self._fatal(exc)
                    return
                finally:
                    if job is not None:
                        self._done(job, retry_in)
        finally:
            if conn is not None:
                conn.close()
            with self._cond:
                self._workers_left -= 1
                work_left = bool(self._retry) or not self._source_done
                last = self._workers_left == 0
                if gave_up and last and work_left and not self._halt and not self.stop.is_set():
                    # Every worker gave up connecting while recipients still wait.
                    self._halt = f"paused: cannot reach the server ({self._last_failure})."
                self._cond.notify_all()

    def _fatal(self, exc: BaseException) -> None:
        with self._cond:
            if self.result.fatal is None:
                self.result.fatal = exc
        self._halt_with(str(exc) or type(exc).__name__)

    # -- run -----------------------------------------------------------------------------

    def run(self, tick: Callable[[EngineResult], None] | None = None) -> EngineResult:
        """Send every job; returns when done, paused, stopped or failed fatally.

        ``tick`` is called about five times a second from the calling thread (progress
        bars), never from the workers.
        """
        started = time.perf_counter()
        n = max(1, self.s.concurrency)
        self._workers_left = n
        threads = [
            threading.Thread(target=self._worker, name=f"digest-send-{i}", daemon=True)
            for i in range(n)
        ]
        if tick is not None:
            tick(self.result)  # at the start, so a progress bar's clock starts with the send
        for t in threads:
            t.start()
        while alive := [t for t in threads if t.is_alive()]:
            alive[0].join(0.2)
            if tick is not None:
                self.result.seconds = time.perf_counter() - started
                tick(self.result)
        self.result.seconds = time.perf_counter() - started
        self.result.interrupted = self.stop.is_set() and self.result.fatal is None
        if self._halt and self.result.fatal is None:
            self.result.paused = self._halt
        if self._halt:
            self.result.requeue = list(self._streak)
        if self.result.fatal is not None and not isinstance(self.result.fatal, Fatal):
            log.error("send stopped by an unexpected error", exc_info=self.result.fatal)
        return self.result


# -- from the config ---------------------------------------------------------------------


def transport_for(cfg: Config, *, outbox: Path | None = None) -> SmtpTransport | OutboxTransport:
    """The configured transport (``outbox`` given: that folder, for dry runs, which write
    the first ``delivery.dry_run_sample`` messages only)."""
    if outbox is not None:
        size = cfg.delivery.dry_run_sample
        return OutboxTransport(outbox, sample=Sample(size) if size else None)
    if cfg.delivery.transport == "outbox":
        return OutboxTransport(cfg.delivery.outbox)
    s = cfg.smtp
    password = s.password()
    if s.username and not password:
        raise ConfigError(
            cfg.source or "config",
            [("smtp.password_env", f"smtp.username is set but the environment variable "
              f"{s.password_env or '(none named)'} holding the password is not set")],
        )  # fmt: skip
    return SmtpTransport(
        host=s.host,
        port=s.port,
        security=s.security,
        username=s.username,
        password=password,
        password_env=s.password_env,
        ca_file=s.ca_file,
        timeout=s.timeout,
    )


def settings_for(cfg: Config) -> Settings:
    d = cfg.delivery
    return Settings(
        sender=cfg.sender.email,
        concurrency=d.concurrency,
        max_attempts=d.max_attempts,
        pause_after=d.pause_after_failures,
        retry_base=d.retry_seconds,
        retry_max=d.retry_max_seconds,
    )
