"""A file's scan and parse results, kept between runs (issue 14: ``check`` in 1 s, not 10).

Keeps, for each folder walked, its content files' scans without the front matter (role,
date, draft, language; a file with problems or an expiry as its whole ``Light``) and
what each file's full parse found (its problems and URL), in columns (``Folder``): a
name, a stamp and ~20 bytes a file, not an object. A file is unchanged while its name,
size, mtime, ctime and inode are; a folder whose files all are is taken as it is. The
whole cache is keyed by a fingerprint of what reading depends on (digest's version and
the source of the reading code, the site, the base URL, the time zone, the
template-code syntax, the size limit). A different fingerprint empties it: never
trusted across a digest version or a setting change.

The front matter is not kept, nor the ``Article`` of every file (its text and HTML are
most of its size): only the articles of the last issue read (its ~10) are kept whole,
with their summaries (keyed by everything a summary depends on), so building an issue
again after a template or config edit, or after editing one of its posts, reads and
summarizes only what changed. A parse that resolved links to other files (template code
such as ``{% link %}``) depends on them and is not kept.

On disk: ``<output.folder>/.cache/content.pickle``, written atomically, readable only by
its owner; safe to delete. Each folder's record is its own pickle, found through an
index at the end of the file, and read when the scan reaches that folder: a build holds
one folder's record at a time, not the blog's (issue 14). A folder scanned again is set
aside in an unnamed spill file until ``save`` writes the next cache file, copying the
unchanged records' bytes as they are. A record that cannot be read costs its folder a
new scan. It is a pickle: it lives with the build's other output, written and read by
the same user, who can run code through ``content.summarizer`` anyway; a file that
cannot be read is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import os
import pickle
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .. import i18n
from ..model import Article, Problem, Summary
from .dates import shared_zone
from .frontmatter import BINARY, Head
from .sites import DRAFT, LIST, OUTSIDE, PAGE, POST

FORMAT = 7
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
    """Scan and parse results by path. ``path`` None, or ``persist`` False (the
    preview's): folders kept in memory. Else a folder's record is read from the file
    when a scan asks for it and dropped after, and a changed one is set aside in a
    spill file until ``save``: the scan's memory does not grow with the folder (issue 14).
    """

    def __init__(self, path: Path | None = None, *, persist: bool = True) -> None:
        self.path = path
        self.persist = persist and path is not None
        self.fingerprint = ""
        # Folder records by the folder's path as walked: whole in memory (``_kept``), or
        # where their pickles lie (``_where``: (source, offset, length); source 0 the
        # cache file read, 1 the spill file), in ``_fds``.
        self._kept: dict[str, Folder] = {}
        self._where: dict[str, tuple[int, int, int]] = {}
        self._fds = [-1, -1]
        self._spill_end = 0
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
            if self._kept or self._where or self.articles:
                self._forget()
                self.articles = {}
                self.dirty = True

    def _read(self, fingerprint: str) -> None:
        """The file: (FORMAT, fingerprint), (summaries, Babel's stamp, dates), articles,
        then one pickle per folder, their index and the index's offset (8 bytes)."""
        assert self.path is not None
        # Unpickling 10,000 entries would run the collector dozens of times.
        with gc_paused():
            fd = -1
            try:
                fd = os.open(self.path, os.O_RDONLY | BINARY)
                with os.fdopen(fd, "rb", closefd=False) as f:
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
                    articles = pickle.load(f)
                    f.seek(-8, os.SEEK_END)
                    f.seek(int.from_bytes(f.read(8), "little"))
                    where = pickle.load(f)
                if not all(_a_place(here, at) for here, at in where.items()):
                    return
                self.articles, self._where, self.fingerprint = articles, where, fingerprint
                self._fds[0], fd = fd, -1
                if not self.persist:  # the preview's: read once, then kept in memory
                    self._kept = {here: r for here in where if (r := self.folder(here))}
                    self._forget(keep=True)
            except (
                OSError,
                EOFError,
                pickle.UnpicklingError,
                AttributeError,
                ValueError,
                TypeError,
                IndexError,
                KeyError,
            ):
                self._forget()
                self.articles, self.summaries, self.dates = {}, {}, {}  # start over
            finally:
                if fd >= 0:
                    os.close(fd)

    def _forget(self, *, keep: bool = False) -> None:
        """Drop the folder records (``keep``: those in memory stay), close their files."""
        for k, fd in enumerate(self._fds):
            if fd >= 0:
                os.close(fd)
            self._fds[k] = -1
        self._where, self._spill_end = {}, 0
        if not keep:
            self._kept = {}

    def __del__(self) -> None:
        try:  # noqa: SIM105 (contextlib may be gone at the interpreter's exit)
            self._forget(keep=True)
        except Exception:
            pass

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

    def folder(self, here: str) -> Folder | None:
        """The folder's record (None: not kept, or damaged): a new copy each time unless
        the cache is in memory."""
        kept = self._kept.get(here)
        if kept is not None:
            return kept
        where = self._where.get(here)
        if where is None:
            return None
        try:
            found = pickle.loads(self._raw(where))
        except Exception:  # a damaged record: the folder is scanned again, never a crash
            return None
        if not isinstance(found, Folder) or found.here != here:
            return None
        return found

    def _raw(self, where: tuple[int, int, int]) -> bytes:
        source, offset, length = where
        fd = self._fds[source]
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, length)
        if len(data) != length:
            raise EOFError("a cut-short cache record")
        return data

    def put_folder(self, folder: Folder) -> None:
        """A folder's record, scanned (in part) again. Rows changed less than
        ``RACY_SECONDS`` ago are kept without their stamps: not trusted next time."""
        stamps, fresh = folder.stamps, (time.time() - RACY_SECONDS) * 1e9
        for i in range(1, len(stamps), 4):
            if stamps[i] > fresh:
                stamps[i - 1 : i + 3] = array("q", (-1, -1, -1, -1))
        self.dirty = True
        if not self.persist:
            self._kept[folder.here] = folder
            return
        # Set aside until ``save``, in a file already gone from its folder (where the
        # platform lets an open file be removed; else removed when closed); kept in
        # memory if it cannot be written.
        try:
            if self._fds[1] < 0:
                assert self.path is not None
                self.path.parent.mkdir(parents=True, exist_ok=True)
                spill = self.path.with_name(f".{self.path.name}.{os.getpid()}.{id(self)}.spill")
                flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | BINARY
                flags |= getattr(os, "O_TEMPORARY", 0)
                self._fds[1] = os.open(spill, flags, 0o600)
                with contextlib.suppress(OSError):
                    spill.unlink()
                self._spill_end = 0
            data = pickle.dumps(folder, pickle.HIGHEST_PROTOCOL)
            os.lseek(self._fds[1], self._spill_end, os.SEEK_SET)
            _write_all(self._fds[1], data)
        except OSError:
            self._kept[folder.here] = folder
            self._where.pop(folder.here, None)
            return
        self._kept.pop(folder.here, None)
        self._where[folder.here] = (1, self._spill_end, len(data))
        self._spill_end += len(data)

    def keep_folders(self, walked: set[str]) -> None:
        """Forget folders that are gone."""
        gone = [here for here in (*self._kept, *self._where) if here not in walked]
        for here in gone:
            self._kept.pop(here, None)
            self._where.pop(here, None)
        self.dirty = self.dirty or bool(gone)

    @property
    def folders(self) -> dict[str, Folder]:
        """Every folder's record, read now (tests and tools; the scan asks one at a time)."""
        found = dict(self._kept)
        for here in self._where:
            if here not in found and (record := self.folder(here)) is not None:
                found[here] = record
        return found

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
        """``st``: the file's stamp as the cache keeps it (not a racy file's: put_folder)."""
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

    def save(self) -> None:
        """Write the cache if it changed; a failure only costs the next run its speed.
        The folders' records are copied as they are, not unpickled."""
        if not (self.persist and self.path is not None):
            return
        if not self.dirty and len(self.dates) == self._dates_read:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | BINARY, 0o600)
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
            where: dict[str, tuple[int, int, int]] = {}
            with os.fdopen(fd, "wb") as f:
                fd = -1
                pickle.dump((FORMAT, self.fingerprint), f, pickle.HIGHEST_PROTOCOL)
                extra = (self.summaries, i18n.babel_stamp(), self.dates)
                pickle.dump(extra, f, pickle.HIGHEST_PROTOCOL)
                pickle.dump(self.articles, f, pickle.HIGHEST_PROTOCOL)
                for here, at in self._where.items():
                    data = self._raw(at)
                    where[here] = (0, f.tell(), len(data))
                    f.write(data)
                for here, record in self._kept.items():  # (those the spill could not take)
                    data = pickle.dumps(record, pickle.HIGHEST_PROTOCOL)
                    where[here] = (0, f.tell(), len(data))
                    f.write(data)
                index = f.tell()
                pickle.dump(where, f, pickle.HIGHEST_PROTOCOL)
                f.write(index.to_bytes(8, "little"))
        except (OSError, EOFError, pickle.PicklingError):
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            return
        # The file read is closed first: Windows replaces no file a process holds open.
        if self._fds[0] >= 0:
            os.close(self._fds[0])
            self._fds[0] = -1
        try:
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            self._reopen()  # the file read is still there: its records too
            return
        self.dirty, self._dates_read = False, len(self.dates)
        # From now on, the records are read from the file just written.
        self._forget()
        self._where = where
        self._reopen()

    def _reopen(self) -> None:
        """Open the cache file for its records again; those it holds are forgotten if
        it cannot be opened (their folders are scanned again)."""
        assert self.path is not None
        try:
            self._fds[0] = os.open(self.path, os.O_RDONLY | BINARY)
        except OSError:
            self._where = {here: at for here, at in self._where.items() if at[0] != 0}


