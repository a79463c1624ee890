"""Ledger + archive -> an ASGI app (Starlette), served by uvicorn: ``digest serve``.

- ``POST /unsubscribe/<token>``: RFC 8058 one-click unsubscribe. The token is the signed
  token of the ``List-Unsubscribe`` header; the address goes on the ledger's suppression
  list (idempotent) and the answer is 200 with no further step.
- ``GET /unsubscribe/<token>``: a confirm page. A GET never unsubscribes (link scanners
  and mail security gateways follow links); its button POSTs back to the same URL.
- ``POST /resubscribe/<token>``: undoes it.
- ``GET /`` and ``GET /issues/<id>/``: the archive of sent issues, their web versions
  with no personal data and no tracking. ``digest archive`` writes the same pages as
  static files (``write_archive``).
- ``GET /preview`` (``digest serve --preview`` only): the editor's live preview.

Every link between pages is relative, so the app and the static archive work under any
prefix (``newsletter.archive_url`` is usually ``https://example.com/newsletter``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Config
from .errors import ConfigError, DigestError
from .files import write_atomic
from .ledger import IssueRecord, Ledger
from .message import read_token, unsubscribe_secret
from .render import RenderedEmail

log = logging.getLogger(__name__)

# --- security headers ------------------------------------------------------------------

# Our own pages: no script at all, styles only from /style.css, forms only to ourselves.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# An issue's web version: the email's inlined styles and its images (absolute URLs of the
# author's site); still no script, no fonts, no frames, no forms.
ISSUE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src http: https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# The editor's preview embeds the email (srcdoc iframes inherit this policy) and has a form.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src http: https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    # The unsubscribe URL carries the reader's token: never send it on as a Referer.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def _static_csp(csp: str) -> str:
    # A <meta> CSP cannot carry frame-ancestors (browsers ignore it there with a warning).
    return "; ".join(p for p in csp.split("; ") if not p.startswith("frame-ancestors"))


class SecurityHeaders:
    """Pure ASGI middleware: adds SECURITY_HEADERS to every response that lacks them,
    including Starlette's own 404/405/500 answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- templates -------------------------------------------------------------------------

_PACKAGE_TEMPLATES = Path(__file__).parent / "templates" / "web"
_REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"


def default_templates() -> Path:
    return _REPO_TEMPLATES if _REPO_TEMPLATES.is_dir() else _PACKAGE_TEMPLATES


@lru_cache(maxsize=8)
def environment(user_folder: Path | None = None) -> jinja2.Environment:
    """The web pages' Jinja environment: autoescape everywhere, StrictUndefined.

    ``<templates.folder>/web/`` overrides a default page by file name, as the email
    templates do. Kept apart from ``templating.environment``, which has a text-template
    rule (no escaping for ``.txt``) that web pages must never get.
    """
    search = [str(user_folder / "web")] if user_folder else []
    search.append(str(default_templates()))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _css(cfg: Config) -> str:
    env = environment(cfg.templates.folder)
    loader = env.loader
    assert loader is not None
    source, _, _ = loader.get_source(env, "style.css")
    return source


def _root(path: str) -> str:
    """The relative link from the page at ``path`` to the archive root ("", "../", ...)."""
    return "../" * max(0, path.count("/") - 1)


def page(cfg: Config, name: str, *, root: str, static: bool = False, **context: Any) -> str:
    """Render one of our own pages (templates/web/<name>)."""
    return (
        environment(cfg.templates.folder)
        .get_template(name)
        .render(
            lang=cfg.newsletter.language,
            newsletter=cfg.newsletter.name,
            root=root,
            meta_csp=_static_csp(PAGE_CSP) if static else "",
            noindex=context.pop("noindex", False),
            **context,
        )
    )


# --- the archive -----------------------------------------------------------------------

# Issue ids become path segments (URLs and archive folders): letters, digits, . _ - only,
# starting with a letter or digit (so never "." or "..").
_ISSUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ArchivedIssue:
    """A sent issue, as frozen in the ledger at its first send."""

    id: str
    subject: str
    preheader: str
    date: dt.datetime | None
    rendered: RenderedEmail


