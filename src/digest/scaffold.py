"""``digest init DIR``: a new newsletter folder, the way ``mkdocs new`` makes a site."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from .errors import DigestError
from .files import bundled
from .templating import default_templates

_ARTICLE = """\
---
title: "Hello, readers"
date: {date}
author: "The Editor"
tags: [welcome]
---

# Hello, readers

This is the first article of your newsletter. Write articles as Markdown files in this
folder; every week digest gathers the ones published since the last send, summarises
each and mails one email to your subscribers.

## What to try next

- **Preview**: run `digest build --latest` and open `out/<issue>/email.html`.
- **Check**: run `digest check --latest` to find broken files and links before sending.
- **Send**: add addresses to `subscribers.csv` and run `digest send --latest`.
"""


def init(folder: Path, *, templates: bool = False, today: dt.date | None = None) -> list[Path]:
    """Create the files of a new newsletter in ``folder``; refuse to overwrite any."""
    today = today or dt.date.today()
    files: dict[Path, str] = {
        folder / "config.toml": _config_text(templates, _title(folder)),
        folder / "content" / f"{today:%Y-%m-%d}-hello.md": _ARTICLE.format(date=today.isoformat()),
        folder / "subscribers.csv": "email,name\n",
    }
    tpl_dir = folder / "templates"
    tpl_files = sorted(p for p in default_templates().iterdir() if p.is_file()) if templates else []
    targets = list(files) + [tpl_dir / p.name for p in tpl_files]
    existing = [p for p in targets if p.exists()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise DigestError(f"not overwriting existing files: {names}; choose an empty folder")
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for src in tpl_files:
            tpl_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tpl_dir / src.name)
    except OSError as exc:
        msg = f"cannot create the newsletter in {folder}: {exc.strerror or exc}"
        raise DigestError(msg) from None
    return targets


def _title(folder: Path) -> str:
    """A newsletter's name from its folder: "weekly-notes" -> "Weekly Notes"."""
    words = folder.resolve().name.replace("-", " ").replace("_", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words) or "The Weekly Digest"


def _config_text(templates: bool, name: str = "") -> str:
    example = bundled("config.example.toml")
    text = example.read_text(encoding="utf-8")
    # The example points at the bundled sample subscribers; a new newsletter has its own.
    text = text.replace('file = "subscribers.example.csv"', 'file = "subscribers.csv"')
    if name:
        # The new newsletter's own values; what only its editor knows says TODO, and a
        # real send refuses until it is set (config.first_run_values).
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        line = f'name = "{quoted}"'  # a function: re.sub would read "\\" in a name itself
        text = re.sub(r"^name = .*$", lambda _: line, text, count=2, flags=re.M)
        text = text.replace("to The Signal Weekly at example.com.", f"to {quoted}.")
        for key, value in (
            ("base_url", '"https://TODO.example"  # TODO: your site ("": from the site config)'),
            ("postal_address", '"TODO: your postal address"'),
            ("email", '"TODO@example.com"  # TODO: the address you send from'),
        ):
            text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    if templates:
        text = text.replace('# folder = "my-templates"', 'folder = "templates"       ')
    return text
