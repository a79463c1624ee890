"""The server: a listening socket, uvicorn, and the secret ``digest serve`` checks with."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp

from ..config import Config, Web
from ..errors import ConfigError, DigestError
from ..tokens import secret_for
from .app import create_app

log = logging.getLogger(__name__)

# Paths that carry a reader's token (under any web.root_path prefix): unsubscribe,
# resubscribe, and a signup's confirmation link.
_TOKEN_PATH = re.compile(r"(/(?:un|re)subscribe|/subscribe/confirm)/[^?\s/]+")


class _RedactTokens(logging.Filter):
    """Keeps unsubscribe tokens (each one names and unsubscribes a reader) out of the
    access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _TOKEN_PATH.sub(r"\1/[token]", args[2]), *args[3:])
        return True


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port). Raises DigestError when it can't."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(
            "--host", [("web.host", f"{host!r} is not a usable address: {exc}")]
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        # Listening now, so connections made as soon as the URL is printed wait in the
        # backlog until uvicorn takes the socket over.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise DigestError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "pass --port (or set web.port) to use another port"
        ) from None
    return sock


def server(app: ASGIApp, *, limits: Web | None = None, log_level: str = "info") -> Any:
    """A uvicorn Server for ``app`` (run it with ``.run(sockets=[listen(...)])``), with the
    ``[web]`` limits: see ``_protocol``."""
    import uvicorn

    limits = limits or Web()
    config = uvicorn.Config(
        app,
        http=_protocol(limits.request_timeout, limits.max_connections),
        log_level=log_level,
        lifespan="off",
        server_header=False,
        proxy_headers=False,  # the client address in the log is the peer's, not a header's
        timeout_keep_alive=limits.keep_alive,
        # uvicorn answers 503 to a request when this many connections or tasks exist;
        # above max_connections, so that a connection just let in by closing a waiting
        # one (see _protocol) is not refused while that one is still closing.
        limit_concurrency=2 * limits.max_connections,
        # Our requests are a line and a few headers: a bigger head is refused with a 400.
        h11_max_incomplete_event_size=16 * 1024,
    )
    logging.getLogger("uvicorn.access").addFilter(_RedactTokens())
    return uvicorn.Server(config)


_REFUSED = {"count": 0, "logged": 0.0}


def _refused(limit: int) -> None:
    """Log connections closed over the limit at most once a minute: a flood of them
    must not flood the log too. (One count per process: one server per process.)"""
    _REFUSED["count"] += 1
    now = time.monotonic()
    if now - _REFUSED["logged"] >= 60:
        log.warning(
            "more than %d connections (web.max_connections): closed %d new ones",
            limit,
            _REFUSED["count"],
        )
        _REFUSED["count"], _REFUSED["logged"] = 0, now


def _protocol(request_timeout: float, max_connections: int) -> type[Any]:
    """uvicorn's h11 protocol, with what uvicorn lacks against half-open connections.

    uvicorn has no timeout for a request's head: ``timeout_keep_alive`` starts only
    after a response and is cancelled by any byte received, so a client that connects
    and sends nothing, or a header a byte at a time, holds its connection (and a file
    descriptor) for ever (uvicorn issue #157, "--timeout-request-start", still open).
    Here every connection must deliver a whole request head within ``request_timeout``
    seconds of connecting, or of its previous response, else it is closed. Beyond
    ``max_connections``, the connection that has waited longest for its request head is
    closed to make room (a new one only when every connection is busy): a reader who
    clicks "unsubscribe" during a flood of half-open connections is still answered. A
    request being handled is never cut off. (A reverse proxy in front, README "Behind a
    reverse proxy", is still the better guard: it holds idle connections cheaply.)
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting: dict[Any, None] = {}  # connections waiting for a request head, oldest first

    class Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                _refused(max_connections)
                oldest = next((c for c in waiting if not c._busy()), None)
                (oldest or self)._close()
                if oldest is None:
                    return
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request's head has the same time to arrive

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _busy(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._deadline = self.loop.call_later(request_timeout, self._expired)
                waiting[self] = None

        def _disarm(self) -> None:
            waiting.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _close(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.close()

        def _expired(self) -> None:
            self._deadline = None
            if self._busy():
                waiting.pop(self, None)  # its response arms the next deadline
            else:
                self._close()

    return Protocol


def serve_secret(cfg: Config, *, preview: bool = False) -> str | None:
    """The secret the sends sign unsubscribe tokens with (``tokens.secret_for``).

    From ``unsubscribe.secret_env``; required when mail goes out over SMTP. With the
    outbox transport and no such variable, the development secret the outbox sends keep
    in the ledger, so the links in those .eml files work here too. ``preview`` alone
    needs no secret (None: every token is refused).
    """
    try:
        return secret_for(cfg, "serve")
    except ConfigError:
        if not preview:
            raise
        log.warning(
            "%s is not set: the preview works, unsubscribe links are refused",
            cfg.unsubscribe.secret_env,
        )
        return None


def serve(
    cfg: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    preview: bool = False,
    selection: Any = None,
    now: Callable[[], dt.datetime] | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "info",
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM: uvicorn finishes open requests)."""
    secret = serve_secret(cfg, preview=preview)
    closing = threading.Event()
    app = create_app(
        cfg, secret=secret, preview=preview, selection=selection, now=now, closing=closing
    )
    sock = listen(host or cfg.web.host, cfg.web.port if port is None else port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if on_ready:
        on_ready(f"http://{shown}:{bound_port}{cfg.web.root_path}/")  # where the archive is
    # uvicorn shuts down cleanly, then re-raises Ctrl-C: here the normal way to stop.
    with contextlib.suppress(KeyboardInterrupt):
        srv = server(app, limits=cfg.web, log_level=log_level)
        exit_on = srv.handle_exit

        def handle_exit(sig: int, frame: Any) -> None:
            # A preview page holds its change events open: end them, or uvicorn would
            # wait for them for good (it installs this as its signal handler in run()).
            closing.set()
            exit_on(sig, frame)

        srv.handle_exit = handle_exit
        srv.run(sockets=[sock])
