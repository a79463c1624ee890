"""The whole list -> rows with their state; other tools' exports -> the ledger
(``digest subscribers``, issue 16).

The list is the CSV file (``subscribers.file``) plus the readers who signed up (form,
import, ``add``) and confirmed, minus the suppression list. ``rows`` walks all three and
gives each address once with its state: ``active``, ``pending`` (signed up, not
confirmed: never mailed), ``unsubscribed`` or ``bounced`` (suppressed, by reason), and
where it came from. ``import_file`` reads an export of Mailchimp, Substack, Buttondown or
listmonk (or any CSV with an email column; ``subscribers.read`` knows their columns) into
the ledger, each row by its state; ``export_file`` writes ``rows`` as CSV, which
``import_file`` reads back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .bounces import BOUNCE_REASONS
from .config import Config
from .errors import ConfigError, ContentError
from .files import write_atomic
from .ledger import SIGNUP_ACTIVE, SIGNUP_PENDING, Ledger, address_key
from .subscribers import (
    ACTIVE,
    BOUNCED,
    PENDING,
    UNSUBSCRIBED,
    BadRow,
    InvalidAddress,
    header_of,
    normalize,
    read,
)
from .text import iso_utc

COLUMNS = ("email", "name", "state", "source", "signed_up", "confirmed", "reason")
_BOUNCE_REASONS = ("bounce", "bounced", "complaint", "cleaned", "hard-bounce")


def _state_of(reason: str) -> str:
    reason = reason.lower()
    bounced = reason in _BOUNCE_REASONS or reason.startswith(BOUNCE_REASONS)
    return BOUNCED if bounced else UNSUBSCRIBED


def vendor(cols: list[str]) -> str:
    """Which tool's export a header row looks like ("csv" when none)."""
    have = set(cols)
    if {"member_rating", "optin_time", "unsub_time", "clean_time"} & have:
        return "mailchimp"
    if {"active_subscription", "email_disabled"} & have:
        return "substack"
    if "subscriber_type" in have or ({"email_address", "type"} <= have):
        return "buttondown"
    if "attributes" in have or ({"status", "name"} <= have and "email" in have):
        return "listmonk"
    return "csv"


def rows(cfg: Config) -> Iterator[tuple[str, ...]]:
    """Every address once: (email, name, state, source, signed_up, confirmed, reason).
    Keeps the keys seen in memory (about 100 bytes an address)."""
    seen: set[str] = set()
    path = Path(cfg.ledger.path)
    with Ledger(path) as ledger:
        if Path(cfg.subscribers.file).exists():
            for item in read(cfg.subscribers.file):
                if isinstance(item, BadRow) or item.key in seen:
                    continue
                seen.add(item.key)
                reason = ledger.suppression(item.email)
                state = _state_of(reason) if reason else item.state
                yield item.email, item.name, state, "csv", "", "", reason or ""
        for key, email, name, _lang, st, source, _d, created, confirmed, _c in list(
            ledger.signups()
        ):
            if key in seen:
                continue
            seen.add(key)
            reason = ledger.suppression(email)
            state = _state_of(reason) if reason else (ACTIVE if st == SIGNUP_ACTIVE else PENDING)
            yield email, name, state, source, iso_utc(created), iso_utc(confirmed), reason or ""
        for key, email, reason, created in list(ledger.suppressions()):
            if key not in seen:
                seen.add(key)
                yield email, "", _state_of(reason), "suppression", iso_utc(created), "", reason


def export_file(cfg: Config, dest: Path) -> dict[str, int]:
    """Write ``rows`` as CSV to ``dest`` (0600: it is the whole list). Counts per state."""
    counts: dict[str, int] = {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(cfg):
        writer.writerow(row)
        counts[row[2]] = counts.get(row[2], 0) + 1
    write_atomic(dest, out.getvalue(), private=True)
    return counts


@dataclass
class ImportResult:
    vendor: str = "csv"
    added: int = 0  # active readers
    present: int = 0  # already signed up (their consent record stays)
    pending: int = 0  # not confirmed at the other tool: recorded, never mailed
    suppressed: int = 0  # unsubscribed or bounced there
    problems: list[str] = field(default_factory=list)


def import_file(cfg: Config, source: Path) -> ImportResult:
    """Read another tool's export (or our own) into the ledger, row by row by state.
    Active readers are added with the consent source ``import:<tool>``; unsubscribed
    and bounced ones go on the suppression list (so a CSV row of theirs is not mailed);
    pending ones are recorded and never mailed until they sign up themselves."""
    source = Path(source)
    if not source.is_file():
        raise ContentError(source, "no such file; give the CSV file another tool exported")
    result = ImportResult(vendor=vendor(header_of(source)))
    label = f"import:{result.vendor}"
    with Ledger(cfg.ledger.path) as ledger:
        for item in read(source):
            if isinstance(item, BadRow):
                result.problems.append(str(item))
                continue
            if item.state in (UNSUBSCRIBED, BOUNCED):
                if not ledger.is_suppressed(item.email):
                    reason = "bounce" if item.state == BOUNCED else "unsubscribe"
                    ledger.suppress(item.email, reason=reason)
                result.suppressed += 1
                continue
            pending = item.state == PENDING
            added = ledger.add_signup(
                item.email,
                name=item.name,
                lang=item.lang,  # a language column: the edition they get
                state=SIGNUP_PENDING if pending else SIGNUP_ACTIVE,
                source=label,
                detail=source.name,
            )
            if pending:
                result.pending += 1
            elif added:
                result.added += 1
            else:
                result.present += 1
    return result


def _address(email: str) -> str:
    try:
        return normalize(email)
    except InvalidAddress as exc:
        raise ConfigError(
            "EMAIL", [("EMAIL", f"{email!r} is not a valid address: {exc}")]
        ) from None


def add(cfg: Config, email: str, name: str = "", lang: str = "") -> str:
    """Add one reader (consent source ``cli``). Returns "added", "present" or the
    suppression reason that keeps them from being mailed (never lifted here: only the
    reader's own confirmed signup lifts their unsubscribe)."""
    address = _address(email)
    with Ledger(cfg.ledger.path) as ledger:
        reason = ledger.suppression(address)
        if reason:
            return reason
        added = ledger.add_signup(address, name=name, lang=lang, source="cli")
        return "added" if added else "present"


def remove(cfg: Config, email: str) -> bool:
    """Stop mailing an address: its signup goes, and it is suppressed ("removed"), so a
    row in the CSV file is not mailed either. True if it was on the list."""
    address = _address(email)
    with Ledger(cfg.ledger.path) as ledger:
        had = ledger.remove_signup(address)
        on_file = Path(cfg.subscribers.file).exists() and any(
            not isinstance(s, BadRow) and s.key == address_key(address)
            for s in read(cfg.subscribers.file)
        )
        was_active = (had or on_file) and not ledger.is_suppressed(address)
        ledger.suppress(address, reason="removed")
    return was_active
