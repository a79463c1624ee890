"""The editor's live preview: ``GET /preview`` renders the current content on request.

Config and templates are re-read each time; a broken file shows its error on the page.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..config import Config, load
from ..errors import DigestError
from ..pipeline import Selection, check
from ..text import utcnow
from .archive import inject
from .pages import page

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
        report = check(fresh, (now or utcnow)(), sel)
        findings = list(report.problems)
        notice = report.notice
        built = report.built
        if built is not None:
            # web_url and postal_address: the render's real defaults.
            values = {**PREVIEW_VALUES, "unsubscribe_url": f"{fresh.unsubscribe_url}/TOKEN"}
            html, text = built.rendered.fill(values)
            # Links open outside the little frames.
            html = inject(html, '<base target="_blank">\n', "")
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
