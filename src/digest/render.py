"""``Issue`` + templates -> ``RenderedEmail``.

Jinja2 (autoescape, StrictUndefined) -> MJML -> HTML (mjml-python) -> CSS inlined
(premailer) -> plain text from its own template. Personal fields are left as
placeholder tokens and filled in later (per recipient by ``message``, per mail service
by ``export``), so the issue is rendered once.

Merge tags a user writes into a template (``*|UNSUB|*``, ``{{{ pm:unsubscribe }}}``,
``<%asm_group_unsubscribe_raw_url%>``, ``%unsubscribe_url%``, ...) would not survive
MJML's parser or lxml's serializer (which escapes ``<`` and URL-encodes ``|``, ``{`` and
spaces in ``href``), so they are swapped for inert tokens before MJML and put back,
byte for byte, after premailer.

Content never becomes such a tag: what the templates print (titles, summaries, URLs,
subject, preheader) carries data tokens for ``{ } [ ] | % $`` (see ``templating``),
which end up as character references (``&#123;``) in the HTML: readers see ``{{ 7*7 }}``,
no mail service's template engine sees a tag. The text part has the characters; its
marked copy (``marked_text``) lets ``export`` guard them for each service.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import importlib
import importlib.util
import json
import logging
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import jinja2

from .errors import RenderError
from .files import code_stamps, write_atomic
from .i18n import Labels, labels, primary
from .model import PLACEHOLDERS, RenderedEmail, token
from .templating import data_scope, environment, restore_literals
from .text import restore_html, restore_text

if TYPE_CHECKING:
    from .config import Config
    from .model import Issue

log = logging.getLogger(__name__)

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"

# --- merge tags --------------------------------------------------------------------------

# Merge-tag syntaxes of the mail services digest exports to (see
# shared/reference/esp-merge-tags.md). Tight on purpose: no markup or quotes inside, so a
# match never spans an element or an attribute boundary.
_MERGE_TAG = re.compile(
    r"\*\|[A-Za-z0-9_:\-]+\|\*"  # Mailchimp  *|UNSUB|*  *|HTML:LIST_ADDRESS_HTML|*
    r"|\{\{\{[^{}<>\"]*\}\}\}"  # Postmark, SendGrid  {{{ pm:unsubscribe }}}
    r"|\{\{[^{}<>\"]*\}\}"  # SES, listmonk, Buttondown, generic  {{amazonSESUnsubscribeUrl}}
    r"|<%[A-Za-z0-9_\-\s.]+%>"  # SendGrid legacy  <%asm_group_unsubscribe_raw_url%>
    r"|%[A-Za-z_][A-Za-z0-9_.\-]*%"  # Mailgun  %unsubscribe_url%  %recipient.first_name%
)


# What some mail service's engine reads as a tag, Django/Jinja statements and comments
# included (for notes about content that has such syntax).
TAG_LIKE = re.compile(_MERGE_TAG.pattern + r"|\{%[^{}<>]*%\}|\{#[^{}<>]*#\}")


class _MergeTags:
    """Swap merge tags for inert tokens and back. Tokens are letters, digits and ``_``."""

    def __init__(self, source: str) -> None:
        # A prefix that does not occur in the source (deterministic: same source, same one).
        self.prefix = "__dmt_"
        while self.prefix in source:
            self.prefix = self.prefix[:-1] + "x_"
        self.tags: dict[str, str] = {}  # tag -> token

    def protect(self, source: str) -> str:
        def sub(m: re.Match[str]) -> str:
            tag = m.group(0)
            if tag not in self.tags:
                self.tags[tag] = f"{self.prefix}{len(self.tags)}__"
            return self.tags[tag]

        return _MERGE_TAG.sub(sub, source)

    def restore(self, html: str) -> str:
        if not self.tags:
            return html
        back = {tok: tag for tag, tok in self.tags.items()}
        return re.sub(re.escape(self.prefix) + r"\d+__", lambda m: back[m.group(0)], html)


class _Deferred(types.ModuleType):
    """Stands in for a module that premailer or cssutils import at load time only to fetch
    style sheets over the network, which digest never lets them do, or for a rarely
    needed helper. The real module is imported on first attribute use (a function named
    in ``functions``, taken at import time by ``from m import f``: on its first call), so
    nothing breaks if one is ever used."""

    def __init__(self, name: str, functions: tuple[str, ...] = ()) -> None:
        super().__init__(name)
        for function in functions:
            setattr(self, function, functools.partial(_call_real, name, function))

    def __getattr__(self, attr: str) -> Any:
        if attr == "__path__":  # asked by `from m import f`: answered as a plain module
            raise AttributeError(attr)
        if sys.modules.get(self.__name__) is self:  # used while the import still runs
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        return getattr(real, attr)


def _call_real(module: str, function: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(importlib.import_module(module), function)(*args, **kwargs)


def _import_without(names: tuple[str, ...], module: str) -> Any:
    """Import ``module`` while ``names`` are deferred; ~150 ms of a build's start-up is
    premailer importing requests/urllib3 and cssutils importing urllib.request; ~6 ms
    more cssutils importing importlib.metadata (for its version, when it fetches), ~11
    ms ``email.message`` (for a Google App Engine fetcher it then finds missing) and ~5
    ms ``more_itertools`` (for one function, used by @namespace rules). A name may end
    in ``:f,g``: functions that module's importers take by name."""
    stubs = {}
    for named in names:
        name, _, functions = named.partition(":")
        if name in sys.modules or importlib.util.find_spec(name) is None:
            continue
        stub = _Deferred(name, tuple(filter(None, functions.split(","))))
        stub.__spec__ = importlib.util.find_spec(name)
        stubs[name] = sys.modules[name] = stub
        parent, _, child = name.rpartition(".")
        if parent:  # `import a.b` binds `a` and reads `a.b` later
            setattr(importlib.import_module(parent), child, stub)
    try:
        return importlib.import_module(module)
    finally:
        # Only the importing modules (and, for a submodule, its package's attribute) keep
        # the stand-ins, which forward to the real module; a later import gets the real one.
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]


