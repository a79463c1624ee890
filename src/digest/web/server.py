"""The server: a listening socket, uvicorn, and the secret ``digest serve`` checks with."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import socket
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp

from ..config import Config
from ..errors import ConfigError, DigestError
from ..tokens import secret_for
from .app import create_app

log = logging.getLogger(__name__)

_TOKEN_PATH = re.compile(r"^(/(?:un|re)subscribe)/[^?\s]+")


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


def server(app: ASGIApp, *, log_level: str = "info") -> Any:
    """A uvicorn Server for ``app`` (run it with ``.run(sockets=[listen(...)])``)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="off",
        server_header=False,
        proxy_headers=False,  # the client address in the log is the peer's, not a header's
    )
    logging.getLogger("uvicorn.access").addFilter(_RedactTokens())
    return uvicorn.Server(config)


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
    app = create_app(cfg, secret=secret, preview=preview, selection=selection, now=now)
    sock = listen(host or cfg.web.host, cfg.web.port if port is None else port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if on_ready:
        on_ready(f"http://{shown}:{bound_port}/")
    # uvicorn shuts down cleanly, then re-raises Ctrl-C: here the normal way to stop.
    with contextlib.suppress(KeyboardInterrupt):
        server(app, log_level=log_level).run(sockets=[sock])
