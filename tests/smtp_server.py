"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, with fault injection, TLS, AUTH.

    from smtp_server import Faults, SmtpServer, make_cert

    with SmtpServer(faults=Faults(transient_rcpt=0.1, drop_every=100)) as server:
        ...  # send to 127.0.0.1:server.port
        server.messages        # list[Received], in order of acceptance
        server.by_recipient()  # {address: [Message-ID, ...]}

It binds a free port itself (no races between tests), runs in a thread, and keeps every
accepted message. Faults are drawn from a seeded RNG so a failing run can be repeated.

* ``transient_rcpt``/``transient_data``: share of RCPT commands / messages answered with
  a temporary failure (421, which also closes the connection, or 451). A message refused
  at the end of DATA is not kept.
* ``drop_every=N``: every Nth message, the connection is dropped after the data and
  before the reply. The message is not kept (the server "crashed" before queueing it),
  unless ``drop_after_accept`` (it was queued, the reply got lost).
* ``slow``/``slow_share``: delay that share of replies to RCPT and DATA by ``slow``
  seconds.
* ``reject``: addresses answered ``550`` at RCPT; ``defer``: ``452`` at RCPT;
  ``reject_sender``: ``553`` to MAIL; ``reject_data``: messages (by their first
  recipient) answered ``554`` at the end of DATA, as a relay that refuses everything does.
* ``pipelining``: advertise PIPELINING (aiosmtpd handles pipelined commands but does not
  say so).
* TLS: ``tls="starttls"`` or ``"tls"`` (implicit) with ``cert=(cert.pem, key.pem)`` from
  ``make_cert``; AUTH: ``users={"name": "password"}`` (PLAIN and LOGIN).
* ``auth_reply(n)``: the reply to AUTH on the nth connection that logs in, instead of
  checking the password (e.g. ``"454 4.7.0 Temporary authentication failure"``), or None.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Faults:
    transient_rcpt: float = 0.0
    transient_data: float = 0.0
    drop_every: int = 0
    drop_after_accept: bool = False
    slow: float = 0.0
    slow_share: float = 0.0
    reject: Callable[[str], bool] | None = None
    reject_sender: bool = False
    reject_data: Callable[[str], bool] | None = None
    defer: Callable[[str], bool] | None = None
    auth_reply: Callable[[int], str | None] | None = None
    seed: int = 0


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str
    data: bytes | None  # None unless the server keeps data
    peer: Any = None


@dataclass
class Stats:
    connections: int = 0
    rcpt_transient: int = 0
    rcpt_rejected: int = 0
    data_transient: int = 0
    dropped: int = 0
    auth_failures: int = 0


def make_cert(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (IP and localhost), made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "2", "-subj", "/CN=digest-test",
            "-addext", f"subjectAltName=IP:{host},DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.s = server

    async def _maybe_slow(self) -> None:
        f = self.s.faults
        if f.slow and self.s.rng_draw() < f.slow_share:
            await asyncio.sleep(f.slow)

    async def _drop(self, server: SMTP, reply: str | None = None) -> None:
        if reply:
            await server.push(reply)
        assert server.transport is not None
        server.transport.close()
        await asyncio.sleep(3600)  # cancelled by connection_lost

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.s.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.s.faults.reject_sender:
            return f"553 5.7.1 <{address}>: sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        f = self.s.faults
        await self._maybe_slow()
        if f.reject is not None and f.reject(address):
            self.s.count("rcpt_rejected")
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if f.defer is not None and f.defer(address):
            return "452 4.2.2 Mailbox full, try later"
        if f.transient_rcpt and self.s.rng_draw() < f.transient_rcpt:
            self.s.count("rcpt_transient")
            if self.s.rng_draw() < 0.5:
                await self._drop(server, "421 4.3.2 Service shutting down, try again later")
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        f = self.s.faults
        n = self.s.next_message()
        await self._maybe_slow()
        if f.drop_every and n % f.drop_every == 0:
            self.s.count("dropped")
            if f.drop_after_accept:
                self.s.keep(envelope, session)
            await self._drop(server)
        if f.reject_data is not None and f.reject_data(envelope.rcpt_tos[0]):
            return "554 5.7.1 Message rejected as spam"
        if f.transient_data and self.s.rng_draw() < f.transient_data:
            self.s.count("data_transient")
            if self.s.rng_draw() < 0.5:
                await self._drop(server, "421 4.3.2 Closing connection, try again later")
            return "451 4.3.0 Temporary failure, try again later"
        self.s.keep(envelope, session)
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """Listens on a socket bound beforehand (port 0: the kernel picks a free port)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self):  # type: ignore[no-untyped-def]
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SmtpServer:
    def __init__(
        self,
        *,
        faults: Faults | None = None,
        tls: str | None = None,  # None, "starttls" or "tls"
        cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
        require_auth: bool | None = None,
        pipelining: bool = False,
        keep_data: bool = True,
    ) -> None:
        self.faults = faults or Faults()
        self.pipelining = pipelining
        self.keep_data = keep_data
        self.users = users
        self.messages: list[Received] = []
        self.stats = Stats()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._n = 0
        self._logins: dict[int, int] = {}  # id(session) -> the how-manyth login it is
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets; without it
        # Nagle delays pipelined replies by 40 ms.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.setblocking(False)
        self.host, self.port = self._sock.getsockname()
        kwargs: dict[str, Any] = {"data_size_limit": 64 * 1024 * 1024}
        ctx = None
        if tls:
            assert cert is not None, "TLS needs cert=make_cert(folder)"
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        if tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        elif tls == "tls":
            kwargs["ssl_context"] = ctx
        if users is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True if require_auth is None else require_auth,
                auth_require_tls=bool(tls),
            )
        self._controller = _Controller(_Handler(self), self._sock, **kwargs)

    # -- state ------------------------------------------------------------------------

    def rng_draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def next_message(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def keep(self, envelope: Any, session: Any) -> None:
        data: bytes = envelope.original_content or b""
        head = data.split(b"\r\n\r\n", 1)[0]
        m = _MESSAGE_ID.search(head)
        received = Received(
            envelope.mail_from,
            tuple(envelope.rcpt_tos),
            m.group(1).decode() if m else "",
            data if self.keep_data else None,
            session.peer,
        )
        with self._lock:
            self.messages.append(received)

    def by_recipient(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self._lock:
            for m in self.messages:
                for r in m.rcpt_tos:
                    out.setdefault(r.lower(), []).append(m.message_id)
        return out

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.faults.auth_reply is not None:
            with self._lock:
                n = self._logins.setdefault(id(session), len(self._logins) + 1)
            reply = self.faults.auth_reply(n)
            if reply:
                self.count("auth_failures")
                return AuthResult(success=False, handled=False, message=reply)
        if isinstance(auth_data, LoginPassword) and self.users is not None:
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True)
        self.count("auth_failures")
        return AuthResult(success=False, handled=False)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Listener:
    """A port that accepts connections and never answers (for timeouts), or a closed
    port (``closed=True``: connection refused)."""

    closed: bool = False
    sock: socket.socket = field(init=False)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        if self.closed:
            self.sock.close()
        else:
            self.sock.listen(16)

    def close(self) -> None:
        self.sock.close()