# --- CSS -----------------------------------------------------------------------------------

# Mail clients ignore @import, and cssutils would fetch it (over the network, or from a
# file relative to the working directory) while premailer parses the style sheet. An
# at-keyword written with CSS escapes (`@\69mport`) is dropped too: nobody needs one.
_IMPORT = re.compile(r"@(?:import\b|[\w-]*\\)[^;{}]*;?", re.I)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_STYLESHEET_LINK = re.compile(r"<link\b[^>]*\bstylesheet\b[^>]*>", re.I)
_MJML_HEAD = re.compile(
    r"<style( type=\"text/css\")?>(\s*(?:#outlook a|@media only screen and \([a-z-]+:\d+px\) "
    r"\{\s*(?:\S+\.mj-|\.mj-)))"
)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)

_premailer: Any = None


def _no_fetch(url: str) -> None:
    # cssutils calls its fetcher for @import; we never load anything.
    log.warning("not fetching style sheet %s: digest loads nothing over the network", url)
    return None


def _parse_style(
    parse: Any, css: str, encoding: str = "utf-8", validate: bool | None = None
) -> Any:
    return parse(css, encoding, validate=False)


def _load_premailer() -> Any:
    """Import premailer on first use (~0.1 s, twice that without the deferred imports) and
    make cssutils quiet and inert."""
    global _premailer
    if _premailer is None:
        premailer = _import_without(
            (
                "requests", "urllib.request", "importlib.metadata", "encutils",
                "email.message", "more_itertools:unique_everseen",
            ),
            "premailer",
        )  # fmt: skip
        import cssutils
        import cssutils.util

        # Every parser cssutils makes (premailer calls cssutils.parseString) falls back to
        # this fetcher for @import: a second guard behind stripping @import rules.
        cssutils.util._defaultFetcher = _no_fetch
        cssutils.log.setLevel(logging.CRITICAL)
        # cssutils also logs through the stdlib logger "CSSUTILS"; keep it off the console.
        logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
        # Compact @media blocks in the kept <style> (the pretty default adds ~30% there).
        cssutils.ser.prefs.useMinified()
        cssutils.ser.prefs.keepComments = False
        # premailer passes disable_validation to the style sheet's parse but not to the
        # parse of each element's own style="" (merge_styles -> csstext_to_pairs), so
        # cssutils validated those against its profiles, compiling their large regexes
        # first: ~40 ms of every process's first render (issue 14). Validation only logs
        # (invalid values are kept as written) and its log is off: the output is the same.
        cssutils.parseStyle = functools.partial(_parse_style, cssutils.parseStyle)
        # Each element's style="" is parsed through csstext_to_pairs (both modules hold
        # it): the memo of the render under way answers first (_InlineMemo).
        # (A premailer without these names renders as it is, without the memo.)
        merging = importlib.import_module("premailer.merge_style")
        inlining = importlib.import_module("premailer.premailer")
        parse_pairs = getattr(merging, "csstext_to_pairs", None)
        if parse_pairs is not None and getattr(inlining, "csstext_to_pairs", None) is parse_pairs:
            remembered = functools.partial(_remembered_pairs, parse_pairs)
            # Both modules call it by that name at each call, and the original finds its
            # lock through the name too: the stand-in carries it.
            remembered._lock = getattr(parse_pairs, "_lock", None)  # type: ignore[attr-defined]
            setattr(merging, "csstext_to_pairs", remembered)  # noqa: B010
            setattr(inlining, "csstext_to_pairs", remembered)  # noqa: B010
        _premailer = premailer
    return _premailer


