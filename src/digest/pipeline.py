"""The orchestration every command shares: config -> content -> digest -> render.

``build``, ``check``, ``preview``, ``send``, ``export`` and the scheduler all start from
``prepare()``; the edges (clock, files) are passed in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import content, digest, render
from .check import inspect
from .config import Config
from .content import Collection, Problem
from .digest import Issue, Window
from .errors import DeliveryError, DigestError, NothingToSend
from .files import write_atomic
from .render import RenderedEmail

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


def choose_window(
    cfg: Config, now: dt.datetime, sel: Selection, dates: Sequence[dt.datetime] = ()
) -> Window:
    if sel.week:
        return digest.window_for_week(cfg, sel.week)
    if sel.due:
        return digest.due_window(cfg, now)
    if sel.latest:
        past = [d for d in dates if d <= now]
        if not past:
            raise NothingToSend("nothing to send: no published articles in the content folder")
        return digest.window_containing(cfg, max(past))
    return digest.next_window(cfg, now)


def first_window(cfg: Config, col: Collection, fallback: Window) -> Window:
    if cfg.newsletter.first_issue:
        return digest.window_for_week(cfg, cfg.newsletter.first_issue)
    if col.oldest is not None:
        return digest.window_containing(cfg, col.oldest)
    return fallback


def gather(cfg: Config, now: dt.datetime, sel: Selection) -> tuple[Window, Collection]:
    """Read the content folder, parsing in full only the articles of the chosen window."""
    chosen: list[Window] = []

    def choose(dates: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
        chosen.append(choose_window(cfg, now, sel, dates))
        return chosen[0].since, chosen[0].send_at

    col = content.load(cfg, now=now, window=choose)
    return chosen[0], col


def prepare(cfg: Config, now: dt.datetime, sel: Selection = Selection()) -> Built:
    """config -> content -> digest -> render. Raises NothingToSend for an empty week."""
    started = time.perf_counter()
    window, col = gather(cfg, now, sel)
    issue = digest.build_issue(cfg, window, col.articles, first=first_window(cfg, col, window))
    rendered = render.render(issue, cfg)
    # Render warnings (size near Gmail's clip limit, a dropped @import) and what a broken
    # user template can lose (the unsubscribe link, the postal address), for every command.
    findings = tuple(inspect(cfg, issue, rendered))
    return Built(issue, rendered, col, time.perf_counter() - started, findings)


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


def write_build(cfg: Config, built: Built, out: Path | None = None) -> Path:
    """Write ``out/<issue-id>/email.html``, ``email.txt`` and ``issue.json``.

    The files hold the neutral ``generic`` placeholders; nothing here depends on the clock,
    so two builds of the same input are byte-identical.
    """
    folder = (out or cfg.output.folder) / built.issue.id
    html, text = built.rendered.fill(GENERIC_VALUES, raw=True)
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


# What the build writes in place of personal fields: readable, neutral merge tags.
GENERIC_VALUES = {
    "unsubscribe_url": "{{ unsubscribe_url }}",
    "name": "{{ name }}",
    "first_name": "{{ first_name }}",
    "email": "{{ email }}",
}


# --- send: render once, then message -> delivery, recorded in the ledger -----------------
# The mechanics live in ledger.py (exactly-once bookkeeping), subscribers.py (the list),
# message.py (per-recipient bytes) and delivery.py (transports, retries, pacing).


@dataclass(frozen=True)
class SendPlan:
    """What a send is about to do, for a confirmation prompt."""

    issue_id: str
    subject: str
    transport: str
    recipients: int  # about how many will be mailed (list rows, or rows left on resume)
    resume: bool  # the issue was started before: its frozen content is used
    retry_failed: bool = False  # recipients refused for good are tried again
    unfinished: tuple[str, ...] = ()  # other issues started and not finished
    include_new: bool = False  # only subscribers who joined since (``recipients``: about)


@dataclass
class SendReport:
    """The outcome of ``send``. Counts are per recipient; see ``exit_code``."""

    issue_id: str
    subject: str = ""
    transport: str = ""
    sent: int = 0  # in this run
    already_sent: int = 0  # in earlier runs
    suppressed: int = 0  # unsubscribed: not mailed
    invalid: int = 0  # bad rows in the subscriber list
    duplicates: int = 0  # rows repeating an address (folded)
    failed: int = 0  # refused for good (5xx)
    deferred: int = 0  # still failing after the retries: the next run tries again
    pending: int = 0  # not tried yet: the run was stopped or paused
    new_since: int = 0  # subscribers who joined after the issue was sent (no-op runs)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, reason)
    reasons: list[tuple[str, int]] = field(default_factory=list)  # (reason, count)
    problems: list[str] = field(default_factory=list)  # the first bad subscriber rows
    noop: bool = False  # the issue had been sent already
    paused: str = ""  # why the send paused ("" if it did not)
    interrupted: bool = False  # stopped by SIGTERM/Ctrl-C after the messages in flight
    cancelled: bool = False  # not confirmed
    # Other issues started and not finished, when this one was picked implicitly (by the
    # clock or --latest) rather than named: "run the same command" would not resume them.
    unfinished: tuple[str, ...] = ()
    dry_run: bool = False
    folder: Path | None = None  # where the outbox or dry-run messages are
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not (self.pending or self.deferred or self.paused or self.interrupted)

    @property
    def exit_code(self) -> int:
        """0 when every recipient has an outcome (sent, refused, suppressed); 5 when the
        send must be run again (paused, stopped, or deferred recipients)."""
        return 0 if self.complete or self.cancelled else 5

    def __str__(self) -> str:
        if self.noop:
            return (
                f"{self.issue_id} was already sent ({self.already_sent} recipients); "
                f"{self.new_since} subscribers joined since"
            )
        parts = [
            f"sent {self.sent}",
            f"already sent {self.already_sent}",
            f"suppressed {self.suppressed}",
            f"invalid {self.invalid}",
            f"failed {self.failed}",
        ]
        parts += [f"{n} {k}" for k, n in (("deferred", self.deferred), ("left", self.pending)) if n]
        state = " (paused)" if self.paused else " (stopped)" if self.interrupted else ""
        return f"{self.issue_id}{state}: " + ", ".join(parts)


def send(
    cfg: Config,
    now: dt.datetime,
    sel: Selection = Selection(),
    *,
    dry_run: bool = False,
    include_new: bool = False,
    retry_failed: bool = False,
    yes: bool = True,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    confirm: Callable[[SendPlan], bool] | None = None,
) -> SendReport:
    """Send an issue to every subscriber exactly once; resumable, and a no-op once sent.

    The first send of an issue renders it (``prepare``) and freezes the render in the
    ledger; any later run (resume after a crash, pause or stop; ``include_new``;
    ``retry_failed``: recipients refused for good are tried again) sends that frozen
    content. ``stop`` (set from another thread or a signal handler): finish
    the messages in flight, commit, return. ``yes=False`` asks ``confirm`` first.
    ``progress(done, total)`` is called from this thread a few times a second.
    Raises NothingToSend for an empty week, SendBusy if another send holds the ledger,
    Fatal (a DeliveryError) when the server cannot be used at all.
    """
    from . import delivery
    from .ledger import ISSUE_SENDING, ISSUE_SENT, Ledger
    from .message import Composer, unsubscribe_secret
    from .subscribers import check as check_list
    from .subscribers import count_rows

    started = time.perf_counter()
    stop = stop or threading.Event()
    if dry_run:
        return _dry_run(cfg, now, sel, progress=progress, stop=stop)
    built = prepare(cfg, now, sel) if sel.latest else None
    issue_id = built.issue.id if built else choose_window(cfg, now, sel).id
    with Ledger(cfg.ledger.path) as ledger, ledger.lock(issue_id):
        rec = ledger.issue(issue_id)
        if rec is None and built is None:
            built = prepare(cfg, now, sel)
        implicit = sel.week is None
        others = tuple(i for i in ledger.unfinished() if i != issue_id) if implicit else ()
        if rec is not None and rec.finished and not (include_new or retry_failed):
            report = _noop(cfg, ledger, rec.id, rec.subject, started)
            report.unfinished = others
            return report
        transport = delivery.transport_for(cfg)
        secret = unsubscribe_secret(cfg, ledger, real=cfg.delivery.transport == "smtp")
        # Built before anything is frozen: a config that cannot work fails here.
        rendered = rec.rendered() if rec else built.rendered  # type: ignore[union-attr]
        composer = Composer.from_config(cfg, rendered, secret)
        if rec is None or not rec.queued or include_new:
            check_list(cfg.subscribers.file)  # a list that would be misread: refuse now
        if not yes:
            left = ledger.counts(rec.id) if rec else None
            recipients = (
                (left["pending"] + left["deferred"] + (left["failed"] if retry_failed else 0))
                if left and rec and rec.queued else count_rows(cfg.subscribers.file)
            )  # fmt: skip
            new_only = bool(include_new and rec and rec.queued and left is not None)
            if new_only and left is not None:  # about: rows in the list less those queued
                recipients = max(0, count_rows(cfg.subscribers.file) - sum(left.values()))
            plan = SendPlan(
                issue_id,
                rec.subject if rec else built.rendered.subject,  # type: ignore[union-attr]
                transport.name,
                recipients,
                rec is not None,
                retry_failed=retry_failed,
                unfinished=others,
                include_new=new_only,
            )
            if confirm is None or not confirm(plan):
                return SendReport(
                    issue_id, plan.subject, transport.name, cancelled=True, unfinished=others
                )
            started = time.perf_counter()  # time at the prompt is not part of the send
        if rec is None:
            assert built is not None
            rec = ledger.freeze(
                built.rendered, number=built.issue.number, send_at=built.issue.send_at
            )
        report = SendReport(rec.id, rec.subject, transport.name, unfinished=others)
        queue = not rec.queued or include_new
        if queue and not _queue(cfg, ledger, rec.id, report, stop, first=not rec.queued):
            return _finish(ledger, report, None, started)
        if retry_failed and ledger.requeue_failed(rec.id):
            ledger.set_issue_state(rec.id, ISSUE_SENDING)  # unfinished until they have outcomes
        ledger.suppress_pending(rec.id)
        result = _deliver(cfg, ledger, rec.id, transport, composer, progress, stop)
        requeued = ledger.requeue(result.requeue) if result.requeue else 0
        _finish(ledger, report, result, started)
        if report.paused:
            report.paused += _resume_note(rec.id, requeued)
        if report.complete:
            ledger.set_issue_state(rec.id, ISSUE_SENT)
        if isinstance(transport, delivery.OutboxTransport):
            report.folder = transport.folder / "new"
        if result.fatal is not None:
            raise _stopped(result.fatal, report.sent, rec.id)
        return report


def resume_command(issue_id: str) -> str:
    """The command that resumes ``issue_id``: named, never "the same command again" (a
    command that picks the issue by the clock may pick another one by then)."""
    return f"digest send --issue {issue_id}"


def _resume_note(issue_id: str, requeued: int) -> str:
    """What a pause message adds: that nothing is lost (true: refusals in the run of
    failures that caused the pause were put back in the queue) and how to resume."""
    note = ""
    if requeued:
        note = (
            f" The {requeued:,} recipient(s) refused in that run of failures were put back "
            "in the queue: when everyone is refused, the cause is the server, not them."
        )
    return note + f" Nothing is lost: to resume, run: {resume_command(issue_id)}"


def _stopped(
    exc: BaseException, sent: int | None = None, issue_id: str | None = None
) -> BaseException:
    """A DigestError as it is; anything else (a full disk...) as a DeliveryError. With
    ``sent`` (messages sent in this run), a Fatal also says truly what was sent."""
    from .delivery import Fatal
    from .errors import DigestError

    if isinstance(exc, Fatal) and sent is not None:
        what = (
            "Nothing was sent."
            if not sent
            else f"{sent:,} message(s) were sent before it stopped, and are recorded; "
            "once this is fixed, resume with: "
            + (resume_command(issue_id) if issue_id else "the same command")
        )
        return Fatal(f"{exc} {what}")
    if isinstance(exc, DigestError | KeyboardInterrupt):
        return exc
    again = resume_command(issue_id) if issue_id else "the same command"
    error = DeliveryError(
        f"sending stopped by an unexpected error: {type(exc).__name__}: {exc}. What was sent "
        f"is recorded; fix the cause, then resume with: {again}"
    )
    error.__cause__ = exc
    return error


def _queue(
    cfg: Config,
    ledger: Any,
    issue_id: str,
    report: SendReport,
    stop: threading.Event,
    *,
    first: bool,
) -> bool:
    """Stream the subscriber list into the ledger's queue. False if stopped midway."""
    from .errors import ContentError
    from .subscribers import Audience

    audience = Audience(cfg.subscribers.file)

    def rows() -> Iterator[tuple[str, str, str, str]]:
        for s in audience:
            if stop.is_set():
                return
            yield s.key, s.email, s.name, s.first_name

    _, skipped = ledger.enqueue(issue_id, rows())
    report.problems = [str(p) for p in audience.problems]
    if audience.broken is not None:  # the file changed since it was checked: still refuse
        b = audience.broken
        raise ContentError(b.path, b.message, line=b.line)
    if stop.is_set():
        report.interrupted = True
        return False
    if first:
        ledger.mark_queued(issue_id, invalid=audience.invalid, duplicates=skipped)
    return True


