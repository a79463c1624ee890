"""The subscriber list (CSV) -> validated subscribers, streamed.

The file has a header row with an ``email`` column (``email address``, ``e-mail`` and
``mail`` work too) and optional ``name``, ``first_name`` and ``lang`` (``language``,
``locale``: the edition a reader gets) columns; other columns are ignored. Rows are
read one at a time, so a list of millions of rows never sits in memory. Addresses are
checked with ``email-validator`` (syntax only, no DNS) and normalised (domain
lower-cased and IDNA-encoded); a bad row is reported with its line number and skipped.
Duplicates (compared case-insensitively) are folded by the ledger's unique (issue,
address) row as the rows are queued, not here: that needs no memory.

Issue 16: the exports of other tools work as they are. Columns of Mailchimp
("Email Address", "First Name", "Last Name"; "UNSUB_TIME"/"CLEAN_TIME" in its
unsubscribed/cleaned exports), Substack ("email", "email_disabled"), Buttondown ("email" or
"email_address", "subscriber_type" or "type") and listmonk ("email", "name", "status") are
understood; a row whose status says it is not subscribed (unsubscribed, unconfirmed,
bounced, blocklisted...) is never mailed (``Audience.inactive`` counts them), and a status
we do not know is a bad row, not a guess. The delimiter is read from the header row: ``,``,
``;`` (spreadsheets in many locales) or a tab.

Addresses with non-ASCII characters before the ``@`` are reported as bad rows: sending to
them needs SMTPUTF8 support end to end, which relays rarely give.

A stray or unclosed quote (``ann@example.com,"Ann``) makes a CSV reader take every line
up to the next quote, often the rest of the file, as one field: the subscribers on those
lines would silently not be mailed. A quoted field that runs over a line break and holds,
after it, a line that reads as a subscriber row of this file (the delimiter, an address in
the email column) is therefore reported as a broken row naming the line where the quote
opened, and ``check`` (run by ``digest send`` before anything is frozen or sent) refuses
the whole list until the quote is fixed. Any other multi-line cell is valid CSV (RFC 4180)
and kept: a name written on two lines is joined into one line; a note in a column we
ignore, even one naming addresses, is ignored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from email_validator import EmailNotValidError, validate_email

from .errors import ConfigError, ContentError
from .model import Recipient
from .text import one_line

EMAIL_COLUMNS = ("email", "email_address", "e_mail", "mail")
NAME_COLUMNS = ("name", "full_name", "fullname", "display_name")
FIRST_NAME_COLUMNS = ("first_name", "firstname", "given_name")
LAST_NAME_COLUMNS = ("last_name", "lastname", "surname", "family_name")
STATUS_COLUMNS = ("status", "subscriber_type", "type", "state")
# The reader's language: which edition they get (newsletter.languages; README, "Editions").
LANG_COLUMNS = ("lang", "language", "locale")
# A row's status (lower-cased) -> its state. Active: mailed; the others never are.
ACTIVE, PENDING, UNSUBSCRIBED, BOUNCED = "active", "pending", "unsubscribed", "bounced"
STATUSES = {
    **dict.fromkeys(("", "active", "enabled", "subscribed", "regular", "premium", "paid",
                     "free", "gifted", "comp", "churned", "trialed", "confirmed"), ACTIVE),
    **dict.fromkeys(("pending", "unconfirmed", "unactivated"), PENDING),
    **dict.fromkeys(("unsubscribed", "disabled", "blocklisted", "blacklisted", "removed",
                     "spammy"), UNSUBSCRIBED),
    **dict.fromkeys(("bounced", "cleaned", "complained", "undeliverable"), BOUNCED),
}  # fmt: skip
DELIMITERS = (",", ";", "\t")
MAX_NAME = 200

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class InvalidAddress(ValueError):
    pass


# A conservative subset of what email-validator accepts: an ASCII dot-atom local part.
# For those only the domain needs the validator, and domains repeat (gmail.com...), so
# their verdicts are cached; everything else goes through the validator in full. The
# validator alone costs ~170 us per address, 3 minutes for a million rows.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_FAST = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def _validate(address: str) -> str:
    try:
        v = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return v.ascii_email or v.normalized


@lru_cache(maxsize=8192)
def _domain(domain: str) -> str | None:
    """The normalised domain, or None if the validator rejects it."""
    try:
        v = validate_email("x@" + domain, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return v.ascii_domain


def normalize(address: str) -> str:
    """The address as we send to it. Raises InvalidAddress saying what is wrong."""
    address = address.strip()
    m = _FAST.fullmatch(address)
    if m and len(address) <= 254 and len(m.group(1)) <= 64:
        domain = _domain(m.group(2))
        if domain is not None:
            return f"{m.group(1)}@{domain}"
    return _validate(address)


class Subscriber(NamedTuple):  # a tuple: cheap to make a million of
    email: str  # normalised
    key: str  # case-folded: what duplicates and suppressions are compared by
    name: str = ""
    first_name: str = ""
    line: int = 0
    state: str = ACTIVE  # from a status column of another tool's export
    lang: str = ""  # a lang/language/locale column: the edition they get

    def recipient(self) -> Recipient:
        return Recipient(self.email, self.name, self.first_name)


@dataclass(frozen=True)
class BadRow:
    path: Path
    line: int
    message: str
    broken: bool = False  # a stray quote: the rows after it were read into this one

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _column(header: list[str], names: Iterable[str]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


_SURROGATE = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    # The file is decoded with surrogateescape: undecodable bytes become lone surrogates.
    return not text.isascii() and _SURROGATE.search(text) is not None


def _swallowed(row: list[str], email_i: int, width: int, delimiter: str = ",") -> bool:
    """Whether a row spanning lines took in what reads as further subscriber rows.

    A quoted cell may hold line breaks (RFC 4180), and a note may name addresses; what a
    stray quote swallows is different: whole lines of this file, each with the file's
    delimiter and an address in its email column. Only such a line counts, so a
    multi-line note ("Ask bob@example.com about it") is a valid cell.
    """
    for value in row:
        if "\n" not in value and "\r" not in value:
            continue
        for line in value.splitlines()[1:]:
            if "@" in line and _reads_as_row(line, email_i, width, delimiter):
                return True
    return False


def _reads_as_row(line: str, email_i: int, width: int, delimiter: str = ",") -> bool:
    try:
        fields = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return False
    # A file of more than one column: a swallowed row has at least one delimiter (rows may
    # leave out trailing empty cells, so not necessarily all of them).
    if len(fields) <= email_i or (width > 1 and len(fields) < 2):
        return False
    try:
        normalize(fields[email_i])
    except InvalidAddress:
        return False
    return True


def _stray_quote(line: int, end: int) -> str:
    return (
        f'a quote (") opened on this line runs on to line {end}: the {end - line} line(s) '
        "after it, with addresses on them, were read as one field of this row instead of "
        "as subscribers. Fix the stray or missing quote; nothing is sent until then"
    )


class _Tap(io.RawIOBase):
    """A raw file that keeps a hash and a count of every byte read through it: what the
    CSV reader actually saw, to compare with the file once the read is over."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        n = self.raw.readinto(buffer)
        if n:
            self.hash.update(memoryview(buffer)[:n])
            self.size += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def _open(path: Path, tap: list[_Tap] | None = None):  # type: ignore[no-untyped-def]
    try:
        if tap is not None:  # read through a _Tap, handed back in ``tap``
            tap.append(_Tap(path.open("rb", buffering=0)))  # type: ignore[arg-type]
            return io.TextIOWrapper(
                io.BufferedReader(tap[-1], 1 << 16),
                encoding="utf-8-sig",
                errors="surrogateescape",
                newline="",
            )
        return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except FileNotFoundError:
        raise ContentError(
            path,
            "subscriber list not found; create it (a CSV file with an 'email' column) "
            "or set subscribers.file in the config",
        ) from None
    except OSError as exc:
        raise ContentError(path, f"cannot read the subscriber list: {exc}") from None


