"""Dates as blogs write them -> aware datetimes; drafts; the date in a file name.

ISO 8601 and its common relatives, ``20.11.2026``, ``2026年11月20日``, ``November 20,
2026`` in several languages, RFC 2822; a date without a zone is in the newsletter's
timezone. A file without a date takes the one in its name (``2026-11-20-slug.md``), its
folder (``2026/11/20/``) or Zola's ``path``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import Any

from ..text import LazyRegex
from .frontmatter import Head, boolish, first

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
        return _one_zone(value) if value.tzinfo else value.replace(tzinfo=tz)
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
    return _one_zone(when) if when.tzinfo else when.replace(tzinfo=tz)


_ZONES: dict[tuple[object, object], dt.tzinfo] = {}


def _one_zone(when: dt.datetime) -> dt.datetime:
    """``when`` with the one ``timezone`` object of its offset and name: YAML parsers and
    ``fromisoformat`` make a new one per date, and the scan cache pickles (and unpickles)
    each distinct object: a third of 10,000 dates had their own ``+02:00``."""
    zone = when.tzinfo
    shared = shared_zone(zone) if zone is not None else zone
    return when if shared is zone else when.replace(tzinfo=shared)


def shared_zone(zone: dt.tzinfo) -> dt.tzinfo:
    """The one object of a fixed offset and name in this process (the first seen: the
    scan cache's zones, unpickled, are passed through here too, so a zone is the same
    object whether it was read now or cached); any other zone as it is (a ``ZoneInfo``
    is one object per key already)."""
    if type(zone) is not dt.timezone:
        return zone
    return _ZONES.setdefault((zone.utcoffset(None), zone.tzname(None)), zone)


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


def stem_of(rel: str) -> tuple[str, str]:
    """(name used for the date and slug, its parent folders) for a relative path."""
    parts = rel.split("/")
    name = parts[-1]
    stem = name[: name.rfind(".")] if "." in name else name
    if stem.lower() == "index" and len(parts) > 1:
        return parts[-2], "/".join(parts[:-2])
    return stem, "/".join(parts[:-1])


def date_and_draft(head: Head, tz: dt.tzinfo) -> None:
    """Set ``head.date`` (None: no date anywhere, so a page, not a post) and
    ``head.draft``; a date that cannot be read is a problem, unless the file name
    carries one (the fallback generators use too: then a warning)."""
    meta = head.meta
    head.draft = _is_draft(head)
    if meta.get("expirydate") not in (None, ""):  # Hugo: gone from the site from then on
        try:
            head.expires = parse_date(meta["expirydate"], tz)
        except (ValueError, OverflowError) as exc:
            head.warn(f"expiryDate: {exc}; ignored", head.key_line("expirydate"))
    key, value = first(meta, "date", "publishdate", "pubdate", "published", "created")
    if key == "published" and boolish(value) is not None:  # Jekyll's "published: false"
        key, value = first(meta, "date", "publishdate", "pubdate", "created")
    if key is None:
        head.date = _date_from_path(head, tz)
        return
    try:
        head.date = parse_date(value, tz)
    except (ValueError, OverflowError) as exc:
        fallback = _date_from_path(head, tz, report=False)
        if fallback is None:
            head.problem(str(exc), head.key_line(key))
            return
        head.warn(
            f"{exc}; using the date in the file name, {fallback:%Y-%m-%d}", head.key_line(key)
        )
        head.date = fallback
        return
    head.date_naive = not _zoned(value)


def _zoned(value: Any) -> bool:
    """Whether a front matter date names its zone (the URL of some generators shows
    the date in the site's zone then)."""
    if isinstance(value, dt.datetime):
        return value.tzinfo is not None
    if not isinstance(value, str):
        return False
    try:
        east = parse_date(value, dt.timezone(dt.timedelta(hours=5)))
        west = parse_date(value, dt.timezone(dt.timedelta(hours=-5)))
    except (ValueError, OverflowError):
        return False
    return east == west


def _is_draft(head: Head) -> bool:
    meta = head.meta
    draft = False
    if "draft" in meta:
        b = boolish(meta["draft"])
        if b is None:
            head.warn(
                f"draft: {meta['draft']!r} is not true or false; treating it as a draft",
                head.key_line("draft"),
            )
            b = True
        draft = b
    if meta.get("published") is False or boolish(meta.get("published")) is False:
        draft = True
    status = meta.get("status")
    if isinstance(status, str) and status.strip().lower() in ("draft", "hidden"):
        draft = True
    if "_drafts/" in f"/{head.rel}":
        draft = True
    return draft


def _date_from_path(head: Head, tz: dt.tzinfo, *, report: bool = True) -> dt.datetime | None:
    """The date in the file or folder name, Zola's ``path``, or ``YYYY/MM/DD/`` folders.

    None when there is none: the file is a page (an about page, an index), not a post.
    A name that starts with an impossible date (``2026-13-40-x.md``) is a problem.
    """
    stem, folders = stem_of(head.rel)
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
    if looked and report and not head.draft:
        head.problem(
            f"the file name {stem!r} starts with an impossible date; add 'date: 2026-11-20' "
            "to the front matter or name the file like 2026-11-20-slug.md",
            head.key_line("date") if head.kind else None,
        )
    return None