def _deliver(cfg, ledger, issue_id, transport, composer, progress, stop):  # type: ignore[no-untyped-def]
    """Run the delivery engine over the issue's pending rows, recording each outcome."""
    from . import delivery
    from .ledger import DEFERRED, FAILED, PENDING, SENT, SUPPRESSED
    from .message import Composed, Recipient

    def jobs() -> Iterator[delivery.Job]:
        for row in ledger.to_send(issue_id):
            if row.suppressed:  # unsubscribed while this send was running
                ledger.mark(row.id, SUPPRESSED, attempted=False)
                continue
            yield delivery.Job(row.id, row.email, row.name, row.first_name)

    def compose(job: delivery.Job) -> Composed:
        return composer.compose(Recipient(job.email, job.name, job.first_name))

    states = {"sent": SENT, "failed": FAILED, "deferred": DEFERRED, "retry": PENDING}

    def record(job: delivery.Job, kind: str, detail: str, message_id: str) -> None:
        ledger.mark(
            job.id,
            states[kind],
            error=None if kind == "sent" else detail,
            message_id=(message_id or None) if kind in ("sent", "failed") else None,
        )

    counts = ledger.counts(issue_id)
    total = counts["pending"] + counts["deferred"]
    limiter = delivery.RateLimiter()
    d = cfg.delivery
    if transport.throttled and (d.rate_per_second or d.rate_per_hour):
        recent = ledger.sent_since(time.time() - 3600) if d.rate_per_hour else []
        limiter = delivery.RateLimiter(d.rate_per_second, d.rate_per_hour, recent)
    source, make = jobs(), compose
    ahead = None
    if composer.signer is not None:  # signing is slow enough to do ahead (prefetch.py)
        from .prefetch import Ahead

        ahead = Ahead(source, compose)
        source, make = ahead.jobs(), ahead.compose
    engine = delivery.Engine(
        transport,
        source,
        compose=make,
        record=record,
        settings=delivery.settings_for(cfg),
        limiter=limiter,
        stop=stop,
    )
    tick = None
    if progress is not None:

        def tick(r: delivery.EngineResult) -> None:
            progress(r.sent + r.failed + r.deferred, total)

    try:
        return engine.run(tick)
    finally:
        if ahead is not None:
            ahead.close()


