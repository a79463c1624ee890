"""The ``digest`` command. Thin: each command parses options, calls the pipeline, and
turns ``DigestError``s into a message and an exit code (tracebacks only with --debug).

Exit codes: 0 ok; 1 error; 2 config or usage error; 3 content errors (with --strict,
warnings too); 4 render error; 5 delivery stopped or paused; 10 nothing to send.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import gc
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from .errors import (
    INTERRUPTED,
    ConfigError,
    ContentError,
    DeliveryError,
    DigestError,
    LedgerError,
    NotDue,
    NothingToSend,
)
from .text import utcnow

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable

    from .config import Config
    from .model import Problem
    from .pipeline import Built, Selection
    from .sending import SendPlan, SendReport

F = TypeVar("F", bound=Callable[..., Any])
EXIT_NOTHING = NothingToSend.exit_code

# At exit the interpreter tears down ~400 modules and the cyclic GC walks every object
# again: ~150 ms of a 0.9 s `digest build` (bench/build.py). Freezing them first skips
# that walk; atexit handlers and reference counting still run as usual.
atexit.register(gc.freeze)


class Ctx:
    def __init__(self, config: Path, debug: bool, now: str | None) -> None:
        self.config_path = config
        self.debug = debug
        self._now = now
        self._cfg: Config | None = None

    @property
    def cfg(self) -> Config:
        if self._cfg is None:
            from .config import load

            self._cfg = load(self.config_path)
            for w in self._cfg.warnings:
                warn(f"{self.config_path}: {w}")
        return self._cfg

    def now(self) -> dt.datetime:
        """The clock. ``--now``/``DIGEST_NOW`` pin it (tests, and "what would be sent")."""
        if self._now:
            try:
                when = dt.datetime.fromisoformat(self._now)
            except ValueError:
                raise ConfigError("--now", [("--now", f"{self._now!r} is not ISO 8601")]) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=self.cfg.schedule.tz)
            return when
        return utcnow()


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def error(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)


def handle_errors(f: F) -> F:
    """Run a command body; a DigestError becomes its message and exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        obj = ctx.find_object(Ctx)
        debug = obj.debug if obj else False
        try:
            return f(*args, **kwargs)
        except NothingToSend as exc:
            click.echo(str(exc))
            ctx.exit(exc.exit_code)
        except NotDue as exc:  # cron mode, nothing due: a missed week goes to stderr
            (warn if exc.missed else click.echo)(str(exc))
            ctx.exit(exc.exit_code)
        except DigestError as exc:
            if debug:
                raise
            error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def selection_options(f: F) -> F:
    """--week / --latest: which issue to act on (default: the next one to be sent)."""
    f = click.option("--latest", is_flag=True, help="The newest issue that has articles.")(f)
    f = click.option("--week", metavar="YYYY-Www", help="The issue of that ISO week.")(f)
    return f


def _selection(week: str | None, latest: bool, due: bool = False) -> Selection:
    from .pipeline import Selection

    if week and latest:
        raise click.UsageError("--week and --latest exclude each other")
    return Selection(week=week, latest=latest, due=due)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default="config.toml",
    show_default=True,
    envvar="DIGEST_CONFIG",
    help="The config file (env DIGEST_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--now", envvar="DIGEST_NOW", hidden=True, help="Pin the clock (ISO 8601).")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context, config: Path, debug: bool, now: str | None) -> None:
    """Turn a folder of Markdown articles into a weekly email newsletter.

    \b
    Example:
        digest --config config.example.toml build --latest
    """
    # Log records reach the user as "warning: ...", like the CLI's own messages; --debug
    # adds the logger's name and the debug records.
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(message)s",
    )
    if not debug:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_PlainFormatter())
    ctx.obj = Ctx(config, debug, now)


def _report_problems(problems: Iterable[Problem], strict: bool) -> tuple[int, int]:
    errors = warnings = 0
    for p in problems:
        if p.level == "error":
            errors += 1
            error(str(p))
        else:
            warnings += 1
            warn(str(p))
    return errors, warnings


