"""Evaluation: summaries of real blogs, flagged by the rubric in NOTES.md.

Takes content folders of real sites (checked out outside the repository: their text is
not ours to commit), loads each with digest's own loader (``content.load``, no window:
every publishable post) and summarises every article with ``summarize`` at the default
budget. Nothing is stripped or fixed here: the script measures what ``summarize`` gives.

Each summary is checked against the rubric (see ``CHECKS``) and the script prints the
rate per defect, per site and over all, plus, with ``--show N``, N flagged summaries per
defect (to read them as a reader would) and, with ``--sample N``, N random summaries
next to the post's opening (to read unflagged ones too).

    .venv/bin/python bench/summaries.py /work/sites/jekyll/docs/_posts \\
        /work/sites/go-website/_content/blog ...
    .venv/bin/python bench/summaries.py --show 3 --sample 30 SITE_ROOT...
    .venv/bin/python bench/summaries.py --json out.json SITE_ROOT...

A folder may carry a label: ``rust=/work/sites/blog.rust-lang.org/content``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest import config, content
from digest.model import Article, Summary
from digest.summarize import plain, summarize
from digest.text import count_words

BUDGET = 60  # content.summary_words' default
SHORT = 10  # a summary under this many words is "too short" if the post has a longer lede
LEDE = 25  # ... i.e. if a paragraph of the post has at least this many words
TAGLINE_DAYS = 14  # a sentence repeated over a longer span is a site's boilerplate
NOW = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # every post is in the past

# --- the rubric ----------------------------------------------------------------------

_TEMPLATE = re.compile(
    r"\{%.*?%\}|\{\{.*?\}\}|\{\{|\}\}|\{%|%\}|\{(?:filename|static|attach)\}", re.S
)
# HTML by its tag names: "<enter>" or "<addr>" in prose is text, not markup.
_TAGS = "a|b|i|p|em|strong|code|pre|div|span|img|br|hr|ul|ol|li|h[1-6]|table|t[rdh]|figure|"
_TAGS += "figcaption|iframe|script|style|sup|sub|small|blockquote|video|source|details|summary"
_MARKUP = re.compile(
    rf"</?(?:{_TAGS})\b[^>]*>|<!--|\*\*|`|\]\(|\]\[|&[A-Za-z]+;|&#\d+;|^#+ |"
    r"\[[0-9a-f]{7,40}\]",  # a commit id in brackets, as changelogs link them
    re.I,
)
# A link's words left behind without it: "See for details.", "The index is."
# ("Unicode is." or "the genre I'm worst at, but" is prose: only "see for", "via.".)
_RESIDUE = re.compile(r"\b(?:see|visit)\s+(?:for|to)\b|\bvia[.,]", re.I)
_FOOTNOTE = re.compile(r"\[\^[^\]]*\]")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_CUT_URL = re.compile(r"\b(?:https?://|www\.)\S*(?:…|\.\.\.)$", re.I)
_END = re.compile(r"[.!?。！？…][\"'”’»)\]」』）]*$")
_INNER_END = re.compile(r"[.!?。！？][\"'”’»)\]」』）]*\s+[\"'“‘«(]?[A-Z\u00c0-\u024f]")
_GLUED = re.compile(r"\w: [A-Z][^.!?,;]*\w: |:\s*$")
# Ledes that only announce: they say that something happened, not what.
_ANNOUNCE = re.compile(
    r"(?:has|have) been (?:released|published)|(?:happy|pleased|thrilled|excited|proud)"
    r" to (?:announce|share|release)|(?:announc\w+|published) (?:a )?new (?:version|"
    r"point release|release)|new (?:point )?release of|is (?:now )?(?:out|available)|"
    r"(?:see|check) (?:the \w+ )?below|below for (?:details|more)|pre-release is ready|"
    r"is a (?:bugfix|bug-fix|patch|security|maintenance) release|"
    # A release's header line ("2015.03.31, Version 0.12.2 (Stable).") names it, no more.
    r"^\W*(?:\d{4}[-./]\d{1,2}[-./]\d{1,2},?\s*)?(?:[\w.]+\s+){0,2}(?:version\s*|v)\d+"
    r"(?:\.\d+)+,?\s*(?:'\w+'\s*)?(?:\([^()]{0,30}\))?(?:,?\s*(?:prepared by\s*)?@[\w-]+)*"
    r"\W*$",
    re.I,
)
_BLOCK_START = re.compile(r"^\s*(?:#|[-*+] |\d+[.)] |>|\||<|\{|!\[|\[\^?\w+\]:|```|~~~)")


def _paragraphs(body: str) -> list[str]:
    """Top-level prose paragraphs of a Markdown body, roughly (code fences skipped)."""
    out, fence = [], False
    for block in re.split(r"\n\s*\n", body):
        lines = block.strip("\n")
        if lines.lstrip().startswith(("```", "~~~")):
            fence = not fence if lines.count("```") % 2 or lines.count("~~~") % 2 else fence
            continue
        if fence or not lines.strip() or _BLOCK_START.match(lines):
            continue
        out.append(" ".join(lines.split()))
    return out


def _prose(paragraph: str) -> int:
    """Words of prose in a paragraph: 0 for a list of links ("Windows Installer: https://…
    \\ macOS Installer: https://…", a URL for every few words), long but no lede."""
    urls = len(_URL.findall(paragraph))
    words = count_words(_URL.sub("", paragraph))
    return 0 if urls >= 3 and 5 * urls >= words else words


def _has_lede(a: Article) -> bool:
    """A paragraph or a first-level list item with ``LEDE`` words of prose."""
    items = [m.group(1) for m in _ITEM.finditer(a.body[:20000])][:40]
    return any(_prose(p) >= LEDE for p in [*_paragraphs(a.body)[:12], *items])


_ITEM = re.compile(r"^[-*+] +(.+(?:\n {2,}\S.*)*)", re.M)


def _title_like(summary: str, title: str) -> bool:
    words = {w.lower() for w in re.findall(r"\w+", summary)}
    tw = {w.lower() for w in re.findall(r"\w+", title)}
    return bool(words) and len(words & tw) >= 0.6 * len(words)


@dataclass
class Case:
    site: str
    article: Article
    summary: Summary
    boilerplate: set[str] = field(default_factory=set)  # this site's repeated sentences

    @property
    def text(self) -> str:
        return self.summary.text


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。！？])\s+", text) if s]


