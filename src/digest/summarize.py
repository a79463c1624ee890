"""``Article`` -> plain-text summary and key points.

The summary is, in this order:

1. the front matter ``summary``/``description``/``excerpt`` (``Article.summary``),
   with any Markdown or HTML stripped, unless it is a stub (under ``STUB_WORDS``
   words, or mostly the title's words again: ``is_stub``); a stub is used only when
   the article has nothing else;
2. else the text before ``<!--more-->`` (or Pelican's ``<!-- PELICAN_END_SUMMARY -->``);
3. else the lede: the opening paragraphs up to the first heading that follows at
   least ``_SHORT`` words (a headline before the lede is skipped); an article with no
   paragraphs at all uses its list items, each as a sentence.

The description that gives way to the lede (a stub: short, or the title again) stays as
a standfirst, a line under the title (``Summary.standfirst``), when it adds something:
not a placeholder or a word or two, not the title again, not words the summary already
says. When the description is the summary, there is no standfirst (``standfirst``).

A paragraph ending in ":" followed by a list becomes an inline list ("fixes for: A, B
and C.", as many items as fit, then "and more"); followed by anything else (code), its
last sentence is dropped. When the first paragraph only announces (``ANNOUNCE``: "has
been released", "happy to announce", "see below"), its first sentence is followed by
what the post is about: "Highlights: ..." from the first list's first-level items (a
bare "**fs**:" item takes its first sub-bullet), else from the section headings (not
generic ones such as "Notable changes"), else the first informative paragraph.

Template code (``{% %}``, ``{{ }}``, ``{{< >}}``, ``{{% %}}``, Pelican's ``{filename}``),
footnote markers, URLs written out (with a "Label:" that only introduces one), and
unresolved ``[text][ref]`` never reach a summary (``clean``); a paragraph that is mostly
URLs (a download list) is skipped. Every summary ends at a sentence end (``close``).

Headings, code, images, tables and raw HTML blocks never count, nor does the text of raw
``<script>``, ``<style>`` (and other elements the HTML drops with their content).
Whatever the source, the text is cut to the word budget at a sentence boundary (syntok;
Chinese and Japanese sentences end at 。！？); if even the first sentence is longer, it
is cut after the last whole word that fits and ends in "…". The output is plain text: no
markup, no entities, one line. However odd the input, it stays small: at most
``CHARS_PER_WORD`` x budget characters, and a "word" longer than ``MAX_UNIT``
characters (a 1 MB run of letters, 20,000 ``[``) is cut to that length with "…".

A summary reads only the start of a long article: the Markdown body is parsed into
blocks once, the inline text of a block only when a summary or key point needs it, and
only the first ``LOOKAHEAD`` x budget words are split into sentences. A 1 MB article
costs a fraction of a second, not the ~5 s of parsing and segmenting all of it.

Key points are list items that start with a bold lead-in and a separator
(``- **Cost**: text``, ``- **Cost:** text``, ``- **Cost** — text``); their text is
whole sentences within half the budget (at least 15 words), so a digest stays
skimmable; a first sentence up to the whole budget is kept, a longer one makes the
item no key point (it would be cut mid-thought). The lead-in is cut like a summary.

A bullet that the summary already shows (an article that is only a list) is not
repeated as a key point.

``summarizer(cfg)`` returns the configured summarizer: this one, or the plug-in named by
``content.summarizer`` (see its docstring).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .config import Config
from .content.dates import MONTHS
from .content.html import markdown
from .errors import ConfigError, ContentError
from .model import Article, KeyPoint, Summary
from .text import (
    CJK_CLASS,
    FIRST_CJK,
    LazyRegex,
    children_text,
    count_words,
    drop_hidden,
    inline_text,
    starts_cjk,
)

ELLIPSIS = "…"
LOOKAHEAD = 20  # words of text read and split into sentences per word of the budget
CHARS_PER_WORD = 12  # a text cut to a budget of N words is at most 12 N characters long
MAX_UNIT = 40  # characters in one word at most: a longer one would overflow a phone's line
_MORE = LazyRegex(r"<!--\s*(?:more|PELICAN_END_SUMMARY)\s*-->", re.I)
_TAG = LazyRegex(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)
_CJK_END = LazyRegex(r"[。！？]+[」』”’）)]*")
_UNIT = LazyRegex(rf"[{CJK_CLASS}]|[^\s{CJK_CLASS}]+")  # a CJK character or a word
_WORD_UNIT = re.compile(r"\S+")  # the same, in a text without CJK (see text.FIRST_CJK)
_ORDINAL_END = LazyRegex(r"(?:^|\s)\d{1,2}\.$")
_TRAILING = " \t,;:—–-([{\"'“‘«"
_LEAD_SEPARATORS = (":", "：", "—", "–", "-", ".")


def summarize(article: Article, *, words: int = 60, key_points: int = 3) -> Summary:
    """The summary text (see the module docstring) and up to ``key_points`` key points."""
    md = _blocks()
    env: dict[str, Any] = {}
    body = drop_template_code(article.body)
    tokens = md.parse(body, env)
    enough = LOOKAHEAD * words
    front = clean(plain(article.summary, enough=enough)) if article.summary else ""
    text = front if front and not is_stub(front, article.title) else ""
    items: list[tuple[int, int]] = []  # (offset in text, line in the body) of list items
    if not text:  # no summary, a stub, or one that shows nothing (only a <script>, say)
        more = _MORE.search(body)
        if more:
            head = md.parse(body[: more.start()], {"references": env.get("references", {})})
            text, items = _lede(_units(head, env, enough), words, stop_at_heading=False)
        if not text:  # no marker, or only a quote or an image before it
            text, items = _lede(_units(tokens, env, enough), words, stop_at_heading=True)
    if not text:
        text = front  # a stub is better than nothing
    summary = close(fit(text, words))
    stand = standfirst(front, article.title, summary)
    if not key_points:
        return Summary(summary, standfirst=stand)
    end = len(summary.removesuffix(ELLIPSIS))
    shown = {line for at, line in items if at < end}  # bullets the summary shows
    points = _key_points(tokens, env, key_points, max(15, words // 2), shown)
    return Summary(summary, points, stand)


def standfirst(description: str, title: str, summary: str) -> str:
    """The description as a line under the title, when it is not the summary and adds
    something to it: not a placeholder or a word or two (``_STANDFIRST_WORDS``), not the
    title again, not (mostly) words the summary already says. "" otherwise."""
    description = fit(description, STUB_WORDS * 3)
    if not description or _PLACEHOLDER_TEXT.match(description):
        return ""
    # Stricter than a stub's test: "How Qihoo 360 uses Go" rephrases "Qihoo 360 and Go".
    if count_words(description) < _STANDFIRST_WORDS or _title_again(description, title, 0.6):
        return ""
    said = _words(summary)
    if description.casefold() in summary.casefold() or not said:
        return ""
    new = [w for w in _words_list(description) if w not in said]
    if len(new) < 0.5 * len(_words_list(description)):
        return ""  # the summary (the lede) says it already
    return description


def summarizer(cfg: Config) -> Callable[[Article], Summary]:
    """``article -> Summary`` as configured: the built-in ``summarize``, or the plug-in
    named by ``content.summarizer`` ("package.module:function").

    The plug-in is called as ``function(article, words)`` and returns the summary text
    (a ``str``) or a ``Summary``. Whatever it returns is made plain text and cut to the
    budget like the built-in's (a model may answer in Markdown, or at length); key points
    come from the built-in when it returns only text. A plug-in that cannot be imported
    is a ConfigError; one that raises is a ContentError naming it and the article: the
    issue is not built with some summaries silently different from the others.
    """
    words, points = cfg.content.summary_words, cfg.content.key_points
    spec = cfg.content.summarizer
    if not spec:
        return functools.partial(summarize, words=words, key_points=points)
    name, _, attr = spec.partition(":")
    try:
        function = getattr(importlib.import_module(name), attr)
    except Exception as exc:  # ImportError, AttributeError, or the module's own error
        raise ConfigError(
            cfg.source or "config",
            [("content.summarizer", f"cannot load {spec!r}: {type(exc).__name__}: {exc}")],
        ) from None
    if not callable(function):
        raise ConfigError(
            cfg.source or "config", [("content.summarizer", f"{spec!r} is not a function")]
        )

    def plugged(article: Article) -> Summary:
        try:
            out = function(article, words)
        except Exception as exc:
            raise ContentError(
                article.path,
                f"the summarizer plug-in {spec!r} failed: {type(exc).__name__}: {exc}; "
                "fix it, or remove content.summarizer to use the built-in one",
            ) from None
        if isinstance(out, Summary):
            text, key, stand = out.text, out.key_points, clean(plain(out.standfirst))
        elif isinstance(out, str):
            builtin = summarize(article, words=words, key_points=points)
            text, key, stand = out, builtin.key_points, builtin.standfirst
        else:
            raise ContentError(
                article.path,
                f"the summarizer plug-in {spec!r} returned {type(out).__name__}, "
                "not a str or a Summary",
            )
        summary = close(fit(clean(plain(text)), words))
        # The description again under the title only if the plug-in's text lacks it.
        stand = standfirst(stand, article.title, summary) if stand else ""
        return Summary(summary, tuple(key[:points]), stand)

    return plugged


def _blocks() -> Any:
    """The Markdown parser without its inline pass.

    Parsing inline text (most of markdown-it's time: ~4 s for a 1 MB article) is needed
    only for the few paragraphs a summary reads, so ``_inline`` does it per paragraph, on
    demand. The block pass still sees the whole body, so link reference definitions
    anywhere in it resolve as they do in the article.
    """
    return markdown(inline=False)


def _inline(token: Any, env: dict[str, Any]) -> Any:
    """``token`` (an inline token from ``_blocks``) with its children parsed."""
    if not token.children and token.content:
        md = _blocks()
        children: list[Any] = []
        md.inline.parse(token.content, md, env, children)
        for child in children:  # what markdown-it's text_join rule does, minus the joining
            if child.type == "text_special":
                child.type = "text"
        token.children = children
    return token


def plain(markup: str, *, enough: float | None = None) -> str:
    """Markdown or HTML -> plain text on one line (tags dropped, entities decoded).

    With ``enough``, stops after about that many words (a summary needs only its start).
    """
    env: dict[str, Any] = {}
    parts: list[str] = []
    seen = 0
    for tok in _blocks().parse(_TAG.sub(" ", drop_hidden(markup)), env):
        if tok.type == "inline":
            parts.append(inline_text(_inline(tok, env)))
            seen += len(parts[-1].split())
            if enough is not None and seen >= enough:
                break
    return " ".join(" ".join(parts).split())


# --- cleaning: what a reader should never see in a summary ------------------------------

# Template code: Liquid/Jinja tags and output, Hugo shortcodes, Go template actions.
# Closed within _SPAN characters; an unclosed "{{" is left to the plain-text pass below.
_SPAN = 4000
_TEMPLATE_PAIRS = (("{{<", ">}}"), ("{{%", "%}}"), ("{%", "%}"), ("{{", "}}"))
_CODE_TAGS = LazyRegex(
    r"\{%-?\s*(highlight|comment)\b.{0,20000}?\{%-?\s*end(?:highlight|comment)\s*-?%\}", re.S
)
# Pelican's intra-site link placeholders: the target is the site's business, not ours.
_PLACEHOLDER_LINK = LazyRegex(r"\]\(\{(?:filename|static|attach|author|category|tag)\}[^)\n]*\)")
_PLACEHOLDER = LazyRegex(r"\{(?:filename|static|attach|author|category|tag)\}")
_EMPTY_CODE = LazyRegex(r"(?<!`)` ?`(?!`)")
_TEMPLATE_LEFT = LazyRegex(r"\{\{<?|>?\}\}|\{%|%\}")
# URLs and site paths written out as text ("/blog/x/y"); a cut one would be worse.
_URL = r"(?:(?:https?|ftp)://|www\.)[^\s<>\"]*[^\s<>\".,;:!?]|(?<![\w/.])/[\w.~-]+/[\w./~#%?=&-]+"
# "Installer: https://…", "Release notes can be found here: https://…": the label means
# nothing without its link, so the clause goes with it.
_LABELLED_URL = LazyRegex(rf"(?:^|(?<=[.!?]\s))[^.!?:]{{0,80}}:\s*<?(?:{_URL})>?[.,;]?")
# "See https://… for more information.": with the link gone, the sentence says nothing.
_SEE_URL = LazyRegex(
    rf"(?:^|(?<=[.!?]\s))(?:see|visit|check out|read)\s+<?(?:{_URL})>?"
    r"(?:\s+(?:for|to)\b[^.!?]{0,80})?(?:[.!?]|$)",
    re.I,
)
_DANGLING = LazyRegex(
    r"(?:^|(?<=[.!?]\s))[^.!?]{0,60}\b(?:is|are|at|from|via|here)\s*[.!?:]\s*(?=[A-Z]|$)"
)
_LEAD_URL = LazyRegex(rf"(?:\s(?:at|from|via|visit|see|on|here)\b)?\s*<?(?:{_URL})>?", re.I)
# "Release notes can be found here.", "Click here.": a pointer whose link is gone.
_POINTER = LazyRegex(
    r"(?:^|(?<=[.!?]\s))(?:[^.!?]{0,60}\bcan be (?:found|read|seen) (?:here|on \w+|below)|"
    r"(?:click|see|read more|more) here)[.!]?(?=\s|$)",
    re.I,
)
_FOOTNOTE_REF = LazyRegex(r"\[\^[^\]\s]{1,40}\]")
_REF_LINK = LazyRegex(r"\[([^\[\]]{1,200})\]\[[^\[\]]{0,200}\]")  # unresolved [text][ref]
_EMPTY_BRACKETS = LazyRegex(r"\(\s*[,;:]?\s*\)|\[\s*\]|<\s*>")
_SPACE_BEFORE = LazyRegex(r"\s+([.,;:!?)\]])")
_STRANDED_COMMA = LazyRegex(r"[,;:]+([.!?])")
_SENTENCE_END = LazyRegex(r"[.!?。！？…][\"'”’»)\]」』）]*$")
STUB_WORDS = 10  # a front-matter summary under this many words is a stub, not a summary
# A lede that only announces: says that something was released, not what is in it.
ANNOUNCE = LazyRegex(
    r"(?:has|have) (?:just )?been (?:released|published|tagged)|(?:happy|pleased|thrilled|"
    r"excited|proud|glad) to (?:announce|share|release|present)|(?:announc\w+|published|"
    r"released) (?:a |the )?(?:new|another) (?:version|point release|release|major)|"
    r"\bnew (?:point |patch |minor |major )?release of\b|\bis (?:now )?(?:out|available)\b|"
    r"\b(?:see|check|read)\b[^.]{0,40}\bbelow\b|pre-release is ready|"
    r"\b(?:this|it) is an? (?:\w+ ){0,2}release\b|"
    r"\b(?:share|give|bring|post) (?:you |with you )?(?:an? |our |the |some )?(?:\w+ ){0,2}"
    r"updates?\b|\bthis post (?:provides|gives|contains|shares|is)\b[^.]{0,40}\bupdates?\b",
    re.I,
)
_INFORMED = 20  # words outside announcing sentences that make a lede say something
_SECTIONS = 3  # section headings that, before any list or paragraph, are the highlights
# Paragraphs that tell the reader what to do, not what the post is about.
_INSTRUCTION = LazyRegex(
    r"(?:.*\b(?:we(?:'d| would) love (?:your|to hear)|let us know)\b|"
    r"if you(?:'d| would)? (?:have|don't have|do not have|like|want|are)\b|"
    r"to (?:install|update|upgrade|get|try)\b|you can (?:get|install|download|update|upgrade|"
    r"try|leave|find|read)\b|please\b|feel free\b|we(?:'d| would) love your\b)",
    re.I,
)
# "Hello again from the team!": a greeting before the lede's first sentence.
_GREETING = LazyRegex(r"(?:hello|hi|hey|greetings|dear)\b[^.!?]{0,60}[.!?]$", re.I)
# "Rustup is the recommended tool to …": what the product is, said in every release post.
_DEFINITION = LazyRegex(r"[\w.-]+(?: [\w.-]+)? (?:is|are) (?:a|an|the)\b", re.I)
_SHORT = 12  # a lede shorter than this takes the next section's opening too
# Section headings that say nothing about a post's content.
_GENERIC_HEADING = LazyRegex(
    r"^(?:(?:other )?notable changes|highlights?|(?:semver-\w+ )?commits?|contributors?\b.*|"
    r"stabilized apis|(?:stabilized|stable) apis? .*|compatibility notes|platform support|"
    r"changelog|full changelog|changes|other changes|what'?s (?:in|new|changed)\b.*|"
    r"release notes|downloads?|known issues|shasums|checksums|other release files|"
    r"install(?:ing|ation)?|how to (?:update|upgrade|install).*|introduction|conclusion|"
    r"summary|thanks.*|acknowledge?ments?|details|references|notes|faq|updates?|"
    r".*\bversion \d.*|[\d\s,.-]+)$",
    re.I,
)
# "… (Jane Doe) #7157 [0a1b2c3d4e] – High" after a change: who, which pull request or
# commit and (for a vulnerability) its severity, not what.
_AUTHOR_TAIL = LazyRegex(
    r"(?:\s*(?:\([^()]{1,60}\)|[\w/.-]*#\d+|\[[0-9a-f]{7,40}\]|"
    r"[–—-]\s*(?:critical|high|medium|moderate|low)\b))+\s*\.?$",
    re.I,
)
# "[47df4328d7] - " before a change: the commit, not the change.
_COMMIT_HEAD = LazyRegex(r"^\[?[0-9a-f]{7,40}\]?\s*[-–—:]\s*")
# A release's header line, all its first paragraph says: "2026.04.10, Version 2.1.0
# (Stable)", "Planner v3.2.1 (Current), @someone". It names the release, not what is in it.
_RELEASE_HEADER = LazyRegex(
    r"^\W*(?:\d{4}[-./]\d{1,2}[-./]\d{1,2},?\s*)?(?:[\w.]+\s+){0,2}(?:version\s*|v)"
    r"\d+(?:\.\d+)+,?\s*(?:'\w+'\s*)?(?:\([^()]{0,30}\))?(?:,?\s*(?:prepared by\s*)?@[\w-]+)*\W*$",
    re.I,
)
_LABEL_COLON = LazyRegex(r"^([^:]{1,40}):\s+(?=\S)")
_LIST_LABEL_WORDS = 12  # an item longer than this shows as its lead-in, or not at all
_CLAUSE_END = LazyRegex(r"[,;]\s|\s[-–—]\s|\s\(")
# A clause that opens like this ("When the option is passed, …") says nothing alone.
_SUBORDINATE = LazyRegex(
    r"(?:when|if|while|since|because|although|though|as|after|before|unless|for|with|in)\b",
    re.I,
)


def drop_template_code(body: str) -> str:
    """``body`` without template tags, shortcodes and actions (``{% … %}``, ``{{< … >}}``,
    ``{{% … %}}``, ``{{ … }}``) and without the code they fence (``{% highlight %}``).

    Paired shortcodes keep their inner text; a link whose target is template code keeps
    its text. Linear in the body's length, whatever the input.
    """
    if "{" not in body:
        return body
    if "{%" in body and "end" in body:
        body = _CODE_TAGS.sub("\n", body)
    body = _PLACEHOLDER_LINK.sub("](/)", body)
    body = _PLACEHOLDER.sub("", body)
    for opener, closer in _TEMPLATE_PAIRS:
        body = _drop_spans(body, opener, closer)
    return _EMPTY_CODE.sub("", body)  # `{{ page.x }}` leaves `` behind


def _drop_spans(text: str, opener: str, closer: str) -> str:
    """``text`` without ``opener … closer`` spans of at most ``_SPAN`` characters."""
    out: list[str] = []
    pos = 0
    close_at = -1  # where the next closer is, cached: the scan stays linear
    while True:
        start = text.find(opener, pos)
        if start < 0:
            break
        if close_at < start + len(opener):
            close_at = text.find(closer, start + len(opener))
            if close_at < 0:
                break  # no closer anywhere after: nothing more to drop
        if close_at - start > _SPAN:
            out.append(text[pos : start + len(opener)])
            pos = start + len(opener)
            continue
        out.append(text[pos:start])
        pos = close_at + len(closer)
    out.append(text[pos:])
    return "".join(out)


def clean(text: str) -> str:
    """One line of summary text without template code, footnote markers, bare URLs and
    Markdown left over (unresolved ``[text][ref]``); a clause that only labels a URL
    ("Download: https://…") goes with it."""
    if "{" in text:
        text = _TEMPLATE_LEFT.sub(" ", drop_template_code(text))
    if "[" in text:
        text = _FOOTNOTE_REF.sub("", _REF_LINK.sub(r"\1", text))
    if "/" in text:
        text = _SEE_URL.sub(" ", text)
        text = _LABELLED_URL.sub(" ", text)
        text = _LEAD_URL.sub("", text)
        text = _DANGLING.sub(" ", text)  # "The index is <URL>." without its URL
    if "found" in text or "here" in text:
        text = _POINTER.sub(" ", text)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _SPACE_BEFORE.sub(r"\1", " ".join(text.split()))
    text = _STRANDED_COMMA.sub(r"\1", text)  # "in China, at <URL>." -> "in China."
    return text.lstrip(" ,;:.)]—–-")


def close(text: str) -> str:
    """``text`` ending at a sentence end: a trailing ":" (an intro with nothing after
    it) or ","/";" becomes ".", and a text that stops without punctuation gets one."""
    text = text.rstrip()
    if not text or _SENTENCE_END.search(text):
        return text
    text = text.rstrip(" ,;:—–-")
    return text + ("。" if starts_cjk(text[-1:]) else ".") if text else text


def is_stub(summary: str, title: str) -> bool:
    """A front-matter summary that is no summary: under ``STUB_WORDS`` words, or mostly
    the title's words again."""
    return count_words(summary) < STUB_WORDS or _title_again(summary, title)


def _title_again(text: str, title: str, share: float = 0.7) -> bool:
    words = _words(text)
    return len(words & _words(title)) >= share * len(words)


def _words_list(text: str) -> list[str]:
    return [w.casefold() for w in re.findall(r"\w+", text)]


def _words(text: str) -> set[str]:
    return set(_words_list(text))


_STANDFIRST_WORDS = 3  # a description shorter than this is a label, not a standfirst
_PLACEHOLDER_TEXT = LazyRegex(
    r"^\W*(?:todo|tbd|tba|fixme|xxx|draft|summary|description|excerpt|lorem ipsum\b.*|"
    r"n/?a|none|null|test)\W*$",
    re.I,
)


def announces_only(text: str) -> bool:
    """Whether ``text`` opens by announcing and says little besides."""
    spans = sentences(text)
    if not spans:
        return False
    said = [text[a:b] for a, b in spans]
    if _RELEASE_HEADER.match(said[0]):
        return True
    while len(said) > 1 and _GREETING.match(said[0]):
        said = said[1:]
    if not ANNOUNCE.search(said[0]):
        return False
    rest = " ".join(x for x in said if not ANNOUNCE.search(x) and not _DEFINITION.match(x))
    return count_words(rest) < _INFORMED


# --- the lede ---------------------------------------------------------------------------


class _Unit:
    """A top-level block as a summary sees it: a paragraph, a heading or a list."""

    __slots__ = ("items", "kind", "text")

    def __init__(self, kind: str, text: str = "") -> None:
        self.kind = kind  # "para", "heading" or "list"
        self.text = text
        self.items: list[tuple[str, str, int]] = []  # (text, bold lead-in, line)


def _units(tokens: Sequence[Any], env: dict[str, Any], enough: float) -> list[_Unit]:
    """The top-level paragraphs, headings and lists (their first-level items) in order,
    cleaned; stops after about ``enough`` words."""
    units: list[_Unit] = []
    parents: list[str] = []  # the types of the open block tokens
    seen = 0
    for i, tok in enumerate(tokens):
        if tok.nesting == 1:
            parents.append(tok.type)
            if tok.type in ("bullet_list_open", "ordered_list_open") and len(parents) == 1:
                units.append(_Unit("list"))
        elif tok.nesting == -1:
            parents.pop()
        if tok.type != "inline" or i == 0:
            continue
        opener = tokens[i - 1]
        if opener.type == "heading_open" and len(parents) == 1:
            units.append(_Unit("heading", clean(inline_text(_inline(tok, env)))))
            continue
        if opener.type != "paragraph_open":
            continue  # a table cell
        if len(parents) == 1:
            # A lede never needs more than ``enough`` words: clean only that much.
            raw = inline_text(_inline(tok, env))[: int(enough) * CHARS_PER_WORD]
            if raw.lstrip().startswith("[^"):
                continue  # a footnote's text
            cleaned = clean(raw)
            if not cleaned or _mostly_urls(raw, cleaned):
                continue  # only an image, a link list, template leftovers
            text = _head(cleaned, enough)  # on one line, long words cut, as fit() sees it
            units.append(_Unit("para", text))
            seen += count_words(text)
        elif (
            len(parents) == 5
            and units
            and units[-1].kind == "list"
            and units[-1].items
            and tokens[i - 2].type == "list_item_open"
        ):
            # "- **fs**:" (or a bare "- **fs**") with the changes in sub-bullets: the first
            # one says what changed.
            text, lead, line = units[-1].items[-1]
            label = text.rstrip(": ")
            if label and ":" not in label and count_words(label) <= 4:
                sub = _head(clean(inline_text(_inline(tok, env))[:2000]), enough)
                sub = _LABEL_COLON.sub(r"\1 — ", _COMMIT_HEAD.sub("", sub))
                units[-1].items[-1] = (f"{label}: {sub}", lead or label, line)
        elif (
            len(parents) == 3
            and parents[1] == "list_item_open"
            and tokens[i - 2].type == "list_item_open"
            and units
            and units[-1].kind == "list"
        ):
            children = _inline(tok, env).children or []
            lead_in = _lead_in(children)
            text = _head(clean(inline_text(tok)[: int(enough) * CHARS_PER_WORD]), enough)
            if text:
                line = tok.map[0] if tok.map else -1
                units[-1].items.append((text, lead_in[0] if lead_in else "", line))
                seen += count_words(text)
        if seen >= enough:
            break
    return units


def _mostly_urls(raw: str, text: str) -> bool:
    """A paragraph that is mostly links written out (download lists, "Fixes: URL")."""
    return "/" in raw and count_words(text) < 0.5 * len(raw.split())


def _lede(
    units: list[_Unit], words: int, *, stop_at_heading: bool
) -> tuple[str, list[tuple[int, int]]]:
    """The opening paragraphs (a headline before them skipped), a list they introduce
    made an inline list; when they only announce, what the post is about.

    Returns the text and, when it is made of list items (a post that is only a list),
    where each item starts in it and its line in the body (the key of its key point).
    """
    parts: list[str] = []
    fallback = ""  # an intro to code, if there is nothing else
    first_end = 0  # the index of the unit after the first part
    i = 0
    while i < len(units):
        u = units[i]
        if u.kind == "heading":
            if parts and stop_at_heading and count_words(" ".join(parts)) >= _SHORT:
                break
            i += 1
            continue
        if u.kind == "para":
            if not parts and _digest_of_sections(units[:i]):
                return _about(units, words), []
            nxt = units[i + 1] if i + 1 < len(units) else None
            if u.text.endswith((":", "：")):
                if nxt is not None and nxt.kind == "list" and nxt.items:
                    if inline := _inline_list(u.text, nxt.items, words):
                        parts.append(inline)
                    i += 1
                elif intro := _drop_last_sentence(u.text):
                    parts.append(intro)  # its list is code or a table: not shown
                else:
                    fallback = fallback or u.text
            elif not parts or count_words(u.text) > 2 or _SENTENCE_END.search(u.text):
                parts.append(u.text)  # not a stray link after the lede: "example.org"
        elif u.kind == "list" and not parts and not any(x.kind == "para" for x in units):
            if any(x.kind == "heading" for x in units[:i]):
                # A section's list ("### Notable changes"), not a post that is a list.
                return _about(units, words), []
            return _list_text(u.items)
        i += 1
        if len(parts) == 1 and not first_end:
            first_end = i
    if not parts:
        return _about(units, words) or fallback, []
    if announces_only(parts[0]):
        # The announcement (after a greeting, if any) names the release: it stays.
        spans = sentences(parts[0])
        end = next((b for a, b in spans if not _GREETING.match(parts[0][a:b])), spans[0][1])
        first = close(parts[0][:end])
        rest = _about(units[first_end:], words - count_words(first))
        if rest:
            return first + " " + rest, []
        return close(parts[0]), []  # what follows is no better: calls to action, say
    # Paragraphs are sentences apart: a header line without a full stop ("2026.04.10,
    # Version 2.1 (Stable)") must not run into the next paragraph.
    return " ".join(close(p) for p in parts), []


def _digest_of_sections(before: Sequence[_Unit]) -> bool:
    """Two or more sections of lists before the first paragraph (a weekly round-up):
    that paragraph is no lede, the sections' headings say what the post is about."""
    headings = sum(1 for u in before if u.kind == "heading" and not _generic(u.text))
    return headings >= 2 and sum(1 for u in before if u.kind == "list") >= 2


def _drop_last_sentence(text: str) -> str:
    spans = sentences(text)
    return text[: spans[-1][0]].rstrip() if len(spans) > 1 else ""


def _label(text: str, lead: str) -> str:
    """A list item as one entry of an inline list: itself if short, else its lead-in."""
    text = _AUTHOR_TAIL.sub("", _COMMIT_HEAD.sub("", text)).strip()
    if text.endswith(":") and ", " in text:
        text = text[: text.rindex(", ")]  # "Upgrade to 1.0.2, fixing:" (its sub-list)
    text = text.rstrip(" .;,:")
    # "CVE-1: what" inside "Highlights: …" would read as a list glued to its intro.
    text = _LABEL_COLON.sub(r"\1 — ", text)
    if count_words(text) <= _LIST_LABEL_WORDS:
        return text
    # Too long for a list: its first sentence, else that sentence's first clause
    # ("build — Disable V8 snapshots - The hashseed …" -> "build — Disable V8 snapshots"),
    # else its lead-in alone.
    first = text[slice(*sentences(text)[0])].rstrip(" .;,:")
    if count_words(first) <= _LIST_LABEL_WORDS:
        return first
    label, dash, rest = first.partition(" — ") if " — " in first[:42] else ("", "", first)
    head = label + dash + _CLAUSE_END.split(rest, maxsplit=1)[0].rstrip(" .;,:")
    whole = count_words(head) - count_words(label) >= 3 and not _SUBORDINATE.match(rest)
    if whole and count_words(head) <= _LIST_LABEL_WORDS:
        return head
    if lead:
        return lead
    return first if count_words(first) <= 2 * _LIST_LABEL_WORDS else ""


def _inline_list(intro: str, items: Sequence[tuple[str, str, int]], words: int) -> str:
    """ "Intro: A, B and C." with as many items as fit in ``words`` (then "and more")."""
    labels = [x for x in (_label(t, lead) for t, lead, _line in items) if x]
    if not labels:
        return _drop_last_sentence(intro)
    budget = words - count_words(intro) - 2  # room for "and more"
    kept: list[str] = []
    for label in labels:
        if kept and count_words(" ".join([*kept, label])) > budget:
            break
        kept.append(label)
    sep = "; " if any("," in x for x in kept) else ", "
    if len(kept) < len(labels):
        listed = sep.join(kept) + sep + "and more"
    elif len(kept) > 1:
        listed = sep.join(kept[:-1]) + " and " + kept[-1]
    else:
        listed = kept[0]
    return f"{intro} {listed}."


def _list_text(items: Sequence[tuple[str, str, int]]) -> tuple[str, list[tuple[int, int]]]:
    """A post that is only a list: its items as sentences, and where each starts."""
    starts, parts, at = [], [], 0
    for text, _lead, line in items:
        sentence = close(text)
        starts.append((at, line))
        parts.append(sentence)
        at += len(sentence) + 1
    return " ".join(parts), starts


def _about(units: Sequence[_Unit], words: int) -> str:
    """What a post is about, after a lede that only announces: whichever comes first of
    a list's items (a release's notable changes) and an informative paragraph (not an
    install instruction), unless ``_SECTIONS`` or more section headings come first: then
    the headings (a release post with a section per feature)."""
    headings = [u.text for u in units if u.kind == "heading" and not _generic(u.text)]
    for i, u in enumerate(units):
        if u.kind == "list" and u.items and len([x for x in u.items if _label(x[0], x[1])]) > 1:
            return _inline_list("Highlights:", u.items, words)
        if u.kind == "list" and len(u.items) == 1:
            # One change is the news (a security release's one fix): said in full.
            text = _AUTHOR_TAIL.sub("", _COMMIT_HEAD.sub("", u.items[0][0]))
            text = _LABEL_COLON.sub(r"\1 — ", text)
            text = text.rstrip(" .;,:")
            if text and count_words(text) < words:
                return close("Highlight: " + text)
        if u.kind == "heading" and not _generic(u.text) and len(headings) >= _SECTIONS:
            break  # sections come before any list: they are the highlights
        if _informative(u):
            # A short one ("1.2.1 fixes a crash.") takes what follows in its section.
            parts = [u.text]
            for nxt in units[i + 1 :]:
                if count_words(" ".join(parts)) >= _SHORT or not _informative(nxt, 1):
                    break
                parts.append(nxt.text)
            return " ".join(close(p) for p in parts)
    if len(headings) > 1:
        return _inline_list("Highlights:", [(h, "", -1) for h in headings], words)
    return ""


def _informative(u: _Unit, least: int = 5) -> bool:
    """A paragraph that says something: not an intro to a list or code, not an install
    instruction or a call to action, not an announcement."""
    return (
        u.kind == "para"
        and not u.text.endswith((":", "："))
        and count_words(u.text) >= least
        and not _INSTRUCTION.match(u.text)
        and not announces_only(u.text)
    )


def _generic(heading: str) -> bool:
    return not heading or bool(_GENERIC_HEADING.match(heading.strip(" :()[]/.-")))


def _key_points(
    tokens: Sequence[Any], env: dict[str, Any], limit: int, budget: int, shown: set[int]
) -> tuple[KeyPoint, ...]:
    """Up to ``limit`` key points; not from the items on the lines in ``shown``."""
    points: list[KeyPoint] = []
    for i, tok in enumerate(tokens):
        if len(points) >= limit:
            break
        if tok.type != "inline" or i < 2 or tokens[i - 1].type != "paragraph_open":
            continue
        if tokens[i - 2].type != "list_item_open":
            continue  # only the first paragraph of a list item
        if not tok.content.startswith(("**", "__")):
            continue  # no bold lead-in: not worth parsing (block content is stripped)
        if tok.map and tok.map[0] in shown:
            continue  # the summary says it already
        point = _lead_in(_inline(tok, env).children or [])
        if point is None:
            continue
        lead, rest = clean(point[0]), clean(point[1])
        # Whole sentences only: the first may run to twice the budget; a longer one
        # would be cut mid-thought, so the bullet is not a key point.
        text = fit(rest, budget)
        if text.endswith(ELLIPSIS):
            text = fit(rest, 2 * budget)
        if lead and text and not text.endswith(ELLIPSIS):
            points.append(KeyPoint(fit(lead, budget), close(text)))
    return tuple(points)


def _lead_in(children: Sequence[Any]) -> tuple[str, str] | None:
    """('Cost', 'rest of the text') for an inline that starts with a bold lead-in."""
    start = 0
    while start < len(children) and children[start].type == "text":
        if children[start].content.strip():
            return None
        start += 1
    if start >= len(children) or children[start].type != "strong_open":
        return None
    depth, end = 0, None
    for j in range(start, len(children)):
        if children[j].type == "strong_open":
            depth += 1
        elif children[j].type == "strong_close":
            depth -= 1
            if depth == 0:
                end = j
                break
    if end is None:
        return None
    lead = _one_line(children_text(children[start + 1 : end]))
    rest = _one_line(children_text(children[end + 1 :]))
    if lead.endswith(_LEAD_SEPARATORS):
        lead = lead.rstrip("".join(_LEAD_SEPARATORS) + " ")
    elif rest.startswith(_LEAD_SEPARATORS) and not rest.startswith("..."):
        rest = rest.lstrip("".join(_LEAD_SEPARATORS) + " ")
    else:
        return None  # bold text inside a sentence, not a lead-in
    if not lead or not rest:
        return None
    return lead, rest


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- cutting to a budget ----------------------------------------------------------------


def fit(text: str, budget: int) -> str:
    """``text`` on one line, cut to ``budget`` words at a sentence or word boundary.

    At most ``CHARS_PER_WORD * budget`` characters, and no word longer than ``MAX_UNIT``
    (it is cut with "…"), so that no text, however odd, makes a summary long or wide.
    Only the first ``LOOKAHEAD * budget`` words are split into sentences: syntok takes
    ~50 µs a word, and where a sentence ends depends only on the words around it.
    """
    max_chars = max(CHARS_PER_WORD * budget, 2 * MAX_UNIT)  # tiny budgets: two long words
    text = _head(text, LOOKAHEAD * budget)
    if count_words(text) <= budget and len(text) <= max_chars:
        return text
    end, words, pos = 0, 0, 0
    for _start, stop in sentences(text):
        words += count_words(text[pos:stop])
        if words > budget or stop > max_chars:
            break
        end = pos = stop
    if end:
        return text[:end].rstrip()
    return _cut_words(text, budget, max_chars)


def _head(text: str, units: float) -> str:
    """``text`` on one line, up to its ``units``-th word (CJK: character); a word longer
    than ``MAX_UNIT`` characters is cut to that length, ending in "…"."""
    out: list[str] = []
    end = 0
    for n, m in enumerate(_units_of(text), 1):
        if n > units:
            break
        if out and m.start() > end:
            out.append(" ")  # the gap between two units is whitespace
        unit = m.group()
        out.append(unit if len(unit) <= MAX_UNIT else unit[: MAX_UNIT - 1] + ELLIPSIS)
        end = m.end()
    return "".join(out)


def _units_of(text: str) -> Iterator[re.Match[str]]:
    """The units (a word, or a CJK character) of ``text``."""
    return (_UNIT if text and max(text) >= FIRST_CJK else _WORD_UNIT).finditer(text)


def _cut_words(text: str, budget: int, max_chars: int) -> str:
    total, end = 0.0, 0
    for m in _units_of(text):
        unit = m.group()
        cost = 0.5 if starts_cjk(unit) else count_words(unit)
        if total + cost > budget or m.end() + len(ELLIPSIS) > max_chars:
            break
        total, end = total + cost, m.end()
    kept = text[:end].rstrip(_TRAILING)
    return kept if kept.endswith(ELLIPSIS) else kept + ELLIPSIS


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of one paragraph of text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _CJK_END.finditer(text):  # syntok does not know 。
        spans += _syntok_spans(text, pos, m.end())
        pos = m.end()
    spans += _syntok_spans(text, pos, len(text))
    return _merge_ordinals(text, _split_after_numbers(text, spans))


# "… version of Rust, 1.89.0. Rust is …", "Released 1.2.3! Next …": syntok keeps a number
# and its full stop as one token and reads on; a capital after it starts a new sentence.
_NUMBER_END = LazyRegex(r"(?<=\d)[.!?][\"'”’)]*\s+(?=[\"'“‘(]?[A-Z\u00c0-\u024f])")


def _split_after_numbers(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in spans:
        for m in _NUMBER_END.finditer(text, start, end):
            cut = m.end() - len(m.group()) + len(m.group().rstrip())
            out.append((start, cut))
            start = m.end()
        out.append((start, end))
    return out


def _syntok_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    chunk = text[start:end]
    if not chunk.strip():
        return []
    plain = _plain_spans(chunk)
    if plain is not None:
        return [(start + a, start + b) for a, b in plain]
    from syntok import segmenter

    out = []
    for sentence in segmenter.split(_tokenizer().tokenize(chunk)):
        if sentence:
            first, last = sentence[0], sentence[-1]
            out.append((start + first.offset, start + last.offset + len(last.value)))
    return out or [(start, end)]


# Plain prose, where syntok's decisions are simple enough to take without it (importing
# it and its `regex` costs ~17 ms of a build that summarizes; segmenting, ~0.5 ms a
# paragraph): Latin letters, ASCII digits, spaces, and punctuation that is neither a
# bracket nor a quote (an apostrophe is one only after a full stop, see below).
_PLAIN = LazyRegex(
    r"[A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f \n\t,:\-–—'’.!?;%&/+=#@$€£*]+"
)
_STOPS = LazyRegex(r"[.!?;]")


def _small_then_capital(word: str) -> bool:
    """A small letter followed by a capital (syntok cuts "iPhone" into "i" "Phone")."""
    return any(a.islower() and b.isupper() for a, b in itertools.pairwise(word))


def _plain_spans(chunk: str) -> list[tuple[int, int]] | None:
    """The sentences of ``chunk`` as syntok splits them, without syntok, or None when the
    text is not plain enough to be sure. Plain: the characters of ``_PLAIN``, no trailing
    space, and every ``.``, ``!``, ``?`` or ``;`` either a dot between two letters or
    digits inside a word ("example.com", "1.5"; not "end.The") or the one mark ending a
    word of letters (hyphens between them: "well-known"), followed by a space and a word
    that begins with letters and a space, a mark, a hyphen or an apostrophe. The word
    before the mark: two letters or more, not a roman numeral, no capital after a small
    letter ("iPhone"); or a small vowel after another word of its sentence. There
    syntok ends a sentence exactly when the next word begins with a capital and either
    is one it knows to start sentences or the word before the mark is not one it knows
    as an abbreviation (its lists, read from the installed syntok)."""
    words = _syntok_words()
    if words is None or not _PLAIN.rx.fullmatch(chunk) or chunk[-1].isspace():
        return None
    abbreviations, starters, roman, vowels = words
    spans: list[tuple[int, int]] = []
    begin = len(chunk) - len(chunk.lstrip())
    n = len(chunk)
    for m in _STOPS.rx.finditer(chunk):
        at = m.start()
        before = chunk[at - 1] if at else " "
        after = chunk[at + 1] if at + 1 < n else " "
        if not after.isspace():  # inside a word: only a dot between letters or digits
            if not (chunk[at] == "." and before.isalnum() and after.isalnum()):
                return None
            if _small_then_capital(before + after):
                return None  # "end.The": syntok cuts the word there
            continue
        if at + 1 == n:
            break  # the text's last mark: its last sentence ends with it
        # The word before the mark (syntok's token: the last part of a hyphened word).
        run_start = at  # (found by stepping back: a search of the text would be quadratic)
        while run_start and not chunk[run_start - 1].isspace():
            run_start -= 1
        parts = chunk[run_start:at].split("-")
        word = parts[-1]
        if not all(part.isalpha() and not _small_then_capital(part) for part in parts):
            return None
        if word in roman:
            return None
        if len(word) == 1:  # syntok's rules for a lone letter depend on more: only "a."
            gap = run_start
            while gap and chunk[gap - 1].isspace():
                gap -= 1
            inner = len(parts) > 1 or (run_start > begin and chunk[gap - 1] not in ".!?;")
            if not (inner and word in vowels and word.islower()):
                return None
        # The next word's first token: its letters, cut at a hyphen or an apostrophe.
        nxt = at + 1
        while chunk[nxt].isspace():
            nxt += 1
        end = nxt
        while end < n and chunk[end].isalpha():
            end += 1
        following = chunk[nxt:end]
        if not following or _small_then_capital(following):
            return None
        if end < n and not chunk[end].isspace():
            rest = chunk[end : end + 3]
            if rest[0] in ",:.!?;":  # then only marks up to the space
                run_end = end
                while run_end < n and not chunk[run_end].isspace():
                    if chunk[run_end].isalnum():
                        return None
                    run_end += 1
            elif rest[0] == "-":
                if len(rest) < 2 or not rest[1].isalnum():
                    return None
            elif rest[0] in "'’":
                if len(rest) < 2 or not rest[1].isalpha():
                    return None
                if following[-1] == "n" and rest[1] == "t" and not rest[2:3].isalpha():
                    return None  # "don't": syntok's tokens are "do" "n't"
            else:
                return None
        first = following[0]
        if first.islower():
            continue
        if not first.isupper():
            return None
        if following in starters or word not in abbreviations:
            spans.append((begin, at + 1))
            begin = nxt
    spans.append((begin, n))
    return spans


@functools.cache
def _syntok_words() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]] | None:
    """syntok's abbreviations (written without dots), sentence starters, roman numerals
    and vowels, read from the installed syntok's source without importing it (that would
    import `regex`); None (always ask syntok) if they cannot be found there."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("syntok")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = spec.submodule_search_locations[0]
        with open(f"{folder}/_segmentation_states.py", encoding="utf-8") as f:
            source = f.read()
    except OSError:
        return None
    found = []
    for name in ("abbreviations", "starters", "roman_numerals"):
        m = re.search(rf'\n    {name} = frozenset\(\s*"""(.*?)"""\.split\(\)\s*\)', source, re.S)
        if m is None:
            return None
        found.append(frozenset(m.group(1).split()))
    m = re.search(r'\n    __vowels = "([^"\\]+)"\n', source)
    if m is None:
        return None
    abbreviations, starters, roman = found
    vowels = frozenset(m.group(1) + m.group(1).upper())
    if not ({"etc", "Dr", "vs"} <= abbreviations and {"The", "However"} <= starters
            and {"I", "IV", "XX"} <= roman and {"a", "e", "o", "A"} <= vowels):  # fmt: skip
        return None
    return abbreviations, starters, roman, vowels


@functools.cache
def _tokenizer() -> Any:
    from syntok.tokenizer import Tokenizer

    return Tokenizer(replace_not_contraction=False)  # keep offsets true to the text


def _merge_ordinals(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Undo splits after German ordinals ("am 20. November") and before lowercase."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged:
            prev_start, prev_end = merged[-1]
            nxt = text[start:end]
            first_word = nxt.split(maxsplit=1)[0].rstrip(".,").lower() if nxt.split() else ""
            if (_ORDINAL_END.search(text[prev_start:prev_end]) and first_word in MONTHS) or nxt[
                :1
            ].islower():
                merged[-1] = (prev_start, end)
                continue
        merged.append((start, end))
    return merged
