"""Content folder -> ``Collection`` of ``Article``s.

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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from .config import Config
from .errors import ContentError


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


class LazyRegex:
    """A regex compiled on first use.

    Big character classes and the rarer date formats cost milliseconds to compile, and
    most runs never need them; start-up time counts in a command-line tool.
    """

    __slots__ = ("_args", "_rx")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)
        self._rx: re.Pattern[str] | None = None

    @property
    def rx(self) -> re.Pattern[str]:
        if self._rx is None:
            self._rx = re.compile(*self._args)
        return self._rx

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.rx.match(text, pos)

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.rx.search(text, pos)

    def findall(self, text: str) -> list[Any]:
        return self.rx.findall(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.rx.finditer(text)

    def sub(self, repl: str, text: str) -> str:
        return self.rx.sub(repl, text)


SUFFIXES = (".md", ".markdown")
_HEAD = 8192  # bytes read first; most front matter ends well before this
_BOM = b"\xef\xbb\xbf"


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
    heads: list[_Head] = []
    live: list[_Head] = []
    drafts = future = 0
    files = _walk(str(folder))
    with _gc_paused():  # the scan only allocates; collecting 10k live heads costs ~10%
        scanned = [_scan(path, rel, tz) for path, rel in files]
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
        art = _parse(head, base)
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


def _walk(folder: str) -> list[tuple[str, str]]:
    """(path, posix path relative to ``folder``) of every content file, sorted.

    Hidden files and folders are skipped; symlinked folders are followed once (a loop
    of links is not followed around); only regular files are read.
    """
    found: list[tuple[str, str]] = []
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
                if e.is_dir():
                    stack.append((e.path, f"{rel}{name}/"))
                elif (
                    name.lower().endswith(SUFFIXES)
                    and not name.startswith("_index.")
                    and e.is_file()
                ):
                    found.append((e.path, rel + name))
            except OSError:
                continue
    found.sort(key=lambda f: f[1])
    return found


# --- reading the head: front matter, date, draft -------------------------------------------


@dataclass(slots=True)
class _Head:
    path: str
    rel: str
    kind: str = ""  # "yaml" | "toml" | "meta" | ""
    fm: str = ""  # the front matter text, LF line ends
    fm_line: int = 1  # file line of the front matter's first line
    body_at: int = 0  # byte offset of the body in raw
    body_line: int = 1  # file line of the body's first line
    meta: dict[str, Any] = field(default_factory=dict)  # normalised keys
    date: dt.datetime | None = None
    draft: bool = False
    failed: bool = False
    problems: list[Problem] = field(default_factory=list)

    def problem(self, message: str, line: int | None = None, level: str = "error") -> None:
        self.problems.append(Problem(Path(self.path), line, message, level))
        if level == "error":
            self.failed = True

    def warn(self, message: str, line: int | None = None) -> None:
        self.problem(message, line, "warning")

    def key_line(self, *names: str) -> int | None:
        """The file line of the first front matter key among ``names`` (normalised)."""
        for i, line in enumerate(self.fm.split("\n")):
            m = _KEY_AT.match(line)
            if m and _norm(m.group(1)) in names:
                return self.fm_line + i
        return self.fm_line if self.kind else None


_KEY_AT = re.compile(r"^\s*[\"']?([A-Za-z_][\w-]*)[\"']?\s*[:=]")
_YAML_END = re.compile(rb"^(?:---|\.\.\.)[ \t]*\r?$", re.M)
_TOML_END = re.compile(rb"^\+\+\+[ \t]*\r?$", re.M)
_BLANK = re.compile(rb"\r?\n[ \t]*\r?\n")
_META_FIRST = re.compile(rb"[A-Za-z][A-Za-z0-9_-]*:[ \t]*\S")
_META_KEYS = {"title", "date", "slug", "tags", "category", "author", "authors", "summary"}


_NORMS: dict[str, str] = {}


def _norm(key: str) -> str:
    n = _NORMS.get(key)
    if n is None:
        n = _NORMS[key] = key.lower().replace("_", "").replace("-", "")
    return n


def _read(path: str, size: int = -1) -> bytes:
    """``size`` bytes (all with -1) of a file; os.read is 4x cheaper than open()."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if size >= 0:
            return os.read(fd, size)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _scan(path: str, rel: str, tz: dt.tzinfo) -> _Head:
    """Read the head of a file (up to the end of its front matter): metadata, date, draft."""
    head = _Head(path, rel)
    try:
        raw = _read(path, _HEAD)
        complete = len(raw) < _HEAD  # os.read on a regular file is short only at the end
        if raw[:3] == _BOM:
            raw = raw[3:]
        first_nl = raw.find(b"\n")
        first = (raw if first_nl < 0 else raw[:first_nl]).rstrip()
        fm_bytes = b""
        if first == b"---" or first == b"+++":
            end_re = _YAML_END if first == b"---" else _TOML_END
            start = first_nl + 1 if first_nl >= 0 else len(raw)
            m = end_re.search(raw, start)
            if m is None and not complete:
                raw, complete = _read(path).removeprefix(_BOM), True
                m = end_re.search(raw, start)
            if m is None:
                fence = first.decode()
                head.problem(
                    f"the front matter opened with {fence!r} on line 1 is never closed; "
                    f"add a line {fence!r} after it",
                    1,
                )
                return head
            head.kind = "yaml" if first == b"---" else "toml"
            fm_bytes = raw[start : m.start()]
            head.fm_line = 2
            end = m.end()
            head.body_at = end + 1 if raw[end : end + 1] == b"\n" else end
            head.body_line = 3 + fm_bytes.count(b"\n")
        elif _META_FIRST.match(raw):
            m = _BLANK.search(raw)
            if m is None and not complete:
                raw, complete = _read(path).removeprefix(_BOM), True
                m = _BLANK.search(raw)
            fm_bytes = raw[: m.start()] if m else raw
            head.kind = "meta"
            head.body_at = m.end() if m else len(raw)
            head.body_line = raw.count(b"\n", 0, head.body_at) + 1
    except OSError as exc:
        head.problem(f"cannot read the file: {exc.strerror or exc}")
        return head
    if complete and not raw.strip():
        head.problem("empty file; write a title and some text, or delete it")
        return head
    try:
        fm = fm_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = head.fm_line + fm_bytes.count(b"\n", 0, exc.start)
        head.problem(_not_utf8(fm_bytes, exc), line)
        return head
    if "\r" in fm:
        fm = fm.replace("\r\n", "\n").replace("\r", "\n")
    head.fm = fm
    kind = head.kind
    if kind == "yaml":
        raw_meta = _yaml(head)
    elif kind == "toml":
        raw_meta = _toml(head)
    elif kind == "meta":
        raw_meta = _pelican(head)
    else:
        raw_meta = {}
    if raw_meta is None:
        return head
    head.meta = _normalise(raw_meta)
    _date_and_draft(head, tz)
    return head


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 (byte 0x{data[exc.start]:02x} on this line); save the file as UTF-8"


