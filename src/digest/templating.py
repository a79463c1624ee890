"""The one Jinja environment: autoescape on for HTML/MJML, StrictUndefined.

A user's templates folder (``templates.folder``) is searched before the defaults, so a
file of the same name overrides the default one. Article content is only ever passed
in as data: it is never compiled as a template.

Nor may a mail service's template engine evaluate it after ``digest export``. While an
email is rendered (inside ``data_scope()``), every value a ``{{ ... }}`` prints, escaped
or Markup, has the characters those engines read as syntax (``SYNTAX``) swapped for
data tokens, ``__dchr123__``: letters, digits and ``_``, which MJML, lxml and premailer
leave alone. ``render`` turns them into character references (``&#123;``) in the HTML,
back into the characters in the plain text, and ``export`` guards them per service.
Template text, merge tags in ``{% raw %}`` included, is not data: the lexer hands it to
the ``_literal`` filter, which swaps the same characters for tokens carrying a random
per-render key (so content cannot forge one), restored before MJML sees the markup.

Every template runs in Jinja's immutable sandbox: a user's templates folder, a user's
web pages and the subject and preheader in the config are code we did not write, and
``cycler.__init__.__globals__.os`` must not reach Python. Attributes starting with ``_``,
the internals of functions and frames, and methods that change a list or dict raise
``jinja2.sandbox.SecurityError`` (callers name the template or config key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.runtime
import jinja2.sandbox
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup

from .files import bundled
from .text import DATA_CHARS, neutralise


def default_templates() -> Path:
    """The bundled email templates (``templates/email/`` at the top of the repository)."""
    return bundled("templates/email")


def _autoescape(name: str | None) -> bool:
    return name is not None and not name.endswith((".txt", ".txt.j2"))


def longdate(when: dt.date | dt.datetime, lang: str = "en") -> str:
    """CLDR's long date in ``lang`` (Babel): ``November 23, 2026``, ``2026年11月23日``."""
    from .i18n import labels

    return labels(lang).date(when)


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal or a monospaced mail app: East Asian wide
    characters count two, combining marks none."""
    n = 0
    for ch in str(text):
        if _wide(ch):
            n += 2
        elif not unicodedata.combining(ch) and ch not in "\u200b\u200c\u200d\u2060\ufeff":
            n += 1
    return n


# Punctuation that must not start a line (kinsoku): it stays with the unit before it.
_NO_LINE_START = frozenset("。、，．！？：；」』）〕】〉》・ー…,.!?:;)]}")


def _drop_space(before: str, after: str, newline: bool) -> bool:
    """Whether whitespace between ``before`` and ``after`` goes: always after wide
    punctuation ("。", "、"), whose own width is the pause; between two wide characters
    only when it was a line break in the source (Chinese and Japanese put no space there,
    but a space a writer typed, as in "佐藤 美咲", stays)."""
    if not _wide(before):
        return False
    return unicodedata.category(before).startswith("P") or (newline and _wide(after))


def prose(text: str) -> str:
    """``text`` with whitespace runs made one space, and none where CJK puts none (see
    ``_drop_space``): for the HTML, where a browser would show the space."""
    out: list[str] = []
    gap = ""
    for ch in str(text):
        if ch.isspace():
            gap += ch
            continue
        if gap:
            if out and not _drop_space(out[-1], ch, "\n" in gap):
                out.append(" ")
            gap = ""
        out.append(ch)
    return "".join(out)


def _units(text: str) -> list[tuple[str, bool]]:
    """``text`` as units a line may break between: (unit, a space before it).

    A word of narrow characters is one unit; each wide (CJK) character is its own, as
    lines in Chinese and Japanese break between any two characters. Punctuation that may
    not start a line sticks to the unit before it. Spaces follow ``prose``.
    """
    units: list[list[Any]] = []
    buf = ""
    space = False

    def flush() -> None:
        nonlocal buf, space
        if buf:
            units.append([buf, space])
            buf, space = "", False

    for ch in prose(text):
        if ch == " ":
            flush()
            space = bool(units)
            continue
        if ch in _NO_LINE_START and not buf and not space and units:
            units[-1][0] += ch  # no line starts with it
            continue
        if _wide(ch):
            flush()
            units.append([ch, space])
            space = False
        else:
            if buf == "" and units and not space and _wide(units[-1][0][-1]):
                flush()  # a line may break between CJK and Latin
            buf += ch
    flush()
    return [(u, s) for u, s in units]


def wrap(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Fill ``text`` to ``width`` columns for the plain-text part.

    Columns are display columns (a CJK character takes two); lines break between words,
    and between any two CJK characters, never inside a word, so a long URL stays whole on
    its own line. ``first`` is the prefix of the first line (default ``indent``), e.g.
    ``"- "`` with ``indent="  "`` for a hanging list item.
    """
    units = _units(str(text))
    if not units:
        return ""
    start = indent if first is None else first
    lines: list[str] = []
    line, used, empty = start, display_width(start), True
    for unit, space in units:
        w = display_width(unit)
        gap = 1 if space and not empty else 0
        if not empty and used + gap + w > width:
            lines.append(line)
            line, used, gap = indent, display_width(indent), 0
        line += " " * gap + unit
        used += gap + w
        empty = False
    lines.append(line)
    return "\n".join(lines)