def sniff(path: Path) -> str:
    """The delimiter of the file's header row: whichever of ``,``, ``;`` and tab occurs
    most in it outside quotes (``,`` when none does, or the file cannot be read)."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return ","
    line = head.decode("utf-8", "replace").lstrip("\ufeff").splitlines()[:1]
    bare = re.sub(r'"[^"]*"', "", line[0]) if line else ""
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class Extra(NamedTuple):
    """Columns besides the address: names and another tool's status columns."""

    last: int | None = None
    status: int | None = None
    email_disabled: int | None = None  # Substack
    unsub_time: int | None = None  # Mailchimp's unsubscribed export
    clean_time: int | None = None  # Mailchimp's cleaned (bounced) export
    lang: int | None = None


def _extra(cols: list[str]) -> Extra:
    return Extra(
        _column(cols, LAST_NAME_COLUMNS),
        _column(cols, STATUS_COLUMNS),
        _column(cols, ("email_disabled",)),
        _column(cols, ("unsub_time",)),
        _column(cols, ("clean_time",)),
        _column(cols, LANG_COLUMNS),
    )


def row_state(row: list[str], extra: Extra) -> str | None:
    """The state a row's status columns give (``ACTIVE``...), or None for a status we
    do not know."""
    if extra.clean_time is not None and _cell(row, extra.clean_time):
        return BOUNCED
    if extra.unsub_time is not None and _cell(row, extra.unsub_time):
        return UNSUBSCRIBED
    if extra.email_disabled is not None and _cell(row, extra.email_disabled).lower() in (
        "true", "1", "yes",
    ):  # fmt: skip
        return UNSUBSCRIBED
    if extra.status is None:
        return ACTIVE
    return STATUSES.get(_cell(row, extra.status).lower())