# --- YAML ----------------------------------------------------------------------------------

# PyYAML's own timestamp pattern (YAML 1.1), so the fast path and PyYAML agree exactly.
_TIMESTAMP = LazyRegex(
    r"""^(?P<year>[0-9][0-9][0-9][0-9])-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)
    (?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9][0-9]):(?P<second>[0-9][0-9])
    (?:\.(?P<fraction>[0-9]*))?
    (?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)
    (?::(?P<tz_minute>[0-9][0-9]))?))?)?$""",
    re.X,
)
_TIMESTAMP_RESOLVE = LazyRegex(
    r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    re.X,
)
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}


def _timestamp(text: str) -> dt.date | str:
    """PyYAML's timestamp construction; an impossible date stays text (reported later)."""
    try:  # the common shapes, in C; same values as the regex below
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        if len(text) in (19, 20, 25) and text[10] in "T ":
            return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    m = _TIMESTAMP.match(text)
    if m is None:
        return text
    v = m.groupdict()
    try:
        if not v["hour"]:
            return dt.date(int(v["year"]), int(v["month"]), int(v["day"]))
        fraction = int((v["fraction"] or "")[:6].ljust(6, "0"))
        tzinfo: dt.tzinfo | None = None
        if v["tz_sign"]:
            delta = dt.timedelta(hours=int(v["tz_hour"]), minutes=int(v["tz_minute"] or 0))
            tzinfo = dt.timezone(-delta if v["tz_sign"] == "-" else delta)
        elif v["tz"]:
            tzinfo = dt.UTC
        return dt.datetime(
            int(v["year"]),
            int(v["month"]),
            int(v["day"]),
            int(v["hour"]),
            int(v["minute"]),
            int(v["second"]),
            fraction,
            tzinfo=tzinfo,
        )
    except ValueError:
        return text


@functools.cache
def _yaml_loader() -> type:
    """A SafeLoader that reads YAML 1.2-style scalars.

    YAML 1.1 turns ``yes/no/on/off`` into booleans (``title: No`` would become
    ``False``, ``lang: no`` too) and numbers into ints/floats (``title: 1.10`` would lose
    its zero). Here only ``true``/``false`` are booleans and numbers stay text (fields that
    need a number convert it); timestamps stay dates and datetimes.
    """
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [
            (tag, rx)
            for tag, rx in entries
            if tag.rsplit(":", 1)[1] not in ("bool", "int", "float", "value")
        ]
        if kept:
            resolvers[first] = kept
    bool_rx = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
    for first in "tTfF":
        resolvers.setdefault(first, []).insert(0, ("tag:yaml.org,2002:bool", bool_rx))
    Loader.yaml_implicit_resolvers = resolvers

    def construct_bool(loader: Any, node: Any) -> bool:
        return _BOOLS[loader.construct_scalar(node)]

    def construct_timestamp(loader: Any, node: Any) -> dt.date | str:
        return _timestamp(loader.construct_scalar(node))

    Loader.add_constructor("tag:yaml.org,2002:bool", construct_bool)
    Loader.add_constructor("tag:yaml.org,2002:timestamp", construct_timestamp)
    return Loader


