"""Site or content folder -> ``Collection`` of ``Article``s.

A blog's content folder works as it is: every ``*.md`` / ``*.markdown`` file below
``content.folder`` (hidden files and folders, and Hugo/Zola section pages ``_index.md``,
are skipped) with

* YAML front matter between ``---`` lines (Jekyll, Hugo),
* TOML front matter between ``+++`` lines (Hugo, Zola; ``[extra]``, ``[params]`` and
  ``[taxonomies]`` tables are read too),
* Pelican-style ``Key: value`` lines up to the first blank line, or no front matter.

Fields (keys are case-insensitive; ``_`` and ``-`` are ignored, so ``image_alt``,
``imageAlt`` and ``image-alt`` are the same key):

* title: ``title``, else the first ``#`` heading (then dropped from ``html``);
* date: ``date``/``publishDate``/``pubDate``/``published``/``created``; else the file
  (or, for ``index.md``, folder) name ``2026-11-20-slug``; else Zola's ``path`` or a
  ``YYYY/MM/DD/`` folder. Dates without a zone are in ``schedule.timezone``;
* draft: ``draft: true``, ``published: false``, ``status: draft|hidden`` or a
  ``_drafts/`` folder;
* url: ``url``/``permalink`` (absolute, or a path below ``newsletter.base_url``), Zola's
  ``path``, else ``<base_url>/<slug>/`` where slug is ``slug`` or the file name without
  date prefix and extension (``index.md``: its folder's name), percent-encoded;
* summary (``summary``/``description``/``excerpt``), author(s), tags/categories (lists,
  or strings split at commas, else at spaces as Jekyll does), image (+ ``image_alt``;
  a mapping with ``src``/``alt`` works too), weight, featured, lang.

Speed: ``load(..., window=...)`` first reads only the head of each file up to the closing
fence and parses flat ``key: value`` YAML with a small exact subset parser (PyYAML only
when the front matter is not trivially flat), then parses Markdown only for the articles
in the chosen window. Problems in the bodies of files outside the window are therefore
only found by a full ``load`` without a window (``digest check``).

The package: ``frontmatter`` (a file's head, parsed once), ``fast_yaml``, ``dates``
(dates and drafts), ``fields`` (one processor per field) and ``html`` (Markdown ->
sanitized HTML); this module walks the folder, picks the window and assembles articles.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ContentError
from ..model import Article, Chooser, Collection, Problem
from ..text import count_words, drop_hidden, inline_text, one_line
from . import dates, fields, html
from .frontmatter import BOM, Head, not_utf8, read_bytes, read_head, too_big

__all__ = ["Article", "Collection", "Problem", "load"]

SUFFIXES = (".md", ".markdown")
# Characters of a body that are parsed, sanitized and handed on (about 15,000 words). The
# email shows a title, a summary and key points, and the longest summary reads
# ``summarize.LOOKAHEAD`` x 500 words; beyond this, the text only counts toward reading
# time. Parsing grows with the text (a 1.6 MB table took seconds per parse and hundreds
# of MB per pass, and ``check`` and each preview refresh parse again), so it stops here.
PARSE_CHARS = 100_000


def load(cfg: Config, *, now: dt.datetime, window: Chooser | None = None) -> Collection:
    """Read every article under ``cfg.content.folder``.

    ``now`` decides what is "future-dated" (skipped and counted). With ``window``, the
    front matter of every file is read first; ``window`` is called once with the dates
    of all publishable articles (not drafts, not future; possibly empty) and returns
    ``(since, until)``; only articles with ``since <= date < until`` are then fully parsed
    and returned. With no ``window`` every file is parsed in full, so that every problem
    is found (``digest check``), and every publishable article is returned. Bad files
    become ``problems``, never exceptions.
    """
    folder = Path(cfg.content.folder)
    if not folder.is_dir():
        raise ContentError(
            folder, "content folder not found; create it or set content.folder in the config"
        )
    tz = cfg.schedule.tz
    if now.tzinfo is None:
        now = now.replace(tzinfo=tz)
    base = cfg.newsletter.base_url.rstrip("/")
    problems: list[Problem] = []
    heads: list[Head] = []
    live: list[Head] = []
    drafts = future = 0
    files, skipped = _walk(str(folder), outside=cfg.content.follow_symlinks_outside)
    problems += skipped
    max_bytes = cfg.content.max_file_kb * 1024
    with _gc_paused():  # the scan only allocates; collecting 10k live heads costs ~10%
        scanned = [_scan(path, rel, tz, max_bytes) for path, rel in files]
    for head in scanned:
        problems += head.problems
        if head.failed:
            continue
        if head.draft:
            drafts += 1
        if head.date is None:
            continue  # a draft without a date: nothing more to check
        heads.append(head)
        if not head.draft:
            if head.date > now:
                future += 1
            else:
                live.append(head)
    dates = sorted(h.date for h in live if h.date is not None)
    span = window(dates) if window is not None else None
    if span is None:
        chosen, todo = live, heads
    else:
        since, until = span
        chosen = [h for h in live if h.date is not None and since <= h.date < until]
        todo = chosen
    keep = {id(h) for h in chosen}
    articles: list[Article] = []
    for head in todo:
        seen = len(head.problems)
        art = _parse(head, base, max_bytes)
        problems += head.problems[seen:]
        if art is not None and id(head) in keep:
            articles.append(art)
    articles.sort(key=lambda a: (-a.date.timestamp(), str(a.path)))
    shown = _Shown()
    problems = [
        Problem(shown(p.path), p.line, p.message, p.level)
        for p in sorted(problems, key=lambda p: (str(p.path), p.line or 0))
    ]
    return Collection(
        articles=tuple(articles),
        problems=tuple(problems),
        files=len(files),
        drafts=drafts,
        future=future,
        outside=len(live) - len(chosen),
        oldest=dates[0] if dates else None,
        newest=dates[-1] if dates else None,
        window=span,
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Shown:
    """Paths in messages: relative to the working directory when below it."""

    def __init__(self) -> None:
        self.cwd = Path.cwd()

    def __call__(self, path: Path) -> Path:
        try:
            return path.relative_to(self.cwd)
        except ValueError:
            return path


def _walk(folder: str, *, outside: bool = False) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(path, posix path relative to ``folder``) of every content file, sorted, and a
    warning for each link skipped.

    Hidden files and folders are skipped; symlinked folders are followed once (a loop
    of links is not followed around); only regular files are read. A link (to a file or
    a folder) whose target lies outside ``folder`` is skipped with a warning unless
    ``outside``: a post-shaped link to ``~/.ssh/id_rsa`` would otherwise be mailed to
    every reader. Only links cost a ``realpath``: ``DirEntry.is_symlink`` comes with the
    directory listing. A link to a file is read through its resolved path (which the
    reader opens with ``O_NOFOLLOW``), so swapping it for another link later reads nothing.
    """
    found: list[tuple[str, str]] = []
    skipped: list[Problem] = []
    root = os.path.realpath(folder)
    inside = root.rstrip(os.sep) + os.sep
    stack = [(folder, "")]
    seen: set[tuple[int, int]] = set()
    while stack:
        here, rel = stack.pop()
        try:
            st = os.stat(here)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(here))
        except OSError:
            continue
        for e in entries:
            name = e.name
            if name.startswith("."):
                continue
            try:
                path = e.path
                if e.is_symlink():
                    real = os.path.realpath(path)
                    if not outside and real != root and not real.startswith(inside):
                        if e.is_dir() or name.lower().endswith(SUFFIXES):
                            skipped.append(_outside(path, real))
                        continue
                    if not e.is_dir():
                        path = real
                if e.is_dir():
                    stack.append((e.path, f"{rel}{name}/"))
                elif (
                    name.lower().endswith(SUFFIXES)
                    and not name.startswith("_index.")
                    and e.is_file()
                ):
                    found.append((path, rel + name))
            except OSError:
                continue
    found.sort(key=lambda f: f[1])
    return found, skipped


