"""Flat YAML front matter, fast: ``key: value`` lines without PyYAML.

``flat_yaml`` parses the trivially flat front matter most blogs write (~10 us against
~150 us for PyYAML) and returns None for anything else; ``yaml_loader`` is the PyYAML
loader for the rest. Both read YAML 1.2-style scalars and agree exactly (a differential
test holds them to it).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from ..text import LazyRegex

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
def yaml_loader() -> type:
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
    """Resolve a plain scalar exactly as ``yaml_loader`` does."""
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
    under an empty ``key:``, with the same results as ``yaml_loader``. Anything else
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