def _fragments(text: str) -> bool:
    """Three sentences in a row of at most two words each, two of them lower-case: list
    labels ("crypto. events. tty."), not terse prose ("Hi. Yes. Sorry.")."""
    run: list[str] = []
    for s in _sentences(text):
        run = [*run, s][-3:] if count_words(s) <= 2 else []
        if len(run) == 3 and sum(x[:1].islower() for x in run) >= 2:
            return True
    return False


def check_boilerplate(c: Case) -> bool:
    """Only announces: it announces (or says the site's repeats) and little else.

    A short summary with nothing announcing ("Highlight: deps — update npm to 6.13.4.")
    says what is new; whether it is too short is ``too_short``'s question.
    """
    if not c.text:
        return False
    sentences = _sentences(c.text)
    informative = [s for s in sentences if not _ANNOUNCE.search(s) and s not in c.boilerplate]
    # "We're pleased to announce that <sponsor> renewed for three years.": what follows
    # the announcing words is the news.
    news = [
        s[m.end() :] for s in sentences if s not in c.boilerplate and (m := _ANNOUNCE.search(s))
    ]
    said = count_words(" ".join(informative + news))
    return len(informative) < len(sentences) and said < 8


def check_stub(c: Case) -> bool:
    """A stub front-matter summary shown although the post opens with a real lede."""
    fm = plain(c.article.summary) if c.article.summary else ""
    if not fm or fm not in c.text:
        return False
    stub = count_words(fm) < SHORT or _title_like(fm, c.article.title)
    return stub and count_words(c.text) < 2 * SHORT and _has_lede(c.article)


