"""The orchestration every command shares: config -> content -> digest -> render.

``build``, ``check``, ``preview``, ``send``, ``export`` and the scheduler all start from
``prepare()``; the edges (clock, files) are passed in.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import content, digest, render
from .config import Config
from .content import Collection, Problem
from .digest import Issue, Window
from .errors import NothingToSend
from .render import RenderedEmail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Which issue a command acts on: the next one (default), a given week, or the latest."""

    week: str | None = None
    latest: bool = False
    due: bool = False  # the issue whose send time has most recently passed


@dataclass(frozen=True)
class Built:
    issue: Issue
    rendered: RenderedEmail
    collection: Collection
    seconds: float
    findings: tuple[Problem, ...] = field(default=())


def choose_window(
    cfg: Config, now: dt.datetime, sel: Selection, dates: Sequence[dt.datetime] = ()
) -> Window:
    if sel.week:
        return digest.window_for_week(cfg, sel.week)
    if sel.due:
        return digest.due_window(cfg, now)
    if sel.latest:
        past = [d for d in dates if d <= now]
        if not past:
            raise NothingToSend("nothing to send: no published articles in the content folder")
        return digest.window_containing(cfg, max(past))
    return digest.next_window(cfg, now)


def first_window(cfg: Config, col: Collection, fallback: Window) -> Window:
    if cfg.newsletter.first_issue:
        return digest.window_for_week(cfg, cfg.newsletter.first_issue)
    if col.oldest is not None:
        return digest.window_containing(cfg, col.oldest)
    return fallback


def gather(cfg: Config, now: dt.datetime, sel: Selection) -> tuple[Window, Collection]:
    """Read the content folder, parsing in full only the articles of the chosen window."""
    chosen: list[Window] = []

    def choose(dates: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
        chosen.append(choose_window(cfg, now, sel, dates))
        return chosen[0].since, chosen[0].send_at

    col = content.load(cfg, now=now, window=choose)
    return chosen[0], col


def prepare(cfg: Config, now: dt.datetime, sel: Selection = Selection()) -> Built:
    """config -> content -> digest -> render. Raises NothingToSend for an empty week."""
    started = time.perf_counter()
    window, col = gather(cfg, now, sel)
    issue = digest.build_issue(cfg, window, col.articles, first=first_window(cfg, col, window))
    rendered = render.render(issue, cfg)
    return Built(issue, rendered, col, time.perf_counter() - started)


def issue_json(built: Built) -> dict[str, object]:
    issue, r = built.issue, built.rendered
    return {
        "id": issue.id,
        "number": issue.number,
        "send_at": issue.send_at.isoformat(),
        "since": issue.window.since.isoformat(),
        "subject": r.subject,
        "preheader": r.preheader,
        "more": issue.more,
        "articles": [
            {
                "title": i.article.title,
                "url": i.article.url,
                "date": i.article.date.isoformat(),
                "author": i.article.author,
                "group": g.name or None,
                "summary": i.summary.text,
                "key_points": [{"lead": k.lead, "text": k.text} for k in i.summary.key_points],
                "source": i.article.path.name,
            }
            for g in issue.groups
            for i in g.items
        ],
        "sizes": {
            "html_bytes": len(r.html.encode("utf-8")),
            "text_bytes": len(r.text.encode("utf-8")),
        },
    }


def write_build(cfg: Config, built: Built, out: Path | None = None) -> Path:
    """Write ``out/<issue-id>/email.html``, ``email.txt`` and ``issue.json``.

    The files hold the neutral ``generic`` placeholders; nothing here depends on the clock,
    so two builds of the same input are byte-identical.
    """
    folder = (out or cfg.output.folder) / built.issue.id
    folder.mkdir(parents=True, exist_ok=True)
    html, text = built.rendered.fill(GENERIC_VALUES, raw=True)
    _write(folder / "email.html", html)
    _write(folder / "email.txt", text)
    _write(
        folder / "issue.json", json.dumps(issue_json(built), indent=2, ensure_ascii=False) + "\n"
    )
    return folder


# What the build writes in place of personal fields: readable, neutral merge tags.
GENERIC_VALUES = {
    "unsubscribe_url": "{{ unsubscribe_url }}",
    "name": "{{ name }}",
    "first_name": "{{ first_name }}",
    "email": "{{ email }}",
}


def _write(path: Path, data: str) -> None:
    # Write then rename, so a reader never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(data, encoding="utf-8", newline="")
    tmp.replace(path)