_FLAT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FLAT_KEYS: dict[str, bool] = {}  # key -> usable as a plain text key (cached: keys repeat)
_FLAT_ITEM = re.compile(r"( *)- +(.*?) *")
# Characters that make a value more than a plain scalar (quotes, flow collections,
# anchors, tags, block scalars, comments, reserved indicators).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_NOT_SIMPLE = object()


def _plain(text: str) -> Any:
    """Resolve a plain scalar exactly as ``_yaml_loader`` does."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text[0].isdigit() and _TIMESTAMP_RESOLVE.match(text):
        return _timestamp(text)
    return text


def flat_yaml(text: str) -> dict[str, Any] | None:
    """Parse trivially flat YAML front matter, or return None to use PyYAML.

    Handles ``key: value`` lines whose value is a plain or quoted (without escapes)
    scalar or a flow list ``[a, b]`` of such scalars, and block lists of such scalars
    under an empty ``key:``, with the same results as ``_yaml_loader``. Anything else
    (nesting, multi-line values, comments after values, anchors, tags, escapes) returns
    None. A simple regex per line and a few ``in`` tests: ~10 us for a typical front
    matter, against ~150 us for PyYAML.
    """
    out: dict[str, Any] = {}
    list_key: str | None = None  # the key whose block list is being read
    list_indent = -1
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        if line[0] == " " or line[0] == "-":
            m = _FLAT_ITEM.fullmatch(line) if list_key is not None else None
            if m is None:
                return None
            indent = len(m.group(1))
            if list_indent < 0:
                list_indent = indent
                out[list_key] = []  # type: ignore[index]
            elif indent != list_indent:
                return None
            item = _scalar(m.group(2))
            if item is _NOT_SIMPLE:
                return None
            out[list_key].append(item)  # type: ignore[index]
            continue
        list_key, list_indent = None, -1
        key, colon, rest = line.partition(":")
        ok = _FLAT_KEYS.get(key)
        if ok is None:
            # Not a key YAML would read as something other than text (true, null, ...).
            ok = bool(_FLAT_KEY.fullmatch(key)) and key not in _BOOLS and key not in _NULLS
            if len(_FLAT_KEYS) < 10_000:
                _FLAT_KEYS[key] = ok
        if not ok or not colon or (rest and rest[0] != " "):
            return None
        value = rest.strip(" ")
        if not value:
            out[key] = None
            list_key = key
            continue
        if value[0] == "[":
            if value[-1] != "]":
                return None
            inner = value[1:-1]
            items = []
            if inner.strip(" "):
                for part in inner.split(","):
                    part = part.strip(" ")
                    if not part or ":" in part or "#" in part or "]" in part or "{" in part:
                        return None
                    item = _scalar(part)
                    if item is _NOT_SIMPLE:
                        return None
                    items.append(item)
            out[key] = items
            continue
        item = _scalar(value)
        if item is _NOT_SIMPLE:
            return None
        out[key] = item
    return out


def _scalar(value: str) -> Any:
    """A plain or simply quoted scalar, or ``_NOT_SIMPLE``."""
    if not value or "\t" in value:
        return _NOT_SIMPLE
    c = value[0]
    if c not in _INDICATORS:
        if ": " in value or " #" in value or value[-1] == ":" or value == "<<":
            return _NOT_SIMPLE
        return _plain(value)
    if len(value) < 2 or value[-1] != c:
        return _NOT_SIMPLE
    inner = value[1:-1]
    if c == '"':
        return _NOT_SIMPLE if '"' in inner or "\\" in inner else inner
    if c == "'":
        return _NOT_SIMPLE if "'" in inner.replace("''", "") else inner.replace("''", "'")
    return _NOT_SIMPLE


def _yaml(head: _Head) -> dict[str, Any] | None:
    data = flat_yaml(head.fm)
    if data is not None:
        return data
    import yaml

    try:
        data = yaml.load(head.fm, Loader=_yaml_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = head.fm_line + mark.line if mark else head.fm_line
        msg = f"broken YAML front matter: {exc.problem or exc.context}"
        if exc.problem and exc.context and exc.context_mark:
            msg += f" ({exc.context} that starts on line {head.fm_line + exc.context_mark.line})"
        head.problem(msg, line)
        return None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        head.problem(f"broken YAML front matter: {exc}", head.fm_line)
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        head.problem("the front matter is not a list of 'key: value' lines", head.fm_line)
        return None
    return data


_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def _toml(head: _Head) -> dict[str, Any] | None:
    try:
        return tomllib.loads(head.fm)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE.search(msg)
        line = head.fm_line + int(m.group(1)) - 1 if m else head.fm_line
        head.problem(f"broken TOML front matter: {_TOML_LINE.sub('', msg).strip()}", line)
        return None


_META_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*):[ \t]*(.*)$")


def _pelican(head: _Head) -> dict[str, Any] | None:
    """Pelican / Python-Markdown ``Key: value`` metadata (indented lines continue)."""
    data: dict[str, Any] = {}
    last = None
    for line in head.fm.split("\n"):
        m = _META_LINE.match(line)
        if m:
            last = m.group(1).lower()
            data[last] = m.group(2).strip()
        elif last and line[:1] in (" ", "\t"):
            data[last] = f"{data[last]} {line.strip()}".strip()
        else:
            data = {}
            break
    if not data or not (_META_KEYS & set(data)):
        # Not metadata after all: the file starts with ordinary text like "Note: ...".
        head.kind, head.fm, head.body_at, head.body_line = "", "", 0, 1
        return {}
    return data


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Keys normalised; ``[extra]``, ``[params]``, ``[taxonomies]`` fill the gaps."""
    meta = {_norm(str(key)): value for key, value in raw.items()}
    for section in ("taxonomies", "extra", "params"):
        sub = meta.get(section)
        if sub is not None and isinstance(sub, dict):
            for key, value in sub.items():
                meta.setdefault(_norm(str(key)), value)
    return meta


