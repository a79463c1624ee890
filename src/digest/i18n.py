"""A language tag -> the words, dates and direction of an email in that language.

``labels(lang)`` gives what the email templates call: ``_("Read more")``,
``ngettext("%(num)s min read", "%(num)s min read", n)``, ``date(when)`` (CLDR's long
date via Babel), ``dir`` (``"rtl"`` for Arabic, Hebrew, Persian, Urdu) and the arrows.
The words come from gettext catalogs shipped in ``locale/<lang>/LC_MESSAGES/digest.po``
(en, de, fr, es, pt, ja, zh, ar); a language without one gets the English words, and a
template can print any other word instead (the words are in the templates, not here).

The ``.po`` files are read directly, by ``_read_po`` here, into a
``gettext.GNUTranslations`` once per language: no compile step in the build or the wheel,
so a catalog cannot drift from a stale ``.mo``. (Babel's ``read_po`` + ``write_mo`` did the
same for ~25 ms of every build, most of it importing ``babel.messages``: issue 14.) Babel
is imported only for numbers and dates, when an email is rendered.
"""

from __future__ import annotations

import datetime as dt
import gettext
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .files import bundled, code_stamps

DOMAIN = "digest"
_GROUPS_BY_TWO = frozenset({"tok"})
RTL = frozenset({"ar", "he", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ckb"})


def primary(lang: str) -> str:
    """``pt-BR`` -> ``pt``."""
    return lang.replace("_", "-").split("-")[0].lower() or "en"


def edition_for(lang: str, editions: Sequence[str]) -> str:
    """The edition a reader of language ``lang`` gets: the one with the same primary
    subtag, case-insensitive (``ja-JP`` -> ``ja``); for an unknown or empty ``lang``, the
    first (main) edition."""
    want = primary(lang.strip()) if lang.strip() else ""
    for edition in editions:
        if primary(edition) == want:
            return edition
    return editions[0]


def direction(lang: str) -> str:
    return "rtl" if primary(lang) in RTL else "ltr"


def catalog_path(lang: str) -> Any:
    return bundled("locale") / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def languages() -> list[str]:
    """The languages digest has a catalog for."""
    root = bundled("locale")
    return sorted(p.name for p in root.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())


@lru_cache(maxsize=32)
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog for ``lang`` (``pt_BR``, then ``pt``); English words without one."""
    tag = lang.replace("-", "_")
    for candidate in (tag, primary(lang)):
        path = catalog_path(candidate)
        if path.is_file():
            return _read_po(path)
    return gettext.NullTranslations()


class _Catalog(gettext.GNUTranslations):
    """What ``GNUTranslations`` makes of a ``.mo`` file, made from a read ``.po``."""

    def __init__(self, messages: dict[Any, str], plural_forms: str) -> None:
        gettext.NullTranslations.__init__(self)
        self._catalog = messages
        self._info: dict[str, str] = {}
        self._charset = "utf-8"
        found = re.search(r"plural\s*=\s*([^;]+)", plural_forms)
        self.plural = gettext.c2py(found.group(1)) if found else _english_plural  # type: ignore[attr-defined]


def _english_plural(n: int) -> int:
    return int(n != 1)


_PO_ESCAPE = re.compile(r"\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)")
_PO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(m: re.Match[str]) -> str:
    """A C escape of a .po string: named, octal (``\\101``), hex (``\\x41``) or a
    quoted character (``\\"``, ``\\\\``)."""
    code = m.group(1)
    if code[0] in "01234567":
        return chr(int(code, 8))
    if code[0] == "x" and len(code) > 1:
        return chr(int(code[1:], 16))
    return _PO_ESCAPES.get(code, code)


def _read_po(path: Path) -> gettext.GNUTranslations:
    """A gettext catalog from a UTF-8 ``.po`` file (digest's own are): ``msgctxt``,
    ``msgid``, ``msgid_plural``, ``msgstr`` and ``msgstr[N]``, strings continued on the next
    lines, C escapes; fuzzy and untranslated entries are left out, as ``msgfmt`` does
    (not the header: its Plural-Forms count even when it is marked fuzzy). A malformed
    line is an error naming the file and line: the catalogs ship with digest, so a test
    reads them all."""
    messages: dict[Any, str] = {}
    header = ""
    entry: dict[str, str] = {}
    key = ""
    fuzzy = False

    def finish() -> None:
        nonlocal header
        if entry.get("msgid") == "" and "msgctxt" not in entry:
            header = entry.get("msgstr", "")  # (read even when marked fuzzy, as msgfmt does)
        elif "msgid" in entry and not fuzzy:
            msgid = entry["msgid"]
            if "msgctxt" in entry:
                msgid = f"{entry['msgctxt']}\x04{msgid}"
            if "msgid_plural" in entry:
                forms = sorted((k for k in entry if k.startswith("msgstr[")), key=len)
                if any(entry[k] for k in forms):
                    for k in forms:
                        messages[(msgid, int(k[7:-1]))] = entry[k]
            elif entry.get("msgstr"):
                messages[msgid] = entry["msgstr"]
        entry.clear()

    lines = path.read_text(encoding="utf-8").splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or (line.startswith("#") and not line.startswith("#,")):
            continue
        if line.startswith("#,"):
            if entry:  # flags start a new entry
                finish()
                fuzzy = False
            fuzzy = fuzzy or "fuzzy" in line[2:].replace(",", " ").split()
            continue
        word, _, rest = line.partition(" ")
        if line.startswith('"'):
            word, rest = key, line
        elif word in ("msgctxt", "msgid") and (
            "msgstr" in entry or any(k.startswith("msgstr[") for k in entry)
        ):
            finish()
            fuzzy = False
        rest = rest.strip()
        if (
            not (
                word in ("msgctxt", "msgid", "msgid_plural", "msgstr")
                or re.fullmatch(r"msgstr\[\d+\]", word)
            )
            or len(rest) < 2
            or rest[0] != '"'
            or rest[-1] != '"'
        ):
            raise ValueError(f"{path}:{number}: not a line of a .po file: {raw!r}")
        text = _PO_ESCAPE.sub(_unescape, rest[1:-1])
        entry[word] = entry.get(word, "") + text if line.startswith('"') else text
        key = word
    finish()
    return _Catalog(messages, header)


@lru_cache(maxsize=32)
def _locale(lang: str) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@dataclass(frozen=True)
class Labels:
    """What the templates call for words, numbers and dates in one language."""

    lang: str
    _t: gettext.NullTranslations = field(repr=False, compare=False)

    @property
    def dir(self) -> str:
        return direction(self.lang)

    @property
    def rtl(self) -> bool:
        return self.dir == "rtl"

    @property
    def start(self) -> str:
        """The side text starts on (``align`` values for MJML and Outlook)."""
        return "right" if self.rtl else "left"

    @property
    def end(self) -> str:
        return "left" if self.rtl else "right"

    @property
    def arrow(self) -> str:
        """Points forward, in reading direction."""
        return "\u2190" if self.rtl else "\u2192"

    def gettext(self, message: str, **values: Any) -> str:
        text = self._t.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text % {"num": self.number(n), **values}

    def number(self, n: int) -> str:
        # In Latin digits (Babel's default) every locale but Toki Pona, which groups by two
        # digits, writes 0-999 as Python does (a test checks every locale Babel has).
        if 0 <= n < 1000 and primary(self.lang) not in _GROUPS_BY_TWO:
            return str(n)
        from babel.numbers import format_decimal

        return str(format_decimal(n, locale=_locale(self.lang)))

    def date(self, when: dt.date | dt.datetime) -> str:
        """CLDR's long date: ``November 23, 2026``, ``23. November 2026``, ``2026年11月23日``."""
        day = when.date() if isinstance(when, dt.datetime) else when
        key = (self.lang, day.isoformat())
        memo = _dates
        if memo is not None and key in memo:
            return memo[key]
        from babel.dates import format_date

        text = str(format_date(day, "long", locale=_locale(self.lang)))
        if memo is not None:
            if len(memo) >= 2000:  # ~10 a week, years of issues; or a long `serve`: start over
                memo.clear()
            memo[key] = text
        return text


# Dates said before, kept by the caller between runs (the scan cache: ``remember_dates``).
_dates: dict[tuple[str, str], str] | None = None


def remember_dates(memo: dict[tuple[str, str], str]) -> None:
    """Keep ``Labels.date``'s results in ``memo``, (language, ISO date) -> text, which the
    caller keeps between runs (valid while Babel is the same: ``babel_stamp``). A build
    whose dates were all said before neither imports Babel nor loads its locale data
    (~30 ms of a build; issue 14)."""
    global _dates
    _dates = memo


def babel_stamp() -> str:
    """Which Babel installation formats dates: its package's file's place, size and mtime."""
    return "|".join(code_stamps("babel"))


@lru_cache(maxsize=32)
def labels(lang: str) -> Labels:
    return Labels(lang, translations(lang))
