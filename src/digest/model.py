"""The frozen types that cross stages, from an article to a rendered email.

``content`` makes ``Article``s (and ``Problem``s for bad files) into a ``Collection``;
``summarize`` a ``Summary`` per article; ``issue`` a ``Window`` and an ``Issue``; ``render``
a ``RenderedEmail`` with placeholder tokens; ``sending`` fills them per ``Recipient``.
Imports only ``text`` (strings -> strings), never a stage.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from pathlib import Path

from .text import html_data, restore_text
from .values import Frozen
from .window import Window as Window  # re-exported; apart so schedule --next needs no other type


class Problem(Frozen):
    """A bad file (or a warning about one), reported as ``path:line: message``."""

    path: Path
    line: int | None
    message: str
    level: str = "error"  # "error": file skipped; "warning": file used

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


class Article(Frozen):
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


class Collection(Frozen):
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
    pages: int = 0  # published but not posts (pages, index pages, redirect stubs): skipped
    other_language: int = 0  # posts in another language than the newsletter's: skipped
    excluded: int = 0  # matched content.exclude
    site: str | None = None  # the generator found (digest check prints it)
    next_future: dt.datetime | None = None  # the date of the next future-dated article


Chooser = Callable[[Sequence[dt.datetime]], tuple[dt.datetime, dt.datetime]]


class KeyPoint(Frozen):
    lead: str  # the bold lead-in, e.g. "Cost"
    text: str  # the rest of the bullet, plain text


class Summary(Frozen):
    text: str  # plain text, no markup or entities, never cut mid-word
    key_points: tuple[KeyPoint, ...] = ()
    # The front-matter description, plain text, when it is not the summary but adds
    # something to it (a line under the title); "" otherwise.
    standfirst: str = ""


class Item(Frozen):
    article: Article
    summary: Summary


class Group(Frozen):
    name: str  # "" when the issue is not grouped
    items: tuple[Item, ...]


class Note(Frozen):
    """The editor's note of an issue: a Markdown file, as sanitized HTML and as text."""

    path: Path
    html: str
    paragraphs: tuple[str, ...]  # plain text; a list item starts with "- "


class Issue(Frozen):
    id: str
    number: int
    window: Window
    subject: str
    preheader: str
    groups: tuple[Group, ...]
    more: int = 0  # articles in the window beyond the cap (== len(rest))
    lang: str = "en"
    rest: tuple[Article, ...] = ()  # those articles, listed by title after the others
    note: Note | None = None  # the editor's note, shown above the articles
    lead: bool = False  # show the first article larger (the featured one, if any)

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for g in self.groups for i in g.items)

    @property
    def send_at(self) -> dt.datetime:
        return self.window.send_at


# The personal or service-specific fields a template may use. In the rendered output each
# stands as a token of letters and underscores only, which MJML, lxml/premailer and
# URL-escaping all leave alone (a `|`, `{` or `<` would not survive them).
PLACEHOLDERS = ("unsubscribe_url", "web_url", "name", "first_name", "email", "postal_address")
_TOKEN = re.compile(r"__digest_(" + "|".join(PLACEHOLDERS) + r")__")


# What `digest build` (and the "generic" export) writes in place of personal fields:
# readable, neutral merge tags to search and replace.
GENERIC_TAGS = {
    "unsubscribe_url": "{{ unsubscribe_url }}",
    "name": "{{ name }}",
    "first_name": "{{ first_name }}",
    "email": "{{ email }}",
}


def token(name: str) -> str:
    """The token standing for placeholder ``name`` in rendered HTML and text."""
    if name not in PLACEHOLDERS:
        raise KeyError(name)
    return f"__digest_{name}__"


class RenderedEmail(Frozen):
    issue_id: str
    subject: str
    preheader: str
    html: str  # complete document, CSS inlined, with placeholder tokens
    text: str  # plain-text part, with placeholder tokens
    lang: str = "en"
    # Values for placeholders that are not personal (web_url, postal_address); used when
    # a fill() call does not give one.
    defaults: Mapping[str, str] = field(default_factory=dict)
    # Things a sender should know but that do not stop the build (size near the clip
    # limit, an @import that was dropped); `digest check` and `build` print them.
    warnings: tuple[str, ...] = ()
    # ``text`` with the template-syntax characters of content as data tokens (see
    # templating.DATA_TOKEN), for fill(guard=...); "" when content has none.
    marked_text: str = ""

    def fill(
        self, values: Mapping[str, str], *, raw: bool = False, guard: str = ""
    ) -> tuple[str, str]:
        """Return (html, text) with every token replaced.

        ``values`` are HTML-escaped in the HTML part unless ``raw`` (for merge tags, which
        must reach the mail service byte for byte). ``defaults`` are plain text (a postal
        address with ``&`` or ``<``), so they are always escaped there, template syntax as
        character references. ``guard``: characters of content in the text part to put
        between invisible WORD JOINERs (see export).
        """
        merged = {**self.defaults, **values}

        def html_sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if raw and name in values:
                return values[name]
            return html_data(merged.get(name, ""))

        def text_sub(m: re.Match[str]) -> str:
            return merged.get(m.group(1), "")

        text = self.text
        if guard and self.marked_text:
            text = restore_text(self.marked_text, guard)
        return _TOKEN.sub(html_sub, self.html), _TOKEN.sub(text_sub, text)


class Recipient(Frozen):
    email: str  # a validated address (ASCII)
    name: str = ""
    first_name: str = ""  # default: the first word of name
