"""Our own web pages (templates/web/), and the content policy each kind carries.

The archive, the unsubscribe pages and the editor's preview all render through ``page``,
in the one Jinja environment factory (``templating.environment(..., pages=True)``).
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..templating import environment

# Our own pages: no script at all, styles only from /style.css, forms only to ourselves.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# An issue's web version: the email's inlined styles and its images (absolute URLs of the
# author's site); still no script, no fonts, no frames, no forms.
ISSUE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src http: https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# The editor's preview embeds the email (srcdoc iframes inherit this policy) and has a form.
# Its one script (reload.js, from this server) listens for file changes (issue 14); the
# email frames are sandboxed without allow-scripts, so nothing in an email runs.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src http: https: data:; "
    "script-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def static_csp(csp: str) -> str:
    # A <meta> CSP cannot carry frame-ancestors (browsers ignore it there with a warning).
    return "; ".join(p for p in csp.split("; ") if not p.startswith("frame-ancestors"))


def css(cfg: Config) -> str:
    env = environment(cfg.templates.folder, pages=True)
    loader = env.loader
    assert loader is not None
    source, _, _ = loader.get_source(env, "style.css")
    return source


def root_of(path: str) -> str:
    """The relative link from the page at ``path`` to the archive root ("", "../", ...)."""
    return "../" * max(0, path.count("/") - 1)


def page(cfg: Config, name: str, *, root: str, static: bool = False, **context: Any) -> str:
    """Render one of our own pages (templates/web/<name>)."""
    return (
        environment(cfg.templates.folder, pages=True)
        .get_template(name)
        .render(
            lang=cfg.newsletter.language,
            newsletter=cfg.newsletter.name,
            root=root,
            meta_csp=static_csp(PAGE_CSP) if static else "",
            noindex=context.pop("noindex", False),
            **context,
        )
    )