def _finish(ledger: Any, report: SendReport, result: Any, started: float) -> SendReport:
    counts = ledger.counts(report.issue_id)
    rec = ledger.issue(report.issue_id)
    if result is not None:
        report.sent = result.sent
        report.paused = result.paused
        report.interrupted = report.interrupted or result.interrupted
    report.already_sent = counts["sent"] - report.sent
    report.suppressed = counts["suppressed"]
    report.failed = counts["failed"]
    report.deferred = counts["deferred"]
    report.pending = counts["pending"]
    report.invalid = rec.invalid if rec and rec.queued else len(report.problems)
    report.duplicates = rec.duplicates if rec else 0
    report.failures = [(e, err) for e, _, err, _ in ledger.failures(report.issue_id, 20)]
    report.reasons = ledger.failure_reasons(report.issue_id)
    report.seconds = time.perf_counter() - started
    if report.pending and not (report.paused or report.interrupted):
        report.interrupted = True  # e.g. a fatal error stopped it
    return report


def _noop(cfg: Config, ledger: Any, issue_id: str, subject: str, started: float) -> SendReport:
    """A repeated send of a finished issue: count who joined since, send nothing."""
    from .subscribers import Audience

    report = _finish(ledger, SendReport(issue_id, subject, noop=True), None, started)
    report.already_sent = ledger.counts(issue_id)["sent"]
    report.new_since = sum(
        1
        for s in Audience(cfg.subscribers.file)
        if not ledger.is_queued(issue_id, s.key) and not ledger.is_suppressed(s.key)
    )
    report.seconds = time.perf_counter() - started
    return report


