"""Config -> a weekly send job: ``digest schedule`` and ``digest send --due``.

Which issue is sent when comes from ``digest.py`` (``upcoming``, ``due_window``), never
from a cron expression, so the scheduler, ``--next``, ``send --due`` and the issue
windows always agree, including on the days the clocks change.

Why not APScheduler's ``CronTrigger``: in 3.11 it fires a send time inside the repeated
autumn hour twice (``sun 02:30`` Europe/Berlin fires at 00:30 and 01:30 UTC on
2026-10-25). ``SendTimes`` below returns digest's send times instead: a skipped wall time
(02:30 on 2026-03-29) is sent once at 03:30 summer time, a repeated one once at its
first occurrence.

Why no persistent job store: "was this issue sent" lives in the ledger, and one place
is enough. A job store would be a second record that can disagree with it, and it has
traps of its own (``replace_existing=True`` at every start drops the missed run it was
meant to keep; the job and its arguments must pickle). Instead, at start-up and at every
fire, the issue due now (``issues.due_window``) is sent if its send time is at most
``schedule.grace_hours`` ago. Sending goes through ``pipeline.send``, whose ledger makes
a repeat a no-op, so a double fire, a restart or a second scheduler sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import issue as issues
from .config import Config
from .errors import DigestError, NotDue, NothingToSend
from .text import utcnow
from .window import Window

if TYPE_CHECKING:
    from .pipeline import Selection
    from .sending import SendReport

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
JOB_ID = "weekly-send"
# Even with grace_hours = 0, a fire that a busy or just-woken machine runs a little late
# is not a "missed" send.
SLACK = dt.timedelta(minutes=1)
BUSY_RETRY = 10  # seconds between tries while another send holds the ledger


def _utc(when: dt.datetime) -> dt.datetime:
    # Always compute with UTC instants: aware datetimes sharing a ZoneInfo subtract and
    # compare by wall time, which is off by an hour across a clock change.
    return when.astimezone(dt.UTC)


# --- when ------------------------------------------------------------------------------


def describe(cfg: Config, when: dt.datetime, *, note: bool = True) -> str:
    """``Sun 2026-03-29 03:30 CEST (01:30 UTC)``, plus a note on a clock-change day."""
    local = when.astimezone(cfg.schedule.tz)
    utc = _utc(when)
    utc_day = "" if utc.date() == local.date() else f"{utc:%a %Y-%m-%d }"
    text = f"{local:%a %Y-%m-%d %H:%M %Z} ({utc_day}{utc:%H:%M} UTC)"
    if not note:
        return text
    at, tz = cfg.schedule.at, cfg.schedule.tz
    wall = dt.datetime.combine(local.date(), at, tzinfo=tz)
    if wall.utcoffset() != wall.replace(fold=1).utcoffset():
        if local.time() != at:
            text += f"; {at:%H:%M} does not exist that day (clocks go forward)"
        else:
            text += f"; {at:%H:%M} happens twice that day, sent at the first"
    return text


def next_sends(cfg: Config, now: dt.datetime, count: int) -> list[tuple[str, dt.datetime]]:
    """The next ``count`` (issue id, send time) pairs strictly after ``now``."""
    return [(issues.due_window(cfg, t).id, t) for t in issues.upcoming(cfg, now, count)]


# --- what is due -------------------------------------------------------------------------


def grace(cfg: Config) -> dt.timedelta:
    return max(dt.timedelta(hours=cfg.schedule.grace_hours), SLACK)


@dataclass(frozen=True)
class Due:
    """The issue whose send time is the latest at or before ``now``, and how late it is."""

    window: Window
    now: dt.datetime
    grace: dt.timedelta
    # None: never started; "sending", "sent": as in the ledger; "empty": no articles
    state: str | None = None

    @property
    def late(self) -> dt.timedelta:
        return _utc(self.now) - _utc(self.window.send_at)

    @property
    def in_grace(self) -> bool:
        return self.late <= self.grace

    @property
    def missed(self) -> bool:
        """Past the grace and not (completely) sent: worth a warning."""
        return not self.in_grace and self.state not in ("sent", "empty")

    def explain(self, cfg: Config) -> str:
        w = self.window
        when = f"{w.id} was due at {describe(cfg, w.send_at, note=False)}, {_span(self.late)} ago"
        if self.in_grace:
            return f"{when}: within the grace of {_span(self.grace)}"
        if self.state == "sent":
            return f"{when}, and was sent: nothing to do"
        if self.state == "empty":
            return f"{when}; that week had no articles: nothing to send"
        from .sending import resume_command  # late: sending loads SMTP, SQLite, the list

        past = f"past the grace of {_span(self.grace)} (schedule.grace_hours)"
        if self.state == "sending":  # send --due and the scheduler resume it nonetheless
            return (
                f"{when}, and its send did not finish; {past}, but started: it is "
                f"resumed. By hand: {resume_command(w.id)}"
            )
        return (
            f"{when}, and was not sent; {past}, it is not sent automatically. "
            f"To send it anyway: {resume_command(w.id)}"
        )


def check_due(cfg: Config, now: dt.datetime) -> Due:
    """The issue due at ``now``, how late it is, and whether the ledger has it as sent."""
    window = issues.due_window(cfg, now)
    due = Due(window, now, grace(cfg), _ledger_state(cfg, window.id))
    if due.state is None and not due.in_grace and _empty(cfg, now, window):
        due = Due(window, now, due.grace, "empty")  # no false "missed" warning
    return due


def due_selection(cfg: Config, now: dt.datetime) -> Selection:
    """``send --due`` (cron mode): the issue to work on now, or NotDue saying why none is.

    In order: the issue due now, if within the grace and not sent; else the oldest issue
    started and not finished, however late (the grace guards starting a stale issue, not
    finishing one already started: its recipients would be stranded); else the issue due
    now if within the grace (sent: a no-op that says so); else NotDue. ``due=True`` in the
    selection: the send reports other unfinished issues and exits non-zero while any
    remain.
    """
    from .pipeline import Selection

    found = check_due(cfg, now)
    if found.in_grace and found.state != "sent":
        return Selection(week=found.window.id, due=True)
    stranded = stranded_issues(cfg)
    if stranded:
        log.warning(
            "%s was started and not finished: resuming it (the grace of %s only guards "
            "starting an issue late)",
            stranded[0],
            _span(found.grace),
        )
        return Selection(week=stranded[0], due=True)
    if found.in_grace:
        return Selection(week=found.window.id, due=True)
    raise NotDue(found.explain(cfg), missed=found.missed, issue=found.window.id)


def stranded_issues(cfg: Config) -> list[str]:
    """Ids of the issues started and not finished in the ledger, oldest first."""
    if not cfg.ledger.path.exists():
        return []
    import sqlite3  # late, as the ledger: printing send times reads no ledger

    from .ledger import Ledger

    try:
        with Ledger(cfg.ledger.path, readonly=True) as ledger:
            return ledger.unfinished()
    except (DigestError, sqlite3.Error) as exc:
        log.debug("cannot read the ledger %s: %s", cfg.ledger.path, exc)
        return []


def _ledger_state(cfg: Config, issue_id: str) -> str | None:
    # Only to explain a skipped send; the send itself asks the ledger again under its lock.
    if not cfg.ledger.path.exists():
        return None
    import sqlite3

    from .ledger import Ledger

    try:
        with Ledger(cfg.ledger.path, readonly=True) as ledger:
            rec = ledger.issue(issue_id)
    except (DigestError, sqlite3.Error) as exc:
        log.debug("cannot read the ledger %s: %s", cfg.ledger.path, exc)
        return None
    return rec.state if rec else None


def _empty(cfg: Config, now: dt.datetime, window: Window) -> bool:
    from .pipeline import Selection, gather  # late: reading content is not needed to print dates

    try:  # a newsletter with editions: empty when every edition is
        for lang in cfg.newsletter.editions or (cfg.newsletter.language,):
            if gather(cfg.edition(lang), now, Selection(week=window.id))[1].articles:
                return False
    except DigestError:
        return False
    return True


def _span(d: dt.timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    return " ".join(p for p in parts if p and not (p == "0 min" and (days or hours)))


# --- the job -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    issue: str
    # sent: every recipient has an outcome; already: sent before (a no-op); stopped:
    # paused, interrupted or deferred recipients left (a later run resumes); nothing: an
    # empty week; skipped: past the grace; failed: an error before or during the send.
    # busy: another send held the ledger's lock (fire() waits and tries again).
    action: Literal["sent", "already", "stopped", "nothing", "skipped", "failed", "busy"]
    detail: str = ""
    report: SendReport | None = None


def send_window(
    cfg: Config, now: dt.datetime, window: Window, stop: threading.Event | None = None
) -> RunResult:
    """Send one issue through the same path as ``digest send --issue``."""
    # Late: only a send needs SMTP, SQLite and the list; `schedule --next` starts fast.
    from .ledger import SendBusy
    from .pipeline import Selection
    from .sending import resume_command, send

    try:
        report = send(cfg, now, Selection(week=window.id), yes=True, stop=stop)
    except NothingToSend as exc:
        log.info("nothing to send for %s (%s)", window.id, str(exc).partition(": ")[2])
        return RunResult(window.id, "nothing", str(exc))
    except SendBusy as exc:
        return RunResult(window.id, "busy", str(exc))
    except DigestError as exc:
        log.error(
            "sending %s failed: %s\nRetry by hand with: %s",
            window.id,
            exc,
            resume_command(window.id),
        )
        return RunResult(window.id, "failed", str(exc))
    except Exception as exc:  # a bug: log it with its traceback, keep the schedule going
        log.exception("sending %s failed unexpectedly", window.id)
        return RunResult(window.id, "failed", repr(exc))
    if report.noop:
        log.info("%s", report)
        return RunResult(window.id, "already", str(report), report)
    if not report.complete:
        if stop is not None and stop.is_set():
            why = "stopped as asked; the rest goes out at the next start within the grace"
        elif report.paused:
            why = report.paused
        else:
            why = "some recipients were deferred after their retries"
        log.warning("%s\n%s. Or send the rest by hand: %s", report, why, resume_command(window.id))
        return RunResult(window.id, "stopped", str(report), report)
    log.info("%s", report)
    return RunResult(window.id, "sent", str(report), report)


def fire(cfg: Config, clock: Clock = utcnow, stop: threading.Event | None = None) -> RunResult:
    """The scheduled job: send the issue due now if it is within the grace period.

    Module-level (importable) so it could serve a persistent job store too. It does not
    raise: a failed week is logged and the scheduler keeps running for the next one.
    """
    stop = stop or threading.Event()
    if stop.is_set():
        return RunResult("", "skipped", "stopping")
    now = clock()
    # The same choice as `digest send --due` (due_selection): the due issue within the
    # grace, else a send left unfinished however late, else nothing.
    try:
        sel = due_selection(cfg, now)
    except NotDue as exc:
        log.log(logging.WARNING if exc.missed else logging.INFO, "%s", exc)
        outcome = RunResult(exc.issue, "skipped", str(exc))
    else:
        window = issues.window_for_week(cfg, sel.week or "")
        log.info("sending %s, due %s", window.id, describe(cfg, window.send_at))
        outcome = send_window(cfg, now, window, stop)
        # Another send holds the ledger (a second scheduler, or someone's `digest send`,
        # maybe of another issue): wait for it rather than drop this week.
        while outcome.action == "busy" and _still_due(cfg, clock(), window):
            log.info("%s\nTrying again in %d s.", outcome.detail, BUSY_RETRY)
            if stop.wait(BUSY_RETRY):
                break
            outcome = send_window(cfg, clock(), window, stop)
        if outcome.action == "busy":
            from .sending import resume_command

            log.warning(
                "%s\nNot sent; send it by hand: %s", outcome.detail, resume_command(window.id)
            )
    if not stop.is_set():
        log_next(cfg, clock())
    return outcome


def _still_due(cfg: Config, now: dt.datetime, window: Window) -> bool:
    """Whether ``window`` is still one to send: within its grace, or started and unfinished."""
    return Due(window, now, grace(cfg)).in_grace or window.id in stranded_issues(cfg)


def log_next(cfg: Config, now: dt.datetime) -> None:
    ((issue, send_at),) = next_sends(cfg, now, 1)
    log.info("next send: %s at %s", issue, describe(cfg, send_at))
