"""Sent issues in the ledger -> the archive: its index and each issue's web version.

``GET /`` and ``GET /issues/<id>/`` answer with these pages (``/issues/<id>/<lang>/``:
each edition of a newsletter in several languages; ``/issues/<id>/`` is the main one),
and ``digest archive`` writes the same pages as static files (``write_archive``). A web
version shows no personal data and carries no tracking.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from ..config import Config
from ..files import write_atomic
from ..ledger import IssueRecord, Ledger
from ..model import RenderedEmail
from ..templating import environment
from .pages import ISSUE_CSP, css, page, static_csp

log = logging.getLogger(__name__)

# Issue ids become path segments (URLs and archive folders): letters, digits, . _ - only,
# starting with a letter or digit (so never "." or "..").
ISSUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ListedIssue:
    """A sent issue in the archive's index: what the list shows, not the issue itself."""

    id: str
    subject: str
    preheader: str
    date: dt.datetime | None
    # Newsletter in several languages: the editions with a page of their own.
    editions: tuple[str, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class ArchivedIssue(ListedIssue):
    """A sent issue, as frozen in the ledger at its first send."""

    rendered: RenderedEmail
    edition: str = ""  # the language of an edition's own page (issues/<id>/<lang>/)


# What a web version (at issues/<id>/) shows in place of personal fields: nothing about
# any reader. Its unsubscribe link goes to a page that says where the personal link is.
WEB_VALUES = {
    "name": "",
    "first_name": "",
    "email": "",
    "unsubscribe_url": "../../unsubscribe/",
    "web_url": "./",
}


def _listed(
    id_: str, subject: str, preheader: str, created_at: dt.datetime, send_at: str | None
) -> ListedIssue | None:
    """A ledger issue's metadata -> ListedIssue, or None when it cannot be public."""
    if not ISSUE_ID.match(id_):
        log.warning("issue id %r is not usable in a URL; left out of the archive", id_)
        return None
    # Public from the first send on ("sending" or "sent"): from then on readers have it.
    date = dt.datetime.fromisoformat(send_at) if send_at else created_at
    return ListedIssue(id_, subject, preheader, date)


def _archived(record: IssueRecord) -> ArchivedIssue | None:
    """A ledger issue -> ArchivedIssue, or None when it cannot be public."""
    r = record
    listed = _listed(r.id, r.subject, r.preheader, r.created_at, r.send_at)
    if listed is None:
        return None
    return ArchivedIssue(listed.id, listed.subject, listed.preheader, listed.date, r.rendered())


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


_L = TypeVar("_L", bound=ListedIssue)


def newest_first(issues: list[_L]) -> list[_L]:
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


def published_issues(cfg: Config) -> list[ListedIssue]:
    """The sent issues in the ledger, newest first, as the index lists them (their HTML
    and text are not read: 260 issues' worth per request made the index 30x slower). No
    ledger file: none (not created)."""
    return _from_rows(*_rows(cfg))


Row = tuple[str, str, str, dt.datetime, str | None]


def _rows(cfg: Config) -> tuple[list[Row], dict[str, list[str]]]:
    """The ledger's issue listing and each issue's edition pages."""
    if not Path(cfg.ledger.path).exists():
        return [], {}
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        return ledger.listed(), ledger.edition_pages()


def _from_rows(rows: list[Row], editions: dict[str, list[str]]) -> list[ListedIssue]:
    found = [_listed(*row) for row in rows]
    return newest_first(
        [
            replace(a, editions=tuple(editions[a.id])) if a.id in editions else a
            for a in found
            if a is not None
        ]
    )


def published_issue(cfg: Config, issue_id: str, edition: str = "") -> ArchivedIssue | None:
    """A sent issue; with ``edition``, that edition of it (None if it had none)."""
    if not ISSUE_ID.match(issue_id) or not Path(cfg.ledger.path).exists():
        return None
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        return _published(ledger, issue_id, edition)


def _published(ledger: Ledger, issue_id: str, edition: str = "") -> ArchivedIssue | None:
    record = ledger.issue(issue_id)
    found = _archived(record) if record is not None else None
    if found is None or not edition:
        return found
    rendered = dict(ledger.editions(issue_id)).get(edition)
    return _edition_page(found, edition, rendered) if rendered is not None else None


def _edition_page(issue: ArchivedIssue, lang: str, rendered: RenderedEmail) -> ArchivedIssue:
    """The page of the issue's edition in ``lang``."""
    return ArchivedIssue(issue.id, rendered.subject, rendered.preheader, issue.date, rendered,
                         lang)  # fmt: skip


def index_html(cfg: Config, issues: list[ListedIssue], *, static: bool = False) -> str:
    return page(cfg, "index.html", root="", static=static, issues=issues)


class IndexPage:
    """The served index, rendered again only when the list of issues or a page template
    changed: rendering 260 issues in the sandbox took ~9 ms, 10x the query (issue 14)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._last: tuple[object, str] | None = None

    def html(self) -> str:
        version = (0, 0)
        if Path(self.cfg.ledger.path).exists():
            with Ledger(self.cfg.ledger.path, readonly=True) as ledger:
                version = ledger.listed_version()
        key = (version, _templates_stamp(self.cfg.templates.folder))
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        html = index_html(self.cfg, _from_rows(*_rows(self.cfg)))
        self._last = (key, html)  # one assignment: a concurrent request sees a whole pair
        return html


def _templates_stamp(folder: Path | None) -> tuple[tuple[str, int], ...]:
    """The user's page templates and their mtimes (ours change only with digest)."""
    if folder is None or not (folder / "web").is_dir():
        return ()
    found = []
    for f in sorted((folder / "web").iterdir()):
        with contextlib.suppress(OSError):
            found.append((f.name, f.stat().st_mtime_ns))
    return tuple(found)


_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def inject(document: str, head: str, body: str) -> str:
    m = _HEAD_END.search(document)
    document = document[: m.start()] + head + document[m.start() :] if m else head + document
    m = _BODY_START.search(document)
    return document[: m.end()] + body + document[m.end() :] if m else body + document


def issue_html(cfg: Config, issue: ArchivedIssue, *, static: bool = False) -> str:
    """The web version of a sent issue: the email itself with the personal fields left
    empty, plus a link back to the archive. Lives at issues/<id>/ (an edition's at
    issues/<id>/<lang>/: one level deeper for its relative links)."""
    up = "../" if issue.edition else ""
    values = {**WEB_VALUES, "unsubscribe_url": up + WEB_VALUES["unsubscribe_url"]}
    html, _ = issue.rendered.fill(values)
    head = (
        '<meta name="referrer" content="no-referrer">\n<link rel="icon" href="data:,">\n'
        # A long URL or word in an article must not make a phone scroll sideways.
        "<style>body{overflow-wrap:anywhere}</style>\n"
    )
    if static:
        head += f'<meta http-equiv="Content-Security-Policy" content="{static_csp(ISSUE_CSP)}">\n'
    nav = (
        environment(cfg.templates.folder, pages=True)
        .get_template("issue_nav.html")
        .render(root=up + "../../", newsletter=cfg.newsletter.name)
    )
    return inject(html, head, nav)


def write_archive(cfg: Config, out: Path) -> list[Path]:
    """Write the archive as static HTML into ``out`` (the same pages ``serve`` answers).

    Files: index.html, style.css, unsubscribe/index.html, issues/<id>/index.html (and
    issues/<id>/<lang>/index.html per edition). Files from earlier runs are overwritten,
    never deleted.
    """
    written: list[Path] = []

    def put(rel: str, text: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)  # a web server never serves half a file
        written.append(path)

    issues = published_issues(cfg)
    put("index.html", index_html(cfg, issues, static=True))
    put("style.css", css(cfg))
    put(
        "unsubscribe/index.html",
        page(cfg, "unsubscribe_info.html", root="../", static=True, noindex=True),
    )
    if not issues:
        return written
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        for listed in issues:  # one issue's HTML in memory at a time
            issue = _published(ledger, listed.id)
            if issue is None:
                continue
            put(f"issues/{issue.id}/index.html", issue_html(cfg, issue, static=True))
            for lang, rendered in ledger.editions(listed.id):  # each read once
                if rendered is not None:
                    page_ = issue_html(cfg, _edition_page(issue, lang, rendered), static=True)
                    put(f"issues/{listed.id}/{lang}/index.html", page_)
    return written
