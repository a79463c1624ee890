"""A prepared issue -> a finished send: freeze, queue, deliver, report; and its edges.

The first send of an issue renders it (``pipeline.prepare``) and freezes the render in
the ledger; later runs (resume after a crash, pause or stop; ``include_new``;
``retry_failed``) send that frozen content. The mechanics live in ``ledger`` (exactly-once
bookkeeping), ``subscribers`` (the list), ``message`` (per-recipient bytes) and
``delivery`` (transports, retries, pacing). Also here: the dry run, the preview to test
inboxes, ``status``, and the one spelling of the command that resumes a send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import delivery
from .config import Config, first_run_values
from .delivery import EngineResult, Fatal, Job, Transport
from .errors import ConfigError, ContentError, DeliveryError, DigestError
from .i18n import edition_for
from .ledger import (
    DEFERRED,
    FAILED,
    ISSUE_SENDING,
    ISSUE_SENT,
    PENDING,
    SENT,
    SIGNUP_ACTIVE,
    SUPPRESSED,
    Ledger,
)
from .message import Composed, Composer
from .model import Recipient, RenderedEmail
from .pipeline import Built, Edition, Selection, choose_window, prepare, prepare_editions
from .subscribers import Audience, check_file, count_rows, parse_addresses
from .tokens import remember, secret_for

log = logging.getLogger(__name__)

# When the subscriber list changed during a read (a job rewriting it in place), it is read
# again once it has not changed for QUIET seconds (waiting at most QUIET_MAX for that), up
# to READS reads in all; then the send refuses. The quiet period matters: a re-read made
# while the writer is between two writes would see a consistent but half-written file.
READS = 4
QUIET = 1.0
QUIET_MAX = 120.0


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
    # Options the resume command needs besides --issue: a stopped --include-new must be
    # resumed with --include-new (on a sent issue, a plain resume is a no-op).
    resume_options: tuple[str, ...] = ()
    # send --due: other issues left unfinished make the exit code non-zero (their
    # recipients are stranded until a later run resumes them).
    due: bool = False
    # Newsletter in several languages: deliveries per edition and state, and the
    # readers of each edition empty that week (not mailed), counted when queued.
    editions: dict[str, dict[str, int]] = field(default_factory=dict)
    empty: dict[str, int] = field(default_factory=dict)
    empty_editions: tuple[str, ...] = ()  # the editions with no article that week
    dry_run: bool = False
    folder: Path | None = None  # where the outbox or dry-run messages are
    not_written: int = 0  # a dry run: messages composed and counted beyond its sample
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not (self.pending or self.deferred or self.paused or self.interrupted)

    @property
    def exit_code(self) -> int:
        """0 when every recipient has an outcome (sent, refused, suppressed); a
        DeliveryError's (5) when the send must be run again (paused, stopped, or
        deferred recipients)."""
        if self.cancelled:
            return 0
        stranded = self.due and bool(self.unfinished)
        return 0 if self.complete and not stranded else DeliveryError.exit_code

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
        editions = [
            f"{lang} {'empty' if lang in self.empty_editions else c['sent']}"
            for lang, c in self.editions.items()
        ]
        by_edition = f" (sent per edition: {', '.join(editions)})" if editions else ""
        return f"{self.issue_id}{state}: " + ", ".join(parts) + by_edition


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
    started = time.perf_counter()
    stop = stop or threading.Event()
    if dry_run:
        return _dry_run(cfg, now, sel, progress=progress, stop=stop)
    if cfg.delivery.transport == "smtp" and (unset := first_run_values(cfg)):
        # Mail to real readers from "newsletter@example.com" with the example's postal
        # address would be refused or, worse, delivered: stop before anything is frozen.
        raise ConfigError(cfg.source or "config", unset)
    editions = prepare_editions(cfg, now, sel) if sel.latest else None
    built = _main(editions)
    issue_id = built.issue.id if built else choose_window(cfg, now, sel).id
    with Ledger(cfg.ledger.path) as ledger, ledger.lock(issue_id):
        rec = ledger.issue(issue_id)
        if rec is None and built is None:
            editions = prepare_editions(cfg, now, sel)
            built = _main(editions)
        # Picked by the clock, --latest or --due: other unfinished issues are pointed out.
        implicit = sel.week is None or sel.due
        others = tuple(i for i in ledger.unfinished() if i != issue_id) if implicit else ()
        if rec is not None and rec.finished and not (include_new or retry_failed):
            route = _router(ledger.editions(rec.id))
            report = _noop(cfg, ledger, rec.id, rec.subject, started, route)
            report.unfinished, report.due = others, sel.due
            return report
        transport = delivery.transport_for(cfg)
        secret = secret_for(cfg, "send", ledger)
        # Built before anything is frozen: a config that cannot work fails here.
        if rec is not None:
            rendered, contents = rec.rendered(), ledger.editions(rec.id)
        else:
            assert built is not None and editions is not None
            rendered, contents = built.rendered, _contents(cfg, editions)
        composers = _composers(cfg, rendered, contents, secret)
        if rec is None or not rec.queued or include_new:
            check_file(cfg.subscribers.file)  # a list that would be misread: refuse now
        if not yes:
            left = ledger.counts(rec.id) if rec else None
            recipients = (
                (left["pending"] + left["deferred"] + (left["failed"] if retry_failed else 0))
                if left and rec and rec.queued
                else count_rows(cfg.subscribers.file) + ledger.count_signups()
            )  # fmt: skip
            new_only = bool(include_new and rec and rec.queued and left is not None)
            if new_only and left is not None:  # about: rows in the list less those queued
                recipients = max(0, count_rows(cfg.subscribers.file) - sum(left.values()))
            plan = SendPlan(
                issue_id,
                rendered.subject,
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
            w = built.issue.window
            # The span closes now if this is an early send: what is published from now on
            # goes out with the next issue (pipeline.place).
            closed = min(now.astimezone(dt.UTC), w.end.astimezone(dt.UTC))
            rec = ledger.freeze(
                built.rendered,
                number=built.issue.number,
                send_at=built.issue.send_at,
                window=(w.since, closed),
                editions=contents,
            )
        report = SendReport(rec.id, rec.subject, transport.name, unfinished=others, due=sel.due)
        if include_new:
            report.resume_options = ("--include-new",)
        queue = not rec.queued or include_new
        route = _router(contents)
        if queue and not _queue(
            cfg, ledger, rec.id, report, stop, first=not rec.queued, signups=ledger, route=route
        ):
            return _finish(ledger, report, None, started)
        if retry_failed and ledger.requeue_failed(rec.id):
            ledger.set_issue_state(rec.id, ISSUE_SENDING)  # unfinished until they have outcomes
        ledger.suppress_pending(rec.id)
        # Before any mail carries their tokens: the ids `digest serve` resolves. Here, not
        # at queue time, so a resume under a changed secret is covered too.
        remember(ledger, secret, ledger.queued_addresses(rec.id))
        result = _deliver(cfg, ledger, rec.id, transport, composers, progress, stop)
        requeued = ledger.requeue(result.requeue) if result.requeue else 0
        _finish(ledger, report, result, started)
        if report.paused:
            report.paused += _resume_note(rec.id, requeued, report.resume_options)
        if report.complete:
            ledger.set_issue_state(rec.id, ISSUE_SENT)
        if isinstance(transport, delivery.OutboxTransport):
            report.folder = transport.folder / "new"
        if result.fatal is not None:
            raise _stopped(result.fatal, report.sent, rec.id, report.resume_options)
        return report


def _main(editions: Sequence[Edition] | None) -> Built | None:
    """The edition the ledger's issue row holds: the first with articles."""
    return next((e.built for e in editions or () if e.built is not None), None)


