"""Front matter fields -> the typed values of an ``Article``, one processor per field.

``PROCESSORS`` is the table (as Pelican's ``METADATA_PROCESSORS``): each takes the head
and returns the field's value, warning (with the key's line) about a value it ignores.
Title, slug, URL and image depend on the body or on each other and are read by
``content`` itself with the functions below.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ..text import one_line
from .frontmatter import Head, boolish, first, norm
from .html import SAFE_PATH, URL_UNSAFE

LANG_CODE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def text_field(head: Head, *names: str, warn: bool = True) -> str | None:
    """A text field; numbers, booleans and dates become their text, lists are refused
    (with a warning, unless ``warn`` is false: a second reader of the same field)."""
    key, value = first(head.meta, *names)
    if key is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | dt.date | dt.time):
        return str(value)
    if warn:
        problem = f"{key}: expected text, found a {type(value).__name__}; ignored"
        head.warn(problem, head.key_line(key))
    return None


def url(head: Head, base: str, slug: str) -> str:
    key, value = first(head.meta, "url", "permalink")
    if isinstance(value, str) and value.strip():
        value = value.strip()
        if re.match(r"^https?://", value, re.I):
            return value
        if not URL_UNSAFE.search(value):
            return f"{base}/{quote(value.lstrip('/'), safe=SAFE_PATH)}"
        head.warn(
            f"{key}: {value!r} is not a URL or path; using the slug", head.key_line(key or "url")
        )
    zola = head.meta.get("path")
    if isinstance(zola, str) and zola.strip("/ ") and not URL_UNSAFE.search(zola.strip()):
        return f"{base}/{quote(zola.strip().strip('/'), safe=SAFE_PATH)}/"
    return f"{base}/{quote(slug, safe=SAFE_PATH)}/"


def image(
    head: Head, url: str, absolute: Callable[[str], str | None]
) -> tuple[str | None, str | None]:
    meta = head.meta
    key, value = first(meta, "image", "images", "featuredimage", "cover", "thumbnail")
    alt: Any = None
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        sub = {norm(str(k)): v for k, v in value.items()}
        alt = sub.get("alt") or sub.get("imagealt") or sub.get("caption")
        value = sub.get("src") or sub.get("url") or sub.get("path") or sub.get("image")
    if key is None or value is None:
        return None, None
    if not isinstance(value, str):
        head.warn(f"{key}: expected an image URL; ignored", head.key_line(key))
        return None, None
    if re.match(r"^[a-z][a-z0-9+.-]*:", value.strip(), re.I) and not re.match(
        r"^https?://", value.strip(), re.I
    ):
        head.warn(f"{key}: {value!r} is not an http(s) URL; ignored", head.key_line(key))
        return None, None
    src = absolute(value)
    if src is None:
        return None, None
    _, alt_value = first(meta, "imagealt", "imagealttext", "alt", "coveralt")
    alt = alt if alt is not None else alt_value
    alt = one_line(str(alt)) if alt is not None and not isinstance(alt, list | dict) else None
    if not alt:
        head.warn(
            f"{key} has no alt text; add 'image_alt: <what the image shows>'",
            head.key_line(key),
        )
    return src, alt or None


def author(head: Head) -> str | None:
    key, value = first(head.meta, "author", "authors")
    if key is None:
        return None
    if isinstance(value, dict):
        value = value.get("name")
    if isinstance(value, str) and key == "authors" and "," in value:
        value = [v for v in value.split(",")]
    if isinstance(value, list):
        names = [one_line(str(v.get("name", "")) if isinstance(v, dict) else str(v)) for v in value]
        value = ", ".join(n for n in names if n)
    if not isinstance(value, str):
        head.warn(f"{key}: expected a name; ignored", head.key_line(key))
        return None
    return one_line(value) or None


def terms(head: Head, *names: str) -> tuple[str, ...]:
    key, value = first(head.meta, *names)
    if key is None:
        return ()
    if isinstance(value, str):
        if "," in value or head.kind == "meta" or key in ("tag", "category"):
            items: list[Any] = value.split(",")
        else:
            items = value.split()  # Jekyll: "tags: ai chips" is two tags
    elif isinstance(value, list):
        items = value
    else:
        head.warn(f"{key}: expected a list; ignored", head.key_line(key))
        return ()
    out: list[str] = []
    for item in items:
        if isinstance(item, dict | list):
            head.warn(f"{key}: expected a list of words; ignored one entry", head.key_line(key))
            continue
        text = one_line(str(item))
        if text and text not in out:
            out.append(text)
    return tuple(out)


def weight(head: Head) -> int:
    meta = head.meta
    if "weight" in meta and meta["weight"] not in (None, ""):
        try:
            return int(float(str(meta["weight"]).strip()))
        except ValueError:
            head.warn(
                f"weight: {meta['weight']!r} is not a whole number; ignored",
                head.key_line("weight"),
            )
    return 0


def featured(head: Head) -> bool:
    meta = head.meta
    if meta.get("featured") is None:
        return False
    b = boolish(meta["featured"])
    if b is None:
        head.warn(
            f"featured: {meta['featured']!r} is not true or false; ignored",
            head.key_line("featured"),
        )
    return bool(b)


def lang(head: Head) -> str | None:
    value = text_field(head, "lang", "language")
    if value and not LANG_CODE.match(value):
        head.warn(
            f"lang: {value!r} is not a language code like 'en' or 'de-AT'; ignored",
            head.key_line("lang", "language"),
        )
        return None
    return value.replace("_", "-") if value else None


def summary(head: Head) -> str | None:
    """The author's summary as written (``summarize`` decides whether it is one)."""
    key, _ = first(head.meta, "summary", "description", "excerpt")
    value = text_field(head, key) if key else None
    return value.strip() if value else None


# In the order they are read (their warnings are listed in it).
PROCESSORS: dict[str, Callable[[Head], Any]] = {
    "weight": weight,
    "featured": featured,
    "lang": lang,
    "summary": summary,
    "author": author,
    "tags": lambda head: terms(head, "tags", "tag"),
    "categories": lambda head: terms(head, "categories", "category"),
}