class _InlineMemo:
    """What premailer's CSS parsing found for the last build's email, kept between
    builds beside the compiled email (``inline.json``): each element's parsed style=""
    and each <style> block's rules. A build whose email changed (new posts, a template
    edit) inlines the same CSS into other HTML; cssutils parsing it again is ~35 ms of
    the first render of a process (issue 14). Keyed like the compiled email by this
    module's code and the installed libraries; JSON (strings and numbers), pruned to
    what the last render used."""

    def __init__(self, folder: Path, key: str) -> None:
        self.path = folder / "inline.json"
        self.key = key
        self.pairs: dict[str, list[tuple[str, str]]] = {}
        self.rules: dict[str, tuple[list[Any], str | None]] = {}
        self.used_pairs: set[str] = set()
        self.used_rules: set[str] = set()
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data["key"] == key:
                self.pairs = {k: [(n, v) for n, v in pairs] for k, pairs in data["pairs"]}
                self.rules = {
                    k: ([(tuple(spec), sel, bulk) for spec, sel, bulk in rules], text)
                    for k, rules, text in data["rules"]
                }
        except (OSError, ValueError, KeyError, TypeError):
            self.pairs, self.rules = {}, {}  # none yet, unreadable or another version's

    def keep(self) -> None:
        """Write what this render used, if it parsed anything new."""
        if not self.changed:
            return
        data = {
            "key": self.key,
            "pairs": [[k, v] for k, v in self.pairs.items() if k in self.used_pairs],
            "rules": [[k, *v] for k, v in self.rules.items() if k in self.used_rules],
        }
        _store(self.path, json.dumps(data))


_memo: contextvars.ContextVar[_InlineMemo | None] = contextvars.ContextVar(
    "digest_inline_memo", default=None
)


def _remembered_pairs(parse: Any, csstext: str, validate: bool = True) -> Any:
    memo = _memo.get()
    if memo is None:
        return parse(csstext, validate=validate)
    key = f"{int(validate)}{csstext}"
    memo.used_pairs.add(key)
    found = memo.pairs.get(key)
    if found is None:
        found = memo.pairs[key] = parse(csstext, validate=validate)
        memo.changed = True
    return found


class _Leftover(list):  # type: ignore[type-arg]
    """A <style> block's rules premailer keeps in the <head> (@media, pseudo-classes), as
    the text it writes for them (truthy when there were any)."""

    text = ""