def _a_place(here: object, at: object) -> bool:
    """An index entry as ``save`` writes it: a folder's path, (0, offset, length)."""
    return (
        type(here) is str and type(at) is tuple and len(at) == 3 and at[0] == 0
        and all(type(n) is int and n >= 0 for n in at)
    )  # fmt: skip


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Light(NamedTuple):
    """A file's scan without its front matter: what choosing the window, counting and
    finding a link's target need. Made from a ``Folder``'s columns for the few files
    that need one (an issue's, a link's target), and kept whole only for a file with
    problems or an expiry. A file to parse (the ~10 of an issue) is scanned again for
    its front matter (``_Context.full``)."""

    path: str
    rel: str
    role: str
    date: dt.datetime | None
    expires: dt.datetime | None
    draft: bool
    lang: str | None
    failed: bool
    problems: tuple[Problem, ...]


NO_DATE = -(1 << 63)  # a file without a date, in the date columns
ODD = 255  # a row kept as its whole ``Light`` (``Folder.odd``), not in the columns
ROLES = (POST, PAGE, DRAFT, LIST, OUTSIDE)
_ROLE = {role: i for i, role in enumerate(ROLES)}
AS_PAGE, AS_LIST, AS_OUTSIDE = _ROLE[PAGE], _ROLE[LIST], _ROLE[OUTSIDE]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_WALL = dt.datetime(1970, 1, 1)
MICROSECOND = dt.timedelta(microseconds=1)


