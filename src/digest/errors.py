"""The error tree. Every error names the file/line or config key and what to do.

Only ``cli.py`` turns these into messages and exit codes.
"""

from __future__ import annotations

from pathlib import Path

INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class DigestError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


class ConfigError(DigestError):
    """The config file is missing or invalid. ``problems`` holds (dotted key, message)."""

    exit_code = 2

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.problems = problems
        if str(path).startswith("-"):  # a command-line option, not a file
            lines = [f"{key}: {msg}" for key, msg in problems]
        elif len(problems) == 1:
            key, msg = problems[0]
            lines = [f"{self.path}: {key}: {msg}" if key else f"{self.path}: {msg}"]
        else:
            lines = [f"{self.path}: {len(problems)} problems in the config:"]
            lines += [f"  {key}: {msg}" if key else f"  {msg}" for key, msg in problems]
        super().__init__("\n".join(lines))


class ContentError(DigestError):
    """A content file cannot be read. Reported as ``path:line: problem``."""

    exit_code = 3

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else str(self.path)
        super().__init__(f"{where}: {message}")


class RenderError(DigestError):
    """A template or the email it produces is broken (names the template)."""

    exit_code = 4


class NothingToSend(DigestError):
    """The selected week has no articles: not a failure, but no email is written."""

    exit_code = 10


class DeliveryError(DigestError):
    """Sending stopped: the server is unreachable, refused us, or the run was paused."""

    exit_code = 5


class LedgerError(DigestError):
    """The ledger file cannot be used: damaged, unreadable, disk full. Names the file and
    what to do (``digest ledger check``, a backup). Exit code 1, as any error."""


class NotDue(DigestError):
    """``send --due`` (cron mode): no issue is due now within the grace; says why."""

    exit_code = 0

    def __init__(self, message: str, *, missed: bool = False, issue: str = "") -> None:
        super().__init__(message)
        self.missed = missed  # a week past the grace and not sent: worth a warning
        self.issue = issue  # the issue that was due
