"""The build path every command shares: config -> content -> issue -> render.

``build``, ``check``, ``preview``, ``send``, ``export``, the scheduler and the web preview
all start from ``prepare()`` (or ``check()``, which also reads every content file); the
edges (clock, files) are passed in. Sending what was prepared is ``sending``'s job.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import content, i18n, render
from . import issue as issues
from .config import Config, first_run_values
from .content.cache import Cache
from .errors import ConfigError, DigestError, NothingToSend
from .files import write_atomic
from .inspect import inspect
from .model import GENERIC_TAGS, Collection, Issue, Problem, Recipient, RenderedEmail, Window

if TYPE_CHECKING:
    from .ledger import Frozen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Which issue a command acts on: the next one (default), a given week, or the latest."""

    week: str | None = None
    latest: bool = False
    due: bool = False  # the issue whose send time has most recently passed


@dataclass(frozen=True)
class Built:
    issue: Issue
    rendered: RenderedEmail
    collection: Collection
    seconds: float
    findings: tuple[Problem, ...] = field(default=())
    notice: str | None = None  # e.g. the issue was sent already, and where new posts go


def choose_window(
    cfg: Config,
    now: dt.datetime,
    sel: Selection,
    dates: Sequence[dt.datetime] = (),
    past: Sequence[Frozen] | None = None,
) -> Window:
    """The window of the issue ``sel`` names, placed after the issues already sent."""
    past = history(cfg) if past is None else past
    return place(_scheduled_window(cfg, now, sel, dates), past)


def _scheduled_window(
    cfg: Config, now: dt.datetime, sel: Selection, dates: Sequence[dt.datetime]
) -> Window:
    if sel.week:
        return issues.window_for_week(cfg, sel.week)
    if sel.due:
        return issues.due_window(cfg, now)
    if sel.latest:
        # The dates come sorted (content.load): the newest up to now. content.load's
        # are none after now, and its last is found without sorting them all.
        past = len(dates)
        if past and dates[-1] > now:
            past = bisect.bisect_right(dates, now)
        if not past:
            raise NothingToSend("nothing to send: no published articles in the content folder")
        return issues.window_containing(cfg, dates[past - 1])
    return issues.next_window(cfg, now)


def history(cfg: Config) -> list[Frozen]:
    """The issues the ledger has frozen (read-only; none without a ledger file)."""
    path = Path(cfg.ledger.path)
    if not path.exists():
        return []
    import sqlite3  # late (issue 14): a build without a ledger never opens one

    from .ledger import Ledger

    try:
        with Ledger(path, readonly=True) as ledger:
            return ledger.history()
    except (DigestError, sqlite3.Error) as exc:
        log.debug("cannot read the ledger %s: %s", path, exc)
        return []


def place(w: Window, past: Sequence[Frozen]) -> Window:
    """The window as the ledger's history places it, so that every article goes out in
    exactly one issue.

    An issue already frozen keeps the span it was frozen with (an early send closed it
    when it was frozen). Any other issue starts where the last issue before it closed:
    after an early send, the articles published between that send and its scheduled time
    come next; after weeks with no send, or a change of ``schedule.day``, nothing in
    between is lost, and nothing is sent twice.
    """
    for f in past:
        if f.id == w.id:
            return Window(w.id, f.since or w.since, w.send_at, closed=f.closed)
    end = w.send_at.astimezone(dt.UTC)
    before = [f for f in past if f.send_at.astimezone(dt.UTC) < end]
    if not before:
        return w
    last = max(before, key=lambda f: f.send_at.astimezone(dt.UTC))
    since = min(last.closed, last.send_at)
    return Window(w.id, since.astimezone(w.since.tzinfo), w.send_at)


def number_for(cfg: Config, w: Window, past: Sequence[Frozen]) -> int:
    """An issue's number: the one it was sent with; else one more than the last issue
    sent before it; else 1 (or counted in weeks from ``newsletter.first_issue``). Adding
    older posts renumbers nothing."""
    end = w.send_at.astimezone(dt.UTC)
    for f in past:
        if f.id == w.id and f.number:
            return f.number
    numbered = [f for f in past if f.number and f.send_at.astimezone(dt.UTC) < end]
    if numbered:
        return max(f.number or 0 for f in numbered) + 1
    if cfg.newsletter.first_issue:
        return issues.issue_number(w, issues.window_for_week(cfg, cfg.newsletter.first_issue))
    return 1


def cache_for(cfg: Config) -> Cache:
    """The scan cache of this config's content, kept in its output folder (issue 14)."""
    return Cache.beside(cfg.output.folder)


