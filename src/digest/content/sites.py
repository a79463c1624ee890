"""A folder -> the static-site generator that publishes it, and that generator's rules.

``detect`` looks in ``content.folder`` and its parents (up to the repository root, a
folder holding ``.git``) for a generator's config: Jekyll ``_config.yml``; Hugo
``hugo.{toml,yaml,json}``, ``config.{toml,yaml,json}`` or ``config/_default/``; Zola
``config.toml`` (told from Hugo's by its keys); Pelican ``pelicanconf.py`` (simple
assignments read with ``ast``, never executed; ``publishconf.py`` beside it wins for
``SITEURL``). A ``Site`` then says, per file, whether it is a post (or a page, a draft,
a list page, outside the content), its language, and the URL the generator publishes
for it. Without a site config everything works as before: ``detect`` returns None.

The rules follow each generator's documentation:
- Jekyll: https://jekyllrb.com/docs/permalinks/ (styles, placeholders, collections),
  https://jekyllrb.com/docs/posts/ (``_posts``, ``_drafts``, categories from folders);
- Hugo: https://gohugo.io/configuration/permalinks/, https://gohugo.io/content-management/urls/,
  https://gohugo.io/content-management/multilingual/ (``contentDir``, ``name.xx.md``);
- Zola: https://www.getzola.org/documentation/content/page/ (``path``, ``slug``, dates in
  file names, ``_index.md`` sections), .../documentation/getting-started/configuration/;
- Pelican: https://docs.getpelican.com/en/latest/settings.html (``ARTICLE_URL``,
  ``PAGE_PATHS``, ``FILENAME_METADATA``, ``SLUGIFY_SOURCE``, ``USE_FOLDER_AS_CATEGORY``).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .html import SAFE_PATH

POST, PAGE, DRAFT, LIST, OUTSIDE = "post", "page", "draft", "list", "outside"
_LANG_SUFFIX = re.compile(r"^(?P<stem>.+)\.(?P<lang>[a-z]{2,3}(?:-[a-zA-Z]{2,4})?)$")
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[-_]")


@dataclass(frozen=True)
class Facts:
    """What a URL rule needs of one file; ``rel`` is relative to the site's root."""

    rel: str  # posix path from the site root
    meta: dict[str, Any]  # normalised front matter keys (see frontmatter.norm)
    title: str
    date: dt.datetime | None  # as parsed (aware)
    date_naive: bool  # the front matter (or name) gave no zone: use the wall time as is


@dataclass(frozen=True)
class Site:
    generator: str  # "Jekyll" | "Hugo" | "Zola" | "Pelican"
    root: Path  # the folder holding the config
    config_file: Path
    base_url: str  # from the site config ("" when it has none)
    languages: tuple[str, ...] = ()  # the site's languages, the default one first
    settings: dict[str, Any] = field(default_factory=dict)

    # -- what each file is ----------------------------------------------------------------

    def kind(self, rel: str, meta: dict[str, Any]) -> str:
        """POST, PAGE (published, not a post), DRAFT, LIST (an index/section page) or
        OUTSIDE (not content of this site: a theme's file, a README at the root)."""
        return _KINDS[self.generator](self, rel, meta)

    def lang(self, rel: str, meta: dict[str, Any]) -> str | None:
        """The language of a file: front matter, then the generator's file or folder rule."""
        for key in ("lang", "language", "locale"):
            value = meta.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().replace("_", "-")
        stem = PurePosixPath(rel).stem
        m = _LANG_SUFFIX.match(stem)
        if m and m.group("lang") in self.languages:
            return m.group("lang")
        for lang, folder in self.settings.get("content_dirs", {}).items():
            if rel.startswith(folder + "/"):
                return lang
        return self.languages[0] if self.languages else None

    # -- the URL --------------------------------------------------------------------------

    def url(self, facts: Facts, slug: str) -> str | None:
        """The URL the generator publishes ``facts`` at, or None to use digest's default."""
        path = _URLS[self.generator](self, facts, slug)
        if path is None:
            return None
        if re.match(r"^https?://", path, re.I):
            return path
        path = re.sub(r"/{2,}", "/", "/" + path.lstrip("/"))
        return self.base_url.rstrip("/") + quote(path, safe=SAFE_PATH)

    def describe(self, content: Path) -> str:
        """One line for ``digest check``: what was found."""
        where = _rel(content, self.root)
        rule = self.settings.get("describe", "")
        return f"{self.generator} site ({_rel(self.config_file, self.root)}), posts in {where}" + (
            f", permalinks {rule}" if rule else ""
        )

    @property
    def template_syntax(self) -> str:
        """Which template code the generator expands in article text."""
        return {"Jekyll": "liquid", "Hugo": "hugo", "Zola": "tera", "Pelican": "pelican"}[
            self.generator
        ]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


