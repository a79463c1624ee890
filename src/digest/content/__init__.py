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
import fnmatch
import functools
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from ..config import Config
from ..errors import ContentError
from ..i18n import primary
from ..model import Article, Chooser, Collection, Problem
from ..text import count_words, drop_hidden, inline_text, one_line
from . import dates, fields, html, sites, templatecode
from .cache import (
    AS_LIST,
    AS_OUTSIDE,
    AS_PAGE,
    EPOCH,
    MICROSECOND,
    NO_DATE,
    ODD,
    Cache,
    Folder,
    Light,
    Parsed,
    gc_paused,
)
from .frontmatter import BOM, Head, not_utf8, read_bytes, read_head, too_big
from .sites import DRAFT, LIST, OUTSIDE, PAGE

__all__ = ["Article", "Collection", "Problem", "load"]

SUFFIXES = (".md", ".markdown", ".mdx")
# Characters of a body that are parsed, sanitized and handed on (about 15,000 words). The
# email shows a title, a summary and key points, and the longest summary reads
# ``summarize.LOOKAHEAD`` x 500 words; beyond this, the text only counts toward reading
# time. Parsing grows with the text (a 1.6 MB table took seconds per parse and hundreds
# of MB per pass, and ``check`` and each preview refresh parse again), so it stops here.
PARSE_CHARS = 100_000


