"""``digest serve`` and ``digest archive``: the web side of a newsletter.

``app`` (the ASGI app: unsubscribe, archive, preview routes and security headers),
``archive`` (sent issues as pages, and the static archive), ``preview`` (the editor's
live preview), ``pages`` (our page templates and their content policies) and ``server``
(socket, uvicorn, the secret).
"""

from .app import create_app
from .archive import write_archive
from .server import serve

__all__ = ["create_app", "serve", "write_archive"]
