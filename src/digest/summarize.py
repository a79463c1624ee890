"""``Article`` -> plain-text summary and key points.

The summary is, in this order:

1. the front matter ``summary``/``description``/``excerpt`` (``Article.summary``),
   with any Markdown or HTML stripped;
2. else the text before ``<!--more-->`` (or Pelican's ``<!-- PELICAN_END_SUMMARY -->``);
3. else the lede: the opening paragraphs up to the first heading that follows them
   (a headline before the lede is skipped); an article with no paragraphs at all uses
   its list items.

Headings, code, images, tables and raw HTML blocks never count. Whatever the source, the
text is cut to the word budget at a sentence boundary (syntok; Chinese and Japanese
sentences end at 。！？); if even the first sentence is longer, it is cut after the last
whole word that fits and ends in "…". The output is plain text: no markup, no entities,
one line.

Key points are list items that start with a bold lead-in and a separator
(``- **Cost**: text``, ``- **Cost:** text``, ``- **Cost** — text``); their text is cut
like a summary, to half the budget (at least 15 words), so a digest stays skimmable.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .content import (
    CJK,
    CJK_CLASS,
    MONTHS,
    Article,
    LazyRegex,
    children_text,
    count_words,
    inline_text,
    markdown,
)

ELLIPSIS = "…"
_MORE = re.compile(r"<!--\s*(?:more|PELICAN_END_SUMMARY)\s*-->", re.I)
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)
_CJK_END = re.compile(r"[。！？]+[」』”’）)]*")
_UNIT = LazyRegex(rf"[{CJK_CLASS}]|[^\s{CJK_CLASS}]+")  # a CJK character or a word
_ORDINAL_END = re.compile(r"(?:^|\s)\d{1,2}\.$")
_TRAILING = " \t,;:—–-([{\"'“‘«"
_LEAD_SEPARATORS = (":", "：", "—", "–", "-", ".")


@dataclass(frozen=True)
class KeyPoint:
    lead: str  # the bold lead-in, e.g. "Cost"
    text: str  # the rest of the bullet, plain text


@dataclass(frozen=True)
class Summary:
    text: str  # plain text, no markup or entities, never cut mid-word
    key_points: tuple[KeyPoint, ...] = ()


def summarize(article: Article, *, words: int = 60, key_points: int = 3) -> Summary:
    """The summary text (see the module docstring) and up to ``key_points`` key points."""
    tokens = markdown().parse(article.body)
    if article.summary and article.summary.strip():
        text = plain(article.summary)
    else:
        more = _MORE.search(article.body)
        if more:
            text = _lede(markdown().parse(article.body[: more.start()]), stop_at_heading=False)
        else:
            text = _lede(tokens, stop_at_heading=True)
    points = _key_points(tokens, key_points, max(15, words // 2)) if key_points else ()
    return Summary(fit(text, words), points)


def plain(markup: str) -> str:
    """Markdown or HTML -> plain text on one line (tags dropped, entities decoded)."""
    tokens = markdown().parse(_TAG.sub(" ", markup))
    parts = [inline_text(t) for t in tokens if t.type == "inline"]
    return " ".join(" ".join(parts).split())


def _lede(tokens: Sequence[Any], *, stop_at_heading: bool) -> str:
    """The opening top-level paragraphs; list items if there are no paragraphs."""
    paragraphs: list[str] = []
    items: list[str] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and paragraphs and stop_at_heading:
            break
        if tok.type == "inline" and i > 0:
            opener = tokens[i - 1]
            if opener.type != "paragraph_open":
                continue  # a heading or a table cell
            text = " ".join(inline_text(tok).split())
            if not text:
                continue  # e.g. a paragraph that is only an image
            if opener.level == 0:
                paragraphs.append(text)
            elif _in_list_item(tokens, i - 1):
                items.append(text)
    if paragraphs:
        return " ".join(paragraphs)
    return "; ".join(items)


def _in_list_item(tokens: Sequence[Any], index: int) -> bool:
    level = tokens[index].level
    for tok in reversed(tokens[:index]):
        if tok.level < level:
            return tok.type == "list_item_open"
    return False


def _key_points(tokens: Sequence[Any], limit: int, budget: int) -> tuple[KeyPoint, ...]:
    points: list[KeyPoint] = []
    for i, tok in enumerate(tokens):
        if len(points) >= limit:
            break
        if tok.type != "inline" or i < 2 or tokens[i - 1].type != "paragraph_open":
            continue
        if tokens[i - 2].type != "list_item_open":
            continue  # only the first paragraph of a list item
        point = _lead_in(tok.children or [])
        if point is not None:
            lead, rest = point
            points.append(KeyPoint(lead, fit(rest, budget)))
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
    """``text`` on one line, cut to ``budget`` words at a sentence or word boundary."""
    text = _one_line(text)
    if count_words(text) <= budget:
        return text
    end = 0
    for _start, stop in sentences(text):
        if count_words(text[:stop]) > budget:
            break
        end = stop
    if end:
        return text[:end].rstrip()
    return _cut_words(text, budget)


def _cut_words(text: str, budget: int) -> str:
    total, end = 0.0, 0
    for m in _UNIT.finditer(text):
        unit = m.group()
        cost = 0.5 if CJK.match(unit) else count_words(unit)
        if total + cost > budget:
            break
        total, end = total + cost, m.end()
    return text[:end].rstrip(_TRAILING) + ELLIPSIS


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
