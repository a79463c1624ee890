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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from ..config import Config
from ..errors import ContentError
from ..i18n import primary
from ..model import Article, Chooser, Collection, Problem
from ..text import count_words, drop_hidden, inline_text, one_line
from . import dates, fields, html, sites, templatecode
from .cache import Cache, Light, Parsed, _copy, gc_paused, light, stamp
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
    heads: list[Head | Light] = []
    live: list[Head | Light] = []
    drafts = future = pages = other_language = 0
    notes, outside = str(cfg.content.notes_folder), cfg.content.follow_symlinks_outside
    max_bytes = cfg.content.max_file_kb * 1024
    stamps: dict[str, tuple[int, int, int, int]] = {}
    # Within cache.pinned() (one `check`: its full read, then the issue's), the folder is
    # walked and stat'ed once.
    walk_key = (str(folder), ctx.suffixes, notes, outside, cfg.content.exclude)
    walked = cache.walked.get(walk_key) if cache is not None else None
    if walked is not None:
        files, skipped, kept, known = walked
    else:
        known = {} if cache is not None else None  # the files' stats, taken by the walk
        files, skipped = _walk(str(folder), ctx.suffixes, skip=notes, outside=outside, stats=known)
        excluded = _excluder(cfg.content.exclude)
        kept = [f for f in files if not excluded(f[1])]
    problems += skipped
    if cache is not None:
        cache.bind(str(tz), max_bytes, PARSE_CHARS, ctx.facts())
    # With a window only its ~10 files are parsed: the others' front matter is dropped as
    # soon as they are scanned (issue 14), and the few parsed are scanned again.
    full = window is None
    scanned: list[Head | Light]
    every_hit = False
    with gc_paused():  # the scan only allocates; collecting 10k live heads costs ~10%
        if cache is None:
            scanned = [_scan(path, rel, tz, ctx, max_bytes) for path, rel in kept]
            if not full:
                scanned = [light(h) for h in scanned]
        else:
            # _scan_cached's common case inline (an unchanged file: its cached scan),
            # ~30% of this loop's time at 10,000 files.
            scanned = []
            entries, hits = cache.entries, 0
            for path, rel in kept:
                now_st = known.get(path) if known is not None else None
                entry = entries.get(path)
                if entry is not None and entry[0] == now_st and entry[1].rel == rel:
                    stamps[path] = entry[0]
                    scanned.append(entry[1])
                    hits += 1
                    continue
                scanned.append(
                    _scan_cached(cache, stamps, path, rel, tz, ctx, max_bytes, known, full)
                )
            cache.hits += hits
            every_hit = hits == len(stamps) == len(cache.entries)
        if cache is not None:
            if not every_hit:  # (every file found in the cache and no more: none gone)
                cache.keep_only(set(stamps))
            if cache.is_pinned:
                cache.walked[walk_key] = (files, skipped, kept, stamps)
    upcoming: list[dt.datetime] = []
    now_utc = now.astimezone(dt.UTC)
    live_at: list[dt.datetime] = []  # the live heads' dates in UTC
    for head in scanned:
        if head.role == OUTSIDE:
            continue
        problems += head.problems
        if head.failed:
            continue
        expired = head.expires is not None and head.expires <= now  # as of `now`, not today
        if head.role in (PAGE, LIST) or expired or (head.date is None and not head.draft):
            pages += 1  # not a post (or no longer published): skipped quietly, never "bad"
            continue
        if head.draft:
            drafts += 1
        if head.date is None:
            continue  # a draft without a date: nothing more to check
        if ctx.language and head.lang and not _in_languages(head.lang, ctx.language):
            other_language += 1
            continue
        heads.append(head)
        if not head.draft:
            at = head.date.astimezone(dt.UTC)
            if at > now_utc:
                future += 1
                upcoming.append(head.date)
            else:
                live.append(head)
                live_at.append(at)
    ctx.heads = scanned
    # Instants in UTC: aware datetimes in different zones call utcoffset() at every
    # comparison (sorting, the window's choice and filter: ~25 ms at 10,000 articles).
    order = sorted(range(len(live)), key=live_at.__getitem__)  # stable, as by timestamp
    dates = [live[i].date for i in order]
    span = window([live_at[i] for i in order]) if window is not None else None
    if span is None:
        chosen, todo = live, heads
    else:
        since, until = (t.astimezone(dt.UTC) for t in span)
        chosen = [h for h, at in zip(live, live_at, strict=True) if since <= at < until]
        todo = chosen
    keep = {id(h) for h in chosen} if articles else set()
    found: list[Article] = []
    urls: list[tuple[str, str]] = []  # (path, url) of every article parsed or cached
    for head in todo:
        st = stamps.get(head.path)
        earlier = cache.parsed(head.path, st, head.rel) if cache is not None and st else None
        wanted = id(head) in keep
        # The last issue's articles are kept whole: unchanged, they are not parsed again.
        kept_whole = (
            cache.article(head.path, st, head.rel)
            if cache is not None and wanted and earlier is not None and st
            else None
        )
        if earlier is not None and (not wanted or kept_whole is not None):
            problems += earlier.problems
            if earlier.url is not None:
                urls.append((head.path, earlier.url))
            if kept_whole is not None:
                found.append(kept_whole)
            continue
        if isinstance(head, Light):  # scanned again for its front matter
            whole = ctx.full(head)
            if whole.failed or whole.role != head.role:  # changed since its stat: as it is now
                problems += [p for p in whole.problems if p not in head.problems]
                continue
        elif cache is not None:
            whole = _copy(head)  # parsing adds problems: the cached head stays as scanned
        else:
            whole = head
        head = whole
        seen = len(head.problems)
        resolved = ctx.resolved
        art = _parse(head, ctx, max_bytes)
        problems += head.problems[seen:]
        if art is not None:
            urls.append((head.path, art.url))
            if wanted:
                found.append(art)
        if cache is not None and st and ctx.resolved == resolved:  # else: depends on others
            url = art.url if art is not None else None
            cache.put_parsed(head.path, st, head.rel, Parsed(tuple(head.problems[seen:]), url))
            if wanted and art is not None and span is not None:  # an issue's: a few
                cache.put_article(head.path, st, head.rel, art)
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
        files=len(files),
        drafts=drafts,
        future=future,
        outside=len(live) - len(chosen),
        oldest=dates[0] if dates else None,
        newest=dates[-1] if dates else None,
        window=span,
        pages=pages,
        other_language=other_language,
        excluded=len(files) - len(kept),
        site=ctx.site.describe(folder.resolve()) if ctx.site else None,
        next_future=min(upcoming) if upcoming else None,
    )