@main.command()
@selection_options
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Output folder.")
@click.option("--strict", is_flag=True, help="Fail on warnings and skipped files.")
@click.pass_obj
@handle_errors
def build(obj: Ctx, week: str | None, latest: bool, out: Path | None, strict: bool) -> None:
    """Build an issue into out/<issue-id>/ (email.html, email.txt, issue.json).

    \b
    Example:
        digest build --latest
    """
    from .pipeline import cache_for, prepare_editions, write_build

    started = time.perf_counter()
    cfg = obj.cfg
    sel, cache = _selection(week, latest), cache_for(cfg)
    editions = prepare_editions(cfg, obj.now(), sel, cache)
    # The editions read one folder: a bad file is reported once, not once per edition.
    found = (p for e in editions if e.built for p in e.built.collection.problems + e.built.findings)
    errors, warnings = _report_problems(dict.fromkeys(found), strict)
    for e in editions:
        if e.built is None:
            click.echo(f"Edition {e.lang}: not built, {e.empty}; its readers are not mailed")
            continue
        built = e.built
        folder = write_build(cfg, built, out, edition=bool(cfg.newsletter.editions))
        r = built.rendered
        size_kb = len(r.html.encode()) / 1024
        what = f"Edition {e.lang} of issue" if cfg.newsletter.editions else "Issue"
        click.echo(
            f"{what} {built.issue.id} (#{built.issue.number}): "
            f"{_n(len(built.issue.items), 'article')}"
            f"{f' (+{built.issue.more} more in the archive)' if built.issue.more else ''}, "
            f"HTML {size_kb:.1f} KB -> {_rel(folder)}/"
        )
        click.echo(f"Subject: {r.subject}")
    built = next(e.built for e in editions if e.built is not None)
    col = built.collection
    if built.notice:
        click.echo(f"notice: {built.notice}")
    from .pipeline import skipped_summary

    skipped = skipped_summary(col, errors)
    click.echo(
        f"Done: read {col.files} files{f' (skipped {skipped})' if skipped else ''} "
        f"in {time.perf_counter() - started:.2f} s"
    )
    if strict and (errors or warnings):
        raise click.exceptions.Exit(ContentError.exit_code)


def lang_option(f: F) -> F:
    return click.option(
        "--lang",
        metavar="LANG",
        help="The edition in this language (newsletter.languages; default: the first).",
    )(f)


def _edition(cfg: Any, lang: str | None) -> Any:
    """The config of the edition ``--lang`` names (default: the main language); says
    on stderr which edition a command uses when the newsletter has several."""
    from .i18n import primary

    editions = cfg.newsletter.editions
    if not editions:
        if lang and primary(lang) != primary(cfg.newsletter.language):
            raise click.UsageError(
                f"--lang {lang}: this newsletter is in {cfg.newsletter.language} only "
                "(newsletter.languages lists the editions of one in several)"
            )
        return cfg
    chosen = next((e for e in editions if primary(e) == primary(lang)), None) if lang else None
    if lang and chosen is None:
        raise click.UsageError(f"--lang {lang}: not an edition ({', '.join(editions)})")
    chosen = chosen or editions[0]
    click.echo(f"Edition {chosen} (of {', '.join(editions)}; --lang picks another)", err=True)
    return cfg.edition(chosen)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@main.command()
@selection_options
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option(
    "--dkim-dns", is_flag=True, help="Look up the DKIM record in DNS and compare it with the key."
)
@click.pass_obj
@handle_errors
def check(obj: Ctx, week: str | None, latest: bool, strict: bool, dkim_dns: bool) -> None:
    """Validate the config and every content file, render the issue and inspect it.

    Reports bad files, the size against Gmail's clip limit, images without alt text,
    relative links, and a missing unsubscribe link or postal address. With [dkim],
    prints the TXT record to publish; --dkim-dns checks the published one.

    \b
    Example:
        digest check --latest --strict
        digest check --dkim-dns
    """
    from .pipeline import check as run_check

    cfg = obj.cfg
    if cfg.dkim.domain or dkim_dns:
        _check_dkim(cfg, dkim_dns)
    report = run_check(cfg, obj.now(), _selection(week, latest))
    _report_problems(report.problems, strict)
    if report.site:
        click.echo(report.site)
    if report.skipped:
        click.echo(f"Skipped quietly: {report.skipped}")
    if report.notice:
        click.echo(f"notice: {report.notice}")
    if report.built and report.built.notice:
        click.echo(f"notice: {report.built.notice}")
    for e in report.editions:
        if e.built is None:
            click.echo(f"Edition {e.lang}: {e.empty}; it is not sent, its readers not mailed")
    shown: list[Built | None] = [e.built for e in report.editions if e.built] or [report.built]
    for b in (b for b in shown if b is not None):
        kb = len(b.rendered.html.encode()) / 1024
        what = f"Edition {b.issue.lang} of issue" if report.editions else "Issue"
        click.echo(
            f"{what} {b.issue.id}: {_n(len(b.issue.items), 'article')}, HTML {kb:.1f} KB "
            f"(warn above {cfg.output.warn_kb} KB, Gmail clips above {cfg.output.max_kb} KB)"
        )
    click.echo(
        f"Checked {report.files} files: {report.errors} error(s), {report.warnings} warning(s)"
    )
    if report.errors or (strict and (report.warnings or cfg.warnings)):
        raise click.exceptions.Exit(ContentError.exit_code)


def _check_dkim(cfg: Any, dns: bool) -> None:
    from .signing import check_dns, dns_name, load_key

    if not cfg.dkim.domain:
        why = "--dkim-dns: no [dkim] section; set dkim.domain, dkim.selector and dkim.key_file"
        raise ConfigError(cfg.source or "config", [("dkim.domain", why)])
    key = load_key(cfg.dkim.key_file, str(cfg.source or "config"))
    click.echo(f"DKIM: {key.algorithm}, {key.bits} bits; publish this TXT record:")
    click.echo(f'  {dns_name(cfg)}.  IN TXT  "{key.txt_record()}"')
    if dns:
        problems = check_dns(cfg)
        for problem in problems:
            error(problem)
        if problems:
            raise click.exceptions.Exit(1)
        click.echo(f"DKIM: the record at {dns_name(cfg)} matches {_rel(key.path)}")