# What a web version (at issues/<id>/) shows in place of personal fields: nothing about
# any reader. Its unsubscribe link goes to a page that says where the personal link is.
WEB_VALUES = {
    "name": "",
    "first_name": "",
    "email": "",
    "unsubscribe_url": "../../unsubscribe/",
    "web_url": "./",
}


def _archived(record: IssueRecord) -> ArchivedIssue | None:
    """A ledger issue -> ArchivedIssue, or None when it cannot be public."""
    if not _ISSUE_ID.match(record.id):
        log.warning("issue id %r is not usable in a URL; left out of the archive", record.id)
        return None
    # Public from the first send on ("sending" or "sent"): from then on readers have it.
    date = record.created_at
    if record.send_at:
        date = dt.datetime.fromisoformat(record.send_at)
    return ArchivedIssue(record.id, record.subject, record.preheader, date, record.rendered())


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def newest_first(issues: list[ArchivedIssue]) -> list[ArchivedIssue]:
    """Newest issue first, by its scheduled send time, then its id.

    Not by when it was sent: an older week sent late by hand (``digest send --week``)
    belongs below the weeks after it. Send times compare as instants (UTC), not as
    strings: winter and summer time carry different offsets. The id breaks ties only
    (ISO week ids sort by year, then week, so ``2025-W52`` < ``2026-W01``).
    """
    return sorted(
        issues,
        key=lambda i: (i.date.astimezone(dt.UTC) if i.date else _EPOCH, i.id),
        reverse=True,
    )


def published_issues(cfg: Config) -> list[ArchivedIssue]:
    """The sent issues in the ledger, newest first. No ledger file: none (not created)."""
    if not Path(cfg.ledger.path).exists():
        return []
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        found = [_archived(record) for record in ledger.issues()]
    return newest_first([a for a in found if a is not None])


def published_issue(cfg: Config, issue_id: str) -> ArchivedIssue | None:
    if not _ISSUE_ID.match(issue_id) or not Path(cfg.ledger.path).exists():
        return None
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        record = ledger.issue(issue_id)
    return _archived(record) if record is not None else None


def index_html(cfg: Config, issues: list[ArchivedIssue], *, static: bool = False) -> str:
    return page(cfg, "index.html", root="", static=static, issues=issues)


_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def _inject(document: str, head: str, body: str) -> str:
    m = _HEAD_END.search(document)
    document = document[: m.start()] + head + document[m.start() :] if m else head + document
    m = _BODY_START.search(document)
    return document[: m.end()] + body + document[m.end() :] if m else body + document


def issue_html(cfg: Config, issue: ArchivedIssue, *, static: bool = False) -> str:
    """The web version of a sent issue: the email itself with the personal fields left
    empty, plus a link back to the archive. Lives at issues/<id>/."""
    html, _ = issue.rendered.fill(WEB_VALUES)
    head = (
        '<meta name="referrer" content="no-referrer">\n<link rel="icon" href="data:,">\n'
        # A long URL or word in an article must not make a phone scroll sideways.
        "<style>body{overflow-wrap:anywhere}</style>\n"
    )
    if static:
        head += f'<meta http-equiv="Content-Security-Policy" content="{_static_csp(ISSUE_CSP)}">\n'
    nav = (
        environment(cfg.templates.folder)
        .get_template("issue_nav.html")
        .render(root="../../", newsletter=cfg.newsletter.name)
    )
    return _inject(html, head, nav)


def write_archive(cfg: Config, out: Path) -> list[Path]:
    """Write the archive as static HTML into ``out`` (the same pages ``serve`` answers).

    Files: index.html, style.css, unsubscribe/index.html, issues/<id>/index.html. Files
    from earlier runs are overwritten, never deleted.
    """
    issues = published_issues(cfg)
    files = {
        "index.html": index_html(cfg, issues, static=True),
        "style.css": _css(cfg),
        "unsubscribe/index.html": page(
            cfg, "unsubscribe_info.html", root="../", static=True, noindex=True
        ),
    }
    for issue in issues:
        files[f"issues/{issue.id}/index.html"] = issue_html(cfg, issue, static=True)
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)  # a web server never serves half a file
        written.append(path)
    return written


