"""The one Jinja environment: autoescape on for HTML/MJML, StrictUndefined.

A user's templates folder (``templates.folder``) is searched before the defaults, so a
file of the same name overrides the default one. Article content is only ever passed
in as data: it is never compiled as a template.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from functools import lru_cache
from pathlib import Path

import jinja2

# Default templates live in the repository's templates/email/, shipped inside the package
# as digest/templates/email when installed as a wheel (see pyproject package-data).
_PACKAGE_TEMPLATES = Path(__file__).parent / "templates" / "email"
_REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def default_templates() -> Path:
    return _REPO_TEMPLATES if _REPO_TEMPLATES.is_dir() else _PACKAGE_TEMPLATES


def _autoescape(name: str | None) -> bool:
    return name is not None and not name.endswith((".txt", ".txt.j2"))


def longdate(when: dt.date | dt.datetime, lang: str = "en") -> str:
    """``23 November 2026`` in English; the unambiguous ``2026-11-23`` otherwise.

    (Month names in other languages would need a locale library; ISO dates read
    correctly everywhere.)
    """
    if lang.lower().split("-")[0] == "en":
        return f"{when.day} {_MONTHS[when.month - 1]} {when.year}"
    return when.strftime("%Y-%m-%d")


def wrap(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Fill ``text`` to ``width`` columns for the plain-text part.

    Words are never split, so a long URL stays whole on its own line. ``first`` is the
    prefix of the first line (default ``indent``), e.g. ``"  * "`` with ``indent="    "``
    for a hanging list item.
    """
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    # Compiling the templates costs more than the rest of a render; the cache (in the
    # per-user temp folder Jinja picks and checks) is keyed on each template's source.
    if os.environ.get("DIGEST_NO_TEMPLATE_CACHE"):
        return None
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


@lru_cache(maxsize=8)
def environment(user_folder: Path | None = None) -> jinja2.Environment:
    search = [str(user_folder)] if user_folder else []
    search.append(str(default_templates()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        # Everything is escaped except plain-text templates and one-line config strings.
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["longdate"] = longdate
    env.filters["wrap"] = wrap
    return env


def render_string(source: str, **context: object) -> str:
    """Render a one-line template from the config (subject, preheader): plain text."""
    return environment(None).from_string(source).render(**context)