def _first(meta: dict[str, Any], *names: str) -> tuple[str | None, Any]:
    for name in names:
        value = meta.get(name)
        if value is not None and value != "":
            return name, value
    return None, None


# --- dates -------------------------------------------------------------------------------

MONTHS: dict[str, int] = {}
for _num, _names in enumerate(
    (
        "january jan januar janv janvier enero gennaio januari janeiro jänner",
        "february feb februar fév févr février febrero febbraio februari fevereiro",
        "march mar märz mär mrz mars marzo maart março",
        "april apr avril avr abril aprile",
        "may mai mayo maggio mei maio",
        "june jun juni juin junio giugno junho",
        "july jul juli juil juillet julio luglio julho",
        "august aug août agosto augustus",
        "september sep sept septembre septiembre setiembre settembre setembro",
        "october oct oktober okt octobre octubre ottobre oktober outubro",
        "november nov novembre noviembre novembro",
        "december dec dezember dez décembre déc diciembre dicembre dezembro",
    ),
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _num

_TZ = r"(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)"
_TIME = r"(?P<H>\d{1,2})[:.時시h](?P<M>\d{2})(?:[:.分분m](?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
_ISO_DATE = LazyRegex(
    rf"^(?P<y>\d{{4}})(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})"
    rf"(?:(?:[Tt]|\s+|,\s*){_TIME})?\s*{_TZ}?$",
    re.I,
)
_DMY_DATE = LazyRegex(
    rf"^(?P<d>\d{{1,2}})\.\s?(?P<m>\d{{1,2}})\.\s?(?P<y>\d{{4}})(?:,?\s+(?:um\s+)?{_TIME})?"
    rf"(?:\s*Uhr)?\s*{_TZ}?$",
    re.I,
)
_SLASH_DATE = LazyRegex(
    rf"^(?P<a>\d{{1,2}})[/-](?P<b>\d{{1,2}})[/-](?P<y>\d{{4}})(?:,?\s+{_TIME})?\s*{_TZ}?$", re.I
)
_CJK_DATE = LazyRegex(
    r"^(?P<y>\d{4})\s*[年년]\s*(?P<m>\d{1,2})\s*[月월]\s*(?P<d>\d{1,2})\s*[日일]"
    r"(?:\s*[(（]\w[)）])?(?:\s*(?P<H>\d{1,2})\s*[:時시]\s*(?P<M>\d{1,2})\s*[分분]?"
    r"(?:\s*(?P<S>\d{1,2})\s*[秒초]?)?)?$"
)
_NAME_TIME = LazyRegex(
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\s*(?P<ampm>[ap])\.?\s?m\.?)?", re.I
)
_NAME_TZ = LazyRegex(r"(?:^|\s)(Z|UTC|GMT|[+-]\d{2}:?\d{2})\s*$", re.I)


def _zone(text: str | None) -> dt.tzinfo | None:
    if not text:
        return None
    if text.upper() in ("Z", "UTC", "GMT"):
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def _clock(m: re.Match[str] | dict[str, Any]) -> tuple[int, int, int, int]:
    g = m.groupdict() if isinstance(m, re.Match) else m
    if not g.get("H"):
        return 0, 0, 0, 0
    frac = int((g.get("f") or "")[:6].ljust(6, "0"))
    return int(g["H"]), int(g["M"]), int(g.get("S") or 0), frac


