"""A Markdown body -> sanitized HTML with absolute links, and its plain text.

One Markdown parser (CommonMark, tables, strikethrough: ``markdown``); nh3 keeps a safe
set of tags and attributes (no script, style, iframe, form or event attribute; no
``javascript:`` or ``data:`` URL) and makes every relative link and image absolute
against the article's URL, warning about the ones it cannot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from ..text import HIDDEN_ELEMENTS, count_words, inline_text
from .frontmatter import Head


@functools.cache
def markdown(*, inline: bool = True) -> Any:
    """The one Markdown parser: CommonMark + tables + strikethrough.

    With ``inline=False``, the same parser without its inline pass: the block structure
    (and link reference definitions) only, with inline tokens' children left empty, to
    fill with ``md.inline.parse`` where they are needed. The block pass alone is ~20x
    faster than the whole parse.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return md if inline else md.disable("inline")


URL_UNSAFE = re.compile(r"[<>{}\"`\\^|]|%7[bBdD]")
SCHEMES = {"http", "https", "mailto", "tel"}
SAFE_PATH = "/:@-._~!$&'()*+,;=%"


def link_resolver(head: Head, body: str, url: str) -> Callable[[str], str | None]:
    """``absolute(link)``: ``link`` made absolute against the article's ``url``, or None
    (with a warning naming the line) when it cannot be."""

    def absolute(link: str) -> str | None:
        try:
            if URL_UNSAFE.search(link):
                raise ValueError
            full = urljoin(url, quote(link.strip(), safe=SAFE_PATH + "?#"))
            scheme = urlsplit(full).scheme.lower()
        except ValueError:
            full, scheme = "", ""
        if scheme not in SCHEMES:
            head.warn(
                f"relative link {link!r} could not be made absolute; it was removed",
                _find_line(body, link, head.body_line),
            )
            return None
        return full

    return absolute


def to_html(
    head: Head, tokens: Sequence[Any], env: dict[str, Any], absolute: Callable[[str], str | None]
) -> str:
    """The sanitized HTML of the body's tokens; warns about images without alt text."""
    md = markdown()
    for tok in tokens:
        if tok.type == "inline" and tok.children:
            for child in tok.children:
                if child.type == "image" and not child.content.strip():
                    img_line = head.body_line + tok.map[0] if tok.map else None
                    head.warn(
                        f"image {child.attrGet('src')!r} has no alt text; write ![what it "
                        "shows](...)",
                        img_line,
                    )

    import nh3

    return nh3.clean(
        md.renderer.render(tokens, md.options, env),
        tags=_TAGS,
        clean_content_tags=_HIDDEN,
        attributes=_ATTRIBUTES,
        url_schemes=SCHEMES,
        url_relative=absolute,
    )


def note(source: str, base: str) -> tuple[str, tuple[str, ...]]:
    """An editor's note (Markdown) -> (sanitized HTML, its paragraphs as plain text; a list
    item starts with ``"- "``). Relative links resolve against ``base``; ones that cannot
    be made absolute are removed."""
    md = markdown()
    tokens = md.parse(source)

    def absolute(link: str) -> str | None:
        if URL_UNSAFE.search(link):
            return None
        full = urljoin(base + "/", quote(link.strip(), safe=SAFE_PATH + "?#"))
        return full if urlsplit(full).scheme.lower() in SCHEMES else None

    import nh3

    html = nh3.clean(
        md.renderer.render(tokens, md.options, {}),
        tags=_TAGS,
        clean_content_tags=_HIDDEN,
        attributes=_ATTRIBUTES,
        url_schemes=SCHEMES,
        url_relative=absolute,
    )
    paragraphs: list[str] = []
    in_item = 0
    for tok in tokens:
        if tok.type == "list_item_open":
            in_item += 1
        elif tok.type == "list_item_close":
            in_item -= 1
        elif tok.type == "inline":
            text = inline_text(tok).strip()
            if text:
                paragraphs.append(("- " if in_item else "") + text)
    return html, tuple(paragraphs)


def words(tokens: Sequence[Any]) -> int:
    """Words of the body's text and code, for reading time."""
    parts = []
    for tok in tokens:
        if tok.type == "inline":
            parts.append(inline_text(tok))
        elif tok.type in ("fence", "code_block"):
            parts.append(tok.content)
    return count_words("\n".join(parts))


def _find_line(body: str, needle: str, first: int) -> int | None:
    at = body.find(needle)
    return first + body.count("\n", 0, at) if at >= 0 else None


# What survives sanitizing: nh3's defaults (no script, style, iframe, form, event
# attributes) plus a few harmless presentational attributes; javascript: and data: URLs
# are dropped by the scheme list, relative ones made absolute.
_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "u", "ul", "var", "wbr",
}  # fmt: skip
_HIDDEN = set(HIDDEN_ELEMENTS)  # dropped with their content
_ATTRIBUTES = {
    "*": {"lang", "dir", "title"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
}
