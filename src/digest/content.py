"""Content folder -> ``list[Article]``.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import Config


@dataclass(frozen=True)
class Problem:
    """A bad file (or a warning about one), reported as ``path:line: message``."""

    path: Path
    line: int | None
    message: str
    level: str = "error"  # "error": file skipped; "warning": file used

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Article:
    path: Path  # the source file
    slug: str
    title: str  # plain text, single line (CR/LF folded to spaces)
    date: dt.datetime  # timezone-aware
    url: str  # absolute
    body: str  # the Markdown body, front matter removed
    html: str  # sanitized HTML of the body; links and images absolute
    summary: str | None = None  # front matter summary/description/excerpt, as written
    author: str | None = None
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    image: str | None = None  # absolute URL
    image_alt: str | None = None
    draft: bool = False
    weight: int = 0
    featured: bool = False
    lang: str | None = None
    words: int = 0  # word count of the body, for reading time

    @property
    def reading_minutes(self) -> int:
        return max(1, round(self.words / 230))


@dataclass(frozen=True)
class Collection:
    """What a content folder yielded: the articles in the window and what was left out."""

    articles: tuple[Article, ...]  # fully parsed, in the window (or all, with no window)
    problems: tuple[Problem, ...] = ()
    files: int = 0  # content files seen
    drafts: int = 0  # skipped as drafts
    future: int = 0  # skipped as dated after `now`
    outside: int = 0  # publishable but outside the window (not fully parsed)
    oldest: dt.datetime | None = None  # over all publishable articles
    newest: dt.datetime | None = None
    window: tuple[dt.datetime, dt.datetime] | None = None  # what the chooser returned


Chooser = Callable[[Sequence[dt.datetime]], tuple[dt.datetime, dt.datetime]]


def load(cfg: Config, *, now: dt.datetime, window: Chooser | None = None) -> Collection:
    """Read every article under ``cfg.content.folder``.

    ``now`` decides what is "future-dated" (skipped and counted). With ``window``, the
    front matter of every file is read first; ``window`` is called once with the dates
    of all publishable articles (not drafts, not future; possibly empty) and returns
    ``(since, until)``; only articles with ``since <= date < until`` are then fully parsed
    and returned. With no ``window`` every publishable article is parsed (``digest
    check``). Bad files become ``problems``, never exceptions.
    """
    raise NotImplementedError("content.load: not yet")
