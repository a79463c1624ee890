"""The editor's live preview: ``GET /preview`` renders the current content on request.

Config and templates are re-read each time; a broken file shows its error on the page.
Issue 14: files unchanged since the last request are not read again (a scan cache kept
in memory, ``content/cache.py``), and the page reloads itself when a content file, a
template or the config changes (``changes``: watchfiles, as ``uvicorn --reload`` uses,
sent to the page as server-sent events; ``RELOAD_JS`` listens).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import Config, load
from ..content import gc_paused
from ..content.cache import Cache
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
    cache: Cache | None = None,
    generation: int | None = None,
) -> str:
    """Render the current content (config and templates re-read) into the preview page.

    ``cache``: the scan cache to reuse between requests (None: the output folder's).
    ``generation``: the file watcher's count of changes, read before rendering (None:
    the page does not reload itself)."""
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
        # The cache is shared; two renders at once gain nothing. The collector waits: with
        # 10,000 cached heads alive, its full passes were ~15% of a refresh.
        with _one_at_a_time, gc_paused():
            report = check(fresh, (now or utcnow)(), sel, cache)
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
        generation=generation,
        rendered_at=dt.datetime.now().strftime("%H:%M:%S"),
    )


_one_at_a_time = threading.Lock()


def memory_cache(cfg: Config) -> Cache:
    """The preview's scan cache: read once from the output folder, then kept in memory
    (a refresh after one edit re-reads that file only)."""
    return Cache(Cache.beside(cfg.output.folder).path, persist=False)


def watched(cfg: Config) -> list[Path]:
    """What a preview depends on: the content folder, the editor's notes, the templates
    folder and the config file (those that exist)."""
    paths = [cfg.content.folder, cfg.content.notes_folder, cfg.templates.folder, cfg.source]
    found: list[Path] = []
    for p in paths:
        if p is not None and p.exists() and not any(_below(p, f) for f in found):
            found.append(Path(p))
    return found


def _below(path: Path, folder: Path) -> bool:
    return folder.is_dir() and path.resolve().is_relative_to(folder.resolve())


class Watcher:
    """Counts changes to what the preview reads (``watched``), in a thread, until ``stop``.

    A page is rendered at a ``generation``; its script asks for events since then, so an
    edit made between the render and the script's connection still reloads the page."""

    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        self.cfg = cfg
        self.stop = stop
        self.generation = 0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="digest-watch", daemon=True)
            self._thread.start()
            self._ready.wait(5)  # watching before the first page is rendered

    def _run(self) -> None:
        from watchfiles import DefaultFilter, watch

        # The output folder (our own cache and builds) may sit inside the content folder.
        ignore = DefaultFilter(ignore_paths=[str(self.cfg.output.folder)])
        for batch in watch(
            *watched(self.cfg),
            watch_filter=ignore,
            debounce=200,
            rust_timeout=200,
            yield_on_timeout=True,
            stop_event=self.stop,
        ):
            self._ready.set()
            if batch:
                self.generation += 1


async def changes(watcher: Watcher, since: int, *, ping: float = 15.0) -> AsyncIterator[str]:
    """Server-sent events: ``data: reload`` when something changed after generation
    ``since``, a comment every ``ping`` seconds (so a closed page is noticed). Ends when
    the server is stopping."""
    yield "retry: 1000\n\n"
    quiet = 0.0
    while not watcher.stop.is_set():
        if watcher.generation > since:
            since = watcher.generation
            yield "data: reload\n\n"
        await asyncio.sleep(0.1)
        quiet += 0.1
        if quiet >= ping:
            quiet = 0.0
            yield ": ping\n\n"


# Served as /preview/reload.js (the page allows scripts from itself only): reloads on a
# change. EventSource reconnects by itself after a server restart.
RELOAD_JS = """\
(function () {
  var since = document.currentScript.getAttribute("data-since") || "0";
  var events = new EventSource("preview/events?since=" + encodeURIComponent(since));
  events.onmessage = function () { location.reload(); };
})();
"""
