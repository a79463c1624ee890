"""Articles + clock -> ``Issue``.

An issue holds the articles published between two consecutive send times
(``schedule.day`` at ``schedule.time`` in the newsletter's timezone): ``since <= date <
send_at``. It is named after the ISO week of its send date, e.g. ``2026-W48``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .config import Config
from .errors import ConfigError, ContentError, NothingToSend
from .text import one_line
from .window import Window

if TYPE_CHECKING:
    from .content.cache import Cache
    from .model import Article, Issue, Note, Summary

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
WEEK = dt.timedelta(days=7)


# --- time ------------------------------------------------------------------------------


def _resolve(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The instant of wall time ``at`` on ``day``.

    A wall time the clocks skip (02:30 on a spring-forward day) becomes the instant an
    hour later in wall terms (03:30 summer time); a repeated one (autumn) is its first
    occurrence. Either way there is exactly one send that day.

    The result carries that day's fixed UTC offset (named like the zone's, e.g. "CEST"),
    not the ZoneInfo: a send time is an instant. With a ZoneInfo, the first 02:30 of an
    autumn switch day is ambiguous, and Python then answers False to ``==`` with the same
    instant in UTC (PEP 495), while ``<`` against a datetime sharing the ZoneInfo compares
    wall times and ignores ``fold``.
    """
    local = dt.datetime.combine(day, at, tzinfo=tz)  # fold=0: first occurrence
    roundtrip = local.astimezone(dt.UTC).astimezone(tz)
    if roundtrip.replace(tzinfo=None) != local.replace(tzinfo=None):
        # Non-existent: zoneinfo applied the pre-transition offset; the UTC instant is
        # the one a clock that jumped forward would show at that wall time + the gap.
        local = roundtrip
    offset = local.utcoffset()
    assert offset is not None
    return local.astimezone(dt.timezone(offset, local.tzname() or str(offset)))


def send_time(cfg: Config, day: dt.date) -> dt.datetime:
    return _resolve(day, cfg.schedule.at, cfg.schedule.tz)


def window_for_send_date(cfg: Config, day: dt.date) -> Window:
    send_at = send_time(cfg, day)
    since = send_time(cfg, day - WEEK)
    iso = day.isocalendar()
    return Window(f"{iso.year}-W{iso.week:02d}", since, send_at)


def window_containing(cfg: Config, when: dt.datetime) -> Window:
    """The window whose span holds ``when`` (its send time is the first one after it)."""
    tz = cfg.schedule.tz
    local = when.astimezone(tz)
    when = when.astimezone(dt.UTC)  # compare instants, not wall times (see Window.contains)
    offset = (cfg.schedule.weekday - local.weekday()) % 7
    day = local.date() + dt.timedelta(days=offset)
    w = window_for_send_date(cfg, day)
    if when >= w.send_at:
        w = window_for_send_date(cfg, day + WEEK)
    elif when < w.since:
        w = window_for_send_date(cfg, day - WEEK)
    return w


def next_window(cfg: Config, now: dt.datetime) -> Window:
    """The next issue to be sent: its send time is the first one after ``now``."""
    return window_containing(cfg, now)


def due_window(cfg: Config, now: dt.datetime) -> Window:
    """The issue whose send time is the latest one at or before ``now``."""
    w = window_containing(cfg, now)
    return window_containing(cfg, w.since.astimezone(dt.UTC) - dt.timedelta(microseconds=1))


def window_for_week(cfg: Config, week: str) -> Window:
    m = _WEEK.match(week.strip())
    if not m:
        raise ConfigError("--week", [("--week", f"{week!r} is not an ISO week like '2026-W48'")])
    year, num = int(m.group(1)), int(m.group(2))
    try:
        day = dt.date.fromisocalendar(year, num, cfg.schedule.weekday + 1)
        return window_for_send_date(cfg, day)
    except ValueError:
        raise ConfigError("--week", [("--week", f"{week!r}: {year} has no week {num}")]) from None
    except OverflowError:  # a week at the very edge of the calendar (0001-W01)
        raise ConfigError("--week", [("--week", f"{week!r} is out of range")]) from None


def upcoming(cfg: Config, after: dt.datetime, count: int) -> list[dt.datetime]:
    """The next ``count`` send times strictly after ``after``."""
    out: list[dt.datetime] = []
    w = window_containing(cfg, after)
    while len(out) < count:
        out.append(w.send_at)
        w = window_containing(cfg, w.send_at)
    return out


def issue_number(window: Window, first: Window) -> int:
    return max(1, round((window.send_at - first.send_at) / WEEK) + 1)


# --- the issue --------------------------------------------------------------------------


def _order_key(a: Article) -> tuple[int, int, int, float]:
    # Featured first; then weighted articles by weight (lower first, as in Hugo); then
    # unweighted ones; within each, newest first.
    return (0 if a.featured else 1, 0 if a.weight else 1, a.weight, -a.date.timestamp())


def _group_name(cfg: Config, a: Article) -> str:
    if cfg.content.group_by == "tag":
        return a.tags[0] if a.tags else "Other"
    if cfg.content.group_by == "category":
        return a.categories[0] if a.categories else "Other"
    return ""


def _one_line(text: str, limit: int) -> str:
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-")
    return cut + "…"