def _contents(cfg: Config, editions: Sequence[Edition]) -> list[tuple[str, RenderedEmail | None]]:
    """(language, content or None when empty) per edition, as the ledger freezes them;
    [] for a newsletter in one language."""
    if not cfg.newsletter.editions:
        return []
    return [(e.lang, e.built.rendered if e.built else None) for e in editions]


def _composers(
    cfg: Config,
    rendered: RenderedEmail,
    contents: Sequence[tuple[str, RenderedEmail | None]],
    secret: str,
) -> dict[str, Composer]:
    """A Composer per edition with content (language -> Composer; "" for one language).
    Each message's Message-ID, VERP address and unsubscribe token depend on the issue
    and the reader, not on the edition."""
    if not contents:
        return {"": Composer.from_config(cfg, rendered, secret)}
    return {lang: Composer.from_config(cfg, r, secret) for lang, r in contents if r is not None}


@dataclass(frozen=True)
class Route:
    """A reader's language -> the edition they get (``i18n.edition_for``); ``full``: the
    editions with content this week (the readers of the others are not mailed)."""

    langs: tuple[str, ...]
    full: frozenset[str]

    def __call__(self, lang: str) -> str:
        return edition_for(lang, self.langs)


def _router(contents: Sequence[tuple[str, RenderedEmail | None]]) -> Route | None:
    """The route of an issue's frozen editions; None for an issue in one language."""
    if not contents:
        return None
    full = frozenset(lang for lang, r in contents if r is not None)
    return Route(tuple(lang for lang, _ in contents), full)