def parse_date(value: Any, tz: dt.tzinfo) -> dt.datetime:
    """A front matter date (datetime, date or text in many formats) -> aware datetime.

    Raises ValueError with a message for the user.
    """
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=tz)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date")
    text = " ".join(value.split())
    try:
        when = _parse_date_text(text) if text else None
    except _Ambiguous as exc:
        raise ValueError(str(exc)) from None
    except (ValueError, OverflowError):  # e.g. month 13: the shape was right
        when = None
    if when is None:
        raise ValueError(
            f"cannot read the date {value!r}; write it as 2026-11-20 or "
            "2026-11-20 14:02:03 +0100 (ISO 8601)"
        )
    return when if when.tzinfo else when.replace(tzinfo=tz)


class _Ambiguous(ValueError):
    pass


def _parse_date_text(text: str) -> dt.datetime | None:
    if text[:4].isdigit() and text[4:5] == "-":
        try:  # the common case, in C: 2026-11-20, 2026-11-20T14:02:03+01:00, ...
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    for rx in (_ISO_DATE, _DMY_DATE, _CJK_DATE):
        m = rx.match(text)
        if m:
            g = m.groupdict()
            return dt.datetime(
                int(g["y"]), int(g["m"]), int(g["d"]), *_clock(m), tzinfo=_zone(g.get("tz"))
            )
    m = _SLASH_DATE.match(text)
    if m:
        a, b = int(m["a"]), int(m["b"])
        if a <= 12 and b <= 12 and a != b:
            raise _Ambiguous(
                f"the date {text!r} is ambiguous (day/month or month/day?); write it as YYYY-MM-DD"
            )
        day, month = (a, b) if a > 12 else (b, a)
        return dt.datetime(int(m["y"]), month, day, *_clock(m), tzinfo=_zone(m["tz"]))
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    return _named_month(text)


def _named_month(text: str) -> dt.datetime | None:
    """'November 20, 2026', '20. November 2026 14:00', 'Fri, 20 Nov 2026 14:02:03 +0000'."""
    rest = text
    zone = None
    m = _NAME_TZ.search(rest)
    if m:
        zone, rest = _zone(m.group(1)), rest[: m.start()]
    clock = (0, 0, 0, 0)
    m = _NAME_TIME.search(rest)
    if m:
        hour = int(m["H"])
        if m["ampm"]:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if m["ampm"].lower() == "p" else 0)
        clock = (hour, int(m["M"]), int(m["S"] or 0), 0)
        rest = rest[: m.start()] + " " + rest[m.end() :]
    words = re.findall(r"[^\W\d_]+", rest.lower())
    months = [MONTHS[w] for w in words if w in MONTHS]
    numbers = re.findall(r"\d+", rest)
    years = [int(n) for n in numbers if len(n) == 4]
    days = [int(n) for n in numbers if len(n) <= 2]
    if len(months) != 1 or len(years) != 1 or len(days) != 1 or len(numbers) != 2:
        return None
    return dt.datetime(years[0], months[0], days[0], *clock, tzinfo=zone)


_NAME_DATE = LazyRegex(
    r"^(?:(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})|(?P<y2>\d{4})(?P<m2>\d{2})(?P<d2>\d{2})"
    r"|(?P<y3>\d{4})\s*[年년]\s*(?P<m3>\d{1,2})\s*[月월]\s*(?P<d3>\d{1,2})\s*[日일]"
    r"|(?P<d4>\d{1,2})\.(?P<m4>\d{1,2})\.(?P<y4>\d{4}))"
    r"(?:$|[-_ ]+(?P<slug>.*)$)"
)
_PATH_DATE = re.compile(r"(?:^|/)(\d{4})/(\d{1,2})/(\d{1,2})(?:/|$)")


def name_date(stem: str) -> tuple[dt.date | None, str, bool]:
    """(date, rest, looked like a date) from a file or folder name like '2026-11-20-slug'."""
    m = _NAME_DATE.match(stem)
    if m is None:
        return None, stem, False
    g = m.groupdict()
    for i in ("", "2", "3", "4"):
        if g[f"y{i}"]:
            y, mo, d = int(g[f"y{i}"]), int(g[f"m{i}"]), int(g[f"d{i}"])
            break
    try:
        day = dt.date(y, mo, d)
    except ValueError:
        return None, stem, True
    return day, (g["slug"] or "").strip() or stem, True