def header_of(path: Path) -> list[str]:
    """The normalised column names of the file's header row (empty if it has none)."""
    with _open(Path(path)) as f:
        row = next(csv.reader(f, delimiter=sniff(path)), [])
    return [re.sub(r"[\s-]+", "_", h.strip().lower()) for h in row]


def _columns(
    reader: Any, path: Path, *, required: bool
) -> tuple[int, int | None, int | None, list[str]]:
    """The email, name and first-name columns named by the header row, and its normalised
    column names. An empty file has none: ``(-1, None, None, [])``, or a ContentError if
    ``required``."""
    try:
        header = next(reader)
    except StopIteration:
        if required:
            raise ContentError(
                path, "the subscriber list is empty; the first row must name the columns, "
                "e.g. 'email,name', and each further row is one subscriber", line=1
            ) from None  # fmt: skip
        return -1, None, None, []
    except csv.Error as exc:
        raise ContentError(path, f"not a CSV file: {exc}", line=1) from None
    cols = [re.sub(r"[\s-]+", "_", h.strip().lower()) for h in header]
    email_i = _column(cols, EMAIL_COLUMNS)
    if email_i is None:
        raise ContentError(
            path,
            f"no 'email' column in the header row (found: {', '.join(header) or 'nothing'}); "
            "the first row must name the columns, e.g. 'email,name'",
            line=1,
        )
    return email_i, _column(cols, NAME_COLUMNS), _column(cols, FIRST_NAME_COLUMNS), cols