def resume_command(issue_id: str, *options: str) -> str:
    """The command that resumes (or starts) sending ``issue_id``: named, never "the same
    command again" (a command that picks the issue by the clock may pick another one by
    then). The one spelling every hint uses."""
    return " ".join(("digest send --issue", issue_id, *options))


def _resume_note(issue_id: str, requeued: int, options: Sequence[str] = ()) -> str:
    """What a pause message adds: that nothing is lost (true: refusals in the run of
    failures that caused the pause were put back in the queue) and how to resume."""
    note = ""
    if requeued:
        note = (
            f" The {requeued:,} recipient(s) refused in that run of failures were put back "
            "in the queue: when everyone is refused, the cause is the server, not them."
        )
    return note + f" Nothing is lost: to resume, run: {resume_command(issue_id, *options)}"


def _stopped(
    exc: BaseException,
    sent: int | None = None,
    issue_id: str | None = None,
    options: Sequence[str] = (),
) -> BaseException:
    """A DigestError as it is; anything else (a full disk...) as a DeliveryError. With
    ``sent`` (messages sent in this run), a Fatal also says truly what was sent."""
    if isinstance(exc, Fatal) and sent is not None:
        what = (
            "Nothing was sent."
            if not sent
            else f"{sent:,} message(s) were sent before it stopped, and are recorded; "
            "once this is fixed, resume with: "
            + (resume_command(issue_id, *options) if issue_id else "the same command")
        )
        return Fatal(f"{exc} {what}")
    if isinstance(exc, DigestError | KeyboardInterrupt):
        return exc
    again = resume_command(issue_id, *options) if issue_id else "the same command"
    error = DeliveryError(
        f"sending stopped by an unexpected error: {type(exc).__name__}: {exc}. What was sent "
        f"is recorded; fix the cause, then resume with: {again}"
    )
    error.__cause__ = exc
    return error


def _queue(
    cfg: Config,
    ledger: Ledger,
    issue_id: str,
    report: SendReport,
    stop: threading.Event,
    *,
    first: bool,
    signups: Ledger | None = None,
    route: Route | None = None,
) -> bool:
    """Stream the subscriber list into the ledger's queue. False if stopped midway.

    ``route`` (an issue with editions): each reader is queued with the edition their
    language gets; the readers of an edition empty that week are not queued, only
    counted (``report.empty``).

    Then the readers who signed up and confirmed (issue 16), from ``signups`` (the
    ledger, or for a dry run the real one read-only): an address both in the file and
    signed up is queued once.

    Only a pass that read the file as it is at the end of the pass counts: if the file
    changed during it (``Audience.changed``), the rows that pass queued are taken out
    again and the list is read anew once it has been quiet for ``QUIET`` seconds, up to
    ``READS`` reads; then the send refuses (ContentError). An issue is never marked
    queued from a short or mixed read.
    """
    path = cfg.subscribers.file
    why = ""
    empty: dict[str, int] = {}

    def routed(key: str, email: str, name: str, first: str, lang: str) -> tuple[str, ...]:
        if route is None:
            return key, email, name, first
        edition = route(lang)
        if edition not in route.full:
            empty[edition] = empty.get(edition, 0) + 1
            return ()
        return key, email, name, first, edition

    for attempt in range(1, READS + 1):
        mark = ledger.last_delivery_id()
        audience = Audience(path)
        empty.clear()

        def rows(audience: Audience = audience) -> Iterator[tuple[str, ...]]:
            for s in audience:
                if stop.is_set():
                    return
                if row := routed(s.key, s.email, s.name, s.first_name, s.lang):
                    yield row

        _, skipped = ledger.enqueue(issue_id, rows())
        if stop.is_set():
            ledger.unqueue_after(issue_id, mark)  # a part read: the next run reads it all
            report.interrupted = True
            return False
        changed = audience.changed()
        if changed is None:
            break
        removed = ledger.unqueue_after(issue_id, mark)
        why = changed
        if attempt == READS:
            raise ContentError(
                path,
                f"the subscriber list changed while it was being read ({why}), "
                f"{READS} times in a row; nothing was queued or sent from those reads. "
                "If a job writes this file, have it write another file and rename it "
                "into place when done; then run the send again",
            )
        log.warning(
            "%s changed while it was being read (%s): the %d row(s) queued from that read "
            "were taken out; reading it again once it has not changed for %.0f s",
            path,
            why,
            removed,
            QUIET,
        )
        if not _wait_quiet(Path(path), stop):
            report.interrupted = True
            return False
    report.problems = [str(p) for p in audience.problems]
    if audience.broken is not None:  # the file changed since it was checked: still refuse
        b = audience.broken
        raise ContentError(b.path, b.message, line=b.line)
    if signups is not None:
        confirmed = (
            row
            for key, email, name, lang, *_ in signups.signups(SIGNUP_ACTIVE)
            if (row := routed(key, email, name, "", lang))
        )
        ledger.enqueue(issue_id, confirmed)  # in the file too: folded, not a duplicate
        if stop.is_set():
            report.interrupted = True
            return False
    report.empty = empty
    if first:
        ledger.mark_queued(issue_id, invalid=audience.invalid, duplicates=skipped)
    return True