def gather(
    cfg: Config,
    now: dt.datetime,
    sel: Selection,
    cache: Cache | None = None,
    past: Sequence[Frozen] | None = None,
    *,
    save: bool = True,
) -> tuple[Window, Collection]:
    """Read the content folder, parsing in full only the articles of the chosen window
    (placed after ``past``, the ledger's history, read here when not given). ``save``:
    write the cache now (``prepare`` writes it once, with the summaries)."""
    chosen: list[Window] = []

    def choose(dates: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
        chosen.append(choose_window(cfg, now, sel, dates, past))
        return chosen[0].since, chosen[0].end

    col = content.load(cfg, now=now, window=choose, cache=cache)
    if cache is not None and save:
        cache.save()
    return chosen[0], col


def prepare(
    cfg: Config, now: dt.datetime, sel: Selection = Selection(), cache: Cache | None = None
) -> Built:
    """config -> content -> issue -> render. Raises NothingToSend for an empty week.

    With ``cache`` (``cache_for``), unchanged files are not scanned again."""
    started = time.perf_counter()
    past = history(cfg)  # read once: the window's place, its number, whether it was sent
    window, col = gather(cfg, now, sel, cache, past, save=False)
    number = number_for(cfg, window, past)
    if cache is not None:
        i18n.remember_dates(cache.dates)
    # The compiled email is kept beside the scan cache (a rebuild of an unchanged issue).
    kept = cache.path.parent if cache is not None and cache.persist and cache.path else None
    try:
        issue = issues.build_issue(cfg, window, col.articles, number=number, cache=cache)
        rendered = render.render(issue, cfg, cache=kept)
    finally:
        if cache is not None:  # once, with the summaries and dates made
            cache.save()
    # Render warnings (size near Gmail's clip limit, a dropped @import) and what a broken
    # user template can lose (the unsubscribe link, the postal address), for every command.
    findings = tuple(inspect(cfg, issue, rendered))
    notice = already_sent(cfg, window, past)
    return Built(issue, rendered, col, time.perf_counter() - started, findings, notice)


@dataclass(frozen=True)
class Edition:
    """One language's edition of an issue (``newsletter.languages``)."""

    lang: str
    built: Built | None  # None: no article in this language that week
    empty: str = ""  # then why (the NothingToSend message)


def prepare_editions(
    cfg: Config, now: dt.datetime, sel: Selection = Selection(), cache: Cache | None = None
) -> list[Edition]:
    """Each edition of the issue: for a newsletter with ``newsletter.languages``, the issue
    ``prepare`` builds with each language (``Config.edition``), main language first; for
    one in a single language, its one issue. Raises NothingToSend when every edition is
    empty.

    All editions are one issue: one window, one number. Only ``--latest`` could pick a
    window per language (the one holding that language's newest post): the latest of
    those is taken, and the editions that chose another are built again for it."""
    if not cfg.newsletter.editions:
        return [Edition(cfg.newsletter.language, prepare(cfg, now, sel, cache))]

    def edition(lang: str, sel: Selection) -> Edition:
        try:
            return Edition(lang, prepare(cfg.edition(lang), now, sel, cache))
        except NothingToSend as exc:
            return Edition(lang, None, str(exc))

    editions = [edition(lang, sel) for lang in cfg.newsletter.editions]
    built = [e.built for e in editions if e.built is not None]
    if not built:
        raise NothingToSend(
            f"{editions[0].empty} (no edition has an article: {', '.join(cfg.newsletter.editions)})"
        )
    latest = max((b.issue.window for b in built), key=lambda w: w.send_at.astimezone(dt.UTC))
    if sel.latest:
        week = Selection(week=latest.id)
        editions = [
            e if e.built is not None and e.built.issue.id == latest.id else edition(e.lang, week)
            for e in editions
        ]
    return editions


def skipped_summary(col: Collection, bad: int = 0) -> str:
    """What the content folder held besides the posts read, for one line."""
    parts = [
        f"{n} {one if n == 1 else many}"
        for n, one, many in (
            (col.drafts, "draft", "drafts"),
            (col.future, "future-dated", "future-dated"),
            (col.pages, "page (not a post)", "pages (not posts)"),
            (col.other_language, "in another language", "in other languages"),
            (col.excluded, "excluded", "excluded"),
            (bad, "bad", "bad"),
        )
        if n
    ]
    if col.next_future is not None:
        parts.append(f"the next future-dated one is dated {col.next_future:%Y-%m-%d}")
    return ", ".join(parts)


def already_sent(cfg: Config, w: Window, past: Sequence[Frozen]) -> str | None:
    """For a window the ledger has frozen: that it went out, and where newer posts go."""
    for f in past:
        if f.id == w.id:
            following = issues.window_containing(cfg, f.send_at)
            closed = f.closed.astimezone(cfg.schedule.tz)
            return (
                f"{w.id} was already sent (#{f.number}); it covered posts until "
                f"{closed:%Y-%m-%d %H:%M %Z}, and what is published since goes out in "
                f"{following.id}"
            )
    return None


def issue_json(cfg: Config, built: Built) -> dict[str, object]:
    issue, r = built.issue, built.rendered
    return {
        "id": issue.id,
        "number": issue.number,
        "send_at": issue.send_at.isoformat(),
        "since": issue.window.since.isoformat(),
        "subject": r.subject,
        "preheader": r.preheader,
        "more": issue.more,
        "articles": [
            {
                "title": i.article.title,
                "url": i.article.url,
                "date": i.article.date.isoformat(),
                "author": i.article.author,
                "group": g.name or None,
                "summary": i.summary.text,
                "standfirst": i.summary.standfirst or None,
                "key_points": [{"lead": k.lead, "text": k.text} for k in i.summary.key_points],
                "source": _source(cfg, i.article.path),
            }
            for g in issue.groups
            for i in g.items
        ],
    }


def _source(cfg: Config, path: Path) -> str:
    # Relative to the content folder: two Hugo bundles both have an index.md.
    try:
        return path.resolve().relative_to(cfg.content.folder.resolve()).as_posix()
    except ValueError:
        return path.name


def write_build(
    cfg: Config, built: Built, out: Path | None = None, *, edition: bool = False
) -> Path:
    """Write ``out/<issue-id>/email.html``, ``email.txt`` and ``issue.json``; an
    ``edition`` of a newsletter in several languages to ``out/<issue-id>/<lang>/``.

    The files hold the neutral ``generic`` placeholders; nothing here depends on the clock,
    so two builds of the same input are byte-identical.
    """
    folder = (out or cfg.output.folder) / built.issue.id
    if edition:
        folder = folder / built.issue.lang
    html, text = built.rendered.fill(GENERIC_TAGS, raw=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "email.html", html)
        write_atomic(folder / "email.txt", text)
        meta = issue_json(cfg, built)
        meta["sizes"] = {"html_bytes": len(html.encode()), "text_bytes": len(text.encode())}
        data = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
        write_atomic(folder / "issue.json", data)
    except OSError as exc:
        where = "--out" if out else "output.folder"
        raise DigestError(f"cannot write {folder}: {exc.strerror or exc}; check {where}") from None
    return folder


# --- check: every content file, and the rendered issue inspected --------------------


@dataclass(frozen=True)
class Report:
    problems: tuple[Problem, ...]
    built: Built | None  # with editions: the first that has articles
    notice: str | None  # e.g. "nothing to send for 2026-W48"
    files: int
    site: str | None = None  # the generator found, e.g. "Hugo site (hugo.toml), ..."
    skipped: str = ""  # what was skipped quietly, for one line
    editions: tuple[Edition, ...] = ()  # newsletter.languages: each one, checked

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.level != "error" for p in self.problems)