def load_note(cfg: Config, issue_id: str, lang: str) -> Note | None:
    """The editor's note of an issue: ``<notes>/<id>.<lang>.md``, else ``<id>.md``."""
    folder = cfg.content.notes_folder
    for name in (f"{issue_id}.{lang}.md", f"{issue_id}.md"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            source = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ContentError(
                path, f"cannot read the editor's note: {exc}; save it as UTF-8"
            ) from None
        from .content.html import note as note_html

        html, paragraphs = note_html(source, cfg.newsletter.base_url.rstrip("/"))
        from .model import Note

        return Note(path, html, paragraphs) if paragraphs else None
    return None


def _config_template(cfg: Config, key: str, ctx: dict[str, object]) -> str:
    """``newsletter.<key>`` rendered; a ConfigError naming the key when it fails."""
    # Imported here, as summarizer below: `schedule --next` needs this module's calendar
    # only, and starts in a third of the time without Jinja and Markdown (issue 14).
    import jinja2

    from .templating import render_string

    try:
        return render_string(getattr(cfg.newsletter, key), **ctx)
    except jinja2.exceptions.SecurityError as exc:
        problem = f"{exc}: templates run in a sandbox without access to Python; remove it"
    except jinja2.TemplateError as exc:
        problem = f"the template failed: {exc.message or exc}; it may use {', '.join(ctx)}"
    raise ConfigError(cfg.source or "config", [(f"newsletter.{key}", problem)])


def _summarizer(cfg: Config, cache: Cache | None) -> Callable[[Article], Summary]:
    """``summarize.summarizer(cfg)``; with ``cache`` (the scan cache), the built-in's
    summaries are kept there, keyed by the article (every field), the settings and the
    code that summarizes, and an article summarized before is not summarized again: ~3 ms
    each, and when none is new, the summarizer's import with its Markdown and sentence
    libraries (~40 ms; issue 14). A plug-in's are never kept: it may answer differently."""
    if cache is None or cfg.content.summarizer:
        from .summarize import summarizer

        return summarizer(cfg)
    import hashlib  # here: `schedule --next` imports this module for its calendar only

    settings = (_summary_code(), cfg.content.summary_words, cfg.content.key_points)
    made: list[Callable[[Article], Summary]] = []

    def kept(article: Article) -> Summary:
        key = hashlib.sha256(repr((settings, article)).encode()).hexdigest()
        found = cache.summary(key)
        if found is None:
            if not made:
                from .summarize import summarizer

                made.append(summarizer(cfg))
            found = made[0](article)
            cache.put_summary(key, found)
        return found

    return kept


@functools.cache
def _summary_code() -> str:
    """What a summary depends on besides the article and the settings: the code that
    makes it (digest's version and modules, syntok's and markdown-it's files)."""
    from . import __version__
    from .files import code_stamps

    return "|".join([__version__, *code_stamps("digest", "syntok", "markdown_it")])


def build_issue(
    cfg: Config,
    window: Window,
    articles: Iterable[Article],
    *,
    first: Window | None = None,
    number: int | None = None,
    cache: Cache | None = None,
) -> Issue:
    """Select, order, cap, group and summarise the window's articles (the built-in
    summaries kept in ``cache``, the scan cache, and read back while nothing they depend
    on changed).

    Raises NothingToSend when the window holds no article.
    """
    chosen = sorted((a for a in articles if window.contains(a.date)), key=_order_key)
    if not chosen:
        raise NothingToSend(
            f"nothing to send for {window.id}: no articles published "
            f"between {window.since:%Y-%m-%d %H:%M} and "
            f"{window.send_at:%Y-%m-%d %H:%M %Z}"
        )
    cap = cfg.content.max_articles
    shown, rest = chosen[:cap], tuple(chosen[cap:])
    from .model import Group, Issue, Item  # late: the calendar alone needs only Window

    summary = _summarizer(cfg, cache)
    items = [Item(a, summary(a)) for a in shown]
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(_group_name(cfg, item.article), []).append(item)
    if number is None:
        number = issue_number(window, first or window)
    ctx = {
        "name": cfg.newsletter.name,
        "number": number,
        "id": window.id,
        "date": window.send_at.strftime("%Y-%m-%d"),
        "count": len(chosen),
        "top_title": shown[0].title,
        "titles": "; ".join(a.title for a in shown),
    }
    subject = _one_line(_config_template(cfg, "subject", ctx), 150)
    # The preheader follows the subject in the inbox: it does not say a title again.
    others = [a.title for a in shown if one_line(a.title) not in subject]
    ctx["titles"] = "; ".join(others or [a.title for a in shown])
    lang = cfg.newsletter.language
    if "preheader" in cfg.newsletter.model_fields_set:
        preheader = _one_line(_config_template(cfg, "preheader", ctx), 140)
    else:  # the default says its words in the issue's language
        from .i18n import labels

        default = labels(lang).ngettext(
            "%(num)s article this week: %(titles)s",
            "%(num)s articles this week: %(titles)s",
            len(chosen),
            titles=ctx["titles"],
        )
        preheader = _one_line(default, 140)
    return Issue(
        id=window.id,
        number=number,
        window=window,
        subject=subject,
        preheader=preheader,
        groups=tuple(Group(k, tuple(v)) for k, v in groups.items()),
        more=len(rest),
        lang=lang,
        rest=rest,
        note=load_note(cfg, window.id, lang),
        lead=cfg.content.lead and len(shown) > 1,
    )