@functools.cache
def _premailer_class() -> Any:
    """premailer's ``Premailer``, its style sheet parse answered by the memo under way."""
    base = _load_premailer().Premailer

    class Premailer(base):  # type: ignore[valid-type, misc]
        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Any:
            memo = _memo.get()
            if memo is None:
                return super()._parse_style_rules(css_body, ruleset_index)
            key = f"{ruleset_index}\0{css_body}"
            memo.used_rules.add(key)
            found = memo.rules.get(key)
            if found is None:
                rules, left = super()._parse_style_rules(css_body, ruleset_index)
                text = super()._css_rules_to_string(left) if left else None
                found = memo.rules[key] = (rules, text)
                memo.changed = True
            rules, text = found
            leftover = _Leftover()
            if text is not None:
                leftover.append(None)
                leftover.text = text
            return list(rules), leftover

        def _css_rules_to_string(self, rules: Any) -> str:
            if isinstance(rules, _Leftover):
                return rules.text
            return str(super()._css_rules_to_string(rules))

    return Premailer


def _drop_imports(html: str) -> tuple[str, list[str]]:
    dropped: list[str] = []

    def drop(m: re.Match[str]) -> str:
        dropped.append(" ".join(m.group(0).split()))
        return ""

    def clean(m: re.Match[str]) -> str:
        css = _IMPORT.sub(drop, _COMMENT.sub("", m.group(2)))
        return m.group(1) + css + m.group(3)

    return _STYLE.sub(clean, html), dropped


def _inline_css(html: str, memo: _InlineMemo | None = None) -> str:
    """premailer with digest's options; with ``memo``, CSS parsed for an earlier build's
    email is not parsed again (the same output)."""
    token = _memo.set(memo)
    try:
        return _inline(html)
    finally:
        _memo.reset(token)


def _inline(html: str) -> str:
    # lxml only keeps a doctype that matches its own spelling exactly; MJML writes
    # "<!doctype html>", which premailer would otherwise drop (quirks mode in clients).
    body = re.sub(r"^\s*<!doctype html>", "", html, count=1, flags=re.I)
    # MJML's own reset block (body, table, img, p) is written for the <head>, where clients
    # read it; inlining it would repeat it on every table cell (~25% more bytes). Its
    # @media blocks hold nothing to inline; parsing them would only cost time.
    body = _MJML_HEAD.sub(r'<style\1 data-premailer="ignore">\2', body)
    out = _premailer_class()(
        base_url=None,  # never rewrite links: ours are absolute and merge tags are not URLs
        disable_link_rewrites=True,
        allow_network=False,  # no <link rel=stylesheet> loading
        external_styles=None,
        keep_style_tags=False,  # inline plain rules, keep only what cannot be inlined
        strip_important=False,  # dark-mode rules need !important to beat inline styles
        disable_validation=True,  # faster, and no warning per vendor property
        cssutils_logging_level=logging.CRITICAL,
        remove_classes=False,  # @media rules still select by class
        exclude_pseudoclasses=True,
        align_floating_images=False,
        cache_css_parsing=True,
    ).transform("<!DOCTYPE html>" + body, pretty_print=False)
    if not out.startswith("<!DOCTYPE html>"):
        out = "<!DOCTYPE html>\n" + out
    return out


# --- errors ----------------------------------------------------------------------------------


