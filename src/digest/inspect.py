"""A rendered issue -> findings: what would go wrong with it, before anyone gets it.

Images without alt text, relative links, a template that lost the unsubscribe link or
the postal address, and the render's own warnings. ``pipeline.prepare`` runs it on every
build, so ``build`` reports what ``check`` does; printing and exit codes are the CLI's.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .model import Problem, token

if TYPE_CHECKING:
    from .model import Issue, RenderedEmail

# Links that are fine although they are not http(s): fragment, mail, phone, and the
# placeholder tokens and merge tags that a sender or mail service fills in later.
_OK_PREFIXES = ("http://", "https://", "mailto:", "tel:", "#", "__digest_", "*|", "{{", "<%", "%")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images_without_alt: list[str] = []
        self.relative: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        no_alt = not (a.get("alt") or "").strip() and a.get("role") != "presentation"
        if tag == "img" and no_alt:
            self.images_without_alt.append(a.get("src") or "?")
        for attr in ("href", "src"):
            url = (a.get(attr) or "").strip()
            if url and not url.startswith(_OK_PREFIXES):
                self.relative.append(url)


def inspect(cfg: Config, issue: Issue, r: RenderedEmail) -> list[Problem]:
    """Findings about a rendered issue (the email, not the content files).

    ``build`` reports them too: a user template that lost the footer must not go
    unnoticed until someone runs ``check``.
    """
    where = Path(f"email {issue.id}")
    found = [Problem(where, None, w, "warning") for w in r.warnings]
    parser = _Links()
    parser.feed(r.html)
    for src in parser.images_without_alt:
        found.append(Problem(where, None, f"image without alt text: {src}", "warning"))
    for url in sorted(set(parser.relative)):
        found.append(
            Problem(where, None, f"relative link (readers can't follow it): {url}", "warning")
        )
    if token("unsubscribe_url") not in r.html:
        found.append(
            Problem(where, None, "no unsubscribe link: the template must use ph.unsubscribe_url")
        )
    if not cfg.newsletter.postal_address.strip():
        found.append(
            Problem(
                cfg.source or Path("config"),
                None,
                "newsletter.postal_address is empty; anti-spam law requires a postal address",
                "warning",
            )
        )
    elif not any(
        s in r.html
        for s in (
            token("postal_address"),
            cfg.newsletter.postal_address,
            html.escape(cfg.newsletter.postal_address),
        )
    ):
        found.append(Problem(where, None, "the postal address is missing from the email"))
    return found