# --- detection -------------------------------------------------------------------------


def detect(folder: Path) -> Site | None:
    """The site ``folder`` belongs to, looking there and in its parents up to the
    repository root. None when no generator's config is found."""
    here = folder.resolve()
    for candidate in (here, *here.parents):
        site = _site_at(candidate)
        if site is not None:
            return site
        if (candidate / ".git").exists():
            break
    return None


def _site_at(d: Path) -> Site | None:
    if (d / "_config.yml").is_file() or (d / "_config.yaml").is_file():
        return _jekyll(d)
    for name in ("hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"):
        if (d / name).is_file():
            return _hugo(d, d / name)
    if (d / "config" / "_default").is_dir():
        for name in ("hugo.toml", "config.toml", "hugo.yaml", "config.yaml", "hugo.json"):
            if (d / "config" / "_default" / name).is_file():
                return _hugo(d, d / "config" / "_default" / name)
    for name in ("config.toml", "config.yaml", "config.yml", "config.json"):
        if not (d / name).is_file():
            continue
        data = _load(d / name)
        if _DIGEST_KEYS & set(data):
            continue  # digest's own config beside the content folder
        if name == "config.toml" and "base_url" in data:  # Zola's key; Hugo's is baseURL
            return _zola(d, data)
        if _HUGO_KEYS & set(data):
            return _hugo(d, d / name)
    if (d / "pelicanconf.py").is_file():
        return _pelican(d)
    return None