CHECKS: dict[str, tuple[str, Callable[[Case], bool]]] = {
    "template": (
        "template code ({% %}, {{ }}, {{< >}}, {filename})",
        lambda c: bool(_TEMPLATE.search(c.text)),
    ),
    "markup": (
        "markup (<tag>, **, `code`, [text](url), entities)",
        lambda c: bool(_MARKUP.search(c.text)),
    ),
    "footnote": ("footnote marker [^1]", lambda c: bool(_FOOTNOTE.search(c.text))),
    "bare_url": ("bare URL", lambda c: bool(_URL.search(c.text))),
    "cut_url": ("URL cut short", lambda c: bool(_CUT_URL.search(c.text))),
    "no_end": (
        "does not end at a sentence end",
        lambda c: bool(c.text) and not _END.search(c.text),
    ),
    "needless_ellipsis": (
        'ends in "…" although whole sentences fit',
        lambda c: c.text.endswith("…") and bool(_INNER_END.search(c.text)),
    ),
    "too_short": (
        f"empty, or under {SHORT} words while the post has a {LEDE}+ word paragraph or item",
        lambda c: not c.text or (count_words(c.text) < SHORT and _has_lede(c.article)),
    ),
    "fragments": (
        'labels read as sentences ("crypto. events. tty.")',
        lambda c: _fragments(c.text),
    ),
    "residue": (
        'a link\'s words without it ("See for details.")',
        lambda c: bool(_RESIDUE.search(c.text)),
    ),
    "boilerplate": ("only announces (boilerplate lede)", check_boilerplate),
    "glued_list": (
        'list glued to its intro ("...: Foo: Bar")',
        lambda c: bool(_GLUED.search(c.text)),
    ),
    "stub_front_matter": ("stub front-matter summary used", check_stub),
    "standfirst": (
        "a standfirst that repeats the title or the summary, or has markup/URL",
        lambda c: (
            bool(c.summary.standfirst)
            and (
                _title_like(c.summary.standfirst, c.article.title)
                or c.summary.standfirst.casefold() in c.text.casefold()
                or bool(_MARKUP.search(c.summary.standfirst) or _URL.search(c.summary.standfirst))
            )
        ),
    ),
    "key_point": (
        "a key point with markup/URL or not ending at a sentence end",
        lambda c: any(
            _MARKUP.search(k.text)
            or _URL.search(k.text)
            or _FOOTNOTE.search(k.text)
            or not _END.search(k.text)
            or k.text.endswith("…")
            for k in c.summary.key_points
        ),
    ),
}


# --- running -------------------------------------------------------------------------


def load(folder: Path) -> list[Article]:
    with tempfile.TemporaryDirectory() as tmp:
        raw = {
            "newsletter": {"base_url": "https://example.com"},
            "content": {"folder": str(folder)},
        }
        cfg = config.parse(raw, source=Path(tmp) / "config.toml")
        col = content.load(cfg, now=NOW)
    # Redirect stubs and empty pages: nothing to summarise, nothing to judge.
    return [a for a in col.articles if count_words(plain(a.body, enough=50)) >= 20]


def run(folders: list[tuple[str, Path]], limit: int | None, seed: int) -> list[Case]:
    cases: list[Case] = []
    for label, folder in folders:
        t0 = time.perf_counter()
        articles = load(folder)
        if limit and len(articles) > limit:
            articles = random.Random(seed).sample(articles, limit)
        site = [Case(label, a, summarize(a, words=BUDGET)) for a in articles]
        repeated = _repeated(site)
        for c in site:
            c.boilerplate = repeated
        cases += site
        took = time.perf_counter() - t0
        print(f"{label}: {len(site)} posts ({took:.1f} s)", file=sys.stderr)
    return cases


