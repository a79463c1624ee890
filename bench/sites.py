"""How digest reads real blogs: links, languages and "bad files" against what each site
publishes.

    python bench/sites.py TRUTH.json [TRUTH.json ...] [--language en] [--show 5]

Each TRUTH.json describes one site repository checked out outside this repository: its
``root``, ``content_folder`` and ``posts`` (``path`` relative to the root, the ``url``
the site publishes, how that is known in ``verified``/``url_source``, ``lang``,
``is_post``, ``translation_of``). digest is run over the content folder exactly as a user
would (a config naming the folder, nothing else), and this reports per site:

- links: articles whose "Read more" URL equals the published one (all posts, and those
  whose URL the site itself confirms by a cross-link, feed or redirect: ``verified``);
- wrong language: articles digest keeps in another language than the newsletter's, and
  translations of one article kept twice;
- false bad files: files digest reports as errors although the site publishes them, or
  that are not posts at all;
- template code: articles whose HTML still shows ``{% %}``, ``{{< >}}``, ``{{ }}``.

Nothing here is timed; it measures correctness on content digest was not written for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from digest import config, content

TEMPLATE_CODE = re.compile(r"\{%.*?%\}|\{\{<.*?>\}\}|\{\{%.*?%\}\}|\{\{[^{}]*\}\}", re.S)
# Code samples may show template syntax on purpose ({% raw %}, Rust's {{closure}}).
CODE = re.compile(r"<pre\b.*?</pre>|<code\b.*?</code>", re.S)
# What a user of each custom (not detected) site writes in config.toml, as README shows.
USER_CONFIG = {
    "go-website": {
        "content": {"url_pattern": "https://go.dev/blog/{stem}", "template_code": "go"},
    },
    "nodejs.org": {
        "content": {"url_pattern": "https://nodejs.org/en/blog/{category|uncategorized}/{stem}"}
    },
}
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _norm(url: str) -> str:
    return url.rstrip("/").lower()


def evaluate(truth_file: Path, language: str, show: int) -> dict[str, object]:
    truth = json.loads(truth_file.read_text())
    root = Path(truth["root"])
    folder = root / truth["content_folder"]
    with tempfile.TemporaryDirectory() as tmp:
        extra = USER_CONFIG.get(truth_file.stem, {})
        cfg = config.parse(
            {
                "content": {"folder": str(folder), **extra.get("content", {})},
                "newsletter": {"language": language},
                "schedule": {"timezone": "UTC"},
            },
            source=Path(tmp) / "config.toml",
        )
        col = content.load(cfg, now=FAR_FUTURE)
    by_path = {str(a.path.resolve().relative_to(root.resolve())): a for a in col.articles}
    posts = [p for p in truth["posts"] if p.get("is_post", True)]
    wanted = [p for p in posts if not language or (p.get("lang") or language) == language]
    right = wrong = missing = 0
    verified_right = verified = 0
    examples: list[str] = []
    for p in wanted:
        art = by_path.get(p["path"])
        if art is None:
            missing += 1
            if len(examples) < show:
                examples.append(f"missing: {p['path']}")
            continue
        ok = unquote(art.url) == unquote(p["url"])  # an IRI and its URI are one link
        right += ok
        wrong += not ok
        if p.get("verified") == "exact":
            verified += 1
            verified_right += ok
        if not ok and len(examples) < show:
            examples.append(f"url: {p['path']}: digest {art.url} != site {p['url']}")
    langs = {p["path"]: p.get("lang") for p in posts}
    wrong_language = [
        path
        for path, art in by_path.items()
        if language and (langs.get(path) or art.lang or language).split("-")[0] != language
    ]
    translations = {p["path"]: p.get("translation_of") for p in posts if p.get("translation_of")}
    twice = [path for path, of in translations.items() if path in by_path and of in by_path]
    non_posts = set(truth.get("non_posts", []))
    bad = [p for p in col.problems if p.level == "error"]
    false_bad = [
        str(p) for p in bad if any(str(p.path).endswith(n) for n in non_posts | set(langs))
    ]
    template = [a.path.name for a in col.articles if TEMPLATE_CODE.search(CODE.sub("", a.html))]
    return {
        "site": truth_file.stem,
        "generator": truth.get("generator"),
        "found": (col.site or "no site config") + (f"; config {extra}" if extra else ""),
        "posts": len(wanted),
        "links right": right,
        "links wrong": wrong,
        "missing": missing,
        "verified right": f"{verified_right}/{verified}",
        "wrong language": len(wrong_language) + len(twice),
        "false bad files": len(false_bad),
        "errors": len(bad),
        "template code": len(template),
        "pages skipped": col.pages,
        "examples": examples + false_bad[:show] + [f"template: {t}" for t in template[:show]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("truth", nargs="+", type=Path)
    ap.add_argument("--language", default="en", help="the newsletter's language ('' for all)")
    ap.add_argument("--show", type=int, default=5, help="examples of each kind of miss")
    args = ap.parse_args()
    rows = [evaluate(t, args.language, args.show) for t in args.truth]
    keys = [k for k in rows[0] if k not in ("examples", "found")]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    for r in rows:
        print(f"\n{r['site']}: {r['found']}")
        for e in r["examples"]:  # type: ignore[attr-defined]
            print(f"  {e}")


if __name__ == "__main__":
    main()