_DIGEST_KEYS = {"newsletter", "sender", "schedule", "delivery", "smtp", "subscribers", "ledger"}
_HUGO_KEYS = {"baseURL", "baseurl", "languageCode", "theme", "permalinks", "params", "markup",
              "taxonomies", "defaultContentLanguage", "module", "menu", "menus"}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    """A TOML, YAML or JSON config file as a dict ({} when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (OSError, ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    except Exception:  # a YAML error: the site's config, not ours; run without it
        return {}
    return data if isinstance(data, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tz(name: Any) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- Jekyll ----------------------------------------------------------------------------

_JEKYLL_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}


def _jekyll(d: Path) -> Site:
    file = d / "_config.yml" if (d / "_config.yml").is_file() else d / "_config.yaml"
    data = _load(file)
    posts = _dict(_dict(data.get("collections")).get("posts"))
    permalink = posts.get("permalink") or data.get("permalink") or "date"
    permalink = _JEKYLL_STYLES.get(str(permalink), str(permalink))
    base = str(data.get("url") or "").rstrip("/") + str(data.get("baseurl") or "").rstrip("/")
    lang = data.get("lang") or data.get("locale")
    return Site(
        "Jekyll",
        d,
        file,
        base,
        (str(lang).split("_")[0],) if isinstance(lang, str) else (),
        {"permalink": permalink, "tz": _tz(data.get("timezone")), "describe": permalink},
    )


def _jekyll_kind(site: Site, rel: str, meta: dict[str, Any]) -> str:
    parts = rel.split("/")
    if parts[0] in ("_site", "node_modules", "vendor", "_includes", "_layouts"):
        return OUTSIDE
    if "_drafts" in parts[:-1]:
        return DRAFT
    if "_posts" in parts[:-1]:
        return POST
    return PAGE


def _jekyll_url(site: Site, f: Facts, slug: str) -> str | None:
    parts = f.rel.split("/")
    folders = parts[: parts.index("_posts")] if "_posts" in parts else []
    categories = [c for c in folders if c and not c.startswith("_")]
    raw = f.meta.get("categories") or f.meta.get("category") or []
    if isinstance(raw, str):
        raw = raw.split()
    for c in raw if isinstance(raw, list) else []:
        if str(c) not in categories:
            categories.append(str(c))
    pattern = f.meta.get("permalink")
    pattern = (
        str(pattern) if isinstance(pattern, str) and pattern.strip() else site.settings["permalink"]
    )
    when = _local(f, site.settings.get("tz"))
    stem = PurePosixPath(f.rel).stem
    given = f.meta.get("slug") if isinstance(f.meta.get("slug"), str) else None
    title = given or _DATE_PREFIX.sub("", stem)
    values = {
        "categories": "/".join(_jekyll_slug(c) for c in categories),
        "title": title,
        "slug": _jekyll_slug(title),
        "name": _jekyll_slug(stem),
        "output_ext": ".html",
        "path": PurePosixPath(f.rel).with_suffix("").as_posix(),
        "collection": "posts",
    }
    if when is not None:
        values |= _date_tokens(when)
    return _fill(pattern, values)


def _jekyll_slug(text: str) -> str:
    # Jekyll's slugify, "default" mode: lower-case, runs of non-alphanumerics become "-".
    return re.sub(r"[^\w]+|_+", "-", text.lower(), flags=re.UNICODE).strip("-")


# --- Hugo ------------------------------------------------------------------------------


def _hugo(d: Path, file: Path) -> Site:
    data = _load(file)
    folder = file.parent
    if folder.name == "_default":  # a config folder: languages.toml / languages.xx.toml too
        for extra in sorted(folder.glob("*.toml")) + sorted(folder.glob("*.yaml")):
            if extra == file:
                continue
            key, _, lang = extra.stem.partition(".")
            more = _load(extra)
            if key == "languages" and lang:
                data.setdefault("languages", {}).setdefault(lang, {}).update(more)
            elif key in ("permalinks", "languages", "params"):
                data.setdefault(key, {}).update(more)
    default_lang = str(data.get("defaultContentLanguage") or "en").lower()
    langs = _dict(data.get("languages"))
    content_dir = str(data.get("contentDir") or "content").strip("/")
    content_dirs: dict[str, str] = {}
    for lang, conf in langs.items():
        if isinstance(conf, dict) and conf.get("contentDir"):
            content_dirs[str(lang).lower()] = str(conf["contentDir"]).strip("/")
    ordered = [default_lang, *sorted(k.lower() for k in langs if k.lower() != default_lang)]
    permalinks = _dict(data.get("permalinks"))
    permalinks = {**permalinks, **_dict(permalinks.get("page"))}  # Hugo 0.112+: [permalinks.page]
    params = _dict(data.get("params"))
    main = params.get("mainSections") or params.get("mainsections") or data.get("mainSections")
    settings = {
        "content_dir": content_dir,
        "content_dirs": content_dirs,
        "permalinks": {k: v for k, v in permalinks.items() if isinstance(v, str)},
        "ugly": data.get("uglyURLs") or data.get("uglyurls") or False,
        "lower": not data.get("disablePathToLower", False),
        "accents": bool(data.get("removePathAccents", False)),
        "in_subdir": bool(data.get("defaultContentLanguageInSubdir", False)),
        "main_sections": [str(s) for s in main] if isinstance(main, list) else [],
        "describe": ", ".join(f"{k}: {v}" for k, v in permalinks.items() if isinstance(v, str)),
    }
    return Site(
        "Hugo", d, file, str(data.get("baseURL") or "").rstrip("/"), tuple(ordered), settings
    )


def _hugo_split(site: Site, rel: str) -> tuple[str | None, list[str]]:
    """(language, path parts below the content folder) or (None, []) outside it."""
    for lang, folder in site.settings["content_dirs"].items():
        if rel.startswith(folder + "/"):
            return lang, rel[len(folder) + 1 :].split("/")
    base = site.settings["content_dir"]
    if rel.startswith(base + "/"):
        return None, rel[len(base) + 1 :].split("/")
    return None, []


def _hugo_kind(site: Site, rel: str, meta: dict[str, Any]) -> str:
    _lang, parts = _hugo_split(site, rel)
    if not parts:
        return OUTSIDE
    name = parts[-1]
    if name.startswith("_index.") or (len(parts) == 1 and name.startswith("index.")):
        return LIST
    if meta.get("headless") is True or meta.get("draft") is True:
        return DRAFT if meta.get("draft") is True else PAGE
    main = site.settings["main_sections"]
    section = parts[0] if len(parts) > 1 else ""
    if not section:
        return PAGE  # a page at the top of the content folder (about.md)
    if main and section not in main:
        return PAGE
    if not main and section in ("pages", "page", "about", "docs", "doc", "documentation"):
        return PAGE
    return POST


def _hugo_url(site: Site, f: Facts, slug: str) -> str | None:
    s = site.settings
    lang, parts = _hugo_split(site, f.rel)
    lang = site.lang(f.rel, f.meta) or lang
    prefix = ""
    if lang and site.languages and (lang != site.languages[0] or s["in_subdir"]):
        prefix = "/" + lang
    url = f.meta.get("url")
    if isinstance(url, str) and url.strip():
        return prefix + "/" + url.strip().lstrip("/") if not url.startswith("http") else url
    section = parts[0] if len(parts) > 1 else ""
    bundle = parts[-1].startswith("index.") and len(parts) > 1
    stem = parts[-2] if bundle else PurePosixPath(parts[-1]).stem
    m = _LANG_SUFFIX.match(stem)
    if m and m.group("lang") in site.languages:
        stem = m.group("stem")
    given = f.meta.get("slug") if isinstance(f.meta.get("slug"), str) else None
    pattern = s["permalinks"].get(section)
    ugly = s["ugly"].get(section, False) if isinstance(s["ugly"], dict) else bool(s["ugly"])
    if pattern:
        when = _local(f, None)
        values = {
            "title": _urlize(f.title, s),
            "slug": _urlize(given, s) if given else _urlize(f.title, s),
            "slugorfilename": _urlize(given, s) if given else stem,
            "slugorcontentbasename": _urlize(given, s) if given else stem,
            "filename": stem,
            "contentbasename": stem,
            "section": section,
            "sections": "/".join(parts[:-2] if bundle else parts[:-1]),
        }
        if when is not None:
            values |= _date_tokens(when)
        path = _fill(pattern, values)
    else:
        folders = parts[:-2] if bundle else parts[:-1]
        path = "/".join([*folders, _urlize(given, s) if given else stem])
    if s["lower"]:
        path = path.lower()
    path = path.rstrip("/")
    path = path + ".html" if ugly else path + "/"
    return prefix + "/" + path.lstrip("/")


def _urlize(text: str, s: dict[str, Any]) -> str:
    """Hugo's urlize (``paths.Sanitize``, then accents and case): letters, digits, marks
    and ``. _ ~ - + # @ / \\`` kept; a run of spaces becomes one "-" only between kept
    characters (never leading or trailing); other characters dropped."""
    out: list[str] = []
    pending = was_hyphen = False
    for c in text:
        if c.isalnum() or unicodedata.category(c).startswith("M") or c in "._~-+#@/\\":
            was_hyphen = c == "-"
            if pending and not was_hyphen:
                out.append("-")
            pending = False
            out.append(c)
        elif out and not was_hyphen and c.isspace():
            pending = True
    path = "".join(out)
    if s.get("accents"):
        path = "".join(
            c for c in unicodedata.normalize("NFD", path) if unicodedata.category(c) != "Mn"
        )
    return path.lower() if s.get("lower", True) else path


# --- Zola ------------------------------------------------------------------------------


def _zola(d: Path, data: dict[str, Any]) -> Site:
    langs = _dict(data.get("languages"))
    default = str(data.get("default_language") or "en")
    slugify = _dict(data.get("slugify"))
    return Site(
        "Zola",
        d,
        d / "config.toml",
        str(data.get("base_url") or "").rstrip("/"),
        (default, *sorted(str(k) for k in langs if k != default)),
        {"paths": str(slugify.get("paths", "on")), "describe": "path, or section/slug"},
    )


def _zola_kind(site: Site, rel: str, meta: dict[str, Any]) -> str:
    parts = rel.split("/")
    if parts[0] != "content":
        return OUTSIDE
    if parts[-1].startswith("_index."):
        return LIST
    if meta.get("draft") is True:
        return DRAFT
    if meta.get("redirectto") or (
        isinstance(meta.get("template"), str) and meta.get("template") != "page.html"
    ):
        return PAGE  # a page with its own template: a redirect, a listing, a landing page
    return POST


def _zola_url(site: Site, f: Facts, slug: str) -> str | None:
    lang = site.lang(f.rel, f.meta)
    prefix = "/" + lang if lang and site.languages and lang != site.languages[0] else ""
    path = f.meta.get("path")
    if isinstance(path, str) and path.strip("/ "):
        return prefix + "/" + path.strip().strip("/") + "/"
    parts = f.rel.split("/")[1:]
    bundle = parts[-1].startswith("index.") and len(parts) > 1
    stem = parts[-2] if bundle else PurePosixPath(parts[-1]).stem
    m = _LANG_SUFFIX.match(stem)
    if m and m.group("lang") in site.languages:
        stem = m.group("stem")
    stem = _DATE_PREFIX.sub("", stem)
    given = f.meta.get("slug") if isinstance(f.meta.get("slug"), str) else None
    name = _zola_slug(given or stem, site.settings["paths"])
    folders = [
        _zola_slug(p, site.settings["paths"]) for p in (parts[:-2] if bundle else parts[:-1])
    ]
    return prefix + "/" + "/".join([*folders, name]) + "/"


def _zola_slug(text: str, mode: str) -> str:
    if mode == "off":
        return text
    if mode == "safe":  # only what breaks a path
        return re.sub(r'[<>:"|?*#\\/\s]+', "-", text).strip("-")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


# --- Pelican ---------------------------------------------------------------------------


def _pelican(d: Path) -> Site:
    conf = _assignments(d / "pelicanconf.py")
    publish = _assignments(d / "publishconf.py") if (d / "publishconf.py").is_file() else {}
    siteurl = str(publish.get("SITEURL") or conf.get("SITEURL") or "").rstrip("/")
    settings = {
        "path": str(conf.get("PATH") or "content").strip("/"),
        "article_url": str(conf.get("ARTICLE_URL") or "{slug}.html"),
        "lang_url": str(conf.get("ARTICLE_LANG_URL") or "{slug}-{lang}.html"),
        "page_paths": [str(p).strip("/") for p in conf.get("PAGE_PATHS") or ["pages"]],
        "excludes": [str(p).strip("/") for p in conf.get("ARTICLE_EXCLUDES") or []],
        "static": [str(p).strip("/") for p in conf.get("STATIC_PATHS") or ["images"]],
        "filename_meta": str(conf.get("FILENAME_METADATA") or r"(?P<date>\d{4}-\d{2}-\d{2}).*"),
        "slug_source": str(conf.get("SLUGIFY_SOURCE") or "title"),
        "folder_category": conf.get("USE_FOLDER_AS_CATEGORY", True) is not False,
        "default_category": str(conf.get("DEFAULT_CATEGORY") or "misc"),
        "describe": str(conf.get("ARTICLE_URL") or "{slug}.html"),
    }
    lang = str(conf.get("DEFAULT_LANG") or "en")
    return Site("Pelican", d, d / "pelicanconf.py", siteurl, (lang,), settings)


def _assignments(path: Path) -> dict[str, Any]:
    """``NAME = literal`` lines of a Pelican settings file, read, never executed."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper():
                try:
                    out[target.id] = ast.literal_eval(node.value)
                except (ValueError, SyntaxError, TypeError):
                    continue  # computed: not ours to evaluate
    return out