@main.command()
@click.option(
    "--maildir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The Maildir the bounce address delivers to (default: bounces.maildir).",
)
@click.option(
    "--imap",
    metavar="URL",
    help="imaps://USER@HOST/FOLDER instead; password from $DIGEST_IMAP_PASSWORD "
    "(bounces.imap_password_env).",
)
@click.pass_obj
@handle_errors
def bounces(obj: Ctx, maildir: Path | None, imap: str | None) -> None:
    """Read bounces, suppress the readers that bounced, and move what was handled.

    Hard bounces suppress a reader at once; soft ones after bounces.soft_limit within
    bounces.soft_days. Handled messages move to the bounces.done_folder sub-folder;
    what is not recognised stays for you to read.

    \b
    Example:
        digest bounces --maildir ~/Maildir/.bounces
        DIGEST_IMAP_PASSWORD=... digest bounces --imap imaps://bounces@mail.example.com/INBOX
    """
    from .bounces import run as run_bounces

    r = run_bounces(obj.cfg, maildir, imap)
    click.echo(f"Read {r.read:,} message(s): {r.handled:,} handled, {r.left:,} left in the mailbox")
    click.echo(f"  {'hard bounces':<26}{r.hard:>10,}")
    click.echo(f"  {'soft bounces':<26}{r.soft:>10,}")
    if r.repeated:
        click.echo(f"  {'already recorded':<26}{r.repeated:>10,}")
    click.echo(f"  {'readers suppressed':<26}{len(r.suppressed):>10,}")
    for (kind, reason), n in r.reasons.most_common():
        click.echo(f"  {n:>8,} x {kind}: {reason}")
    for address, why in r.suppressed[:20]:
        click.echo(f"    suppressed {address}: {why}")
    if r.unknown:
        warn(f"{len(r.unknown):,} bounced address(es) were never mailed by us, e.g. "
             f"{r.unknown[0]}; not suppressed")  # fmt: skip


@main.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--templates", is_flag=True, help="Also copy the default templates to edit.")
@handle_errors
def init(folder: Path, templates: bool) -> None:
    """Create a new newsletter in FOLDER: config.toml, content/, subscribers.csv.

    Refuses to overwrite existing files.

    \b
    Example:
        digest init my-newsletter --templates
    """
    from .scaffold import init as scaffold

    for path in scaffold(folder, templates=templates):
        click.echo(f"created {path}")
    click.echo(f"Next: cd {folder} && digest build --latest")


@main.command()
@click.option("--host", help="Address to listen on (default: web.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: web.port, 8000).")
@click.option("--preview", is_flag=True, help="Also serve the editor's live preview at /preview.")
@selection_options
@click.pass_obj
@handle_errors
def serve(
    obj: Ctx, host: str | None, port: int | None, preview: bool, week: str | None, latest: bool
) -> None:
    """Serve unsubscribe links (RFC 8058 one-click), the issue archive and the preview.

    Checks links with the secret the sends sign them with (unsubscribe.secret_env;
    with the outbox transport, the development secret kept in the ledger). Listens on
    127.0.0.1 unless --host says otherwise; put a TLS proxy in front of it.

    \b
    Example:
        DIGEST_SECRET=... digest serve --preview --port 8000
    """
    from .web import serve as run

    cfg = obj.cfg
    bind = host or cfg.web.host
    if bind not in ("127.0.0.1", "localhost", "::1"):
        warn(f"listening on {bind}: reachable from other machines; serve it behind HTTPS")
        if preview:
            warn("--preview shows unsent issues to anyone who can reach this address")

    def ready(url: str) -> None:
        extra = f"; preview at {url}preview" if preview else ""
        if preview and cfg.newsletter.editions:
            extra += f" (the {cfg.newsletter.language} edition)"
        click.echo(f"Serving {url} (archive, unsubscribe links){extra}")
        click.echo("Press Ctrl-C to stop.")

    run(
        cfg,
        host=host,
        port=port,
        preview=preview,
        selection=_selection(week, latest),
        now=obj.now,
        on_ready=ready,
        log_level="debug" if obj.debug else "info",
    )


@main.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write the static archive into.",
)
@click.pass_obj
@handle_errors
def archive(obj: Ctx, out: Path) -> None:
    """Write the archive of sent issues as static HTML, to host anywhere.

    The same pages 'digest serve' answers: index.html, issues/<id>/index.html and
    unsubscribe/index.html, with no personal data.

    \b
    Example:
        digest archive --out site/newsletter
    """
    from .web import write_archive

    files = write_archive(obj.cfg, out)
    issues = sum(p.parent.parent.name == "issues" for p in files)
    click.echo(f"Done: wrote {issues} issue(s), {len(files)} files -> {_rel(out)}/")


