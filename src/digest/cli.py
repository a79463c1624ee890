"""The ``digest`` command. Thin: each command parses options, calls the pipeline, and
turns ``DigestError``s into a message and an exit code (tracebacks only with --debug).

Exit codes: 0 ok; 1 error; 2 config or usage error; 3 content errors (with --strict,
warnings too); 4 render error; 5 delivery stopped or paused; 10 nothing to send.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .errors import ConfigError, DigestError, NothingToSend

F = TypeVar("F", bound=Callable[..., Any])
EXIT_NOTHING = NothingToSend.exit_code


class Ctx:
    def __init__(self, config: Path, debug: bool, now: str | None) -> None:
        self.config_path = config
        self.debug = debug
        self._now = now
        self._cfg = None

    @property
    def cfg(self):  # type: ignore[no-untyped-def]
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
        return dt.datetime.now(dt.UTC)


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def error(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)


def handle_errors(f: F) -> F:
    """Run a command body; a DigestError becomes its message and exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = ctx.find_object(Ctx).debug if ctx.find_object(Ctx) else False
        try:
            return f(*args, **kwargs)
        except NothingToSend as exc:
            click.echo(str(exc))
            ctx.exit(exc.exit_code)
        except DigestError as exc:
            if debug:
                raise
            error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)

    return wrapper  # type: ignore[return-value]


def selection_options(f: F) -> F:
    """--week / --latest: which issue to act on (default: the next one to be sent)."""
    f = click.option("--latest", is_flag=True, help="The newest issue that has articles.")(f)
    f = click.option("--week", metavar="YYYY-Www", help="The issue of that ISO week.")(f)
    return f


def _selection(week: str | None, latest: bool, due: bool = False):  # type: ignore[no-untyped-def]
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
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Ctx(config, debug, now)


def _report_problems(problems, strict: bool) -> tuple[int, int]:  # type: ignore[no-untyped-def]
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
    from .pipeline import prepare, write_build

    started = time.perf_counter()
    cfg = obj.cfg
    built = prepare(cfg, obj.now(), _selection(week, latest))
    errors, warnings = _report_problems(built.collection.problems + built.findings, strict)
    folder = write_build(cfg, built, out)
    col, r = built.collection, built.rendered
    size_kb = len(r.html.encode()) / 1024
    click.echo(
        f"Issue {built.issue.id} (#{built.issue.number}): {len(built.issue.items)} articles"
        f"{f' (+{built.issue.more} more in the archive)' if built.issue.more else ''}, "
        f"HTML {size_kb:.1f} KB -> {_rel(folder)}/"
    )
    click.echo(f"Subject: {r.subject}")
    skipped = ", ".join(
        f"{n} {what}"
        for n, what in ((col.drafts, "drafts"), (col.future, "future-dated"), (errors, "bad"))
        if n
    )
    click.echo(
        f"Done: read {col.files} files{f' (skipped {skipped})' if skipped else ''} "
        f"in {time.perf_counter() - started:.2f} s"
    )
    if strict and (errors or warnings):
        raise click.exceptions.Exit(3)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@main.command()
@selection_options
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.pass_obj
@handle_errors
def check(obj: Ctx, week: str | None, latest: bool, strict: bool) -> None:
    """Validate the config and every content file, render the issue and inspect it.

    Reports bad files, the size against Gmail's clip limit, images without alt text,
    relative links, and a missing unsubscribe link or postal address.

    \b
    Example:
        digest check --latest --strict
    """
    from .check import check as run_check

    cfg = obj.cfg
    report = run_check(cfg, obj.now(), _selection(week, latest))
    _report_problems(report.problems, strict)
    if report.notice:
        click.echo(f"notice: {report.notice}")
    if report.built:
        b = report.built
        kb = len(b.rendered.html.encode()) / 1024
        click.echo(
            f"Issue {b.issue.id}: {len(b.issue.items)} articles, HTML {kb:.1f} KB "
            f"(warn above {cfg.output.warn_kb} KB, Gmail clips above {cfg.output.max_kb} KB)"
        )
    click.echo(
        f"Checked {report.files} files: {report.errors} error(s), {report.warnings} warning(s)"
    )
    if report.errors or (strict and (report.warnings or cfg.warnings)):
        raise click.exceptions.Exit(3)


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

    def ready(url: str) -> None:
        extra = f"; preview at {url}preview" if preview else ""
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
) -> None:
    """Write an issue with a mail service's merge tags, plus its API payload.

    email.html, email.txt, subject.txt, preheader.txt and payload.json (the request
    that creates a draft campaign or template there). Nothing is sent.

    \b
    Example:
        digest export --for mailchimp --latest
    """
    from .export import export, folder_for, preset_for, write
    from .pipeline import prepare

    if issue_id and week and issue_id != week:
        raise click.UsageError("--issue and --week name different issues")
    preset_for(obj.cfg, service)  # an unknown service fails before any work
    built = prepare(obj.cfg, obj.now(), _selection(issue_id or week, latest))
    exp = export(built.rendered, obj.cfg, service)
    if to_stdout:
        click.get_binary_stream("stdout").write(exp.html.encode("utf-8"))
        return
    folder = write(exp, folder_for(obj.cfg, exp, out))
    click.echo(f"Exported {exp.issue_id} for {exp.service} -> {_rel(folder)}/")
    for note in exp.payload.get("notes", ()):
        click.echo(f"  note: {note}")


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
    sys.exit(scheduling.run(cfg, obj.now))


def not_yet(name: str, issue: int) -> Callable[..., None]:
    def command() -> None:
        error(f"'digest {name}' is not built yet (tracked in issue {issue}).")
        sys.exit(2)

    command.__doc__ = f"(Not built yet: issue {issue}.)"
    return command


for _name, _issue in (
    ("preview", 4),
    ("send", 4),
    ("status", 4),
):
    main.command(name=_name)(not_yet(_name, _issue))


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUTF8", "1")
    main()