def _stem(rel: str) -> tuple[str, str]:
    """(name used for the date and slug, its parent folders) for a relative path."""
    parts = rel.split("/")
    name = parts[-1]
    stem = name[: name.rfind(".")] if "." in name else name
    if stem.lower() == "index" and len(parts) > 1:
        return parts[-2], "/".join(parts[:-2])
    return stem, "/".join(parts[:-1])


def _date_and_draft(head: _Head, tz: dt.tzinfo) -> None:
    meta = head.meta
    head.draft = _is_draft(head)
    key, value = _first(meta, "date", "publishdate", "pubdate", "published", "created")
    if key == "published" and _boolish(value) is not None:  # Jekyll's "published: false"
        key, value = _first(meta, "date", "publishdate", "pubdate", "created")
    if key is not None:
        try:
            head.date = parse_date(value, tz)
        except (ValueError, OverflowError) as exc:
            head.problem(str(exc), head.key_line(key))
            return
    else:
        head.date = _date_from_path(head, tz)


def _is_draft(head: _Head) -> bool:
    meta = head.meta
    draft = False
    if "draft" in meta:
        b = _boolish(meta["draft"])
        if b is None:
            head.warn(
                f"draft: {meta['draft']!r} is not true or false; treating it as a draft",
                head.key_line("draft"),
            )
            b = True
        draft = b
    if meta.get("published") is False or _boolish(meta.get("published")) is False:
        draft = True
    status = meta.get("status")
    if isinstance(status, str) and status.strip().lower() in ("draft", "hidden"):
        draft = True
    if "_drafts/" in f"/{head.rel}":
        draft = True
    return draft


def _date_from_path(head: _Head, tz: dt.tzinfo) -> dt.datetime | None:
    """The date in the file or folder name, Zola's ``path``, or ``YYYY/MM/DD/`` folders."""
    stem, folders = _stem(head.rel)
    day, _slug, looked = name_date(stem)
    if day is None:
        zola = head.meta.get("path")
        m = _PATH_DATE.search(zola.strip("/") + "/") if isinstance(zola, str) else None
        m = m or _PATH_DATE.search(folders + "/")
        if m:
            with contextlib.suppress(ValueError):
                day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if day is not None:
        return dt.datetime.combine(day, dt.time(), tzinfo=tz)
    if head.draft:
        return None  # a draft needs no date yet (Jekyll's _drafts/ have none)
    what = f"the file name {stem!r} starts with an impossible date" if looked else "no date"
    head.problem(
        f"{what}; add 'date: 2026-11-20' to the front matter or name the file "
        "like 2026-11-20-slug.md",
        head.key_line("date") if head.kind else None,
    )
    return None


_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0", ""}


