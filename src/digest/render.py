"""``Issue`` + templates -> ``RenderedEmail``.

Jinja2 (autoescape, StrictUndefined) -> MJML -> HTML (mjml-python) -> CSS inlined
(premailer) -> plain text from its own template. Personal fields are left as
placeholder tokens and filled in later (per recipient by ``message``, per mail service
by ``export``), so the issue is rendered once.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# The personal or service-specific fields a template may use. In the rendered output each
# stands as a token of letters and underscores only, which MJML, lxml/premailer and
# URL-escaping all leave alone (a `|`, `{` or `<` would not survive them).
PLACEHOLDERS = ("unsubscribe_url", "web_url", "name", "first_name", "email", "postal_address")
_TOKEN = re.compile(r"__digest_(" + "|".join(PLACEHOLDERS) + r")__")


def token(name: str) -> str:
    """The token standing for placeholder ``name`` in rendered HTML and text."""
    if name not in PLACEHOLDERS:
        raise KeyError(name)
    return f"__digest_{name}__"


@dataclass(frozen=True)
class RenderedEmail:
    issue_id: str
    subject: str
    preheader: str
    html: str  # complete document, CSS inlined, with placeholder tokens
    text: str  # plain-text part, with placeholder tokens
    lang: str = "en"
    # Values for placeholders that are not personal (web_url, postal_address); used when
    # a fill() call does not give one.
    defaults: Mapping[str, str] = field(default_factory=dict)

    def fill(self, values: Mapping[str, str], *, raw: bool = False) -> tuple[str, str]:
        """Return (html, text) with every token replaced.

        Values are HTML-escaped in the HTML part unless ``raw`` (for merge tags, which
        must reach the mail service byte for byte).
        """
        merged = {**self.defaults, **values}

        def html_sub(m: re.Match[str]) -> str:
            v = merged.get(m.group(1), "")
            return v if raw else _html.escape(v, quote=True)

        def text_sub(m: re.Match[str]) -> str:
            return merged.get(m.group(1), "")

        return _TOKEN.sub(html_sub, self.html), _TOKEN.sub(text_sub, self.text)


def render(issue, cfg) -> RenderedEmail:  # type: ignore[no-untyped-def]
    raise NotImplementedError("render: not yet")