def check(
    cfg: Config, now: dt.datetime, sel: Selection | None = None, cache: Cache | None = None
) -> Report:
    """Validate every content file, render the selected issue and inspect it, and build
    every header a send would write (for the longest address a list can hold).

    Files unchanged since the last check are not parsed again: their problems come from
    the cache (``cache``, else the one in the output folder)."""
    cache = cache if cache is not None else cache_for(cfg)
    # Every file in every language of the newsletter: an edition's posts are content too.
    whole = cfg.edition("") if cfg.newsletter.editions else cfg
    with cache.pinned():  # one walk of the folder for both reads
        everything = content.load(whole, now=now, cache=cache, articles=False)
        problems = list(everything.problems)
        built, notice, editions = None, None, []
        try:
            editions = prepare_editions(cfg, now, sel or Selection(), cache)
        except NothingToSend as exc:
            notice = str(exc)
        finally:
            cache.save()
    for e in editions:
        if e.built is None:
            continue
        built = built or e.built
        problems += e.built.findings
        problems += _header_problems(cfg.edition(e.lang), e.built.rendered)
    if cfg.delivery.transport == "smtp":  # what `send` would refuse (first_run_values)
        source = Path(cfg.source or "config")
        problems += [
            Problem(source, None, f"{key}: {why} (a real send refuses)", "warning")
            for key, why in first_run_values(cfg)
        ]
    skipped = skipped_summary(everything)
    return Report(
        tuple(dict.fromkeys(problems)),  # what every edition finds (a config key): once
        built,
        notice,
        everything.files,
        everything.site,
        skipped,
        tuple(editions) if cfg.newsletter.editions else (),
    )


# The longest address a list can hold (64 + "@" + 189 = 254 octets): its token makes the
# longest List-Unsubscribe line a send writes.
_LONGEST = Recipient("x" * 64 + "@" + ".".join(["d" * 63, "d" * 63, "d" * 57, "com"]), "A Reader")


def _header_problems(cfg: Config, rendered: RenderedEmail) -> list[Problem]:
    """Every header a send would write, built once for the longest address: what would
    stop a send (a ConfigError or ValueError there) is an error here."""
    import secrets  # late (issue 14): only `check` composes a message in a build

    from .message import Composer

    source = Path(cfg.source or "config")
    try:
        # Any secret will do: a token's length does not depend on it.
        Composer.from_config(cfg, rendered, secrets.token_urlsafe(32)).compose(_LONGEST)
    except ConfigError as exc:
        return [
            Problem(source, None, f"{key}: {message}", "error") for key, message in exc.problems
        ]
    except ValueError as exc:
        return [Problem(source, None, f"a send would stop: {exc}", "error")]
    return []