def _boolish(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    return None


# --- the full parse ----------------------------------------------------------------------


@functools.cache
def markdown(*, inline: bool = True) -> Any:
    """The one Markdown parser: CommonMark + tables + strikethrough.

    With ``inline=False``, the same parser without its inline pass: the block structure
    (and link reference definitions) only, with inline tokens' children left empty, to
    fill with ``md.inline.parse`` where they are needed. The block pass alone is ~20x
    faster than the whole parse.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return md if inline else md.disable("inline")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_URL_UNSAFE = re.compile(r"[<>{}\"`\\^|]|%7[bBdD]")
_SCHEMES = {"http", "https", "mailto", "tel"}
_SAFE_PATH = "/:@-._~!$&'()*+,;=%"


def one_line(text: str) -> str:
    """Fold line breaks, tabs and control characters into single spaces.

    Titles here, header values in ``message`` (per recipient, so the common case is fast).
    """
    if text.isprintable() and text == text.strip() and "  " not in text:
        return text  # no Cc, Zl, Zp or other unprintable characters, nothing to fold
    return " ".join(_CONTROL.sub(" ", text).split())


def _parse(head: _Head, base: str) -> Article | None:
    """Read the whole file and make the Article, or add problems and return None."""
    try:
        raw = _read(head.path).removeprefix(_BOM)
    except OSError as exc:
        head.problem(f"cannot read the file: {exc.strerror or exc}")
        return None
    body_bytes = raw[head.body_at :]
    try:
        body = body_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = head.body_line + body_bytes[: exc.start].count(b"\n")
        head.problem(_not_utf8(body_bytes, exc), line)
        return None
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not raw.strip():
        head.problem("empty file; write a title and some text, or delete it")
        return None
    meta = head.meta
    md = markdown()
    env: dict[str, Any] = {}
    tokens = md.parse(body, env)

    title = _text_field(head, "title")
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

    stem, _folders = _stem(head.rel)
    _day, name_slug, _looked = name_date(stem)
    slug = _text_field(head, "slug")
    slug = one_line(slug).strip("/").replace(" ", "-") if slug else name_slug.replace(" ", "-")
    url = _url(head, base, slug)

    def absolute(link: str) -> str | None:
        try:
            if _URL_UNSAFE.search(link):
                raise ValueError
            full = urljoin(url, quote(link.strip(), safe=_SAFE_PATH + "?#"))
            scheme = urlsplit(full).scheme.lower()
        except ValueError:
            full, scheme = "", ""
        if scheme not in _SCHEMES:
            head.warn(
                f"relative link {link!r} could not be made absolute; it was removed",
                _find_line(body, link, head.body_line),
            )
            return None
        return full

    for tok in tokens:
        if tok.type == "inline" and tok.children:
            for child in tok.children:
                if child.type == "image" and not child.content.strip():
                    img_line = head.body_line + tok.map[0] if tok.map else None
                    head.warn(
                        f"image {child.attrGet('src')!r} has no alt text; write ![what it "
                        "shows](...)",
                        img_line,
                    )

    import nh3

    html = nh3.clean(
        md.renderer.render(tokens, md.options, env),
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        url_relative=absolute,
    )

    image, image_alt = _image(head, url, absolute)
    weight = 0
    if "weight" in meta and meta["weight"] not in (None, ""):
        try:
            weight = int(float(str(meta["weight"]).strip()))
        except ValueError:
            head.warn(
                f"weight: {meta['weight']!r} is not a whole number; ignored",
                head.key_line("weight"),
            )
    featured = False
    if meta.get("featured") is not None:
        b = _boolish(meta["featured"])
        if b is None:
            head.warn(
                f"featured: {meta['featured']!r} is not true or false; ignored",
                head.key_line("featured"),
            )
        featured = bool(b)
    lang = _text_field(head, "lang", "language")
    if lang and not _LANG.match(lang):
        head.warn(
            f"lang: {lang!r} is not a language code like 'en' or 'de-AT'; ignored",
            head.key_line("lang", "language"),
        )
        lang = None
    summary_key, _ = _first(meta, "summary", "description", "excerpt")
    summary = _text_field(head, summary_key) if summary_key else None
    if not body.strip():
        head.warn("the article has no text below its front matter", head.body_line)
    return Article(
        path=Path(head.path),
        slug=slug,
        title=title,
        date=head.date,  # type: ignore[arg-type]
        url=url,
        body=body,
        html=html,
        summary=summary.strip() if summary else None,
        author=_author(head),
        tags=_terms(head, "tags", "tag"),
        categories=_terms(head, "categories", "category"),
        image=image,
        image_alt=image_alt,
        draft=head.draft,
        weight=weight,
        featured=featured,
        lang=lang.replace("_", "-") if lang else None,
        words=count_words(_plain_text(tokens)),
    )


def _text_field(head: _Head, *names: str) -> str | None:
    """A text field; numbers, booleans and dates become their text, lists are refused."""
    key, value = _first(head.meta, *names)
    if key is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | dt.date | dt.time):
        return str(value)
    head.warn(f"{key}: expected text, found a {type(value).__name__}; ignored", head.key_line(key))
    return None


def _url(head: _Head, base: str, slug: str) -> str:
    key, value = _first(head.meta, "url", "permalink")
    if isinstance(value, str) and value.strip():
        value = value.strip()
        if re.match(r"^https?://", value, re.I):
            return value
        if not _URL_UNSAFE.search(value):
            return f"{base}/{quote(value.lstrip('/'), safe=_SAFE_PATH)}"
        head.warn(
            f"{key}: {value!r} is not a URL or path; using the slug", head.key_line(key or "url")
        )
    zola = head.meta.get("path")
    if isinstance(zola, str) and zola.strip("/ ") and not _URL_UNSAFE.search(zola.strip()):
        return f"{base}/{quote(zola.strip().strip('/'), safe=_SAFE_PATH)}/"
    return f"{base}/{quote(slug, safe=_SAFE_PATH)}/"


def _image(
    head: _Head, url: str, absolute: Callable[[str], str | None]
) -> tuple[str | None, str | None]:
    meta = head.meta
    key, value = _first(meta, "image", "images", "featuredimage", "cover", "thumbnail")
    alt: Any = None
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        sub = {_norm(str(k)): v for k, v in value.items()}
        alt = sub.get("alt") or sub.get("imagealt") or sub.get("caption")
        value = sub.get("src") or sub.get("url") or sub.get("path") or sub.get("image")
    if key is None or value is None:
        return None, None
    if not isinstance(value, str):
        head.warn(f"{key}: expected an image URL; ignored", head.key_line(key))
        return None, None
    if re.match(r"^[a-z][a-z0-9+.-]*:", value.strip(), re.I) and not re.match(
        r"^https?://", value.strip(), re.I
    ):
        head.warn(f"{key}: {value!r} is not an http(s) URL; ignored", head.key_line(key))
        return None, None
    src = absolute(value)
    if src is None:
        return None, None
    _, alt_value = _first(meta, "imagealt", "imagealttext", "alt", "coveralt")
    alt = alt if alt is not None else alt_value
    alt = one_line(str(alt)) if alt is not None and not isinstance(alt, list | dict) else None
    if not alt:
        head.warn(
            f"{key} has no alt text; add 'image_alt: <what the image shows>'",
            head.key_line(key),
        )
    return src, alt or None


def _author(head: _Head) -> str | None:
    key, value = _first(head.meta, "author", "authors")
    if key is None:
        return None
    if isinstance(value, dict):
        value = value.get("name")
    if isinstance(value, str) and key == "authors" and "," in value:
        value = [v for v in value.split(",")]
    if isinstance(value, list):
        names = [one_line(str(v.get("name", "")) if isinstance(v, dict) else str(v)) for v in value]
        value = ", ".join(n for n in names if n)
    if not isinstance(value, str):
        head.warn(f"{key}: expected a name; ignored", head.key_line(key))
        return None
    return one_line(value) or None


def _terms(head: _Head, *names: str) -> tuple[str, ...]:
    key, value = _first(head.meta, *names)
    if key is None:
        return ()
    if isinstance(value, str):
        if "," in value or head.kind == "meta" or key in ("tag", "category"):
            items: list[Any] = value.split(",")
        else:
            items = value.split()  # Jekyll: "tags: ai chips" is two tags
    elif isinstance(value, list):
        items = value
    else:
        head.warn(f"{key}: expected a list; ignored", head.key_line(key))
        return ()
    out: list[str] = []
    for item in items:
        if isinstance(item, dict | list):
            head.warn(f"{key}: expected a list of words; ignored one entry", head.key_line(key))
            continue
        text = one_line(str(item))
        if text and text not in out:
            out.append(text)
    return tuple(out)


def _find_line(body: str, needle: str, first: int) -> int | None:
    at = body.find(needle)
    return first + body.count("\n", 0, at) if at >= 0 else None


# What survives sanitizing: nh3's defaults (no script, style, iframe, form, event
# attributes) plus a few harmless presentational attributes; javascript: and data: URLs
# are dropped by the scheme list, relative ones made absolute.
_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "u", "ul", "var", "wbr",
}  # fmt: skip
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template"}
_ATTRIBUTES = {
    "*": {"lang", "dir", "title"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
}


_HIDDEN = "|".join(sorted(_DROP_WITH_CONTENT))
_HIDDEN_OPEN = re.compile(rf"<({_HIDDEN})(?=[\s/>])", re.I)
_HIDDEN_ELEMENT = re.compile(rf"<({_HIDDEN})(?=[\s/>])[^>]*>.*?</\1\s*>", re.I | re.S)


def drop_hidden(text: str) -> str:
    """``text`` without the raw HTML elements that are dropped with their content
    (``<script>...</script>``, ``<style>``, ...): their text is never shown."""
    return _HIDDEN_ELEMENT.sub("", text) if "<" in text else text


def inline_text(token: Any) -> str:
    """The plain text of an inline token: markup and images dropped, entities decoded."""
    return children_text(token.children or ())


def children_text(children: Sequence[Any]) -> str:
    """The text of inline tokens; raw ``<script>``, ``<style>``... elements (as in
    ``_DROP_WITH_CONTENT``; unclosed: to the end) are dropped with their content."""
    out: list[str] = []
    hidden: re.Pattern[str] | None = None  # the end tag of the element being dropped
    for child in children:
        t = child.type
        if hidden is not None:
            if t == "html_inline" and hidden.match(child.content):
                hidden = None
            continue
        if t == "html_inline":
            m = _HIDDEN_OPEN.match(child.content)
            if m:
                hidden = re.compile(rf"</{m.group(1)}\s*>", re.I)
        elif t == "text" or t == "code_inline":
            out.append(child.content)
        elif t == "softbreak" or t == "hardbreak":
            out.append(" ")
    return "".join(out)


def _plain_text(tokens: Sequence[Any]) -> str:
    parts = []
    for tok in tokens:
        if tok.type == "inline":
            parts.append(inline_text(tok))
        elif tok.type in ("fence", "code_block"):
            parts.append(tok.content)
    return "\n".join(parts)


# Hiragana, katakana, CJK ideographs and half-width katakana: scripts written without
# spaces between words (Hangul uses spaces and counts like other words).
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
CJK = LazyRegex(f"[{CJK_CLASS}]")
_WORD = re.compile(r"\w+(?:['’.-]\w+)*")


def count_words(text: str) -> int:
    """Words for reading time and budgets; Chinese/Japanese count two characters a word."""
    if not text or max(text) < "\u3040":  # no CJK possible: skip the big regex
        return len(_WORD.findall(text))
    cjk = len(CJK.findall(text))
    if cjk:
        text = CJK.sub(" ", text)
    return len(_WORD.findall(text)) + (cjk + 1) // 2