def _repeated(site: list[Case]) -> set[str]:
    """A site's boilerplate: sentences of 4+ words in 3+ summaries over more than
    ``TAGLINE_DAYS``. A tagline repeats over months; the same fix told in the posts of
    three release lines published together is the news of each."""
    dates: dict[str, list[dt.datetime]] = collections.defaultdict(list)
    for c in site:
        for s in set(_sentences(c.text)):
            if count_words(s) >= 4:
                dates[s].append(c.article.date)
    return {
        s
        for s, when in dates.items()
        if len(when) >= 3 and max(when) - min(when) > dt.timedelta(days=TAGLINE_DAYS)
    }


def flags(c: Case) -> list[str]:
    return [name for name, (_doc, check) in CHECKS.items() if check(c)]


def report(cases: list[Case]) -> dict[str, Any]:
    sites = sorted({c.site for c in cases})
    per: dict[str, collections.Counter[str]] = {s: collections.Counter() for s in sites}
    total: collections.Counter[str] = collections.Counter()
    n = collections.Counter(c.site for c in cases)
    flagged = collections.Counter[str]()
    for c in cases:
        fs = flags(c)
        per[c.site].update(fs)
        total.update(fs)
        if fs:
            flagged[c.site] += 1
    return {
        "posts": dict(n),
        "total_posts": len(cases),
        "per_site": {s: dict(per[s]) for s in sites},
        "total": dict(total),
        "flagged": dict(flagged),
        "total_flagged": sum(flagged.values()),
    }


def table(r: dict[str, Any]) -> str:
    sites = sorted(r["posts"])
    head = "| defect | " + " | ".join(sites) + " | all |"
    rows = [head, "| --- |" + " ---: |" * (len(sites) + 1)]

    def pct(k: int, n: int) -> str:
        return f"{100 * k / n:.1f}%" if n else "-"

    rows.append(
        "| posts | " + " | ".join(str(r["posts"][s]) for s in sites) + f" | {r['total_posts']} |"
    )
    for name, (doc, _check) in CHECKS.items():
        cells = [pct(r["per_site"][s].get(name, 0), r["posts"][s]) for s in sites]
        rows.append(
            f"| {doc} | "
            + " | ".join(cells)
            + f" | {pct(r['total'].get(name, 0), r['total_posts'])} |"
        )
    cells = [pct(r["flagged"].get(s, 0), r["posts"][s]) for s in sites]
    rows.append(
        "| **flagged for anything** | "
        + " | ".join(cells)
        + f" | **{pct(r['total_flagged'], r['total_posts'])}** |"
    )
    return "\n".join(rows)


def opening(a: Article, words: int = 80) -> str:
    return " ".join(" ".join(_paragraphs(a.body)[:3]).split()[:words])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="content folders, optionally LABEL=PATH")
    ap.add_argument("--limit", type=int, help="at most this many random posts per site")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--show", type=int, default=0, help="print N flagged summaries per defect")
    ap.add_argument("--sample", type=int, default=0, help="print N random summaries")
    ap.add_argument("--json", type=Path, help="write the counts as JSON")
    args = ap.parse_args(argv)
    folders = []
    for f in args.folders:
        label, _, path = f.rpartition("=")
        folders.append((label or Path(path).name, Path(path)))
    cases = run(folders, args.limit, args.seed)
    r = report(cases)
    print(table(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    rng = random.Random(args.seed)
    if args.show:
        for name in CHECKS:
            hits = [c for c in cases if CHECKS[name][1](c)]
            for c in rng.sample(hits, min(args.show, len(hits))):
                print(f"\n[{name}] {c.site} {c.article.path.name}\n  {c.text!r}")
    for c in rng.sample(cases, min(args.sample, len(cases))):
        print(f"\n--- {c.site} {c.article.path.name} {flags(c)}\n  TITLE: {c.article.title}")
        print(f"  SUMMARY: {c.text}")
        for k in c.summary.key_points:
            print(f"  KEY: {k.lead}: {k.text}")
        print(f"  OPENING: {opening(c.article)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