class Folder:
    """One folder's content files (those not excluded) and their scans, in columns: a
    few objects a folder, not a few a file, so memory and the cache's load grow by a
    file's name and ~50 bytes, whatever its front matter (issue 14).

    Row ``i`` is the file ``names[i]`` (sorted; kept as one string, ``listing``, the
    names joined by NUL, which no file name holds); ``stamps[4i:4i+4]`` its ``stamp``
    (-1s: not stat'ed, or too fresh to trust next time); ``links`` the rows read
    through a link (row -> resolved path). A folder as walked has no scans yet
    (``scanned`` False). The scan of a row is ``codes[i]`` (role index << 2, fold << 1,
    draft), its date as a UTC instant and as a wall time (microseconds from 1970;
    ``NO_DATE``) in the zone ``zones[zone[i]]``, its language ``langs[lang[i]]``; a row
    with problems, an expiry or more zones or languages than a byte counts
    (``codes[i] == ODD``) is kept whole in ``odd``. ``parsed``: what the full parse of
    a row found (``check``), unpickled only when asked for."""

    __slots__ = (
        "_names", "_parsed", "_parsed_blob", "codes", "here", "lang", "langs", "links",
        "listing", "odd", "rel", "size", "stamps", "utc", "wall", "zone", "zones",
    )  # fmt: skip

    def __init__(
        self,
        here: str,
        rel: str,
        names: list[str],
        stamps: array[int] | None = None,
        links: dict[int, str] | None = None,
        *,
        scanned: bool = True,
    ) -> None:
        n = len(names)
        self.here, self.rel, self.size = here, rel, n
        self.listing, self._names = "\0".join(names), names if scanned else None
        self.stamps = stamps if stamps is not None else array("q", (-1,)) * (4 * n)
        self.links = links or {}
        n = n if scanned else 0
        self.codes = bytearray(n)
        self.utc = array("q", (NO_DATE,)) * n
        self.wall = array("q", (NO_DATE,)) * n
        self.zone = bytearray(n)
        self.lang = bytearray(n)
        self.zones: list[dt.tzinfo] = []
        self.langs: list[str | None] = [None]
        self.odd: dict[int, Light] = {}
        self._parsed: dict[int, Parsed] | None = None
        self._parsed_blob = b""

    @property
    def names(self) -> list[str]:
        """The files' names (split from ``listing`` when first asked for)."""
        if self._names is None:
            self._names = self.listing.split("\0")
        return self._names

    def path(self, i: int) -> str:
        return self.links.get(i) or self.here + self.names[i]

    def rel_of(self, i: int) -> str:
        return self.rel + self.names[i]

    def stamp(self, i: int) -> tuple[int, int, int, int] | None:
        st = tuple(self.stamps[4 * i : 4 * i + 4])
        return st if st[0] >= 0 else None  # type: ignore[return-value]

    def same_files(self, other: Folder) -> bool:
        """The same files as ``other``'s, unchanged (by name, link and stamp)."""
        return (
            self.listing == other.listing and self.stamps == other.stamps
            and self.links == other.links and -1 not in self.stamps
        )  # fmt: skip

    def put(self, i: int, head: Head | Light) -> None:
        """Row ``i``'s scan."""
        date = head.date
        z = g = 0
        ok = not (head.problems or head.failed or head.expires is not None)
        if ok and date is not None:
            if date.tzinfo is None:  # (a date is given its zone when read: kept whole)
                ok = False
            else:
                z = _index(self.zones, date.tzinfo)
        if ok:
            try:
                g = self.langs.index(head.lang)
            except ValueError:
                g = len(self.langs)
                self.langs.append(head.lang)
        if not ok or z > 254 or g > 254 or head.role not in _ROLE:
            self.codes[i] = ODD
            self.odd[i] = light(head)
            return
        self.zone[i], self.lang[i] = z, g
        if date is None:
            self.utc[i] = self.wall[i] = NO_DATE
            self.codes[i] = _ROLE[head.role] << 2 | head.draft
        else:
            self.utc[i] = (date - EPOCH) // MICROSECOND
            self.wall[i] = (date.replace(tzinfo=None) - _EPOCH_WALL) // MICROSECOND
            self.codes[i] = _ROLE[head.role] << 2 | date.fold << 1 | head.draft

    def copy_row(self, i: int, other: Folder, j: int) -> None:
        """Row ``i``'s scan is ``other``'s row ``j``'s (the same file, unchanged). The
        zones and languages must be ``other``'s, in its order (``like``)."""
        code = self.codes[i] = other.codes[j]
        if code == ODD:
            self.odd[i] = other.odd[j]
        else:
            self.utc[i], self.wall[i] = other.utc[j], other.wall[j]
            self.zone[i], self.lang[i] = other.zone[j], other.lang[j]
        found = other.parsed(j)
        if found is not None:
            self.set_parsed(i, found)

    def like(self, other: Folder) -> None:
        """Take ``other``'s zones and languages (before copying its rows)."""
        self.zones, self.langs = list(other.zones), list(other.langs)

    def date(self, i: int) -> dt.datetime | None:
        if self.codes[i] == ODD:
            return self.odd[i].date
        wall = self.wall[i]
        if wall == NO_DATE:
            return None
        when = _EPOCH_WALL + dt.timedelta(microseconds=wall)
        return when.replace(tzinfo=self.zones[self.zone[i]], fold=self.codes[i] >> 1 & 1)

    def light(self, i: int) -> Light:
        """Row ``i``'s scan as a ``Light`` (made for the few rows that need one)."""
        code = self.codes[i]
        if code == ODD:
            return self.odd[i]
        return Light(
            self.path(i), self.rel_of(i), ROLES[code >> 2], self.date(i), None,
            bool(code & 1), self.langs[self.lang[i]], False, (),
        )  # fmt: skip

    def parsed(self, i: int) -> Parsed | None:
        if self._parsed is None:
            try:
                found = pickle.loads(self._parsed_blob) if self._parsed_blob else {}
            except Exception:  # a damaged cache: parse again, never fail
                found = {}
            self._parsed = found if isinstance(found, dict) else {}
            self._parsed_blob = b""
        return self._parsed.get(i)

    def set_parsed(self, i: int, parsed: Parsed) -> None:
        self.parsed(i)
        assert self._parsed is not None
        self._parsed[i] = parsed

    def __getstate__(self) -> tuple[object, ...]:
        blob = self._parsed_blob
        if self._parsed:
            blob = pickle.dumps(self._parsed, pickle.HIGHEST_PROTOCOL)
        return (
            self.here, self.rel, self.size, self.listing, self.stamps, self.links,
            self.codes, self.utc, self.wall, self.zone, self.zones, self.lang, self.langs,
            self.odd, blob,
        )  # fmt: skip

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (
            self.here, self.rel, self.size, self.listing, self.stamps, self.links,
            self.codes, self.utc, self.wall, self.zone, self.zones, self.lang, self.langs,
            self.odd, self._parsed_blob,
        ) = state  # fmt: skip
        self._parsed, self._names = None, None
        # The zones as this process's own objects (see _index).
        self.zones = [shared_zone(zone) for zone in self.zones]


def _index(zones: list[dt.tzinfo], zone: dt.tzinfo) -> int:
    """``zone``'s place in ``zones``, appended if missing. By identity: two fixed zones of
    one offset can differ in name, and a fixed zone is one object per offset and name
    (``dates.shared_zone``, which the unpickled ones pass through too)."""
    for k, known in enumerate(zones):
        if known is zone:
            return k
    zones.append(zone)
    return len(zones) - 1


def light(head: Head | Light) -> Light:
    if isinstance(head, Light):
        return head
    h = head
    return Light(
        h.path, h.rel, h.role, h.date, h.expires, h.draft, h.lang, h.failed, (*h.problems,)
    )