@dataclass
class _Context:
    """What reading one folder needs beyond the config: its site and how to link."""

    base: str  # the articles' base URL
    site: sites.Site | None
    prefix: str  # the content folder's path below the site's root ("" for the root)
    url_pattern: str
    language: str  # the newsletter's (or its editions', space-separated); "" reads all
    syntax: str  # the template code to expand in article text ("": none)
    heads: list[Head | Light] = field(default_factory=list)  # every file read (link targets)
    _targets: dict[str, Head | Light] | None = None
    resolved: int = 0  # links to other files resolved (such a parse is not cached)
    tz: dt.tzinfo = dt.UTC  # the schedule's, for dates without a zone
    max_bytes: int = 1 << 20

    def full(self, head: Light) -> Head:
        """A file kept as its ``Light`` scan, scanned again, front matter and all."""
        return _scan(head.path, head.rel, self.tz, self, self.max_bytes)

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
            for h in self.heads:
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
        found = replace(self.full(found) if isinstance(found, Light) else found, problems=[])
        title = fields.text_field(found, "title") or PurePosixPath(found.rel).stem
        slug = _slug(found)
        return self.url(found, title, slug) or fields.url(found, self.base, slug)


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


def _excluder(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a file (its path below the folder) is in ``content.exclude``, by its name
    or its path. Made once per walk: the patterns' lookup per file was ~5% of a cached
    build at 10,000 files (issue 14)."""
    match = _exclusion(patterns)
    # A pattern that starts with a plain character can only match a name or a path
    # that starts with it (fnmatch is case-sensitive here): most files skip the regex.
    firsts = {p[0] for p in patterns if p}
    if not patterns or firsts & set("*?[\\"):
        firsts = set()

    def excluded(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if firsts and name[:1] not in firsts and rel[:1] not in firsts:
            return False
        return match(name) is not None or match(rel) is not None

    return excluded


@functools.lru_cache(maxsize=8)
def _exclusion(patterns: tuple[str, ...]) -> Callable[[str], object]:
    # One regular expression for all patterns: fnmatch per pattern and file was a third
    # of a cached `check` (issue 14). fnmatch.translate anchors each one at both ends.
    if not patterns:
        return lambda _s: None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def _in_languages(lang: str, languages: str) -> bool:
    """Whether ``lang`` is one of ``languages`` (space-separated), by primary subtag."""
    return primary(lang) in {primary(one) for one in languages.split()}


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


def _walk(
    folder: str,
    suffixes: tuple[str, ...] = SUFFIXES,
    *,
    skip: str = "",
    outside: bool = False,
    stats: dict[str, tuple[int, int, int, int]] | None = None,
) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(path, posix path relative to ``folder``) of every content file, sorted, and a
    warning for each link skipped; with ``stats``, each file's ``stamp`` is put there
    (taken relative to its open folder: a quarter cheaper than by its whole path).

    Hidden files and folders are skipped, and ``skip`` (the editors' notes, which are not
    articles); symlinked folders are followed once (a loop of links is not followed
    around); only regular files are read. A link (to a file or a folder) whose target
    lies outside ``folder`` is skipped with a warning unless ``outside``: a post-shaped
    link to ``~/.ssh/id_rsa`` would otherwise be mailed to every reader. Only links cost a
    ``realpath``: ``DirEntry.is_symlink`` comes with the directory listing. A link to a
    file is read through its resolved path (which the reader opens with ``O_NOFOLLOW``),
    so swapping it for another link later reads nothing.
    """
    found: list[tuple[str, str]] = []
    skipped: list[Problem] = []
    root = os.path.realpath(folder)
    inside = root.rstrip(os.sep) + os.sep
    stack = [(folder, "")]
    seen: set[tuple[int, int]] = set()
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
        try:
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            prefix = here if here.endswith(os.sep) else here + os.sep
            # By its descriptor, an entry's .path is its name alone, and its stat() is
            # an fstatat() relative to the folder.
            entries = list(os.scandir(fd if fd >= 0 else here))
            for e in entries:
                name = e.name
                if name.startswith("."):
                    continue
                try:
                    path = full = prefix + name
                    link = e.is_symlink()
                    if link:
                        real = os.path.realpath(full)
                        if not outside and real != root and not real.startswith(inside):
                            if e.is_dir() or name.lower().endswith(suffixes):
                                skipped.append(_outside(full, real))
                            continue
                        if not e.is_dir():
                            path = real
                    if e.is_dir():
                        if skip and full == skip:
                            continue
                        stack.append((full, f"{rel}{name}/"))
                    elif (
                        name.lower().endswith(suffixes)
                        and not name.startswith("_index.")
                        and e.is_file()
                    ):
                        found.append((path, rel + name))
                        if stats is not None:
                            stats[path] = stamp(os.stat(path) if link else e.stat())
                except OSError:
                    continue
        except OSError:
            continue
        finally:
            if fd >= 0:
                os.close(fd)
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


def _scan_cached(
    cache: Cache,
    stamps: dict[str, tuple[int, int, int, int]],
    path: str,
    rel: str,
    tz: dt.tzinfo,
    ctx: _Context,
    max_bytes: int,
    known: dict[str, tuple[int, int, int, int]] | None = None,
    full: bool = False,
) -> Head | Light:
    """``_scan``, or the cached scan of the file if it is unchanged (by its ``os.stat``,
    or its stamp in ``known``, taken moments ago in the same command). A file scanned
    now is returned whole only if ``full`` (every file is parsed next), else ``Light``:
    memory then grows by a few hundred bytes a file, not by its front matter."""
    st = known.get(path) if known is not None else None
    if st is None:
        try:
            st = stamp(os.stat(path))
        except OSError:
            return _scan(path, rel, tz, ctx, max_bytes)  # it reports the file it cannot read
    stamps[path] = st
    head = cache.head(path, st)
    if head is None or head.rel != rel:
        scanned = _scan(path, rel, tz, ctx, max_bytes)
        cache.put_head(scanned, st)
        return scanned if full else light(scanned)
    return head


def _scan(path: str, rel: str, tz: dt.tzinfo, ctx: _Context, max_bytes: int) -> Head:
    """The head of a file: its metadata, role (post, page, ...), date, draft, language."""
    site = ctx.site
    if site is not None and site.kind(ctx.rel(Head(path, rel)), {}) == OUTSIDE:
        return Head(path, rel, role=OUTSIDE)  # a theme's or tool's file: not read
    head = read_head(path, rel, max_bytes)
    if head.failed:
        return head
    if site is not None:
        head.role = site.kind(ctx.rel(head), head.meta)
    elif _redirect_stub(head):
        head.role = PAGE
    if head.role in (PAGE, LIST):
        return head
    dates.date_and_draft(head, tz)
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


def _parse(head: Head, ctx: _Context, max_bytes: int) -> Article | None:
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
