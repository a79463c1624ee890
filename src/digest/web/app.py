"""Ledger + archive -> the ASGI app (Starlette) that ``digest serve`` runs.

- ``POST /unsubscribe/<token>``: RFC 8058 one-click unsubscribe. The token is the signed
  token of the ``List-Unsubscribe`` header (an opaque id the ledger resolves); the
  address goes on the ledger's suppression list (idempotent) and the answer is 200 with
  no further step.
- ``GET /unsubscribe/<token>``: a confirm page. A GET never unsubscribes (link scanners
  and mail security gateways follow links); its button POSTs back to the same URL.
- ``POST /resubscribe/<token>``: undoes it.
- ``GET /`` and ``GET /issues/<id>/`` (``/issues/<id>/<lang>/``: an edition): the
  archive (``archive``).
- ``GET /preview`` (``digest serve --preview`` only): the editor's live preview.
- With ``subscribe.enabled`` (issue 16): ``GET /subscribe`` (a form), ``POST /subscribe``
  (``email``, optional ``name`` and ``lang``; a hidden honeypot ``website``) records a
  pending signup and mails a confirmation; ``GET /subscribe/confirm/<token>`` is a page
  with a confirm button whose POST adds the reader. Every signup gets the same answer
  (no list disclosure), and the mail goes out after the answer (no timing disclosure).

Every link between pages is relative, so the app and the static archive work under any
prefix (``newsletter.archive_url`` is usually ``https://example.com/newsletter``). With
``web.root_path`` (``"/newsletter"``) every route is answered under that prefix, for a
reverse proxy that passes the path on as it is: ``/newsletter/unsubscribe/<token>``, the
archive at ``/newsletter/`` (``/newsletter`` redirects there).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config
from ..errors import LedgerError
from ..ledger import Ledger
from ..signup import InvalidAddress, RateLimit
from ..signup import confirm as confirm_signup
from ..signup import parse as parse_signup
from ..signup import peek as peek_signup
from ..signup import request as request_signup
from ..tokens import read_token
from .archive import ISSUE_ID, IndexPage, issue_html, published_issue
from .pages import ISSUE_CSP, PAGE_CSP, PREVIEW_CSP, css, page, root_of
from .preview import RELOAD_JS, Watcher, changes, memory_cache, preview_html

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    # The unsubscribe URL carries the reader's token: never send it on as a Referer.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


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


class _InFlight:
    """How many confirmation mails are still being sent after their answer."""

    def __init__(self) -> None:
        self._n = 0
        self._cond = threading.Condition()

    def add(self) -> None:
        with self._cond:
            self._n += 1

    def done(self) -> None:
        with self._cond:
            self._n -= 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Until none is in flight (True), or ``timeout`` seconds (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._n == 0, timeout)


MAX_FORM = 4096  # bytes: a signup form is an address, a name and a language


def _mask(email: str) -> str:
    """``ada@example.com`` -> ``a…@example.com``: enough to recognise one's address."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}…@{domain}" if local else "your address"


# --- the app ---------------------------------------------------------------------------


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 12 else 0