# --- unsubscribe -----------------------------------------------------------------------


def _mask(email: str) -> str:
    """``ada@example.com`` -> ``a…@example.com``: enough to recognise one's address."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}…@{domain}" if local else "your address"


class Tokens:
    """Reads the signed unsubscribe tokens of ``message.make_token``."""

    MAX_LEN = 1024

    def __init__(self, secret: str | None) -> None:
        self._secret = secret or None  # an empty secret signs nothing

    def email(self, token: str) -> str | None:
        if self._secret is None or not token or len(token) > self.MAX_LEN:
            return None
        return read_token(self._secret, token)


# --- the app ---------------------------------------------------------------------------


def create_app(
    cfg: Config,
    *,
    secret: str | None,
    preview: bool = False,
    selection: Any = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Starlette:
    """The ASGI app. ``secret`` checks unsubscribe tokens (None: every token is refused).

    With ``preview``, ``GET /preview`` renders the current content on each request
    (``selection`` and ``now`` as for ``digest check``; query ``?week=``/``?latest=1``).
    """
    tokens = Tokens(secret)
    ledger_path = Path(cfg.ledger.path)

    def respond(
        request: Request,
        name: str,
        status: int = 200,
        *,
        private: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        body = page(cfg, name, root=_root(request.url.path), noindex=private, **context)
        headers = {"cache-control": "no-store" if private else "no-cache"}
        return HTMLResponse(body, status, headers=headers)

    def bad_token(request: Request) -> HTMLResponse:
        # The same answer for a tampered, truncated, foreign or unsigned token: nothing
        # about who is or is not subscribed.
        return respond(
            request,
            "error.html",
            400,
            private=True,
            title="This link does not work",
            message="The link is incomplete or was changed. Copy the whole unsubscribe "
            "link from the email, or use the unsubscribe link in another issue.",
        )

    def suppress(email: str) -> None:
        with Ledger(ledger_path) as ledger:
            ledger.suppress(email, reason="unsubscribe")

    def unsuppress(email: str) -> None:
        with Ledger(ledger_path) as ledger:
            ledger.unsuppress(email)

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        email = tokens.email(token)
        if email is None:
            return bad_token(request)
        if request.method != "POST":  # GET, and the HEAD Starlette adds to it
            return respond(request, "confirm.html", private=True, address=_mask(email))
        # RFC 8058: a POST to this URL is the unsubscribe. Decided: the body is not
        # checked for "List-Unsubscribe=One-Click" (nor parsed: multipart or urlencoded,
        # as the client chose). The RFC has the receiver send that field so a sender can
        # tell a one-click POST from other POSTs to the same URL; here every POST means
        # "unsubscribe" (our confirm button sends the same field anyway). The signed
        # token is what authorises it; link scanners GET or HEAD, a bot that POSTs can send
        # the field as easily. Requiring it would only fail a reader whose client drops
        # or re-encodes the body: still subscribed after asking to leave. (NOTES.md, Web)
        await run_in_threadpool(suppress, email)
        log.info("unsubscribe: one address suppressed")
        return respond(
            request, "unsubscribed.html", private=True, address=_mask(email), token=token
        )

    async def resubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        email = tokens.email(token)
        if email is None:
            return bad_token(request)
        await run_in_threadpool(unsuppress, email)
        log.info("resubscribe: one address taken off the suppression list")
        return respond(
            request, "resubscribed.html", private=True, address=_mask(email), token=token
        )

    def unsubscribe_info(request: Request) -> Response:
        return respond(request, "unsubscribe_info.html", private=True)

    def index(request: Request) -> Response:
        return HTMLResponse(
            index_html(cfg, published_issues(cfg)), headers={"cache-control": "no-cache"}
        )

    def issue_redirect(request: Request) -> Response:
        issue_id = request.path_params["issue_id"]
        if not _ISSUE_ID.match(issue_id):
            raise HTTPException(404)
        # Relative Location: stays on this host and prefix whatever the Host header says.
        return Response(status_code=308, headers={"location": f"{issue_id}/"})

    def issue(request: Request) -> Response:
        found = published_issue(cfg, request.path_params["issue_id"])
        if found is None:
            raise HTTPException(404)
        return HTMLResponse(
            issue_html(cfg, found),
            headers={"content-security-policy": ISSUE_CSP, "cache-control": "no-cache"},
        )

    def stylesheet(request: Request) -> Response:
        return Response(
            _css(cfg), media_type="text/css", headers={"cache-control": "public, max-age=300"}
        )

    def preview_page(request: Request) -> Response:
        html = preview_html(cfg, request.query_params, selection=selection, now=now)
        return HTMLResponse(
            html, headers={"content-security-policy": PREVIEW_CSP, "cache-control": "no-store"}
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 405: "Not allowed"}
        title = titles.get(exc.status_code, "Error")
        message = {
            404: "There is no page at this address.",
            405: "This page does not answer that kind of request.",
        }.get(exc.status_code, "The request could not be handled.")
        response = respond(request, "error.html", exc.status_code, title=title, message=message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/style.css", stylesheet, methods=["GET"]),
        Route("/issues/{issue_id}", issue_redirect, methods=["GET"]),
        Route("/issues/{issue_id}/", issue, methods=["GET"]),
        Route("/unsubscribe", unsubscribe_info, methods=["GET"]),
        Route("/unsubscribe/", unsubscribe_info, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/resubscribe/{token}", resubscribe, methods=["POST"]),
    ]
    if preview:
        routes.append(Route("/preview", preview_page, methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    # Starlette's slash redirect builds an absolute URL from the Host header; we answer
    # the few paths that need it ourselves, with relative redirects.
    app.router.redirect_slashes = False
    app.add_middleware(SecurityHeaders)
    return app


# --- the editor's preview --------------------------------------------------------------

PREVIEW_VALUES = {
    "name": "Ada Lovelace",
    "first_name": "Ada",
    "email": "ada@example.com",
}


def preview_html(
    cfg: Config,
    query: Mapping[str, str],
    *,
    selection: Any = None,
    now: Callable[[], dt.datetime] | None = None,
) -> str:
    """Render the current content (config and templates re-read) into the preview page."""
    from .check import check
    from .config import load
    from .pipeline import Selection

    base = selection or Selection()
    week = (query.get("week") or "").strip() or (None if query.get("latest") else base.week)
    latest = bool(query.get("latest")) if "latest" in query or "week" in query else base.latest
    started = time.perf_counter()
    problem = notice = None
    built = None
    findings: list[Any] = []
    html = text = ""
    try:
        fresh = load(cfg.source) if cfg.source else cfg
        sel = Selection(week=week or None, latest=latest and not week)
        report = check(fresh, (now or _utcnow)(), sel)
        findings = list(report.problems)
        notice = report.notice
        built = report.built
        if built is not None:
            # web_url and postal_address: the render's real defaults.
            values = {**PREVIEW_VALUES, "unsubscribe_url": f"{fresh.unsubscribe_url}/TOKEN"}
            html, text = built.rendered.fill(values)
            # Links open outside the little frames.
            html = _inject(html, '<base target="_blank">\n', "")
    except DigestError as exc:
        problem = str(exc)
    return page(
        cfg,
        "preview.html",
        root="",
        noindex=True,
        built=built,
        findings=findings,
        notice=notice,
        problem=problem,
        html=html,
        text=text,
        html_kb=len(built.rendered.html.encode()) / 1024 if built else 0.0,
        week=week or "",
        latest=latest,
        seconds=time.perf_counter() - started,
        rendered_at=dt.datetime.now().strftime("%H:%M:%S"),
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the server ------------------------------------------------------------------------

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
    """The secret the sends sign unsubscribe tokens with (``message.unsubscribe_secret``).

    From ``unsubscribe.secret_env``; required when mail goes out over SMTP. With the
    outbox transport and no such variable, the development secret the outbox sends keep
    in the ledger, so the links in those .eml files work here too. ``preview`` alone
    needs no secret (None: every token is refused).
    """
    real = cfg.delivery.transport != "outbox"
    try:
        if real or cfg.unsubscribe.secret():
            return unsubscribe_secret(cfg, None, real=True)
        with Ledger(cfg.ledger.path) as ledger:
            return unsubscribe_secret(cfg, ledger, real=False)
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