@main.command(name="export")
@selection_options
@click.option("--issue", "issue_id", metavar="ID", help="The issue with this id (its ISO week).")
@click.option(
    "--for",
    "service",
    required=True,
    metavar="SERVICE",
    help="mailchimp, sendgrid, postmark, mailgun, ses, listmonk, buttondown, generic, "
    "or a preset from [export.presets] in the config.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the files into this folder (default: out/<issue-id>/<service>/).",
)
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the HTML alone, for piping.")
@click.option(
    "--push",
    "do_push",
    is_flag=True,
    help="Also create the draft (or template) through the service's API, or update the one "
    "an earlier push created. Never schedules or sends. The key comes from the variable "
    "named in [export.SERVICE] key_env.",
)
@click.option(
    "--api-url",
    metavar="URL",
    help="With --push: the API's address instead of the vendor's (an EU region, a "
    "self-hosted listmonk).",
)
@lang_option
@click.pass_obj
@handle_errors
def export_(
    obj: Ctx,
    week: str | None,
    latest: bool,
    issue_id: str | None,
    service: str,
    out: Path | None,
    to_stdout: bool,
    do_push: bool,
    api_url: str | None,
    lang: str | None,
) -> None:
    """Write an issue with a mail service's merge tags, plus its API payload.

    email.html, email.txt, subject.txt, preheader.txt and payload.json (the request
    that creates a draft campaign or template there). Nothing is sent. With --push,
    digest makes that request itself and prints the draft's id and where to open it.

    \b
    Example:
        digest export --for mailchimp --latest
        digest export --for mailchimp --lang ja
        SENDGRID_API_KEY=... digest export --for sendgrid --push
    """
    from .export import export, folder_for, preset_for, write
    from .pipeline import prepare

    if issue_id and week and issue_id != week:
        raise click.UsageError("--issue and --week name different issues")
    if api_url and not do_push:
        raise click.UsageError("--api-url goes with --push")
    if do_push and to_stdout:
        raise click.UsageError("--push and --stdout exclude each other")
    if api_url and not re.match(r"^https?://[^/\s]+", api_url):
        raise click.UsageError(f"--api-url {api_url!r} is not an absolute http(s) URL")
    preset_for(obj.cfg, service)  # an unknown service fails before any work
    if do_push:
        from .push import endpoint

        # A missing key or setting fails before any work.
        resolved = endpoint(obj.cfg, service, api_url)
    cfg = _edition(obj.cfg, lang)
    edition = cfg.newsletter.language if cfg.newsletter.editions else ""
    built = prepare(cfg, obj.now(), _selection(issue_id or week, latest))
    exp = export(built.rendered, cfg, service)
    if to_stdout:
        click.echo(exp.html.encode("utf-8"), nl=False)  # bytes: no re-encoding by locale
        return
    folder = write(exp, folder_for(cfg, exp, out, edition))
    click.echo(f"Exported {exp.issue_id} for {exp.service} -> {_rel(folder)}/")
    for note in exp.payload.get("notes", ()):
        click.echo(f"  note: {note}")
    if do_push:
        from .push import push_export

        # One draft per edition: each is kept under "<issue>/<lang>".
        key = f"{exp.issue_id}/{edition}" if edition else exp.issue_id
        pushed = push_export(cfg, exp.service, key, exp.payload, api_url=api_url, resolved=resolved)
        verb = "Created" if pushed.created else "Updated"
        click.echo(f"{verb} the draft at {pushed.service}: id {pushed.remote_id}")
        click.echo(f"  open: {pushed.where}")
        click.echo("  Nothing was scheduled or sent: review it there, then send it from there.")


@main.command()
@click.option(
    "--next",
    "count",
    type=click.IntRange(1, 520),
    metavar="N",
    help="Print the next N send times (local and UTC) and exit.",
)
@click.pass_obj
@handle_errors
def schedule(obj: Ctx, count: int | None) -> None:
    """Send every issue at its send time (schedule.day, .time, .timezone); runs until stopped.

    A send missed while this was not running is made up at start if it is at most
    schedule.grace_hours late. SIGTERM or Ctrl-C: a send in progress finishes the
    messages in flight, then the process exits 0. For cron or a systemd timer instead,
    see 'digest send --due'.

    \b
    Example:
        digest schedule --next 5
    """
    from . import schedule as scheduling

    cfg = obj.cfg
    if count:
        s = cfg.schedule
        click.echo(f"Next {count} sends ({s.day} {s.time} {s.timezone}):")
        for issue_id, when in scheduling.next_sends(cfg, obj.now(), count):
            click.echo(f"  {issue_id}  {scheduling.describe(cfg, when)}")
        return
    if not obj.debug:  # a service: say what it does and when it runs next
        logging.getLogger("digest").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    from .scheduler import run

    sys.exit(run(cfg, obj.now))


