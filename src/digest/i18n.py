"""A language tag -> the words, dates and direction of an email in that language.

``labels(lang)`` gives what the email templates call: ``_("Read more")``,
``ngettext("%(num)s min read", "%(num)s min read", n)``, ``date(when)`` (CLDR's long
date via Babel), ``dir`` (``"rtl"`` for Arabic, Hebrew, Persian, Urdu) and the arrows.
The words come from gettext catalogs shipped in ``locale/<lang>/LC_MESSAGES/digest.po``
(en, de, fr, es, pt, ja, zh, ar); a language without one gets the English words, and a
template can print any other word instead (the words are in the templates, not here).

The ``.po`` files are read directly (Babel's ``read_po``) and turned into a
``gettext.GNUTranslations`` in memory once per language: no compile step in the build or
the wheel, so a catalog cannot drift from a stale ``.mo``, for ~2 ms on first use.
Babel is imported here only when an email is rendered (start-up time of other commands).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .files import bundled

DOMAIN = "digest"
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
            from babel.messages.mofile import write_mo
            from babel.messages.pofile import read_po

            with open(path, "rb") as f:
                catalog = read_po(f, locale=candidate, domain=DOMAIN)
            buf = io.BytesIO()
            write_mo(buf, catalog, use_fuzzy=False)
            buf.seek(0)
            return gettext.GNUTranslations(buf)
    return gettext.NullTranslations()


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
        from babel.numbers import format_decimal

        return str(format_decimal(n, locale=_locale(self.lang)))

    def date(self, when: dt.date | dt.datetime) -> str:
        """CLDR's long date: ``November 23, 2026``, ``23. November 2026``, ``2026年11月23日``."""
        from babel.dates import format_date

        day = when.date() if isinstance(when, dt.datetime) else when
        return str(format_date(day, "long", locale=_locale(self.lang)))


@lru_cache(maxsize=32)
def labels(lang: str) -> Labels:
    return Labels(lang, translations(lang))