def load(
    cfg: Config,
    *,
    now: dt.datetime,
    window: Chooser | None = None,
    cache: Cache | None = None,
    articles: bool = True,
) -> Collection:
    """Read every article under ``cfg.content.folder``.

    ``now`` decides what is "future-dated" (skipped and counted). With ``window``, the
    front matter of every file is read first; ``window`` is called once with the dates
    of all publishable articles (not drafts, not future; possibly empty; sorted, as UTC
    instants) and returns
    ``(since, until)``; only articles with ``since <= date < until`` are then fully parsed
    and returned. With no ``window`` every file is parsed in full, so that every problem
    is found (``digest check``), and every publishable article is returned. Bad files
    become ``problems``, never exceptions. Pages that are not posts (by the site's
    generator, or for having no date at all), files in ``content.exclude`` and posts in
    another language than the newsletter's are skipped quietly and counted.

    With ``cache``, unchanged files are not read again (``cache.py``). ``articles=False``
    (``digest check``) returns every problem and count but no articles: a file parsed
    before without a problem and unchanged since is then not parsed again.
    """
    folder = Path(cfg.content.folder)
    if not folder.is_dir():
        raise ContentError(
            folder, "content folder not found; create it or set content.folder in the config"
        )
    tz = cfg.schedule.tz
    if now.tzinfo is None:
        now = now.replace(tzinfo=tz)
    ctx = _Context.of(cfg, folder)
    problems: list[Problem] = []
    notes, outside = str(cfg.content.notes_folder), cfg.content.follow_symlinks_outside
    # Within cache.pinned() (one `check`: its full read, then the issue's), the folder is
    # walked and stat'ed once.
    walk_key = (str(folder), ctx.suffixes, notes, outside, cfg.content.exclude)
    walk = cache.walked.get(walk_key) if cache is not None else None
    if walk is None:
        walk = _walk(
            str(folder), ctx.suffixes, skip=notes, outside=outside,
            stats=cache is not None, excluded=_excluder(cfg.content.exclude),
        )  # fmt: skip
        if cache is not None and cache.is_pinned:
            walk.folders = list(walk.folders)
            cache.walked[walk_key] = walk
    if cache is not None:
        cache.bind(str(tz), ctx.max_bytes, PARSE_CHARS, ctx.facts())
    store = cache if cache is not None else Cache()  # (without one: in memory)
    # With a window only its ~10 files are parsed. The others' scans are read folder by
    # folder, counted and let go (cache.Folder; issue 14): what stays is a folder's
    # path and its posts' range of dates, and 8 bytes a post for choosing the window.
    # The window's folders are read again, and its few files scanned again. Without a
    # window (check), every file is parsed: the folders stay, and the files scanned now
    # are kept whole for it.
    full = window is None
    held = full or not store.persist  # the folders stay in memory during this read
    fresh: dict[tuple[str, str], Head] = {}
    heres: list[str] = []
    scans: list[Folder | None] = []  # by folder number k (None: let go; store.folder)
    spans = array("q")  # folder k's live posts' first and last instant: [2k], [2k + 1]
    tally = _Tally(now, ctx.language)
    heads: list[tuple[int, int]] = []  # (folder, row): in the newsletter's language(s)
    live_f, live_i = array("l"), array("l")  # (without a window: every live post's)
    listed = hits = misses = 0
    with gc_paused():  # the scan only allocates; collecting 10k live heads costs ~10%
        for f in walk.folders:
            k = len(heres)
            heres.append(f.here)
            listed += f.size
            known = store.folder(f.here)
            if known is not None and f.same_files(known):
                scan = known  # the common case: the folder's files are unchanged
                hits += f.size
            else:
                scan, fewer = _scan_folder(f, known, ctx, fresh if full else None)
                hits, misses = hits + fewer, misses + f.size - fewer
                store.put_folder(scan)
            live = tally.rows(scan, heads if full else None, k)
            spans.extend(tally.span if live else (1, 0))
            if full and live:
                live_f.extend([k] * len(live))
                live_i.extend([i for i, _at in live])
            scans.append(scan if held else None)
        if cache is not None:
            cache.hits, cache.misses = cache.hits + hits, cache.misses + misses
            cache.keep_folders(set(heres))
    problems += walk.skipped
    problems += tally.problems
    touched: set[int] = set()  # folders whose parse results changed

    def folder_of(k: int) -> Folder:
        f = scans[k]
        if f is None:  # read again (a folder of the window, a link's target)
            f = scans[k] = store.folder(heres[k])
            if f is None:
                raise ContentError(Path(heres[k]), "the scan cache changed while read; run again")
        return f

    ctx.folders = lambda: [folder_of(k) for k in range(len(heres))]
    live_at = tally.live
    span = window(_Instants(live_at)) if window else None
    if span is None:
        chosen = [(live_f[j], live_i[j]) for j in range(len(live_at))] if articles else []
        todo = heads
    else:
        since, until = ((t.astimezone(dt.UTC) - EPOCH) // MICROSECOND for t in span)
        chosen = []
        for k in range(len(heres)):
            if spans[2 * k] < until and spans[2 * k + 1] >= since:  # the window's, again
                rows = _Tally(now, ctx.language).rows(folder_of(k), None, k)
                chosen += [(k, i) for i, at in rows if since <= at < until]
        todo = chosen
    keep = set(chosen) if articles else set()
    found: list[Article] = []
    urls: list[tuple[str, str]] = []  # (path, url) of every article parsed or cached
    for k, i in todo:
        f = folder_of(k)
        path, rel = f.path(i), f.rel_of(i)
        st = f.stamp(i) if cache is not None else None  # None: not cached (or racy)
        earlier = f.parsed(i) if st is not None else None
        wanted = (k, i) in keep
        # The last issue's articles are kept whole: unchanged, they are not parsed again.
        kept_whole = (
            cache.article(path, st, rel)
            if cache is not None and wanted and earlier is not None and st is not None
            else None
        )
        if earlier is not None and (not wanted or kept_whole is not None):
            problems += earlier.problems
            if earlier.url is not None:
                urls.append((path, earlier.url))
            if kept_whole is not None:
                found.append(kept_whole)
            continue
        head = fresh.pop((path, rel), None)  # scanned by this call: whole
        if head is None:  # scanned again for its front matter
            scanned = f.light(i)
            head = ctx.full(scanned)
            if head.failed or head.role != scanned.role:  # changed since its stat: as now
                problems += [p for p in head.problems if p not in scanned.problems]
                continue
        seen = len(head.problems)
        resolved = ctx.resolved
        art = _parse(head, ctx)
        problems += head.problems[seen:]
        if art is not None:
            urls.append((path, art.url))
            if wanted:
                found.append(art)
        if cache is not None and st is not None and ctx.resolved == resolved:
            # (else its parse depends on other files)
            f.set_parsed(i, Parsed(tuple(head.problems[seen:]), art.url if art else None))
            touched.add(k)
            if wanted and art is not None and span is not None:  # an issue's: a few
                cache.put_article(path, st, rel, art)
    if store.persist:  # (in memory, the record is already the cache's)
        for k in sorted(touched):
            store.put_folder(folder_of(k))
    if span is None:
        problems += _same_urls(urls)
    found.sort(key=lambda a: (-a.date.timestamp(), str(a.path)))
    shown = _Shown()
    problems = [
        Problem(shown(p.path), p.line, p.message, p.level)
        for p in sorted(problems, key=lambda p: (str(p.path), p.line or 0))
    ]
    return Collection(
        articles=tuple(found),
        problems=tuple(problems),
        files=walk.total,
        drafts=tally.drafts,
        future=tally.future,
        outside=len(live_at) - len(chosen) if span is not None else 0,
        oldest=tally.oldest[1] if tally.oldest else None,
        newest=tally.newest[1] if tally.newest else None,
        window=span,
        pages=tally.pages,
        other_language=tally.other_language,
        excluded=walk.total - listed,
        site=ctx.site.describe(folder.resolve()) if ctx.site else None,
        next_future=tally.soonest[1] if tally.soonest else None,
    )


class _Tally:
    """What the scan's rows count to (``rows``, folder by folder): problems, drafts,
    future posts, pages, posts in another language; the live posts' instants (UTC,
    microseconds), and the oldest, newest and next future post as (instant, date)."""

    def __init__(self, now: dt.datetime, language: str) -> None:
        self.now = now
        self.now_us = (now - EPOCH) // MICROSECOND
        self.speaks = _speaker(language)
        self.problems: list[Problem] = []
        self.drafts = self.future = self.pages = self.other_language = 0
        self.live = array("q")
        self.oldest: tuple[int, dt.datetime | None] | None = None
        self.newest: tuple[int, dt.datetime | None] | None = None
        self.soonest: tuple[int, dt.datetime | None] | None = None
        self.span = (1, 0)  # the last folder's live posts' first and last instant

    def rows(self, f: Folder, heads: list[tuple[int, int]] | None, k: int) -> list[tuple[int, int]]:
        """Count folder ``f``'s rows; its live posts as (row, instant); with ``heads``,
        add every row in the newsletter's language(s) to it as (``k``, row). Dates are
        UTC instants in microseconds: comparing aware datetimes in different zones
        calls utcoffset() each time (issue 14)."""
        now, now_us, speaks = self.now, self.now_us, self.speaks
        problems = self.problems
        live: list[tuple[int, int]] = []
        codes, utc, langs, lang_of, odd = f.codes, f.utc, f.langs, f.lang, f.odd
        for i in range(len(codes)):
            code = codes[i]
            if code == ODD:  # problems, an expiry date: the whole scan
                h = odd[i]
                if h.role == OUTSIDE:
                    continue
                problems += h.problems
                if h.failed:
                    continue
                expired = h.expires is not None and h.expires <= now  # as of `now`
                if h.role in (PAGE, LIST) or expired or (h.date is None and not h.draft):
                    self.pages += 1  # not a post (or no longer published): skipped quietly
                    continue
                draft = h.draft
                self.drafts += draft
                if h.date is None:
                    continue  # a draft without a date: nothing more to check
                at, lang = (h.date.astimezone(dt.UTC) - EPOCH) // MICROSECOND, h.lang
            else:
                role = code >> 2
                if role == AS_OUTSIDE:
                    continue
                at, draft = utc[i], bool(code & 1)
                if role in (AS_PAGE, AS_LIST) or (at == NO_DATE and not draft):
                    self.pages += 1
                    continue
                self.drafts += draft
                if at == NO_DATE:
                    continue
                lang = langs[lang_of[i]]
            if lang and not speaks(lang):
                self.other_language += 1
                continue
            if heads is not None:
                heads.append((k, i))
            if draft:
                continue
            if at > now_us:
                self.future += 1
                if self.soonest is None or at < self.soonest[0]:
                    self.soonest = (at, f.date(i))
            else:
                live.append((i, at))
        if live:
            self.live.extend([at for _i, at in live])
            # The first post of the earliest instant, the last of the latest.
            i, first = min(live, key=itemgetter(1))
            if self.oldest is None or first < self.oldest[0]:
                self.oldest = (first, f.date(i))
            i, last = max(reversed(live), key=itemgetter(1))
            if self.newest is None or last >= self.newest[0]:
                self.newest = (last, f.date(i))
            self.span = (first, last)
        return live


@dataclass
class _Context:
    """What reading one folder needs beyond the config: its site and how to link."""

    base: str  # the articles' base URL
    site: sites.Site | None
    prefix: str  # the content folder's path below the site's root ("" for the root)
    url_pattern: str
    language: str  # the newsletter's (or its editions', space-separated); "" reads all
    syntax: str  # the template code to expand in article text ("": none)
    # Every folder's record, in path order (link targets).
    folders: Callable[[], list[Folder]] = list
    _targets: dict[str, Light] | None = None
    resolved: int = 0  # links to other files resolved (such a parse is not cached)
    tz: dt.tzinfo = dt.UTC  # the schedule's, for dates without a zone
    max_bytes: int = 1 << 20

    def full(self, head: Light) -> Head:
        """A file kept as its ``Light`` scan, scanned again, front matter and all."""
        return _scan(head.path, head.rel, self)

    def facts(self) -> tuple[object, ...]:
        """What reading a file depends on beyond the file (the cache's fingerprint)."""
        return (self.base, repr(self.site), self.prefix, self.url_pattern, self.syntax)

    @classmethod
    def of(cls, cfg: Config, folder: Path) -> _Context:
        site = sites.detect(folder) if cfg.content.site == "auto" else None
        prefix = ""
        base = cfg.newsletter.base_url
        if site is not None:
            with contextlib.suppress(ValueError):
                prefix = folder.resolve().relative_to(site.root).as_posix()
            prefix = "" if prefix == "." else prefix
            if cfg.newsletter.base_url_set or not site.base_url:
                site = replace(site, base_url=base.rstrip("/"))
            base = site.base_url
        language = ""
        if cfg.content.other_languages == "skip":
            # One language; none (check's read of a newsletter in several): all its editions'.
            language = cfg.newsletter.language or " ".join(cfg.newsletter.editions)
        syntax: str = cfg.content.template_code
        if syntax == "auto":
            syntax = site.template_syntax if site else ""
        syntax = "" if syntax == "none" else syntax
        url_pattern = cfg.content.url_pattern
        return cls(
            base.rstrip("/"),
            site,
            prefix,
            url_pattern,
            language,
            syntax,
            tz=cfg.schedule.tz,
            max_bytes=cfg.content.max_file_kb * 1024,
        )

    @property
    def suffixes(self) -> tuple[str, ...]:
        # Hugo also reads HTML content files (front matter, then HTML).
        hugo = self.site is not None and self.site.generator == "Hugo"
        return (*SUFFIXES, ".html") if hugo else SUFFIXES

    def rel(self, head: Head | Light) -> str:
        """The file's path below the site's root (below the content folder without one)."""
        return f"{self.prefix}/{head.rel}" if self.prefix else head.rel

    def url(self, head: Head, title: str, slug: str) -> str | None:
        """The URL the site publishes the file at (None: digest's own rule)."""
        if self.url_pattern:
            return _pattern_url(self.url_pattern, self.base, head, title, slug)
        if self.site is None:
            return None
        facts = sites.Facts(self.rel(head), head.meta, title, head.date, head.date_naive)
        return self.site.url(facts, slug)

    def resolve(self, kind: str, target: str, here: Head) -> str | None:
        """The URL of another article named by template code (``{% link %}``, ``ref``,
        ``@/``, ``{filename}``), or None when it is not found."""
        self.resolved += 1
        if self._targets is None:
            self._targets = {}
            rows = [(f.rel + name, f, i) for f in self.folders() for i, name in enumerate(f.names)]
            rows.sort(key=lambda row: row[0])  # by path, as the files are named
            for _rel, f, i in rows:
                h = f.light(i)
                if h.role != OUTSIDE and not h.failed:
                    self._targets.setdefault(self.rel(h), h)
                    self._targets.setdefault(h.rel, h)
                    self._targets.setdefault("post:" + PurePosixPath(h.rel).stem, h)
        target = target.strip().strip("\"'")
        if kind == "static":
            return f"{self.base}/{target.lstrip('/')}"
        found = self._targets.get("post:" + target) if kind == "post" else None
        if found is None:
            here_dir = PurePosixPath(self.rel(here)).parent
            candidates = [target.lstrip("/"), str(here_dir / target)]
            if self.site is not None and self.site.generator in ("Hugo", "Pelican"):
                st = self.site.settings
                # The current file's content folder first (a language's), then the others.
                folders = sorted(
                    [st.get("content_dir") or st.get("path"), *st.get("content_dirs", {}).values()],
                    key=lambda d: not self.rel(here).startswith(f"{d}/"),
                )
                candidates += [f"{d}/{target.lstrip('/')}" for d in folders]
            for c in candidates:
                c = str(PurePosixPath(c))
                for name in (c, c + ".md", c.rstrip("/") + "/index.md"):
                    found = found or self._targets.get(name)
        if found is None:
            return None
        # Read through a copy: a field's warning belongs to that file's own parse, not to
        # this link (and a cached head must not collect one per link to it).
        head = replace(self.full(found), problems=[])
        title = fields.text_field(head, "title") or PurePosixPath(head.rel).stem
        slug = _slug(head)
        return self.url(head, title, slug) or fields.url(head, self.base, slug)


def _slug(head: Head) -> str:
    """A file's slug: its ``slug`` field, else its name without a date prefix."""
    given = fields.text_field(head, "slug")
    if given:
        return one_line(given).strip("/").replace(" ", "-")
    stem, _folders = dates.stem_of(head.rel)
    return dates.name_date(stem)[1].replace(" ", "-")


def _pattern_url(pattern: str, base: str, head: Head, title: str, slug: str) -> str:
    """``content.url_pattern`` filled for one file."""
    rel = PurePosixPath(head.rel)
    when = head.date
    category = fields.terms(head, "categories", "category")
    values = {
        "year": f"{when:%Y}" if when else "",
        "month": f"{when:%m}" if when else "",
        "day": f"{when:%d}" if when else "",
        "slug": slug,
        "stem": rel.stem,
        "title": title,
        "lang": head.lang or "",
        "section": rel.parts[0] if len(rel.parts) > 1 else "",
        "category": category[0] if category else "",
        "path": rel.with_suffix("").as_posix(),
    }
    path = re.sub(
        r"\{(\w+)(?:\|([^{}]*))?\}",  # {name} or {name|default}
        lambda m: (
            values.get(m.group(1)) or m.group(2) or ("" if m.group(1) in values else m.group(0))
        ),
        pattern,
    )
    if re.match(r"^https?://", path, re.I):
        return path
    return f"{base}/{quote(path.lstrip('/'), safe=html.SAFE_PATH)}"


def _excluder(patterns: tuple[str, ...]) -> Callable[[str, str], bool]:
    """Whether a file (its folder's path below the content folder, "" or ending in "/",
    and its name) is in ``content.exclude``, by its name or its path. Made once per
    walk: the patterns' lookup per file was ~5% of a cached build at 10,000 files."""
    match = _exclusion(patterns)
    # A pattern that starts with a plain character can only match a name or a path
    # that starts with it (fnmatch is case-sensitive here): most files skip the regex.
    firsts = {p[0] for p in patterns if p}
    if not patterns or firsts & set("*?[\\"):
        firsts = set()

    def excluded(folder: str, name: str) -> bool:
        if firsts and name[:1] not in firsts and folder[:1] not in firsts:
            return False
        return match(name) is not None or match(folder + name) is not None

    return excluded


@functools.lru_cache(maxsize=8)
def _exclusion(patterns: tuple[str, ...]) -> Callable[[str], object]:
    # One regular expression for all patterns: fnmatch per pattern and file was a third
    # of a cached `check` (issue 14). fnmatch.translate anchors each one at both ends.
    if not patterns:
        return lambda _s: None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def _same_urls(urls: list[tuple[str, str]]) -> list[Problem]:
    """A warning for every article whose URL another article already has."""
    seen: dict[str, str] = {}
    found = []
    for path, url in sorted(urls):
        other = seen.setdefault(url, path)
        if other != path:
            found.append(
                Problem(
                    Path(path), None,
                    f"has the same URL as {Path(other)}: {url}; set a 'slug' or "
                    "'permalink' in one of them, or content.url_pattern",
                    "warning",
                )
            )  # fmt: skip
    return found


class _Shown:
    """Paths in messages: relative to the working directory when below it."""

    def __init__(self) -> None:
        self.cwd = Path.cwd()

    def __call__(self, path: Path) -> Path:
        try:
            return path.relative_to(self.cwd)
        except ValueError:
            return path


# Folders opened by descriptor where the platform can (not Windows): the path-based
# stat of each file is a quarter dearer.
_WALK_BY_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


@dataclass
class _Walk:
    """The content folder's files, folder by folder, as they are walked (or listed, once
    walked: ``cache.pinned``); once walked, the links skipped (warnings) and how many
    content files there are, those excluded by ``content.exclude`` included."""

    folders: Iterable[Folder]
    skipped: list[Problem]
    total: int = 0


def _walk(
    folder: str,
    suffixes: tuple[str, ...] = SUFFIXES,
    *,
    skip: str = "",
    outside: bool = False,
    stats: bool = False,
    excluded: Callable[[str, str], bool] | None = None,
) -> _Walk:
    """Every folder with content files, sorted by path, each with its files (names
    sorted; with ``stats``, their ``stamp``s, taken relative to the open folder: a
    quarter cheaper than by the whole path), one folder at a time: a folder's listing
    is let go before the next one is read.

    Hidden files and folders are skipped, and ``skip`` (the editors' notes, which are not
    articles); symlinked folders are followed once (a loop of links is not followed
    around); only regular files are read. A link (to a file or a folder) whose target
    lies outside ``folder`` is skipped with a warning unless ``outside``: a post-shaped
    link to ``~/.ssh/id_rsa`` would otherwise be mailed to every reader. Only links cost a
    ``realpath``: ``DirEntry.is_symlink`` comes with the directory listing. A link to a
    file is read through its resolved path (which the reader opens with ``O_NOFOLLOW``),
    so swapping it for another link later reads nothing. A file that cannot be stat'ed
    has no stamp (-1s): it is read, and its problem reported.
    """
    walk = _Walk((), [])
    walk.folders = _walking(walk, folder, suffixes, skip, outside, stats, excluded)
    return walk


def _walking(
    walk: _Walk,
    folder: str,
    suffixes: tuple[str, ...],
    skip: str,
    outside: bool,
    stats: bool,
    excluded: Callable[[str, str], bool] | None,
) -> Iterator[Folder]:
    # Depth first, a folder before its subfolders, these by name + "/": the order of
    # the folders' paths below ``folder`` ("a-b/" < "a/" < "a/c/" < "b/").
    skipped = walk.skipped
    root = os.path.realpath(folder)
    inside = root.rstrip(os.sep) + os.sep
    stack = [(folder, "")]
    seen: set[tuple[int, int]] = set()
    blank = (-1, -1, -1, -1)
    while stack:
        here, rel = stack.pop()
        fd = -1
        try:
            if _WALK_BY_FD:
                fd = os.open(here, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                st = os.fstat(fd)
            else:
                st = os.stat(here)
        except OSError:
            continue
        made = None
        try:
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            prefix = here if here.endswith(os.sep) else here + os.sep
            files: list[tuple[str, os.DirEntry[str], str]] = []  # (name, entry, real path)
            below: list[tuple[str, str, str]] = []  # (name + "/", path, rel)
            # By its descriptor, an entry's .path is its name alone, and its stat() is
            # an fstatat() relative to the folder.
            for e in os.scandir(fd if fd >= 0 else here):
                name = e.name
                if name.startswith("."):
                    continue
                try:
                    full = prefix + name
                    real = ""
                    if e.is_symlink():
                        real = os.path.realpath(full)
                        if not outside and real != root and not real.startswith(inside):
                            if e.is_dir() or name.lower().endswith(suffixes):
                                skipped.append(_outside(full, real))
                            continue
                    if e.is_dir():
                        if not (skip and full == skip):
                            below.append((name + "/", full, f"{rel}{name}/"))
                    elif (
                        name.lower().endswith(suffixes)
                        and not name.startswith("_index.")
                        and e.is_file()
                    ):
                        files.append((name, e, real))
                except OSError:
                    continue
            below.sort(reverse=True)  # popped from the end: the first name first
            stack += [(full, sub) for _key, full, sub in below]
            walk.total += len(files)
            if excluded is not None:
                files = [f for f in files if not excluded(rel, f[0])]
            if not files:
                continue
            files.sort(key=lambda f: f[0])
            stamps = array("q")
            if stats:
                for _name, e, real in files:
                    try:
                        s = os.stat(real) if real else e.stat()
                    except OSError:
                        stamps.extend(blank)
                    else:  # Folder.stamps' four numbers a file, inline
                        stamps.extend((s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino))
            links = {i: f[2] for i, f in enumerate(files) if f[2]}
            names = [f[0] for f in files]
            made = Folder(prefix, rel, names, stamps if stats else None, links, scanned=False)
        except OSError:
            continue
        finally:
            if fd >= 0:
                os.close(fd)
        if made is not None:
            yield made


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


def _scan_folder(
    found: Folder, known: Folder | None, ctx: _Context, fresh: dict[tuple[str, str], Head] | None
) -> tuple[Folder, int]:
    """The scans of a folder's files (``found``, as walked): a file unchanged since
    ``known`` (the cache's record of the folder) keeps its scan there, the others are
    scanned now (and kept whole in ``fresh``, if given). Also: how many were kept."""
    scan = Folder(found.here, found.rel, found.names, array("q", found.stamps), found.links)
    rows: dict[str, int] = {}
    if known is not None:
        rows = {name: j for j, name in enumerate(known.names)}
        scan.like(known)
    stamps, kept = found.stamps, 0
    for i, name in enumerate(found.names):
        j = rows.get(name)
        if (
            known is not None and j is not None and stamps[4 * i] >= 0
            and known.stamps[4 * j : 4 * j + 4] == stamps[4 * i : 4 * i + 4]
            and known.links.get(j) == found.links.get(i)
        ):  # fmt: skip
            scan.copy_row(i, known, j)
            kept += 1
            continue
        path, rel = scan.path(i), scan.rel_of(i)
        head = _scan(path, rel, ctx)
        scan.put(i, head)
        if fresh is not None:
            fresh[(path, rel)] = head
    return scan, kept


def _speaker(languages: str) -> Callable[[str], bool]:
    """Whether a post's language is one of ``languages`` (space-separated; "": any), by
    primary subtag; answered once per language."""
    wanted = {primary(one) for one in languages.split()}
    answers: dict[str, bool] = {}

    def speaks(lang: str) -> bool:
        said = answers.get(lang)
        if said is None:
            said = answers[lang] = not wanted or primary(lang) in wanted
        return said

    return speaks


class _Instants(Sequence[dt.datetime]):
    """The live posts' dates for the window's choice, as a sorted sequence of UTC
    datetimes made when read. The instants come in folder order: the first and last
    are found without sorting (what the choosers read); any other sorts them once."""

    def __init__(self, micros: array[int]) -> None:
        self._micros = micros
        self._sorted: list[int] | None = None

    def __len__(self) -> int:
        return len(self._micros)

    def _at(self, k: int) -> int:
        n = len(self._micros)
        if not -n <= k < n:
            raise IndexError(k)
        if self._sorted is None and k in (0, -n):
            return min(self._micros)
        if self._sorted is None and k in (-1, n - 1):
            return max(self._micros)
        if self._sorted is None:
            self._sorted = sorted(self._micros)
        return self._sorted[k]

    def __getitem__(self, k):  # type: ignore[no-untyped-def, override]
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        return EPOCH + dt.timedelta(microseconds=self._at(k))


def _scan(path: str, rel: str, ctx: _Context) -> Head:
    """The head of a file: its metadata, role (post, page, ...), date, draft, language."""
    site = ctx.site
    if site is not None and site.kind(ctx.rel(Head(path, rel)), {}) == OUTSIDE:
        return Head(path, rel, role=OUTSIDE)  # a theme's or tool's file: not read
    head = read_head(path, rel, ctx.max_bytes)
    if head.failed:
        return head
    if site is not None:
        head.role = site.kind(ctx.rel(head), head.meta)
    elif _redirect_stub(head):
        head.role = PAGE
    if head.role in (PAGE, LIST):
        return head
    dates.date_and_draft(head, ctx.tz)
    if head.role == DRAFT:
        head.draft = True
    lang = site.lang(ctx.rel(head), head.meta) if site else _lang(head)
    head.lang = lang if lang and fields.LANG_CODE.match(lang) else None  # else: warned later
    return head


_REDIRECT_KEYS = {"redirect", "redirectto", "redirecturl", "externalurl"}


def _redirect_stub(head: Head) -> bool:
    """Front matter that only sends readers elsewhere (``redirect: /blog/other``)."""
    return bool(_REDIRECT_KEYS & set(head.meta)) and "title" not in head.meta


def _lang(head: Head) -> str | None:
    """A file's language without a site: front matter, ``name.xx.md``, a top ``xx/``."""
    # Quietly: the parse reads the field again and warns about a bad one (fields.lang).
    value = fields.text_field(head, "lang", "language", "locale", warn=False)
    if value:
        return value.replace("_", "-")
    parts = head.rel.split("/")
    m = _NAME_LANG.match(parts[-1])
    if m and m.group(1).lower() in LANGUAGES:
        return m.group(1).lower()
    if len(parts) > 1 and parts[0].lower() in LANGUAGES:
        return parts[0].lower()
    return None


_NAME_LANG = re.compile(r"^.+\.([a-zA-Z]{2})\.(?:md|markdown|mdx)$")
# ISO 639-1: a name.xx.md suffix or a top folder xx/ that is a language (not "v1.2.md").
LANGUAGES = frozenset(
    """aa ab af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr
    ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw
    ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv
    ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr
    ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi
    yo za zh zu""".split()  # noqa: SIM905
)


def _parse(head: Head, ctx: _Context) -> Article | None:
    """Read the whole file and make the Article, or add problems and return None.

    Only the first ``PARSE_CHARS`` of the body are parsed (cut at a line break); the
    rest is counted for reading time."""
    max_bytes = ctx.max_bytes
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
    if head.rel.endswith(".mdx"):
        body = templatecode.mdx(body)
    syntax = ctx.syntax
    if syntax == "go" and head.meta.get("template") is not True:
        syntax = ""  # the Go blog runs text/template only on pages marked "template: true"
    if syntax:
        body = templatecode.expand(
            body, syntax, lambda kind, target: ctx.resolve(kind, target, head)
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

    slug = _slug(head)
    url = ctx.url(head, title, slug) or fields.url(head, ctx.base, slug)
    absolute = html.link_resolver(head, body, url)
    body_html = html.to_html(head, tokens, env, absolute)
    image, image_alt = fields.image(head, url, absolute)
    values = {name: read(head) for name, read in fields.PROCESSORS.items()}
    values["lang"] = values["lang"] or head.lang
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