def _template_error(exc: Exception, tb: TracebackType | None, fallback: str) -> RenderError:
    """A RenderError naming the template file and line of a Jinja error."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{exc.filename or exc.name or fallback}:{exc.lineno}"
        return RenderError(f"{where}: template syntax error: {exc.message}")
    # Jinja rewrites tracebacks so that template frames carry the template's file and line.
    where = fallback
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.endswith(".py") and Path(code.co_filename).suffix:
            where = f"{code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return RenderError(
            f"{where}: {exc}: templates run in a sandbox without access to Python; remove it"
        )
    if isinstance(exc, jinja2.UndefinedError):
        return RenderError(f"{where}: {exc.message}; check the spelling against the defaults")
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(f"{where}: template {exc.name!r} not found")
    return RenderError(f"{where}: the template failed: {exc}")


def _mjml_error(exc: Exception, source: str, template: str, user: Path | None) -> RenderError:
    message = str(exc)
    m = re.search(r"position (\d+)", message)
    if m:
        # MRML counts bytes.
        before = source.encode("utf-8")[: int(m.group(1))].decode("utf-8", "ignore")
        line = before.count("\n") + 1
        text = source.splitlines()[line - 1].strip() if source else ""
        message += f" (line {line} of the MJML it produced: {text[:120]!r})"
    own = sorted(p.name for p in user.glob("*.mjml*")) if user and user.is_dir() else []
    if own:
        message += f"; your templates in {user}: {', '.join(own)}"
    return RenderError(f"{template}: MJML could not compile the email: {message}")


def _render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        template = env.get_template(name)
    except jinja2.TemplateNotFound:
        raise RenderError(f"template {name!r} not found in the templates folders") from None
    except jinja2.TemplateError as exc:
        raise _template_error(exc, sys.exc_info()[2], name) from None
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:
        raise _template_error(exc, sys.exc_info()[2], template.filename or name) from None


# --- render ----------------------------------------------------------------------------------


def placeholders() -> dict[str, str]:
    """The ``ph`` mapping templates see: placeholder name -> token."""
    return {name: token(name) for name in PLACEHOLDERS}


def _reason(issue: Issue, cfg: Config, t: Labels) -> str:
    """Why the reader gets this email: ``newsletter.description`` when the user wrote one
    in the issue's language, else the catalog's sentence in that language."""
    news = cfg.newsletter
    own = "description" in news.model_fields_set and news.description.strip()
    if own and primary(issue.lang) == primary(news.language):
        return news.description
    return t.gettext("You get this email because you subscribed to %(name)s.", name=news.name)


def _context(issue: Issue, cfg: Config) -> dict[str, Any]:
    """What the templates see (documented in email.mjml.j2)."""
    t = labels(issue.lang)
    return {
        "issue": issue,
        "newsletter": cfg.newsletter,
        "ph": placeholders(),
        "t": t,
        "_": t.gettext,
        "reason": _reason(issue, cfg, t),
    }


def mjml_source(issue: Issue, cfg: Config) -> str:
    """The MJML the email template renders for ``issue`` (for comparing with other MJML
    compilers: bench/build.py, bench/caniemail.py)."""
    env = environment(cfg.templates.folder)
    with data_scope() as key:
        return restore_literals(_render_template(env, HTML_TEMPLATE, _context(issue, cfg)), key)


# --- the compiled email, kept between builds ----------------------------------------------

_CACHE_FORMAT = 1
_LIBRARIES = ("mjml", "premailer", "cssutils", "lxml", "cssselect", "cachetools")


def _cache_key(protected: str, libraries: str) -> str:
    """What MJML -> inlined HTML depends on: the MJML, this module's code (the options and
    the steps around the libraries), digest's version and the installed libraries (their
    files' place, size and mtime: ``files.code_stamps``). Found without importing them,
    which is what the cache saves."""
    return hashlib.sha256(f"{libraries}\0{protected}".encode()).hexdigest()


def _libraries_key() -> str:
    """This module's code, digest's version, Python's and the installed libraries'."""
    from . import __version__

    parts = [str(_CACHE_FORMAT), __version__, sys.version, Path(__file__).read_text("utf-8")]
    parts += code_stamps(*_LIBRARIES)
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _cached(folder: Path | None, key: str) -> tuple[str, list[str], list[str]] | None:
    if folder is None:
        return None
    try:
        data = json.loads((folder / "render.json").read_text(encoding="utf-8"))
        if data["key"] == key:
            return str(data["html"]), list(data["dropped"]), list(data["links"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, unreadable or from another version: compile
    return None


def _keep(folder: Path | None, key: str, html: str, dropped: list[str], links: list[str]) -> None:
    """Write the compiled email for the next build; a failure only costs that build time."""
    if folder is None:
        return
    data = {"key": key, "html": html, "dropped": dropped, "links": links}
    _store(folder / "render.json", json.dumps(data))


def _store(path: Path, text: str) -> None:
    """Keep ``path`` for the next build, readable by its owner only; a failure only
    costs that build its speed."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, private=True)