def _outside(link: str, target: str) -> Problem:
    return Problem(
        Path(link),
        None,
        f"skipped: a link to {target}, outside the content folder; move the file into "
        "the folder, or set content.follow_symlinks_outside = true to read it",
        "warning",
    )


def _count_words(text: str) -> int:
    """``count_words`` in 1 MB pieces cut at whitespace: memory stays flat."""
    total, at = 0, 0
    while at < len(text):
        end = at + (1 << 20)
        if end < len(text):
            space = max(text.rfind(" ", at, end), text.rfind("\n", at, end))
            end = space + 1 if space > at else end
        total += count_words(text[at:end])
        at = end
    return total


def _scan(path: str, rel: str, tz: dt.tzinfo, max_bytes: int) -> Head:
    """The head of a file: its metadata, date and draft state."""
    head = read_head(path, rel, max_bytes)
    if not head.failed:
        dates.date_and_draft(head, tz)
    return head


def _parse(head: Head, base: str, max_bytes: int) -> Article | None:
    """Read the whole file and make the Article, or add problems and return None.

    Only the first ``PARSE_CHARS`` of the body are parsed (cut at a line break); the
    rest is counted for reading time."""
    try:
        raw = read_bytes(head.path, max_bytes + 1).removeprefix(BOM)
    except OSError as exc:
        head.problem(f"cannot read the file: {exc.strerror or exc}")
        return None
    if len(raw) > max_bytes:  # grew since its head was read
        too_big(head, os.stat(head.path).st_size, max_bytes)
        return None
    body_bytes = raw[head.body_at :]
    try:
        body = body_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = head.body_line + body_bytes[: exc.start].count(b"\n")
        head.problem(not_utf8(body_bytes, exc), line)
        return None
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not raw.strip():
        head.problem("empty file; write a title and some text, or delete it")
        return None
    rest = ""
    if len(body) > PARSE_CHARS:
        cut = body.rfind("\n", 0, PARSE_CHARS) + 1 or PARSE_CHARS
        body, rest = body[:cut], body[cut:]
        head.warn(
            f"only the first {cut:,} characters of the text are read (the email shows a "
            f"summary); the other {len(rest):,} count toward reading time only",
            head.body_line + body.count("\n"),
        )
    md = html.markdown()
    env: dict[str, Any] = {}
    tokens = md.parse(body, env)

    title = fields.text_field(head, "title")
    if title is not None:
        title = drop_hidden(title)
    if title is None:
        if len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
            title = one_line(inline_text(tokens[1]))
            tokens = tokens[3:]  # the title is shown apart from the body
        else:
            for i, tok in enumerate(tokens):
                if tok.type == "heading_open" and tok.tag == "h1":
                    title = one_line(inline_text(tokens[i + 1]))
                    break
    title = one_line(title or "")
    if not title:
        head.problem(
            "no title; add 'title: ...' to the front matter or start the text with '# Title'",
            head.fm_line if head.kind else 1,
        )
        return None

    stem, _folders = dates.stem_of(head.rel)
    _day, name_slug, _looked = dates.name_date(stem)
    slug = fields.text_field(head, "slug")
    slug = one_line(slug).strip("/").replace(" ", "-") if slug else name_slug.replace(" ", "-")
    url = fields.url(head, base, slug)
    absolute = html.link_resolver(head, body, url)
    body_html = html.to_html(head, tokens, env, absolute)
    image, image_alt = fields.image(head, url, absolute)
    values = {name: read(head) for name, read in fields.PROCESSORS.items()}
    if not body.strip():
        head.warn("the article has no text below its front matter", head.body_line)
    return Article(
        path=Path(head.path),
        slug=slug,
        title=title,
        date=head.date,  # type: ignore[arg-type]
        url=url,
        body=body,
        html=body_html,
        image=image,
        image_alt=image_alt,
        draft=head.draft,
        words=html.words(tokens) + _count_words(rest),
        **values,
    )
