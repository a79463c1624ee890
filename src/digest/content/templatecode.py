"""Article text with a generator's template code -> plain Markdown a reader can see.

In a detected site the generator expands its template code before Markdown is read, so
what the site shows is never the code itself. digest does the same, without running
anything: a shortcode's inner text is kept; links through ``{% link %}``,
``{% post_url %}``, ``{{< ref >}}``/``{{< relref >}}``, Zola's ``@/page.md`` and
Pelican's ``{filename}`` go to the target article's URL when it is found (else the link
text stays, unlinked); every other tag is dropped. Kramdown attribute lists
(``{: .class}``) and footnotes (markers and definitions) are dropped too: an email shows
an excerpt, not the notes. Escaped code (``{% raw %}``, ``{{</* */>}}``, ``{{/* */}}``)
stays as written. Without a detected generator nothing here runs: ``{{ 7*7 }}`` stays.

MDX (``.mdx``) is Markdown with ``import``/``export`` lines and JSX components: the lines
are dropped, a component's tags dropped and its inner text kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..text import LazyRegex

# resolve(kind, target) -> the target's URL or None; kind: "file" (a path) or "post"
# (a Jekyll post name without extension).
Resolver = Callable[[str, str], str | None]

_FENCE = LazyRegex(r"^([ \t]{0,3})(`{3,}|~{3,})[^\n]*\n.*?^\1?\2[ \t]*$\n?", re.M | re.S)
_FOOTNOTE_DEF = LazyRegex(r"^\[\^[^\]\n]+\]:[^\n]*(?:\n(?:[ \t]{2,}|\t)[^\n]*)*\n?", re.M)
_FOOTNOTE_REF = LazyRegex(r"\[\^[^\]\s]+\]")
_IAL_LINE = LazyRegex(r"^[ \t]*\{:[^}\n]*\}[ \t]*\n?", re.M)
_IAL_INLINE = LazyRegex(r"\{:[^}\n]*\}")
_EMPTY_LINK = LazyRegex(r"(!?)\[([^\]]*)\]\(\s*\)")

# Liquid (Jekyll)
_RAW = LazyRegex(r"\{%-?\s*raw\s*-?%\}(.*?)\{%-?\s*endraw\s*-?%\}", re.S)
_COMMENT = LazyRegex(r"\{%-?\s*comment\s*-?%\}.*?\{%-?\s*endcomment\s*-?%\}", re.S)
_HIGHLIGHT = LazyRegex(
    r"\{%-?\s*highlight\s+([\w+#-]+)[^%]*%\}\n?(.*?)\{%-?\s*endhighlight\s*-?%\}", re.S
)
_LINK = LazyRegex(r"\{%-?\s*link\s+([^%\s]+)\s*-?%\}")
_POST_URL = LazyRegex(r"\{%-?\s*post_url\s+([^%\s]+)\s*-?%\}")
_LIQUID_TAG = LazyRegex(r"\{%.*?%\}", re.S)
_LIQUID_OUT = LazyRegex(r"\{\{.*?\}\}", re.S)

# Hugo
_HUGO_ESCAPED = LazyRegex(r"\{\{([<%])/\*(.*?)\*/([>%])\}\}", re.S)
_HUGO_REF = LazyRegex(r"\{\{[<%]\s*(?:rel)?ref\s+\"?([^\"\s>%]+)\"?\s*[>%]\}\}")
_HUGO_SHORTCODE = LazyRegex(r"\{\{[<%].*?[>%]\}\}", re.S)

# Tera (Zola)
_TERA_ESCAPED = LazyRegex(r"\{\{/\*(.*?)\*/\}\}|\{%/\*(.*?)\*/%\}", re.S)
_TERA_CALL = LazyRegex(r"\{\{\s*[A-Za-z_]\w*\s*\(.*?\)\s*\}\}", re.S)
_TERA_BLOCK = LazyRegex(r"\{%\s*(?:[A-Za-z_]\w*\s*\(.*?\)|end)\s*%\}", re.S)
_AT_LINK = LazyRegex(r"\]\(@/([^)\s#]+)(#[^)\s]*)?\)")

# Pelican
_PELICAN_LINK = LazyRegex(
    r"(?:\{(filename|static|attach)\}|\|(filename|static|attach)\|)([^)\s\"']+)"
)

# Go text/template (the Go blog's "template: true" pages)
_GO_RAW = LazyRegex(r"\{\{-?\s*raw\s+`(.*?)`\s*-?\}\}", re.S)
_GO_ACTION = LazyRegex(r"\{\{.*?\}\}", re.S)

# MDX
_MDX_LINE = LazyRegex(r"^(?:import|export)\s[^\n]*\n?", re.M)
_JSX_COMMENT = LazyRegex(r"\{/\*.*?\*/\}", re.S)
_JSX_TAG = LazyRegex(r"</?[A-Z][\w.]*(?:\s(?:[^<>{}]|\{[^{}]*\})*)?/?>")


def _outside_fences(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to the text between fenced code blocks only."""
    out, pos = [], 0
    for m in _FENCE.finditer(text):
        out.append(change(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(change(text[pos:]))
    return "".join(out)


class _Kept:
    """Text that must come out as written (escaped code): held apart while the rest is
    rewritten, then put back."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def keep(self, text: str) -> str:
        self.parts.append(text)
        return f"\x00{len(self.parts) - 1}\x00"

    def restore(self, text: str) -> str:
        return re.sub(r"\x00(\d+)\x00", lambda m: self.parts[int(m.group(1))], text)


def expand(body: str, syntax: str, resolve: Resolver) -> str:
    """``body`` as the generator (``liquid``, ``hugo``, ``tera``, ``pelican``, ``go``) would show
    it, template code expanded into plain Markdown (see the module docstring)."""
    if "\x00" in body:
        body = body.replace("\x00", "")
    kept = _Kept()

    def link(kind: str, target: str) -> str:
        return resolve(kind, target) or ""

    if syntax in ("liquid", "pelican"):
        body = _RAW.sub(lambda m: kept.keep(m.group(1)), body)
        body = _COMMENT.sub("", body)
        body = _HIGHLIGHT.sub(lambda m: f"```{m.group(1)}\n{m.group(2).rstrip()}\n```", body)
        body = _LINK.sub(lambda m: link("file", m.group(1)), body)
        body = _POST_URL.sub(lambda m: link("post", m.group(1)), body)
        if syntax == "pelican":
            body = _PELICAN_LINK.sub(
                lambda m: link(m.group(1) or m.group(2), m.group(3)) or m.group(3), body
            )
        body = _LIQUID_TAG.sub("", body)
        body = _LIQUID_OUT.sub("", body)
    elif syntax == "hugo":
        body = _HUGO_ESCAPED.sub(
            lambda m: kept.keep("{{" + m.group(1) + m.group(2) + m.group(3) + "}}"), body
        )
        body = _HUGO_REF.sub(lambda m: link("file", m.group(1)), body)
        body = _HUGO_SHORTCODE.sub("", body)
    elif syntax == "go":
        body = _GO_RAW.sub(lambda m: kept.keep(m.group(1)), body)
        body = _GO_ACTION.sub("", body)
    elif syntax == "tera":

        def tera(text: str) -> str:
            text = _TERA_ESCAPED.sub(
                lambda m: kept.keep(
                    "{{" + m.group(1) + "}}" if m.group(1) is not None else "{%" + m.group(2) + "%}"
                ),
                text,
            )
            text = _AT_LINK.sub(
                lambda m: f"]({link('file', 'content/' + m.group(1))}{m.group(2) or ''})", text
            )
            return _TERA_BLOCK.sub("", _TERA_CALL.sub("", text))

        body = _outside_fences(body, tera)

    def markdown_level(text: str) -> str:
        text = _FOOTNOTE_DEF.sub("", text)
        text = _FOOTNOTE_REF.sub("", text)
        text = _IAL_LINE.sub("", text)
        text = _IAL_INLINE.sub("", text)
        return _EMPTY_LINK.sub(lambda m: "" if m.group(1) else m.group(2), text)

    return kept.restore(_outside_fences(body, markdown_level))


def mdx(body: str) -> str:
    """MDX -> Markdown: ``import``/``export`` lines and JSX comments dropped, component
    tags dropped with their inner text kept (outside fenced code)."""

    def change(text: str) -> str:
        text = _MDX_LINE.sub("", text)
        text = _JSX_COMMENT.sub("", text)
        return _JSX_TAG.sub("", text)

    return _outside_fences(body, change)