def _compile(
    protected: str, template_file: str, user: Path | None, cache: Path | None
) -> tuple[str, list[str], list[str]]:
    """MJML (merge tags protected) -> inlined HTML, the @import rules and the style sheet
    links dropped. With ``cache`` (a build's ``out/.cache``), the result of the same MJML
    under the same code and libraries is read back instead (issue 14: the compile, and
    importing premailer for it, are most of a build's CPU)."""
    key = libraries = ""
    if cache is not None:
        try:
            libraries = _libraries_key()
            key = _cache_key(protected, libraries)
        except OSError:  # no source to hash (an unusual install): compile, keep nothing
            cache = None
    found = _cached(cache, key)
    if found is not None:
        return found
    import mjml

    try:
        # fonts={}: no web-font <link>/@import (MRML adds Google Fonts for Roboto, Open
        # Sans, ... by default); the templates use system font stacks.
        compiled = mjml.mjml2html(protected, disable_comments=True, fonts={})
    except ValueError as exc:
        raise _mjml_error(exc, protected, template_file, user) from None
    compiled, dropped = _drop_imports(compiled)
    links = _STYLESHEET_LINK.findall(compiled)
    compiled = _STYLESHEET_LINK.sub("", compiled)
    memo = _InlineMemo(cache, libraries) if cache is not None else None
    html = _inline_css(compiled, memo)
    if memo is not None:
        memo.keep()
    _keep(cache, key, html, dropped, links)
    return html, dropped, links


def render(issue: Issue, cfg: Config, *, cache: Path | None = None) -> RenderedEmail:
    """Render ``issue`` once, with placeholder tokens for personal fields.

    ``cache``: a folder where the compiled email is kept for the next build (see
    ``_compile``); the result is the same with or without it."""
    env = environment(cfg.templates.folder)
    context = _context(issue, cfg)
    with data_scope() as key:
        source = restore_literals(_render_template(env, HTML_TEMPLATE, context), key)
        marked_text = restore_literals(_render_template(env, TEXT_TEMPLATE, context), key)
    tags = _MergeTags(source)
    protected = tags.protect(source)
    template_file = env.get_template(HTML_TEMPLATE).filename or HTML_TEMPLATE
    inlined, dropped, links = _compile(protected, template_file, cfg.templates.folder, cache)
    warnings = [
        f"{template_file}: dropped {rule!r}: mail clients ignore @import and digest "
        "fetches nothing; put the CSS in the template"
        for rule in dropped
    ]
    warnings += [
        f"{template_file}: dropped {link}: mail clients ignore linked style sheets and "
        "digest fetches nothing; put the CSS in the template"
        for link in links
    ]
    html = restore_html(tags.restore(inlined))
    text = restore_text(marked_text)

    size = len(html.encode("utf-8"))
    kb = size / 1024
    if kb > cfg.output.max_kb:
        raise RenderError(
            f"{template_file}: the HTML is {kb:.0f} KB, over output.max_kb = "
            f"{cfg.output.max_kb} KB: Gmail clips longer emails and hides the unsubscribe "
            "link. Lower content.max_articles or content.summary_words, or trim the template"
        )
    if kb > cfg.output.warn_kb:
        warnings.append(
            f"the HTML is {kb:.0f} KB, over output.warn_kb = {cfg.output.warn_kb} KB "
            f"(Gmail clips above ~{cfg.output.max_kb} KB)"
        )
    return RenderedEmail(
        issue_id=issue.id,
        subject=issue.subject,
        preheader=issue.preheader,
        html=html,
        text=text,
        lang=issue.lang,
        defaults={
            # An edition's web version is its own page (web/archive.py).
            "web_url": f"{cfg.newsletter.web_root}/issues/{issue.id}/"
            + (f"{issue.lang}/" if cfg.newsletter.editions else ""),
            "postal_address": cfg.newsletter.postal_address,
        },
        warnings=tuple(warnings),
        marked_text=marked_text if marked_text != text else "",
    )
