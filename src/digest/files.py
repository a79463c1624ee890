"""Writing output files so that no reader (a browser, a web server, a mail-service upload)
ever sees half of one."""

from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, data: str) -> None:
    """Write UTF-8 text to a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(data, encoding="utf-8", newline="")
    tmp.replace(path)
