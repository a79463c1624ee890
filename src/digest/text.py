"""Strings -> strings: the small text library every stage shares.

One-line cleaning (titles, subjects, header values), word counts (CJK aware), the plain
text of Markdown inline tokens, ``LazyRegex`` for start-up time, ``ascii_url`` for URLs
that go into mail headers, and ``utcnow``, the one wall clock (commands pass it in).
Imports nothing of digest.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware in UTC: the default clock of every command."""
    return dt.datetime.now(dt.UTC)


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

    def finditer(
        self, text: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> Iterator[re.Match[str]]:
        return self.rx.finditer(text, pos, endpos)

    def sub(self, repl: Any, text: str, count: int = 0) -> str:
        return self.rx.sub(repl, text, count)

    @property
    def pattern(self) -> str:
        return self._args[0]

    def __getattr__(self, name: str) -> Any:  # fullmatch, split, subn, flags...
        return getattr(self.rx, name)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def iso_utc(ts: float | None) -> str:
    """A Unix time as ISO 8601 UTC to the second, as exports write it ("" for none)."""
    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def one_line(text: str) -> str:
    """Fold line breaks, tabs and control characters into single spaces.

    Titles here, header values in ``message`` (per recipient, so the common case is fast).
    """
    if text.isprintable() and text == text.strip() and "  " not in text:
        return text  # no Cc, Zl, Zp or other unprintable characters, nothing to fold
    return " ".join(_CONTROL.sub(" ", text).split())


# Raw HTML elements whose text is never shown: sanitizing drops them with their content.
HIDDEN_ELEMENTS = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template"}
)
_HIDDEN = "|".join(sorted(HIDDEN_ELEMENTS))
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
    ``HIDDEN_ELEMENTS``; unclosed: to the end) are dropped with their content."""
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


# Hiragana, katakana, CJK ideographs and half-width katakana: scripts written without
# spaces between words (Hangul uses spaces and counts like other words).
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
CJK = LazyRegex(f"[{CJK_CLASS}]")
# The class's first character: a text whose characters all come before it has no CJK,
# and is read without compiling the class (~3 ms a pattern that holds it).
FIRST_CJK = "\u3040"


def starts_cjk(text: str) -> bool:
    """Whether ``text`` starts with a CJK character."""
    return text[:1] >= FIRST_CJK and CJK.match(text) is not None


_WORD = re.compile(r"\w+(?:['’.-]\w+)*")


def count_words(text: str) -> int:
    """Words for reading time and budgets; Chinese/Japanese count two characters a word."""
    if not text or max(text) < FIRST_CJK:  # no CJK possible: skip the big regex
        return len(_WORD.findall(text))
    cjk = len(CJK.findall(text))
    if cjk:
        text = CJK.sub(" ", text)
    return len(_WORD.findall(text)) + (cjk + 1) // 2


def ascii_url(url: str) -> str:
    """``url`` as a mail header can carry it: the host IDNA-encoded, any other non-ASCII
    character percent-encoded as UTF-8. ValueError for a host that is no domain name."""
    if url.isascii():
        return url
    from urllib.parse import quote, urlsplit, urlunsplit

    import idna  # a dependency of email-validator

    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon or not port.isdigit():
        host, colon, port = hostport, "", ""
    try:
        host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{host!r} is not a domain name ({exc})") from None
    safe = "/:@!$&'()*+,;=-._~%?#[]"
    netloc = f"{quote(userinfo, safe=safe)}{at}{host}{colon}{port}"
    path, query, fragment = (quote(x, safe=safe) for x in (parts.path, parts.query, parts.fragment))
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


# --- data tokens: content is data, also at a mail service ---------------------------------

# What mail services' template engines read as syntax: {{ }} and {% %} (Handlebars,
# Mustache, Go, Django, Liquid), *| |* (Mailchimp), %name% (Mailgun), <% %> (SendGrid),
# [[ ]] and [name] (Constant Contact, Campaign Monitor), ${ } and $name$ (FreeMarker,
# Responsys). "<" is escaped anyway. A "%" that starts a percent-escape ("%20" in a URL)
# opens no tag in any of them and stays, so links keep their usual spelling.
SYNTAX = re.compile(r"[{}\[\]|$]|%(?![0-9A-Fa-f]{2})")
_ANY = re.compile(r"[{}\[\]|$%]")  # a quick "nothing to do" (most values) for SYNTAX
DATA_CHARS = "{}[]|%$"
_DATA_TOKENS = {c: f"__dchr{ord(c)}__" for c in DATA_CHARS}
# Case-blind: a `{% filter upper %}` block around data upper-cases its tokens.
DATA_TOKEN = re.compile(r"__dchr(" + "|".join(str(ord(c)) for c in DATA_CHARS) + r")__", re.I)

_JOINER = "\u2060"  # WORD JOINER: zero width, allows no line break; readers do not see it


def _data_token(m: re.Match[str]) -> str:
    return _DATA_TOKENS[m.group()]


def neutralise(value: str) -> str:
    """``value`` with every ``SYNTAX`` character as a data token."""
    return SYNTAX.sub(_data_token, value) if _ANY.search(value) else value


def restore_html(html: str) -> str:
    """Data tokens as numeric character references: shown as the characters, read as
    text (not as a tag) by every template engine, decoded in attributes (href) too."""
    return DATA_TOKEN.sub(lambda m: f"&#{m.group(1)};", html)


def restore_text(text: str, guard: str = "") -> str:
    """Data tokens as the characters; each one in ``guard`` between invisible WORD
    JOINERs (U+2060), so it forms no delimiter with a neighbour (``{{``, ``<%``, ``*|``,
    ``%name``) and readers see the same text."""
    if not guard:
        return DATA_TOKEN.sub(lambda m: chr(int(m.group(1))), text)
    out: list[str] = []
    pos, joined = 0, False  # joined: out ends with a joiner we wrote
    for m in DATA_TOKEN.finditer(text):
        char = chr(int(m.group(1)))
        if m.start() > pos:
            out.append(text[pos : m.start()])
            joined = False
        if char in guard:
            out.append(char + _JOINER if joined else _JOINER + char + _JOINER)
            joined = True
        else:
            out.append(char)
            joined = False
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def guard_text(value: str, guard: str) -> str:
    """Plain data (a subject line) with ``guard`` characters between WORD JOINERs."""
    if not guard:
        return value
    return restore_text(neutralise(value), guard)


def html_data(value: str) -> str:
    """A plain-text value for the HTML part: escaped, syntax as character references."""
    from html import escape  # late: importing html loads its entity table (every command)

    return restore_html(neutralise(escape(value, quote=True)))