@main.command()
@selection_options
@click.option("--to", multiple=True, metavar="ADDR[,ADDR...]", help="Recipients.")
@click.option(
    "--serve",
    "live",
    is_flag=True,
    help="Instead: show the issue in the browser, reloaded as you edit (serve --preview).",
)
@lang_option
@click.pass_obj
@handle_errors
def preview(
    obj: Ctx, week: str | None, latest: bool, to: tuple[str, ...], live: bool, lang: str | None
) -> None:
    """Send the issue to a few addresses only, with "[Preview]" in the subject.

    The same render and path as the real send; nothing is recorded in the ledger.
    With --serve, nothing is sent: 'digest serve --preview' on web.host and web.port.

    \b
    Example:
        digest preview --to me@example.com,editor@example.com
        digest preview --to me@example.com --lang ja
        digest preview --serve
    """
    if live == bool(to):
        raise click.UsageError("give --to ADDR (send a preview) or --serve (a live preview)")
    if live:
        click.get_current_context().invoke(serve, preview=True, week=week, latest=latest)
        return
    from .sending import preview as run_preview

    report = run_preview(_edition(obj.cfg, lang), obj.now(), _selection(week, latest), to)
    click.echo(f"{report.subject} ({report.issue_id}) via {report.transport}:")
    for address in report.sent:
        click.echo(f"  sent to {address}")
    for address, why in report.failed:
        error(f"{address}: {why}")
    if report.folder:
        click.echo(f"Messages in {_rel(report.folder)}/")
    if report.failed:
        raise click.exceptions.Exit(DeliveryError.exit_code)


