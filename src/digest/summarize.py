"""``Article`` -> plain-text summary and key points.

The summary is, in this order:

1. the front matter ``summary``/``description``/``excerpt`` (``Article.summary``),
   with any Markdown or HTML stripped (if nothing is left, it counts as no summary);
2. else the text before ``<!--more-->`` (or Pelican's ``<!-- PELICAN_END_SUMMARY -->``);
3. else the lede: the opening paragraphs up to the first heading that follows them
   (a headline before the lede is skipped); an article with no paragraphs at all uses
   its list items.

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
(``- **Cost**: text``, ``- **Cost:** text``, ``- **Cost** — text``); their text is cut
like a summary, to half the budget (at least 15 words), so a digest stays skimmable;
so is the lead-in. A bullet that the summary already shows (an article that is only a
list) is not repeated as a key point.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from .content.dates import MONTHS
from .content.html import markdown
from .model import Article, KeyPoint, Summary
from .text import CJK, CJK_CLASS, LazyRegex, children_text, count_words, drop_hidden, inline_text

ELLIPSIS = "…"
LOOKAHEAD = 20  # words of text read and split into sentences per word of the budget
CHARS_PER_WORD = 12  # a text cut to a budget of N words is at most 12 N characters long
MAX_UNIT = 40  # characters in one word at most: a longer one would overflow a phone's line
_MORE = re.compile(r"<!--\s*(?:more|PELICAN_END_SUMMARY)\s*-->", re.I)
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)
_CJK_END = re.compile(r"[。！？]+[」』”’）)]*")
_UNIT = LazyRegex(rf"[{CJK_CLASS}]|[^\s{CJK_CLASS}]+")  # a CJK character or a word
_ORDINAL_END = re.compile(r"(?:^|\s)\d{1,2}\.$")
_TRAILING = " \t,;:—–-([{\"'“‘«"
_LEAD_SEPARATORS = (":", "：", "—", "–", "-", ".")


def summarize(article: Article, *, words: int = 60, key_points: int = 3) -> Summary:
    """The summary text (see the module docstring) and up to ``key_points`` key points."""
    md = _blocks()
    env: dict[str, Any] = {}
    tokens = md.parse(article.body, env)
    enough = LOOKAHEAD * words
    text = plain(article.summary, enough=enough) if article.summary else ""
    items: list[tuple[int, int]] = []  # (offset in text, line in the body) of list items
    if not text:  # no summary, or one that shows nothing (only a <script>, say)
        more = _MORE.search(article.body)
        if more:
            head = md.parse(article.body[: more.start()], {"references": env.get("references", {})})
            text, items = _lede(head, env, stop_at_heading=False, enough=enough)
        else:
            text, items = _lede(tokens, env, stop_at_heading=True, enough=enough)
    summary = fit(text, words)
    if not key_points:
        return Summary(summary)
    end = len(summary.removesuffix(ELLIPSIS))
    shown = {line for at, line in items if at < end}  # bullets the summary shows
    return Summary(summary, _key_points(tokens, env, key_points, max(15, words // 2), shown))


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


def _lede(
    tokens: Sequence[Any], env: dict[str, Any], *, stop_at_heading: bool, enough: float
) -> tuple[str, list[tuple[int, int]]]:
    """The opening top-level paragraphs; list items if there are no paragraphs.

    Returns the text and, when it is made of list items, where each item starts in it
    and its line in the body (the key of its key point). Stops collecting after about
    ``enough`` words: ``fit`` never needs more.
    """
    paragraphs: list[str] = []
    items: list[tuple[str, int]] = []
    seen_paragraphs = seen_items = 0
    parents: list[str] = []  # the types of the open block tokens
    for i, tok in enumerate(tokens):
        if tok.nesting == 1:
            parents.append(tok.type)
        elif tok.nesting == -1:
            parents.pop()
        if tok.type == "heading_open" and paragraphs and stop_at_heading:
            break
        if tok.type != "inline" or i == 0:
            continue
        opener = tokens[i - 1]
        if opener.type != "paragraph_open":
            continue  # a heading or a table cell
        top = opener.level == 0
        in_item = not top and len(parents) >= 2 and parents[-2] == "list_item_open"
        if not top and (paragraphs or not in_item or seen_items >= enough):
            continue
        # On one line, long words cut: as fit() will see it, so that offsets agree.
        text = _head(inline_text(_inline(tok, env)), enough)
        if not text:
            continue  # e.g. a paragraph that is only an image
        if top:
            paragraphs.append(text)
            seen_paragraphs += len(text.split())
            if seen_paragraphs >= enough:
                break
        else:
            items.append((text, tok.map[0] if tok.map else -1))
            seen_items += len(text.split())
    if paragraphs:
        return " ".join(paragraphs), []
    starts, at = [], 0
    for text, line in items:
        starts.append((at, line))
        at += len(text) + len("; ")
    return "; ".join(text for text, _line in items), starts


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
        if point is not None:
            lead, rest = point
            points.append(KeyPoint(fit(lead, budget), fit(rest, budget)))
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
    for n, m in enumerate(_UNIT.finditer(text), 1):
        if n > units:
            break
        if out and m.start() > end:
            out.append(" ")  # the gap between two units is whitespace
        unit = m.group()
        out.append(unit if len(unit) <= MAX_UNIT else unit[: MAX_UNIT - 1] + ELLIPSIS)
        end = m.end()
    return "".join(out)


def _cut_words(text: str, budget: int, max_chars: int) -> str:
    total, end = 0.0, 0
    for m in _UNIT.finditer(text):
        unit = m.group()
        cost = 0.5 if CJK.match(unit) else count_words(unit)
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
    return _merge_ordinals(text, spans)


def _syntok_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    chunk = text[start:end]
    if not chunk.strip():
        return []
    from syntok import segmenter

    out = []
    for sentence in segmenter.split(_tokenizer().tokenize(chunk)):
        if sentence:
            first, last = sentence[0], sentence[-1]
            out.append((start + first.offset, start + last.offset + len(last.value)))
    return out or [(start, end)]


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