def _pelican_kind(site: Site, rel: str, meta: dict[str, Any]) -> str:
    s = site.settings
    base = s["path"]
    if not rel.startswith(base + "/"):
        return OUTSIDE
    inner = rel[len(base) + 1 :]
    if any(inner == p or inner.startswith(p + "/") for p in s["page_paths"]):
        return PAGE
    if any(inner.startswith(p + "/") for p in s["static"] + s["excludes"]):
        return OUTSIDE
    status = meta.get("status")
    if isinstance(status, str) and status.strip().lower() in ("draft", "hidden", "skip"):
        return DRAFT
    return POST


def _pelican_url(site: Site, f: Facts, slug: str) -> str | None:
    s = site.settings
    stem = PurePosixPath(f.rel).stem
    found: dict[str, str] = {}
    try:
        m = re.match(s["filename_meta"], stem)
        found = {k: v for k, v in (m.groupdict() if m else {}).items() if v}
    except re.error:
        pass
    given = f.meta.get("slug") if isinstance(f.meta.get("slug"), str) else None
    source = stem if s["slug_source"] == "basename" else f.title
    article_slug = given or found.get("slug") or _pelican_slug(source)
    category = f.meta.get("category")
    if not isinstance(category, str) or not category.strip():
        folder = PurePosixPath(f.rel).parent.name
        category = folder if s["folder_category"] and folder != s["path"] else s["default_category"]
    lang = site.lang(f.rel, f.meta) or site.languages[0]
    pattern = s["article_url"] if lang == site.languages[0] else s["lang_url"]
    when = _local(f, None)
    values = {"slug": article_slug, "category": _pelican_slug(category), "lang": lang}
    author = f.meta.get("author")
    values["author"] = _pelican_slug(author) if isinstance(author, str) else ""
    try:
        return "/" + pattern.format(date=when, **values).lstrip("/")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):  # no date: a page
        return None