@main.command()
@selection_options
@click.option("--issue", metavar="ID", help="The issue to send or resume, e.g. 2026-W48.")
@click.option("--due", is_flag=True, help="Cron mode: the issue due now, within the grace.")
@click.option("--dry-run", is_flag=True, help="Write the messages to files; no ledger, no server.")
@click.option("--include-new", is_flag=True, help="Mail only subscribers who joined since.")
@click.option(
    "--retry-failed", is_flag=True, help="Try recipients refused for good (5xx) once more."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@handle_errors
def send(
    obj: Ctx,
    week: str | None,
    latest: bool,
    issue: str | None,
    due: bool,
    dry_run: bool,
    include_new: bool,
    retry_failed: bool,
    yes: bool,
) -> None:
    """Send an issue to every subscriber exactly once (default: the one 'build' builds).

    Resumable: after a crash, a pause or Ctrl-C, run 'digest send --issue ID' (the
    summary names the ID); no one is skipped or mailed twice, and the content is the one
    frozen at the first send. Once
    sent, a repeat does nothing (--include-new mails those who joined since;
    --retry-failed tries those refused for good once more). SIGTERM or Ctrl-C finishes
    the messages in flight, records them and exits. --dry-run writes the messages to
    out/<issue>/dry-run/ and touches no ledger and no server.

    Exit codes: 0 done; 5 paused, stopped, deferred recipients or another send running
    (run again to resume), or with --due another issue started and not finished (the
    next --due run resumes it, however late); 10 nothing to send; 2 config or usage
    error; 3 the subscriber list cannot be read as it is (missing, no email column, a
    stray quote, or it kept changing while it was read).

    \b
    Example:
        digest send --latest --dry-run
        digest send --latest --yes
        digest send --issue 2026-W48 --include-new
    """
    from .sending import send as run_send

    if issue and (week or latest or due):
        raise click.UsageError("--issue excludes --week, --latest and --due")
    if due and (week or latest):
        raise click.UsageError("--due excludes --week and --latest: it sends the issue due now")
    cfg, now = obj.cfg, obj.now()
    sel = _selection(issue or week, latest)
    if due:
        from .schedule import due_selection

        sel = due_selection(cfg, now)  # NotDue when nothing is due within the grace
    if not (yes or dry_run or (sys.stdin.isatty() and sys.stderr.isatty())):
        raise click.UsageError("not a terminal, so nobody can confirm: pass --yes to send")
    import threading

    stop = threading.Event()
    if yes or dry_run:
        _stop_on_signals(stop)

    warned: list[str] = []

    def confirm(plan: SendPlan) -> bool:
        warned.extend(_warn_unfinished(plan.issue_id, plan.unfinished))
        # Ctrl-C at the prompt cancels (Python's own handler is still in place); the
        # "finish the messages in flight" handler is armed once the send is confirmed.
        ok = _confirm_send(plan)
        if ok:
            _stop_on_signals(stop)
        return ok

    bar = _Progress(stop)
    try:
        report = run_send(
            cfg, now, sel, dry_run=dry_run, include_new=include_new, retry_failed=retry_failed,
            yes=yes or dry_run, progress=bar, stop=stop, confirm=confirm,
        )  # fmt: skip
    finally:
        bar.close()
    if not warned:
        _warn_unfinished(report.issue_id, report.unfinished)
    _print_send_report(report)
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM or Ctrl-C: finish the messages in flight, record them, stop (``stop`` is
    set). A second Ctrl-C aborts at once (messages in flight may then be sent again on
    resume)."""
    import signal

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


class _Progress:
    """Progress bar on stderr with rate and ETA (drawn only on a terminal)."""

    def __init__(self, stop: Any) -> None:
        self.stop = stop
        self.bar: Any = None
        self.started = 0.0
        self.told = False

    def __call__(self, done: int, total: int) -> None:
        if self.stop.is_set() and not self.told:
            self.told = True
            click.echo("\nStopping: finishing the messages in flight...", err=True)
        if self.bar is None:
            self.started = time.monotonic()
            self.bar = click.progressbar(
                length=max(total, 1),
                label="Sending",
                file=sys.stderr,
                show_eta=True,
                show_pos=True,
                item_show_func=lambda rate: rate,
            )
            self.bar.__enter__()
        rate = done / max(time.monotonic() - self.started, 1e-3)
        self.bar.update(max(0, done - self.bar.pos), f"{rate:,.0f} msg/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _warn_unfinished(issue_id: str, unfinished: tuple[str, ...]) -> tuple[str, ...]:
    from .sending import resume_command

    for other in unfinished:
        warn(
            f"{other} was started but is not finished; this command picked {issue_id}. "
            f"To finish {other}: {resume_command(other)}"
        )
    return unfinished


def _confirm_send(plan: SendPlan) -> bool:
    if plan.include_new:
        what = (
            f"Send {plan.issue_id} “{plan.subject}” to the subscribers who joined since it "
            f"was sent (about {plan.recipients:,})"
        )
    elif plan.retry_failed:
        what = f"Send {plan.issue_id} “{plan.subject}” to the {plan.recipients:,} refused or left"
    elif plan.resume:
        what = f"Resume {plan.issue_id} “{plan.subject}” for the {plan.recipients:,} left"
    else:
        what = f"Send {plan.issue_id} “{plan.subject}” to about {plan.recipients:,} subscribers"
    return click.confirm(f"{what} via {plan.transport}?", default=False, err=True)


def _print_send_report(r: SendReport) -> None:
    from .sending import resume_command

    for problem in r.problems:
        warn(f"skipped: {problem}")
    if r.problems and r.invalid > len(r.problems):
        warn(f"... and {r.invalid - len(r.problems):,} more bad rows in the subscriber list")
    if r.cancelled:
        click.echo("Not sent.")
        return
    if r.noop:
        click.echo(f"{r.issue_id} “{r.subject}” was already sent to {r.already_sent:,}.")
        if r.new_since:
            click.echo(
                f"{r.new_since:,} subscriber(s) joined since. To mail the issue to them "
                f"(only them): {resume_command(r.issue_id, '--include-new')}"
            )
        else:
            click.echo("No one has joined since.")
        return
    click.echo(f"{'Dry run of ' if r.dry_run else ''}{r.issue_id} “{r.subject}” via {r.transport}")
    for label, n in (
        ("sent", r.sent),
        ("already sent", r.already_sent),
        ("suppressed (unsubscribed)", r.suppressed),
        ("invalid (skipped)", r.invalid),
        ("duplicates (folded)", r.duplicates),
        ("failed (refused)", r.failed),
        ("deferred (will retry)", r.deferred),
        ("not tried yet", r.pending),
    ):
        if n or label in ("sent", "failed (refused)"):
            click.echo(f"  {label:<26}{n:>10,}")
    _print_editions(r.editions, r.empty_editions, r.empty)
    for reason, n in r.reasons[:10]:
        click.echo(f"  {n:>8,} x {reason}")
    for address, reason in r.failures[:10]:
        click.echo(f"    {address}: {reason}")
    if r.folder:
        click.echo(f"Messages in {_rel(r.folder)}/")
    if r.not_written:
        click.echo(
            f"  {r.sent - r.not_written:,} written, the other {r.not_written:,} composed and "
            "counted only (delivery.dry_run_sample)"
        )
    rate = r.sent / r.seconds if r.seconds else 0
    click.echo(f"Done in {r.seconds:.1f} s ({rate:,.0f} messages/s).")
    if r.paused:
        error(r.paused)
    elif r.interrupted and r.dry_run:
        warn("stopped before the end")
    elif r.interrupted:
        again = resume_command(r.issue_id, *r.resume_options)
        warn(f"stopped before the end (none is lost): to resume, run: {again}")
    elif r.deferred:
        warn(
            f"{r.deferred:,} recipient(s) deferred after retries: try them later with: "
            f"{resume_command(r.issue_id, *r.resume_options)}"
        )
    if r.failed and not r.dry_run:
        click.echo(
            f"{r.failed:,} refused for good. If the server was at fault, not them, try them "
            f"again once it is fixed: {resume_command(r.issue_id, '--retry-failed')}"
        )


def _print_editions(
    counts: dict[str, dict[str, int]], empty: Iterable[str], readers: dict[str, int]
) -> None:
    """Per edition of an issue in several languages: its deliveries, or that it was
    empty that week (with how many readers were therefore not mailed, when known)."""
    empty = set(empty)
    for lang, c in counts.items():
        if lang in empty:
            n = readers.get(lang)
            who = f"; {n:,} reader(s) not mailed" if n else "; its readers are not mailed"
            click.echo(f"  edition {lang:<6} no article that week, not sent{who}")
            continue
        click.echo(
            f"  edition {lang:<6} sent {c['sent']:,}  failed {c['failed']:,}  "
            f"deferred {c['deferred']:,}  pending {c['pending']:,}  "
            f"suppressed {c['suppressed']:,}"
        )


@main.command()
@click.argument("issue", required=False)
@click.pass_obj
@handle_errors
def status(obj: Ctx, issue: str | None) -> None:
    """Delivery counts per state for every issue in the ledger, or ISSUE with its failures.

    \b
    Example:
        digest status
        digest status 2026-W48
    """
    from .sending import status as get_status

    found = get_status(obj.cfg, issue)
    if not found:
        click.echo(f"No issue {issue} in the ledger." if issue else "Nothing sent yet.")
        if issue:
            raise click.exceptions.Exit(DigestError.exit_code)
        return
    for s in found:
        c = s.counts
        click.echo(
            f"{s.id}  {s.state:<8} started {s.created_at:%Y-%m-%d %H:%M} UTC  sent {c['sent']:,}"
            f"  failed {c['failed']:,}  deferred {c['deferred']:,}  pending {c['pending']:,}"
            f"  suppressed {c['suppressed']:,}"
            f"  bounced {s.bounces.get('hard', 0):,} hard, {s.bounces.get('soft', 0):,} soft"
            f"  “{s.subject}”"
        )
        _print_editions(s.editions, s.empty_editions, {})
    if issue:
        s = found[0]
        if s.invalid or s.duplicates:
            click.echo(f"  list: {s.invalid:,} invalid rows skipped, {s.duplicates:,} duplicates")
        for reason, n in s.reasons:
            click.echo(f"  {n:>8,} x {reason}")
        for address, state, reason, attempts in s.failures:
            click.echo(f"    {address} ({state}, {attempts} attempt(s)): {reason}")


@main.group()
def ledger() -> None:
    """Look after the ledger: check it, back it up, carry the suppression list over.

    The ledger (ledger.path) records every delivery and who unsubscribed; losing it
    means mailing those readers again. See README, "Backups".

    \b
    Example:
        digest ledger check
        digest ledger backup backups/digest-$(date +%F).sqlite3
    """


@ledger.command(name="check")
@click.pass_obj
@handle_errors
def ledger_check(obj: Ctx) -> None:
    """Check the ledger file with SQLite's integrity check (read-only).

    Exit 0 when it is sound; 1 with the problems SQLite found when it is damaged.

    \b
    Example:
        digest ledger check
    """
    from .upkeep import check

    path = Path(obj.cfg.ledger.path)
    result = check(path)
    if result.ok:
        click.echo(
            f"{path}: ok ({result.issues:,} issue(s), {result.deliveries:,} deliveries, "
            f"{result.suppressions:,} suppressed address(es))"
        )
        return
    for problem in result.problems:
        click.echo(f"  {problem}")
    raise LedgerError(
        f"{path}: the ledger is damaged ({len(result.problems)} problem(s) above). Put your "
        "latest backup in its place (README, 'Backups'); 'digest ledger export-suppressions' "
        "may still save the suppression list from it"
    )


@ledger.command(name="backup")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@click.pass_obj
@handle_errors
def ledger_backup(obj: Ctx, dest: Path, force: bool) -> None:
    """Copy the ledger to DEST with SQLite's online backup API (safe during a send).

    \b
    Example:
        digest ledger backup backups/digest-$(date +%F).sqlite3
    """
    from .upkeep import backup

    r = backup(obj.cfg.ledger.path, dest, force=force)
    click.echo(f"Backed up {obj.cfg.ledger.path} to {r.path} ({r.bytes:,} bytes, checked).")


@ledger.command(name="export-suppressions")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
@handle_errors
def ledger_export_suppressions(obj: Ctx, dest: Path) -> None:
    """Write the suppression list (who unsubscribed or bounced) to a CSV file.

    Columns: email, reason, time (ISO 8601, UTC).

    \b
    Example:
        digest ledger export-suppressions suppressed.csv
    """
    from .upkeep import export_suppressions

    n = export_suppressions(obj.cfg.ledger.path, dest)
    click.echo(f"Wrote {n:,} suppressed address(es) to {dest}.")


@ledger.command(name="import-suppressions")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.pass_obj
@handle_errors
def ledger_import_suppressions(obj: Ctx, source: Path) -> None:
    """Add the addresses of a CSV file (an email column) to the suppression list.

    \b
    Example:
        digest ledger import-suppressions suppressed.csv
    """
    from .upkeep import import_suppressions

    r = import_suppressions(obj.cfg.ledger.path, source)
    for problem in r.problems:
        warn(problem)
    click.echo(f"Suppressed {r.added:,} new address(es); {r.present:,} already were.")


@main.group()
def subscribers() -> None:
    """The list (issue 16): the CSV file, plus readers who signed up and confirmed,
    minus the suppression list. List, add, remove, import and export it.

    \b
    Example:
        digest subscribers list
        digest subscribers import mailchimp-export.csv
        digest subscribers export everyone.csv
    """


@subscribers.command(name="list")
@click.pass_obj
@handle_errors
def subscribers_list(obj: Ctx) -> None:
    """Print every address with its state (active, pending, unsubscribed, bounced)
    and where it came from (csv, form, import:TOOL, cli).

    \b
    Example:
        digest subscribers list | grep active
    """
    from .roster import rows

    for email, _name, state, source, *_ in rows(obj.cfg):
        click.echo(f"{email}\t{state}\t{source}")


@subscribers.command(name="add")
@click.argument("email")
@click.option("--name", default="", help="The reader's name.")
@click.option("--lang", default="", help="Their language: the edition they get (e.g. ja).")
@click.pass_obj
@handle_errors
def subscribers_add(obj: Ctx, email: str, name: str, lang: str) -> None:
    """Add one reader (no confirmation mail: you vouch for their consent).

    \b
    Example:
        digest subscribers add ada@example.com --name "Ada Lovelace"
        digest subscribers add kenji@example.com --lang ja
    """
    from .content.fields import LANG_CODE
    from .roster import add

    if lang and not LANG_CODE.match(lang):
        raise click.UsageError(f"--lang {lang!r} is not a language code like 'en' or 'pt-BR'")
    result = add(obj.cfg, email, name, lang)
    if result == "added":
        click.echo(f"Added {email}.")
    elif result == "present":
        click.echo(f"{email} is on the list already.")
    else:
        warn(f"{email} is suppressed ({result}) and is not mailed; only their own "
             "confirmed signup on the form lifts an unsubscribe")  # fmt: skip


@subscribers.command(name="remove")
@click.argument("email")
@click.pass_obj
@handle_errors
def subscribers_remove(obj: Ctx, email: str) -> None:
    """Stop mailing EMAIL (it goes on the suppression list as "removed").

    \b
    Example:
        digest subscribers remove ada@example.com
    """
    from .roster import remove

    was = remove(obj.cfg, email)
    click.echo(
        f"Removed {email}." if was else f"{email} was not being mailed; it is suppressed now."
    )


@subscribers.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--suppressed", is_flag=True, help="SOURCE is a suppression list (email,reason,time)."
)
@click.pass_obj
@handle_errors
def subscribers_import(obj: Ctx, source: Path, suppressed: bool) -> None:
    """Import an export of Mailchimp, Substack, Buttondown or listmonk (or any CSV
    with an email column): active readers are added, unsubscribed and bounced ones
    suppressed, unconfirmed ones recorded and not mailed.

    \b
    Example:
        digest subscribers import subscribed_members_export.csv
        digest subscribers import --suppressed suppressed.csv
    """
    if suppressed:
        from .upkeep import import_suppressions

        r = import_suppressions(obj.cfg.ledger.path, source)
        for problem in r.problems:
            warn(problem)
        click.echo(f"Suppressed {r.added:,} new address(es); {r.present:,} already were.")
        return
    from .roster import import_file

    r2 = import_file(obj.cfg, source)
    for problem in r2.problems[:50]:
        warn(f"skipped: {problem}")
    click.echo(
        f"Imported {source} (as a {r2.vendor} export): {r2.added:,} added, "
        f"{r2.present:,} already there, {r2.suppressed:,} unsubscribed or bounced "
        f"(suppressed), {r2.pending:,} unconfirmed (not mailed), {len(r2.problems):,} skipped."
    )


@subscribers.command(name="export")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--suppressed", is_flag=True, help="Only the suppression list (email,reason,time).")
@click.pass_obj
@handle_errors
def subscribers_export(obj: Ctx, dest: Path, suppressed: bool) -> None:
    """Write the whole list with each address's state to DEST (CSV), to move elsewhere.

    Columns: email, name, state, source, signed_up, confirmed, reason.

    \b
    Example:
        digest subscribers export everyone.csv
        digest subscribers export --suppressed suppressed.csv
    """
    if suppressed:
        from .upkeep import export_suppressions

        n = export_suppressions(obj.cfg.ledger.path, dest)
        click.echo(f"Wrote {n:,} suppressed address(es) to {dest}.")
        return
    from .roster import export_file

    counts = export_file(obj.cfg, dest)
    what = ", ".join(f"{n:,} {state}" for state, n in sorted(counts.items())) or "nobody"
    click.echo(f"Wrote {sum(counts.values()):,} address(es) to {dest}: {what}.")


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUTF8", "1")
    main()