# The key of the render in progress (see data_scope), or None: then nothing is swapped.
_KEY: ContextVar[str | None] = ContextVar("digest_template_key", default=None)


@lru_cache(maxsize=4)
def _literal_tokens(key: str) -> tuple[tuple[str, str], ...]:
    return tuple((c, f"__dlit{key}x{ord(c)}__") for c in DATA_CHARS)


@contextmanager
def data_scope() -> Iterator[str]:
    """Render inside this to mark data; yields the key ``restore_literals`` needs."""
    key = secrets.token_hex(8)
    reset = _KEY.set(key)
    try:
        yield key
    finally:
        _KEY.reset(reset)


def restore_literals(rendered: str, key: str) -> str:
    """Template text back as written; data tokens stay."""
    if "__dlit" not in rendered:
        return rendered
    for char, tok in _literal_tokens(key):
        rendered = rendered.replace(tok, char)
    return rendered


@jinja2.pass_context  # (not pass_eval_context: Jinja would run it once, at compile time)
def _literal(context: jinja2.runtime.Context, text: str) -> str:
    """Template text (never data): inside data_scope its syntax characters become keyed
    tokens, so ``_finalize`` finds nothing to swap in it, even inside a macro's result."""
    key = _KEY.get()
    if key is not None:
        for char, tok in _literal_tokens(key):  # (str.translate is 50x slower here)
            if char in text:
                text = text.replace(char, tok)
    return Markup(text) if context.eval_ctx.autoescape else text


class _LiteralText(jinja2.ext.Extension):
    """Template text with a SYNTAX character is printed through ``_literal``:
    ``a {x}`` compiles as ``{{ "a {x}" | _digest_literal }}``."""

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        for tok in stream:
            if tok.type != "data" or not any(c in tok.value for c in DATA_CHARS):
                yield tok
                continue
            n = tok.lineno
            yield Token(n, "variable_begin", "{{")
            yield Token(n, "string", tok.value)
            yield Token(n, "pipe", "|")
            yield Token(n, "name", "_digest_literal")
            yield Token(n, "variable_end", "}}")


@jinja2.pass_eval_context  # never folded at compile time: what it does depends on data_scope
def _finalize(eval_ctx: jinja2.nodes.EvalContext, value: Any) -> Any:
    """Every value a ``{{ ... }}`` prints is data: inside data_scope, swap its syntax.

    Markup too: ``|safe``, ``|e``, ``|urlize`` or ``~`` with a macro's result all make
    Markup from content; the template text in a macro's result is already keyed tokens.
    """
    if _KEY.get() is None or value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and not isinstance(value, Markup):
        return neutralise(value)
    if hasattr(value, "__html__"):
        return Markup(neutralise(value.__html__()))
    return neutralise(str(value))  # an object: escape() would print str(value)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    # Compiling the templates costs more than the rest of a render; the cache (in the
    # per-user temp folder Jinja picks and checks) is keyed on each template's source.
    # The compiled code also depends on this module (finalize, the _literal rewrite),
    # which Jinja's cache does not know: the file name carries a hash of it.
    if os.environ.get("DIGEST_NO_TEMPLATE_CACHE"):
        return None
    try:
        return jinja2.FileSystemBytecodeCache(pattern=f"__digest_{_code_version()}_%s.cache")
    except (OSError, RuntimeError):
        return None


def _code_version() -> str:
    h = hashlib.sha1(jinja2.__version__.encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:12]


@lru_cache(maxsize=8)
def environment(user_folder: Path | None = None, *, pages: bool = False) -> jinja2.Environment:
    """The one Jinja environment factory: StrictUndefined, a user's folder before ours.

    For email (the default): ``templates/email/``; autoescape except ``.txt`` templates
    and one-line config strings; printed values marked as data (see the module
    docstring). With ``pages``, for our own web pages: ``templates/web/`` (a user's
    ``<folder>/web/`` first), autoescape everywhere, and no text-template rule.
    """
    if pages:
        return _pages_environment(user_folder)
    search = [str(user_folder)] if user_folder else []
    search.append(str(default_templates()))
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        # Everything is escaped except plain-text templates and one-line config strings.
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
        finalize=_finalize,
        extensions=[_LiteralText],
    )
    env.filters["longdate"] = longdate
    env.filters["wrap"] = wrap
    env.filters["display_width"] = display_width
    env.filters["prose"] = prose
    env.filters["_digest_literal"] = _literal
    return env


@lru_cache(maxsize=8)
def _pages_environment(user_folder: Path | None) -> jinja2.Environment:
    search = [str(user_folder / "web")] if user_folder else []
    search.append(str(bundled("templates/web")))
    return jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_string(source: str, **context: object) -> str:
    """Render a one-line template from the config (subject, preheader): plain text.

    Raises ``jinja2.TemplateError`` (``SecurityError`` for what the sandbox refuses)."""
    return environment(None).from_string(source).render(**context)