def _pelican_slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", ascii_text).strip().lower())


# --- shared ----------------------------------------------------------------------------


def _local(f: Facts, tz: dt.tzinfo | None) -> dt.datetime | None:
    """The date the URL shows: as written when it had no zone; else in ``tz`` if the
    site sets one (Jekyll's ``timezone``), else in its own offset."""
    if f.date is None:
        return None
    if f.date_naive or tz is None:
        return f.date
    return f.date.astimezone(tz)


def _date_tokens(when: dt.datetime) -> dict[str, str]:
    return {
        "year": f"{when.year:04d}",
        "month": f"{when.month:02d}",
        "i_month": str(when.month),
        "day": f"{when.day:02d}",
        "i_day": str(when.day),
        "short_year": f"{when.year % 100:02d}",
        "y_day": f"{when.timetuple().tm_yday:03d}",
        "yearday": str(when.timetuple().tm_yday),
        "hour": f"{when.hour:02d}",
        "minute": f"{when.minute:02d}",
        "second": f"{when.second:02d}",
        "week": f"{when.isocalendar().week:02d}",
        "short_day": when.strftime("%a"),
        "monthname": when.strftime("%B").lower(),
        "weekday": str(when.isoweekday() % 7),
        "weekdayname": when.strftime("%A").lower(),
    }


_TOKEN = re.compile(r":([a-z_]+)")


def _fill(pattern: str, values: dict[str, str]) -> str:
    """``pattern`` with ``:name`` placeholders replaced (unknown ones kept as written)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        # Longest known name first: ":title:output_ext" has two placeholders.
        for end in range(len(name), 0, -1):
            if name[:end] in values:
                return values[name[:end]] + name[end:]
        return m.group(0)

    return _TOKEN.sub(sub, pattern)


_KINDS = {"Jekyll": _jekyll_kind, "Hugo": _hugo_kind, "Zola": _zola_kind, "Pelican": _pelican_kind}
_URLS = {"Jekyll": _jekyll_url, "Hugo": _hugo_url, "Zola": _zola_url, "Pelican": _pelican_url}