def check_file(path: Path) -> None:
    """Refuse a list that cannot be read as it is, before a send freezes or mails
    anything: a missing or unreadable file, no header row with an email column, or a
    stray quote (see the module notes); ContentError naming the file and line. Reads the
    header, then only the structure of the rest (no address checks), and of a file
    without any quote not even that."""
    path = Path(path)
    delimiter = sniff(path)
    with _open(path) as f:
        email_i, _, _, cols = _columns(csv.reader(f, delimiter=delimiter), path, required=True)
    width = len(cols)
    with path.open("rb") as raw:
        if not any(b'"' in chunk for chunk in iter(lambda: raw.read(1 << 20), b"")):
            return
    with _open(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        line = 0
        try:
            for row in reader:
                start, line = line + 1, reader.line_num
                if start < line and _swallowed(row, email_i, width, delimiter):
                    raise ContentError(path, _stray_quote(start, line), line=start)
        except csv.Error:
            return  # read() reports it as a bad row


def read(path: Path, tap: list[_Tap] | None = None) -> Iterator[Subscriber | BadRow]:
    """Stream the subscriber CSV: a ``Subscriber`` per good row, a ``BadRow`` per bad one.
    ``tap`` (an empty list): the file is read through a ``_Tap`` appended to it."""
    path = Path(path)
    delimiter = sniff(path)
    f = _open(path, tap)
    with f:
        reader = csv.reader(f, delimiter=delimiter)
        email_i, name_i, first_i, cols = _columns(reader, path, required=False)
        if email_i < 0:
            return
        width, extra = len(cols), _extra(cols)  # the header this read saw, read once
        prev = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(path, prev + 1, f"cannot parse this row: {exc}")
                if reader.line_num == prev:  # no progress: give up on the rest
                    return
                prev = reader.line_num
                continue
            line, prev = prev + 1, reader.line_num
            if line < prev and _swallowed(row, email_i, width, delimiter):
                yield BadRow(path, line, _stray_quote(line, prev), broken=True)
                continue
            if not row or not "".join(row).strip():
                continue
            if email_i >= len(row) or not row[email_i].strip():
                yield BadRow(path, line, "no email address in this row")
                continue
            raw = row[email_i]
            if _has_bad_bytes(raw):
                yield BadRow(path, line, "the email address is not valid UTF-8")
                continue
            try:
                address = normalize(raw)
            except InvalidAddress as exc:
                yield BadRow(path, line, f"{one_line(raw)!r} is not a valid address: {exc}")
                continue
            name = _cell(row, name_i)
            first = _cell(row, first_i)
            if not name and extra.last is not None:  # Mailchimp: First Name, Last Name
                name = " ".join(p for p in (first, _cell(row, extra.last)) if p)
            state = row_state(row, extra)
            if state is None:
                yield BadRow(path, line, f"status {_cell(row, extra.status)!r} is not one "
                    "we know; use active, pending, unsubscribed or bounced (skipped: it is "
                    "never mailed on a guess)")  # fmt: skip
                continue
            lang = _cell(row, extra.lang)[:35]
            yield Subscriber(address, address.lower(), name, first, line, state, lang)


def _cell(row: list[str], i: int | None) -> str:
    if i is None or i >= len(row):
        return ""
    value = row[i]
    if _has_bad_bytes(value):
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return one_line(value)[:MAX_NAME]


@dataclass
class Audience:
    """One pass over the subscriber file, keeping count of what was skipped.

    Iterate it for the good rows; afterwards ``rows``, ``invalid`` and ``problems`` (the
    first ``keep`` bad rows) tell what was read, ``broken`` the first stray quote, and
    ``changed()`` whether the file changed while it was read. Memory stays flat however
    long the file.
    """

    path: Path
    keep: int = 50
    rows: int = 0
    invalid: int = 0
    problems: list[BadRow] = field(default_factory=list)
    broken: BadRow | None = None
    inactive: int = 0  # rows another tool's status marks as not subscribed: not mailed
    digest: str = ""  # sha256 of the bytes read, once the whole file has been read
    size: int = -1  # how many bytes were read, once the whole file has been read

    def __iter__(self) -> Iterator[Subscriber]:
        tap: list[_Tap] = []
        for item in read(self.path, tap):
            self.rows += 1
            if isinstance(item, BadRow):
                self.invalid += 1
                if item.broken and self.broken is None:
                    self.broken = item
                if len(self.problems) < self.keep:
                    self.problems.append(item)
                continue
            if item.state != ACTIVE:
                self.inactive += 1
                continue
            yield item
        if tap:
            self.digest, self.size = tap[0].hash.hexdigest(), tap[0].size

    def changed(self) -> str | None:
        """After a complete pass: None if the file now holds exactly the bytes that were
        read, else what differs. A file truncated and rewritten during the read (an
        export job writing it in place) gives a short read that ends without an error:
        the rows after the cut would never be mailed. Comparing the bytes (size, then a
        hash) also catches a same-size rewrite, a file replaced by a rename (the read
        went on in the old one) and a read that mixed old and new content."""
        if self.size < 0:
            return "it was not read to the end"
        try:
            now = os.stat(self.path).st_size
        except OSError as exc:
            return f"it cannot be read any more ({exc.strerror or exc})"
        if now != self.size:
            return f"{self.size:,} bytes were read, the file now has {now:,}"
        digest = hashlib.sha256()
        with Path(self.path).open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != self.digest:
            return "its content changed while it was read"
        return None


def count_rows(path: Path) -> int:
    """About how many subscribers the file lists (its lines, less the header): fast."""
    lines = 0
    last = b"\n"
    try:
        with Path(path).open("rb") as f:
            while chunk := f.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except FileNotFoundError:
        return 0
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)


def parse_addresses(values: Iterable[str], *, option: str = "--to") -> list[Recipient]:
    """Addresses given on the command line (``a@x.org,b@y.org``), validated."""
    out: list[Recipient] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                address = normalize(part)
            except InvalidAddress as exc:
                problems.append((option, f"{part!r} is not a valid address: {exc}"))
                continue
            if address.lower() not in seen:
                seen.add(address.lower())
                out.append(Recipient(address))
    if problems:
        raise ConfigError(option, problems)
    if not out:
        raise ConfigError(
            option, [(option, "give at least one address, e.g. --to you@example.com")]
        )
    return out