def _wait_quiet(path: Path, stop: threading.Event) -> bool:
    """Wait until ``path`` has not changed (size, mtime, inode) for ``QUIET`` seconds, or
    ``QUIET_MAX`` have passed. False if ``stop`` was set meanwhile."""

    def look() -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino

    began = last_change = time.monotonic()
    seen = look()
    while time.monotonic() - last_change < QUIET and time.monotonic() - began < QUIET_MAX:
        if stop.wait(0.1):
            return False
        now = look()
        if now != seen:
            seen, last_change = now, time.monotonic()
    return True


def _deliver(
    cfg: Config,
    ledger: Ledger,
    issue_id: str,
    transport: Transport,
    composers: dict[str, Composer],
    progress: Callable[[int, int], None] | None,
    stop: threading.Event,
) -> EngineResult:
    """Run the delivery engine over the issue's pending rows, recording each outcome.
    ``composers``: per edition (``_composers``); each row is composed with its own."""

    def jobs() -> Iterator[Job]:
        for row in ledger.to_send(issue_id):
            if row.suppressed:  # unsubscribed while this send was running
                ledger.mark(row.id, SUPPRESSED, attempted=False)
                continue
            yield Job(row.id, row.email, row.name, row.first_name, edition=row.edition)

    def compose(job: Job) -> Composed:
        return composers[job.edition].compose(Recipient(job.email, job.name, job.first_name))

    states = {"sent": SENT, "failed": FAILED, "deferred": DEFERRED, "retry": PENDING}

    def unsubscribed(job: Job) -> bool:
        # One primary-key lookup per message (see BENCHMARKS.md, "Suppression"): an
        # unsubscribe during a long, rate-limited send is honoured for every row not sent.
        return ledger.is_suppressed(job.email)

    def record(job: Job, kind: str, detail: str, message_id: str) -> None:
        if kind == "suppressed":
            ledger.mark(job.id, SUPPRESSED, attempted=False)
            return
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
    signers = [c.signer for c in composers.values() if c.signer is not None]
    if signers:  # signing is slow enough to do ahead (prefetch.py)
        from .prefetch import Ahead, composing_threads

        threads = composing_threads(signers[0].key.algorithm)  # one key for every edition
        ahead = Ahead(source, compose, threads=threads)
        source, make = ahead.jobs(), ahead.compose
    engine = delivery.Engine(
        transport,
        source,
        compose=make,
        record=record,
        settings=delivery.settings_for(cfg),
        limiter=limiter,
        stop=stop,
        skip=unsubscribed,
    )
    tick = None
    if progress is not None:

        def tick(r: EngineResult) -> None:
            progress(r.sent + r.failed + r.deferred, total)

    try:
        return engine.run(tick)
    finally:
        if ahead is not None:
            ahead.close()


def _finish(
    ledger: Ledger, report: SendReport, result: EngineResult | None, started: float
) -> SendReport:
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
    report.editions = ledger.edition_counts(report.issue_id)
    report.empty_editions = tuple(
        lang for lang, full in ledger.edition_langs(report.issue_id) if not full
    )
    report.seconds = time.perf_counter() - started
    if report.pending and not (report.paused or report.interrupted):
        report.interrupted = True  # e.g. a fatal error stopped it
    return report


