"""A file's scan and parse results, kept between runs (issue 14: ``check`` in 1 s, not 10).

Takes a file's path and ``os.stat``; gives back the scan's result without the front
matter (``Light``: role, date, draft, language, problems) and what the full parse found
(its problems and URL), if the file has not changed since. An entry is
keyed by path, size, mtime, ctime and inode; the whole cache by a fingerprint of what
reading depends on (digest's version and the source of the reading code, the site, the
base URL, the time zone, the template-code syntax, the size limit). A different
fingerprint empties it: never trusted across a digest version or a setting change.

The front matter is not kept, nor the ``Article`` of every file (its text and HTML are
most of its size): only the articles of the last issue read (its ~10) are kept whole,
with their summaries (keyed by everything a summary depends on), so building an issue
again after a template or config edit, or after editing one of its posts, reads and
summarizes only what changed. A parse that resolved links to other files (template code
such as ``{% link %}``) depends on them and is not kept.

On disk: ``<output.folder>/.cache/content.pickle``, written atomically, readable only by
its owner; safe to delete. It is a pickle: it lives with the build's other output,
written and read by the same user, who can run code through ``content.summarizer``
anyway; a file that cannot be read is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .. import i18n
from ..model import Article, Problem, Summary
from .frontmatter import Head

FORMAT = 4
# A file changed twice within this many seconds of being cached could keep its size and
# mtime (coarse file system clocks): such fresh files are not cached.
RACY_SECONDS = 2.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection inside: a pass that only allocates (a scan, a render, an
    unpickling) does not pay for collecting its own live objects (~10% at 10,000 heads)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Parsed(NamedTuple):
    """What the full parse of a file found: the problems it added, and its URL (None: no
    article came of it). A tuple: 10,000 of them unpickle in a third of a dataclass's time."""

    problems: tuple[Problem, ...]
    url: str | None


def stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def code_version() -> str:
    """digest's version, its modules' and the reading libraries' files (size and mtime):
    an edited checkout or an upgrade of markdown-it, nh3 or PyYAML invalidates the cache
    like a new release does (the last issue's articles are kept whole)."""
    from .. import __version__
    from ..files import code_stamps

    return "|".join(
        [__version__, str(FORMAT), *code_stamps("digest", "markdown_it", "nh3", "yaml")]
    )