def _dry_run(
    cfg: Config,
    now: dt.datetime,
    sel: Selection,
    *,
    progress: Callable[[int, int], None] | None,
    stop: threading.Event,
) -> SendReport:
    """Write every message the send would send into ``<output>/<issue>/dry-run/``.

    No ledger is written and no server is contacted: the queue lives in a scratch ledger
    in a temporary folder; the real ledger, if there is one, is only read (suppressions,
    and the frozen content of an issue already started).
    """
    import tempfile

    from . import delivery
    from .ledger import Ledger
    from .message import Composer, unsubscribe_secret
    from .subscribers import check as check_list

    started = time.perf_counter()
    real = Path(cfg.ledger.path)
    with contextlib.ExitStack() as stack:
        ro = stack.enter_context(Ledger(real, readonly=True)) if real.exists() else None
        built = prepare(cfg, now, sel) if sel.latest else None
        issue_id = built.issue.id if built else choose_window(cfg, now, sel).id
        rec = ro.issue(issue_id) if ro else None
        if rec is not None:
            rendered = rec.rendered()
        else:
            built = built or prepare(cfg, now, sel)
            rendered = built.rendered
        secret = unsubscribe_secret(cfg, ro, real=False)
        check_list(cfg.subscribers.file)
        folder = cfg.output.folder / issue_id / "dry-run"
        for old in [*folder.glob("new/*.eml"), *folder.glob("tmp/*.eml")]:
            old.unlink()
        transport = delivery.transport_for(cfg, outbox=folder)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="digest-dry-run-"))
        scratch = stack.enter_context(Ledger(Path(tmp) / "dry-run.sqlite3"))
        if ro is not None:
            scratch.copy_suppressions(ro.suppressions())
        scratch.freeze(rendered)
        report = SendReport(issue_id, rendered.subject, f"dry run: {transport.name}", dry_run=True)
        if _queue(cfg, scratch, issue_id, report, stop, first=True):
            scratch.suppress_pending(issue_id)
            composer = Composer.from_config(cfg, rendered, secret)
            result = _deliver(cfg, scratch, issue_id, transport, composer, progress, stop)
            _finish(scratch, report, result, started)
            if result.fatal is not None:
                raise _stopped(result.fatal)
        report.folder = folder / "new"
        return report