def create_app(
    cfg: Config,
    *,
    secret: str | None,
    preview: bool = False,
    selection: Any = None,
    now: Callable[[], dt.datetime] | None = None,
    closing: threading.Event | None = None,
) -> Starlette:
    """The ASGI app. ``secret`` checks unsubscribe tokens (None: every token is refused).
    ``closing``, once set, ends the preview's change streams (the server is stopping).

    With ``preview``, ``GET /preview`` renders the current content on each request
    (``selection`` and ``now`` as for ``digest check``; query ``?week=``/``?latest=1``).
    """
    secret = secret or None  # an empty secret signs nothing: every token is refused
    ledger_path = Path(cfg.ledger.path)
    prefix = cfg.web.root_path  # "" or "/newsletter"

    def root(request: Request) -> str:
        """The relative link from this page to the archive root, below the prefix."""
        path = request.url.path
        return root_of(path[len(prefix) :] if path.startswith(prefix + "/") else path)

    def respond(
        request: Request,
        name: str,
        status: int = 200,
        *,
        private: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        body = page(cfg, name, root=root(request), noindex=private, **context)
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

    def lookup(token: str) -> str | None:
        def resolve(reader_id: str) -> str | None:
            if not Path(ledger_path).exists():  # no mail sent: no reader (none created)
                return None
            with Ledger(ledger_path, readonly=True) as ledger:
                return ledger.reader(reader_id)

        return read_token(secret, token, resolve)

    async def reader(request: Request) -> tuple[str, str] | HTMLResponse:
        """(token, address) of a link's signed token, or the page for a bad one. The
        token holds an id, not the address: the ledger says whose it is."""
        token = request.path_params["token"]
        email = await run_in_threadpool(lookup, token)
        return (token, email) if email is not None else bad_token(request)

    async def unsubscribe(request: Request) -> Response:
        found = await reader(request)
        if isinstance(found, Response):
            return found
        token, email = found
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
        found = await reader(request)
        if isinstance(found, Response):
            return found
        token, email = found
        await run_in_threadpool(unsuppress, email)
        log.info("resubscribe: one address taken off the suppression list")
        return respond(
            request, "resubscribed.html", private=True, address=_mask(email), token=token
        )

    def unsubscribe_info(request: Request) -> Response:
        return respond(request, "unsubscribe_info.html", private=True)

    index_page = IndexPage(cfg)

    def index(request: Request) -> Response:
        return HTMLResponse(index_page.html(), headers={"cache-control": "no-cache"})

    def issue_redirect(request: Request) -> Response:
        issue_id = request.path_params["issue_id"]
        if not ISSUE_ID.match(issue_id):
            raise HTTPException(404)
        # Relative Location: stays on this host and prefix whatever the Host header says.
        return Response(status_code=308, headers={"location": f"{issue_id}/"})

    def issue(request: Request) -> Response:
        edition = request.path_params.get("lang", "")
        found = published_issue(cfg, request.path_params["issue_id"], edition)
        if found is None:
            raise HTTPException(404)
        return HTMLResponse(
            issue_html(cfg, found),
            headers={"content-security-policy": ISSUE_CSP, "cache-control": "no-cache"},
        )

    def stylesheet(request: Request) -> Response:
        return Response(
            css(cfg), media_type="text/css", headers={"cache-control": "public, max-age=300"}
        )

    cache = memory_cache(cfg) if preview else None
    watcher = Watcher(cfg, closing or threading.Event())
    if preview:
        watcher.start()

    def preview_page(request: Request) -> Response:
        html = preview_html(
            cfg,
            request.query_params,
            selection=selection,
            now=now,
            cache=cache,
            generation=watcher.generation,
        )
        return HTMLResponse(
            html, headers={"content-security-policy": PREVIEW_CSP, "cache-control": "no-store"}
        )

    def preview_script(request: Request) -> Response:
        return Response(
            RELOAD_JS, media_type="text/javascript", headers={"cache-control": "no-cache"}
        )

    def preview_events(request: Request) -> Response:
        return StreamingResponse(
            changes(watcher, _int(request.query_params.get("since"))),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
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

    async def ledger_error(request: Request, exc: Exception) -> Response:
        # A damaged or unreadable ledger: a page that says so (503: try later), and the
        # file and what to do in the log, for whoever runs `digest serve`.
        log.error("%s", exc)
        return respond(
            request,
            "error.html",
            503,
            private=True,
            title="Temporarily unavailable",
            message="This page cannot be shown right now. Please try again later.",
        )

    # -- signup (issue 16) ----------------------------------------------------------------

    sub = cfg.subscribe
    in_flight = _InFlight()
    per_address = RateLimit(sub.per_address_per_hour)
    per_client = RateLimit(sub.per_client_per_hour)

    def client_of(request: Request) -> str:
        if sub.client_header:
            # Set by our own reverse proxy: its last value is the address it saw.
            value = request.headers.get(sub.client_header, "")
            last = value.rsplit(",", 1)[-1].strip()
            if last:
                return last[:64]
        return request.client.host if request.client else "unknown"

    async def form_fields(request: Request) -> dict[str, str] | None:
        """An HTML form's urlencoded fields (at most MAX_FORM bytes), or None."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return None
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        return {k: v[0] for k, v in fields.items() if v}

    def subscribe_form(request: Request, problem: str = "", status: int = 200, **values: str):
        return respond(
            request,
            "subscribe.html",
            status,
            problem=problem,
            email=values.get("email", ""),
            reader_name=values.get("name", ""),
            reader_lang=values.get("lang", "") or request.query_params.get("lang", "")[:35],
        )

    async def subscribe(request: Request) -> Response:
        if request.method != "POST":
            return subscribe_form(request)
        if not per_client.allow(client_of(request)):
            response = respond(
                request,
                "error.html",
                429,
                private=True,
                title="Too many requests",
                message="Too many signups came from your network in the last hour. "
                "Please try again later.",
            )
            response.headers["retry-after"] = "3600"
            return response
        fields = await form_fields(request)
        if fields is None:
            return respond(
                request,
                "error.html",
                400,
                private=True,
                title="This form could not be read",
                message="Send the signup form as a plain HTML form (method post).",
            )
        if fields.get("website", "").strip():  # the honeypot: a bot filled it in
            log.info("signup: honeypot field filled; ignored")
            return respond(request, "subscribe_sent.html", private=True, address="this address")
        try:
            s = parse_signup(
                fields.get("email", ""), fields.get("name", ""), fields.get("lang", "")
            )
        except InvalidAddress:
            return subscribe_form(
                request,
                "That does not look like an email address. Please check it.",
                400,
                **fields,
            )
        # One answer for a new, pending or existing address; the mail (or no mail) goes
        # out after the answer, so its time tells nothing either.
        allowed = per_address.allow(s.email.lower())
        response = respond(request, "subscribe_sent.html", private=True, address=s.email)
        if secret:
            in_flight.add()  # counted before the answer leaves: a waiter never misses it
            response.background = BackgroundTask(signup_task, s, allowed)
        return response

    def signup_task(s: Any, allowed: bool) -> None:
        # A sync function: Starlette runs it in its thread pool, after the answer.
        try:
            request_signup(cfg, secret or "", s, send_mail=allowed)
        finally:
            in_flight.done()

    def confirm_problem(request: Request, outcome: str) -> Response:
        title, message, status = {
            "expired": ("This link has expired", "Confirmation links work for "
                f"{sub.confirm_hours:g} hours. Sign up again to get a new one.", 410),
            "used": ("Already confirmed", "This subscription is confirmed already: "
                "the next issue comes to you.", 200),
        }.get(outcome, ("This link does not work", "The link is incomplete, was changed, "
            "or a newer confirmation email replaced it. Copy the whole link from the "
            "latest email, or sign up again.", 400))  # fmt: skip
        return respond(request, "error.html", status, private=True, title=title, message=message)

    async def subscribe_confirm(request: Request) -> Response:
        token = request.path_params["token"]
        if request.method != "POST":  # GET (a person or a mail scanner): never confirms
            outcome = await run_in_threadpool(peek_signup, cfg, secret, token)
            if outcome != "ok":
                return confirm_problem(request, outcome)
            return respond(request, "subscribe_confirm.html", private=True)
        outcome = await run_in_threadpool(confirm_signup, cfg, secret, token)
        if outcome != "confirmed":
            return confirm_problem(request, outcome)
        return respond(request, "subscribed.html", private=True)

    def prefix_redirect(request: Request) -> Response:
        # "/newsletter" -> "newsletter/": relative, like issue_redirect.
        return Response(status_code=308, headers={"location": prefix.rsplit("/", 1)[1] + "/"})

    routes = [
        Route(prefix + "/", index, methods=["GET"]),
        Route(prefix + "/style.css", stylesheet, methods=["GET"]),
        Route(prefix + "/issues/{issue_id}", issue_redirect, methods=["GET"]),
        Route(prefix + "/issues/{issue_id}/", issue, methods=["GET"]),
        Route(prefix + "/issues/{issue_id}/{lang}/", issue, methods=["GET"]),
        Route(prefix + "/unsubscribe", unsubscribe_info, methods=["GET"]),
        Route(prefix + "/unsubscribe/", unsubscribe_info, methods=["GET"]),
        Route(prefix + "/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route(prefix + "/resubscribe/{token}", resubscribe, methods=["POST"]),
    ]
    if prefix:
        routes.append(Route(prefix, prefix_redirect, methods=["GET"]))
    if sub.enabled:
        routes += [
            Route(prefix + "/subscribe", subscribe, methods=["GET", "POST"]),
            Route(
                prefix + "/subscribe/confirm/{token}", subscribe_confirm, methods=["GET", "POST"]
            ),
        ]
    if preview:
        routes.append(Route(prefix + "/preview", preview_page, methods=["GET"]))
        routes.append(Route(prefix + "/preview/reload.js", preview_script, methods=["GET"]))
        routes.append(Route(prefix + "/preview/events", preview_events, methods=["GET"]))
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, LedgerError: ledger_error},
    )
    # Starlette's slash redirect builds an absolute URL from the Host header; we answer
    # the few paths that need it ourselves, with relative redirects.
    app.router.redirect_slashes = False
    app.add_middleware(SecurityHeaders)
    app.state.signups_in_flight = in_flight  # confirmation mails not yet handed over
    return app
