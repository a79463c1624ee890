"""A file's head -> its front matter, read once: YAML, TOML or Pelican ``Key: value``.

``read_head`` reads only up to the end of the front matter (8 KB first, the whole file
only when the front matter runs past that) and parses it into ``Head.meta`` with
normalised keys (case, ``_`` and ``-`` ignored). Problems are collected on the head,
never raised: a bad file is named and skipped, and the rest goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import Problem
from .fast_yaml import flat_yaml, yaml_loader

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BINARY = getattr(os, "O_BINARY", 0)  # Windows: bytes as they are (no CRLF, no Ctrl-Z end)
HEAD_BYTES = 8192  # bytes read first; most front matter ends well before this
BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Head:
    path: str
    rel: str
    kind: str = ""  # "yaml" | "toml" | "meta" | ""
    fm: str = ""  # the front matter text, LF line ends
    fm_line: int = 1  # file line of the front matter's first line
    body_at: int = 0  # byte offset of the body in raw
    body_line: int = 1  # file line of the body's first line
    meta: dict[str, Any] = field(default_factory=dict)  # normalised keys
    date: dt.datetime | None = None
    date_naive: bool = True  # the date named no zone (its wall time is what was written)
    expires: dt.datetime | None = None  # Hugo's expiryDate: not published from then on
    draft: bool = False
    role: str = "post"  # sites.POST, PAGE, DRAFT, LIST or OUTSIDE
    lang: str | None = None  # from the front matter or the site's file and folder rules
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
            if m and norm(m.group(1)) in names:
                return self.fm_line + i
        return self.fm_line if self.kind else None


_KEY_AT = re.compile(r"^\s*[\"']?([A-Za-z_][\w-]*)[\"']?\s*[:=]")
_YAML_END = re.compile(rb"^(?:---|\.\.\.)[ \t]*\r?$", re.M)
_TOML_END = re.compile(rb"^\+\+\+[ \t]*\r?$", re.M)
_BLANK = re.compile(rb"\r?\n[ \t]*\r?\n")
_META_FIRST = re.compile(rb"[A-Za-z][A-Za-z0-9_-]*:[ \t]*\S")
_META_KEYS = {"title", "date", "slug", "tags", "category", "author", "authors", "summary"}


_NORMS: dict[str, str] = {}


def norm(key: str) -> str:
    n = _NORMS.get(key)
    if n is None:
        n = _NORMS[key] = key.lower().replace("_", "").replace("-", "")
    return n


def read_bytes(path: str, size: int = -1) -> bytes:
    """``size`` bytes (all with -1) of a file; os.read is 4x cheaper than open().

    A symlink is not followed: ``content._walk`` hands over the resolved path of the
    links it checked, so a file swapped for a link after the walk is refused (ELOOP)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | BINARY)
    try:
        if size >= 0:
            return os.read(fd, size)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def too_big(head: Head, size: int, max_bytes: int) -> None:
    """Skip the file: a warning naming its size and the setting, and no article."""
    head.warn(
        f"skipped: the file is {size / 1024:,.0f} KB, above content.max_file_kb "
        f"({max_bytes // 1024:,} KB); shorten it or split it, or raise the limit"
    )
    head.failed = True


def read_head(path: str, rel: str, max_bytes: int | None = None) -> Head:
    """Read the head of a file (up to the end of its front matter) and parse its metadata.

    ``head.failed`` says whether it could be read; dates and drafts are ``dates``' job.
    A file larger than ``max_bytes`` is skipped with a warning (``too_big``)."""
    head = Head(path, rel)
    try:
        raw = read_bytes(path, HEAD_BYTES)
        complete = len(raw) < HEAD_BYTES  # os.read on a regular file is short only at the end
        # Only a file longer than the first read costs a stat: most articles are shorter.
        if not complete and max_bytes is not None:
            size = os.stat(path).st_size
            if size > max_bytes:
                too_big(head, size, max_bytes)
                return head
        if raw[:3] == BOM:
            raw = raw[3:]
        first_nl = raw.find(b"\n")
        first = (raw if first_nl < 0 else raw[:first_nl]).rstrip()
        fm_bytes = b""
        if first == b"---" or first == b"+++":
            end_re = _YAML_END if first == b"---" else _TOML_END
            start = first_nl + 1 if first_nl >= 0 else len(raw)
            m = end_re.search(raw, start)
            if m is None and not complete:
                raw, complete = read_bytes(path).removeprefix(BOM), True
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
                raw, complete = read_bytes(path).removeprefix(BOM), True
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
        head.problem(not_utf8(fm_bytes, exc), line)
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
    return head


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 (byte 0x{data[exc.start]:02x} on this line); save the file as UTF-8"


def _yaml(head: Head) -> dict[str, Any] | None:
    data = flat_yaml(head.fm)
    if data is not None:
        return data
    import yaml

    try:
        data = yaml.load(head.fm, Loader=yaml_loader())
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


def _toml(head: Head) -> dict[str, Any] | None:
    try:
        return tomllib.loads(head.fm)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE.search(msg)
        line = head.fm_line + int(m.group(1)) - 1 if m else head.fm_line
        head.problem(f"broken TOML front matter: {_TOML_LINE.sub('', msg).strip()}", line)
        return None


_META_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*):[ \t]*(.*)$")


def _pelican(head: Head) -> dict[str, Any] | None:
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
    meta = {norm(str(key)): value for key, value in raw.items()}
    for section in ("taxonomies", "extra", "params"):
        sub = meta.get(section)
        if sub is not None and isinstance(sub, dict):
            for key, value in sub.items():
                meta.setdefault(norm(str(key)), value)
    return meta


def first(meta: dict[str, Any], *names: str) -> tuple[str | None, Any]:
    for name in names:
        value = meta.get(name)
        if value is not None and value != "":
            return name, value
    return None, None


_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0", ""}


def boolish(value: Any) -> bool | None:
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
