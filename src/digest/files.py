"""Files: the bundled ones (templates, the example config), found one way, and output
written so that no reader (a browser, a web server, a mail-service upload) ever sees half
of one."""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from functools import cache
from pathlib import Path


@cache
def bundled(name: str) -> Path:
    """A file or folder shipped with digest: ``templates/email``, ``templates/web``,
    ``config.example.toml``.

    They live at the top of the repository, where users look for them, and
    ``src/digest/`` links to them; the wheel carries copies in the package. So the same
    lookup works from a checkout, an editable install and a wheel. (The package's folder,
    not ``importlib.resources``: digest is never imported from a zip, and that import
    was ~5 ms of every command's start.)
    """
    return Path(__file__).parent / name


def code_stamps(*modules: str) -> list[str]:
    """What a cache of results computed by code depends on: for each module (``"digest"``
    for all of digest's own, or a library's import name), where it is installed and the
    size and mtime of its files, found without importing it. An edited checkout, an
    upgrade or a reinstall changes them; a missing module is named so."""
    return [part for name in modules for part in _code_stamp(name)]


@cache
def _code_stamp(name: str) -> tuple[str, ...]:
    # Once per process: the scan cache, the kept summaries and the compiled email ask.
    import importlib.util

    if name == "digest":
        here = Path(__file__).parent
        files = sorted([*here.glob("*.py"), *here.glob("*/*.py")])
    else:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            return (f"{name}:missing",)
        files = [Path(spec.origin)]
    parts = []
    for f in files:
        with suppress(OSError):
            st = f.stat()
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
    return tuple(parts)


def write_atomic(path: Path, data: str, *, private: bool = False) -> None:
    """Write UTF-8 text to a temporary file beside ``path``, then rename it into place.
    The temporary file is this process's and thread's (two writers of one file do not
    write into each other's), and is removed if writing fails.

    ``private``: readable by its owner only (0600), from the first byte on (a list of
    addresses, a suppression list)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if private:
            tmp.unlink(missing_ok=True)
            create_private(tmp)
        tmp.write_text(data, encoding="utf-8", newline="")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (SQLite would make a
    ledger 0644: every address and the development secret readable by every local user)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