def _noop(
    cfg: Config,
    ledger: Ledger,
    issue_id: str,
    subject: str,
    started: float,
    route: Route | None = None,
) -> SendReport:
    """A repeated send of a finished issue: count who joined since, send nothing (nor
    count the readers of an edition that was empty: they would get nothing either)."""
    report = _finish(ledger, SendReport(issue_id, subject, noop=True), None, started)
    report.already_sent = ledger.counts(issue_id)["sent"]
    # A reader in the file twice, or in the file and signed up, is one reader.
    langs = {s.key: s.lang for s in Audience(cfg.subscribers.file)}
    for key, _, _, lang, *_ in ledger.signups(SIGNUP_ACTIVE):
        langs.setdefault(key, lang)  # the file's row is the one a send queues

    def new(key: str, lang: str) -> bool:
        if route is not None and route(lang) not in route.full:
            return False
        return not ledger.is_queued(issue_id, key) and not ledger.is_suppressed(key)

    report.new_since = sum(1 for key, lang in langs.items() if new(key, lang))
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
    started = time.perf_counter()
    real = Path(cfg.ledger.path)
    with contextlib.ExitStack() as stack:
        ro = stack.enter_context(Ledger(real, readonly=True)) if real.exists() else None
        editions = prepare_editions(cfg, now, sel) if sel.latest else None
        built = _main(editions)
        issue_id = built.issue.id if built else choose_window(cfg, now, sel).id
        rec = ro.issue(issue_id) if ro else None
        if rec is not None:
            rendered, contents = rec.rendered(), ro.editions(issue_id) if ro else []
        else:
            editions = editions or prepare_editions(cfg, now, sel)
            built = _main(editions)
            assert built is not None
            rendered, contents = built.rendered, _contents(cfg, editions)
        secret = secret_for(cfg, "dry-run", ro)
        check_file(cfg.subscribers.file)
        folder = cfg.output.folder / issue_id / "dry-run"
        for old in [*folder.glob("new/*.eml"), *folder.glob("tmp/*.eml")]:
            old.unlink()
        transport = delivery.transport_for(cfg, outbox=folder)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="digest-dry-run-"))
        scratch = stack.enter_context(Ledger(Path(tmp) / "dry-run.sqlite3"))
        if ro is not None:
            scratch.copy_suppressions(ro.suppressions())
        scratch.freeze(rendered, editions=contents)
        report = SendReport(issue_id, rendered.subject, f"dry run: {transport.name}", dry_run=True)
        route = _router(contents)
        if _queue(cfg, scratch, issue_id, report, stop, first=True, signups=ro, route=route):
            scratch.suppress_pending(issue_id)
            composers = _composers(cfg, rendered, contents, secret)
            result = _deliver(cfg, scratch, issue_id, transport, composers, progress, stop)
            _finish(scratch, report, result, started)
            if result.fatal is not None:
                raise _stopped(result.fatal)
        report.folder = folder / "new"
        if isinstance(transport, delivery.OutboxTransport) and transport.sample is not None:
            report.not_written = transport.sample.skipped
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
    Message-ID (never the one the real send will use), no delivery recorded (only the
    token ids of ``to``, so its unsubscribe links work)."""
    recipients = parse_addresses(to)
    built = prepare(cfg, now, sel)
    transport = delivery.transport_for(cfg)
    secret = secret_for(cfg, "preview")
    composer = Composer.from_config(
        cfg, built.rendered, secret, subject_prefix="[Preview] ", random_ids=True
    )
    with Ledger(cfg.ledger.path) as ledger:  # so the preview's unsubscribe link resolves
        remember(ledger, secret, (r.email for r in recipients))
    report = PreviewReport(built.issue.id, "[Preview] " + built.rendered.subject, transport.name)
    if isinstance(transport, delivery.OutboxTransport):
        report.folder = transport.folder / "new"

    def compose(job: Job) -> Composed:
        return composer.compose(Recipient(job.email))

    def record(job: Job, kind: str, detail: str, message_id: str) -> None:
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
    editions: dict[str, dict[str, int]] = field(default_factory=dict)  # counts per edition
    empty_editions: tuple[str, ...] = ()  # editions with no article that week: not sent


def status(cfg: Config, issue_id: str | None = None) -> list[IssueStatus]:
    """Counts per delivery state (and failures, for one issue) from the ledger, read-only."""
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
                ledger.edition_counts(r.id),
                tuple(lang for lang, full in ledger.edition_langs(r.id) if not full),
            )
            for r in records
            if r is not None
        ]