class Cache:
    """Scan and parse results by path. ``path`` None: in memory only."""

    def __init__(self, path: Path | None = None, *, persist: bool = True) -> None:
        self.path = path
        self.persist = persist and path is not None
        self.fingerprint = ""
        self.entries: dict[str, tuple[tuple[int, int, int, int], Light, Parsed | None]] = {}
        # The last issue's articles, whole ((path, name) -> (stat, article)), summaries by key.
        self.articles: dict[tuple[str, str], tuple[tuple[int, int, int, int], Article]] = {}
        self.summaries: dict[str, Summary] = {}
        self.dates: dict[tuple[str, str], str] = {}  # i18n.remember_dates's memo
        self._dates_read = 0
        self._used_articles: set[tuple[str, str]] = set()
        self._used_summaries: set[str] = set()
        self.dirty = False
        self.hits = self.misses = 0
        self._loaded = path is None
        # content.load's walk of the folder, reused while pinned (see pinned()).
        self.walked: dict[tuple[object, ...], Any] = {}
        self.is_pinned = False

    @classmethod
    def beside(cls, output: Path) -> Cache:
        return cls(Path(output) / ".cache" / "content.pickle")

    def bind(self, *facts: Any) -> None:
        """Use the entries made under these facts; empty the cache if they differ."""
        fingerprint = hashlib.sha256(repr((code_version(), facts)).encode()).hexdigest()
        if not self._loaded:
            self._loaded = True
            self._read(fingerprint)
        if fingerprint != self.fingerprint:
            self.fingerprint = fingerprint
            if self.entries or self.articles:
                self.entries, self.articles = {}, {}
                self.dirty = True

    def _read(self, fingerprint: str) -> None:
        assert self.path is not None
        # Unpickling 10,000 entries would run the collector dozens of times.
        with gc_paused():
            try:
                with open(self.path, "rb") as f:
                    header = pickle.load(f)
                    if header[0] != FORMAT:
                        return
                    # Summaries are keyed by all they depend on: kept across settings;
                    # and dates as Babel says them, while it is the same Babel.
                    self.summaries, babel, dates = pickle.load(f)
                    if babel == i18n.babel_stamp():
                        self.dates, self._dates_read = dates, len(dates)
                    if header[1] != fingerprint:
                        return
                    self.entries, self.articles = pickle.load(f)
                    self.fingerprint = fingerprint
            except (
                OSError,
                EOFError,
                pickle.UnpicklingError,
                AttributeError,
                ValueError,
                TypeError,
                IndexError,
            ):
                self.entries, self.articles, self.summaries = {}, {}, {}  # start over
                self.dates = {}

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Within it, the folder is walked and its files stat'ed once: the reads of one
        command (``check`` reads everything, then the issue) see the same files."""
        self.is_pinned = True
        try:
            yield
        finally:
            self.is_pinned = False
            self.walked.clear()

    def head(self, path: str, st: tuple[int, int, int, int]) -> Light | None:
        """The cached scan of an unchanged file (a tuple: shared, never changed)."""
        entry = self.entries.get(path)
        if entry is None or entry[0] != st:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def parsed(self, path: str, st: tuple[int, int, int, int], rel: str) -> Parsed | None:
        """What the full parse of an unchanged file found, read under the same name (a
        file linked under two names has one path, two names and two URLs)."""
        entry = self.entries.get(path)
        ok = entry is not None and entry[0] == st and entry[1].rel == rel
        return entry[2] if entry is not None and ok else None

    def put_head(self, head: Head | Light, st: tuple[int, int, int, int]) -> None:
        if time.time() - st[1] / 1e9 < RACY_SECONDS:
            return
        self.entries[head.path] = (st, light(head), None)
        self.dirty = True

    def put_parsed(
        self, path: str, st: tuple[int, int, int, int], rel: str, parsed: Parsed
    ) -> None:
        entry = self.entries.get(path)
        if entry is not None and entry[0] == st and entry[1].rel == rel and entry[2] is None:
            self.entries[path] = (st, entry[1], parsed)
            self.dirty = True

    def article(self, path: str, st: tuple[int, int, int, int], rel: str) -> Article | None:
        """The whole article of an unchanged file parsed in full before (the last issue's),
        by its path and name: a post linked under two names is two articles."""
        entry = self.articles.get((path, rel))
        if entry is None or entry[0] != st:
            return None
        self._used_articles.add((path, rel))
        return entry[1]

    def put_article(
        self, path: str, st: tuple[int, int, int, int], rel: str, article: Article
    ) -> None:
        entry = self.entries.get(path)
        if entry is not None and entry[0] == st:  # (not a racy file: see put_head)
            self.articles[(path, rel)] = (st, article)
            self._used_articles.add((path, rel))
            self.dirty = True

    def summary(self, key: str) -> Summary | None:
        found = self.summaries.get(key)
        if found is not None:
            self._used_summaries.add(key)
        return found

    def put_summary(self, key: str, summary: Summary) -> None:
        self.summaries[key] = summary
        self._used_summaries.add(key)
        self.dirty = True

    def keep_only(self, paths: set[str]) -> None:
        """Forget files that are gone."""
        gone = [p for p in self.entries if p not in paths]
        for p in gone:
            del self.entries[p]
        self.dirty = self.dirty or bool(gone)

    def save(self) -> None:
        """Write the cache if it changed; a failure only costs the next run its speed."""
        if not (self.persist and self.path is not None):
            return
        if not self.dirty and len(self.dates) == self._dates_read:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            # Whole articles and summaries: only those of this run's issue (or editions),
            # when it read one; so they stay a few dozen, whatever the folder holds.
            if self._used_articles:
                self.articles = {
                    p: self.articles[p] for p in self._used_articles if p in self.articles
                }
            if self._used_summaries:
                self.summaries = {
                    k: self.summaries[k] for k in self._used_summaries if k in self.summaries
                }
            with os.fdopen(fd, "wb") as f:
                pickle.dump((FORMAT, self.fingerprint), f, pickle.HIGHEST_PROTOCOL)
                extra = (self.summaries, i18n.babel_stamp(), self.dates)
                pickle.dump(extra, f, pickle.HIGHEST_PROTOCOL)
                pickle.dump((self.entries, self.articles), f, pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            self.dirty, self._dates_read = False, len(self.dates)
        except OSError:
            tmp.unlink(missing_ok=True)


class Light(NamedTuple):
    """A file's scan without its front matter: what choosing the window, counting and
    finding a link's target need. Kept (in memory and in the cache) instead of the
    ``Head``, so both grow by a few hundred bytes a file whatever its front matter, and
    a tuple unpickles in a fifth of a slotted dataclass's time (issue 14). A file to
    parse (the ~10 of an issue) is scanned again for its front matter (``_Context.full``)."""

    path: str
    rel: str
    role: str
    date: dt.datetime | None
    expires: dt.datetime | None
    draft: bool
    lang: str | None
    failed: bool
    problems: tuple[Problem, ...]


def light(head: Head | Light) -> Light:
    if isinstance(head, Light):
        return head
    h = head
    return Light(
        h.path, h.rel, h.role, h.date, h.expires, h.draft, h.lang, h.failed, (*h.problems,)
    )


def _copy(head: Head) -> Head:
    # Every field by name (a positional copy breaks silently when Head gains one).
    return dataclasses.replace(head, meta=dict(head.meta), problems=list(head.problems))