@dataclass
class PreviewReport:
    issue_id: str
    subject: str
    transport: str
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    folder: Path | None = None


def preview(cfg: Config, now: dt.datetime, sel: Selection, to: Sequence[str]) -> PreviewReport:
    """The issue as it would be sent, to ``to`` only: "[Preview]" in the subject, a fresh
    Message-ID (never the one the real send will use), nothing recorded."""
    from . import delivery
    from .ledger import Ledger
    from .message import Composed, Composer, Recipient, unsubscribe_secret
    from .subscribers import parse_addresses

    recipients = parse_addresses(to)
    built = prepare(cfg, now, sel)
    transport = delivery.transport_for(cfg)
    if cfg.delivery.transport == "smtp":
        secret = unsubscribe_secret(cfg, None, real=True)
    else:
        with Ledger(cfg.ledger.path) as ledger:
            secret = unsubscribe_secret(cfg, ledger, real=False)
    composer = Composer.from_config(
        cfg, built.rendered, secret, subject_prefix="[Preview] ", random_ids=True
    )
    report = PreviewReport(built.issue.id, "[Preview] " + built.rendered.subject, transport.name)
    if isinstance(transport, delivery.OutboxTransport):
        report.folder = transport.folder / "new"

    def compose(job: delivery.Job) -> Composed:
        return composer.compose(Recipient(job.email))

    def record(job: delivery.Job, kind: str, detail: str, message_id: str) -> None:
        if kind == "sent":
            report.sent.append(job.email)
        elif kind != "retry":
            report.failed.append((job.email, detail))

    settings = delivery.settings_for(cfg)
    settings.concurrency = 1
    jobs = iter([delivery.Job(0, r.email) for r in recipients])
    result = delivery.Engine(
        transport, jobs, compose=compose, record=record, settings=settings
    ).run()
    if result.fatal is not None:
        raise _stopped(result.fatal, len(report.sent))
    if result.paused:
        raise DeliveryError(result.paused)
    return report


@dataclass(frozen=True)
class IssueStatus:
    id: str
    subject: str
    state: str
    created_at: dt.datetime
    counts: dict[str, int]
    invalid: int
    duplicates: int
    failures: list[tuple[str, str, str, int]]  # (address, state, reason, attempts)
    reasons: list[tuple[str, int]]
    bounces: dict[str, int] = field(default_factory=dict)  # recorded bounces per kind


def status(cfg: Config, issue_id: str | None = None) -> list[IssueStatus]:
    """Counts per delivery state (and failures, for one issue) from the ledger, read-only."""
    from .ledger import Ledger

    path = Path(cfg.ledger.path)
    if not path.exists():
        return []
    with Ledger(path, readonly=True) as ledger:
        records = [ledger.issue(issue_id)] if issue_id else ledger.issues()
        return [
            IssueStatus(
                r.id,
                r.subject,
                r.state,
                r.created_at,
                ledger.counts(r.id),
                r.invalid,
                r.duplicates,
                ledger.failures(r.id, 50) if issue_id else [],
                ledger.failure_reasons(r.id) if issue_id else [],
                ledger.bounce_counts(r.id),
            )
            for r in records
            if r is not None
        ]
