"""The ledger's upkeep: a ledger file -> its health, a backup copy, the suppression list
as a CSV file and back.

``digest ledger check`` runs SQLite's ``integrity_check``; ``digest ledger backup`` copies
the ledger with SQLite's online backup API (consistent while a send or ``digest serve``
writes to it); ``export-suppressions`` / ``import-suppressions`` carry the list of people
who unsubscribed (or bounced) across a lost or damaged ledger, so none of them is mailed
again. Every file written here holds addresses: each is created 0600.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ContentError, LedgerError
from .files import write_atomic
from .ledger import Ledger, address_key, create_private, ledger_error
from .text import iso_utc

SUPPRESSION_COLUMNS = ("email", "reason", "time")
MAX_PROBLEMS = 20  # integrity_check lines shown: the first ones say enough


def _missing(path: Path) -> LedgerError:
    return LedgerError(f"{path}: no ledger there; check ledger.path in the config")


def _open_ro(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise _missing(path)
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


@dataclass
class CheckResult:
    path: Path
    problems: list[str] = field(default_factory=list)  # empty: the file is sound
    issues: int = 0
    deliveries: int = 0
    suppressions: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check(path: Path | str) -> CheckResult:
    """SQLite's full ``integrity_check`` of the ledger (read-only), and what it holds."""
    path = Path(path)
    result = CheckResult(path)
    db = _open_ro(path)
    try:
        rows = db.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})").fetchall()
        result.problems = [r[0] for r in rows if r[0] != "ok"]
        if result.ok:
            for table in ("issues", "deliveries", "suppressions"):
                (n,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                setattr(result, table, n)
    except sqlite3.DatabaseError as exc:  # not a database at all, or unreadable pages
        result.problems = result.problems or [str(exc)]
    finally:
        db.close()
    return result


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    bytes: int
    seconds: float


def backup(path: Path | str, dest: Path | str, *, force: bool = False) -> BackupResult:
    """Copy the ledger to ``dest`` with SQLite's online backup API, then check the copy.

    Safe while a send runs: the copy is one consistent snapshot, WAL included. Written
    beside ``dest`` and renamed into place, so ``dest`` is never half a backup; an
    existing ``dest`` is replaced only with ``force``.
    """
    path, dest = Path(path), Path(dest)
    if dest.exists() and not force:
        raise LedgerError(f"{dest}: already exists; choose another name, or add --force")
    if dest.resolve() == path.resolve():
        raise LedgerError(f"{dest}: that is the ledger itself; back it up to another file")
    started = time.perf_counter()
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    create_private(tmp)
    src = _open_ro(path)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            # The copy of a damaged ledger is damaged too: say so, keep no such backup.
            (verdict,) = dst.execute("PRAGMA quick_check(1)").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
            (pages,) = dst.execute("PRAGMA page_count").fetchone()
        finally:
            dst.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise ledger_error(path, exc) from None
    finally:
        src.close()
    os.replace(tmp, dest)
    return BackupResult(dest, pages, dest.stat().st_size, time.perf_counter() - started)


def export_suppressions(path: Path | str, dest: Path | str) -> int:
    """Write the suppression list as CSV (email, reason, time in ISO 8601 UTC), 0600.
    Reads only that table, so it often still works on a damaged ledger. Returns rows."""
    path, dest = Path(path), Path(dest)
    if not path.is_file():
        raise _missing(path)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUPPRESSION_COLUMNS)
    n = 0
    with Ledger(path, readonly=True) as ledger:
        for _key, email, reason, created in ledger.suppressions():
            writer.writerow((email, reason, iso_utc(created)))
            n += 1
    write_atomic(dest, out.getvalue(), private=True)
    return n


@dataclass
class ImportResult:
    added: int = 0
    present: int = 0  # already suppressed (the reason there stays)
    problems: list[str] = field(default_factory=list)  # "file:line: what", rows skipped


def _when(text: str) -> float | None:
    text = text.strip()
    if not text:
        return time.time()
    try:
        return float(text)  # unix time, as some tools export
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def import_suppressions(path: Path | str, source: Path | str) -> ImportResult:
    """Add the addresses of a CSV file (an ``email`` column; ``reason`` and ``time``
    optional, as ``export_suppressions`` writes them) to the ledger's suppression list.
    Rows without an address are reported and skipped; the rest are added."""
    path, source = Path(path), Path(source)
    result = ImportResult()
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(source, f"cannot read it ({exc}); a UTF-8 CSV file is needed") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if "email" not in header:
        raise ContentError(
            source, "no 'email' column; the first line must name the columns, e.g. "
            "email,reason,time", line=1
        )  # fmt: skip
    col = {name: header.index(name) for name in SUPPRESSION_COLUMNS if name in header}

    def rows() -> Iterator[tuple[str, str, str, float]]:
        try:
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                cell = dict.fromkeys(SUPPRESSION_COLUMNS, "")
                cell.update({k: values[i] for k, i in col.items() if i < len(values)})
                email = cell["email"].strip()
                when = _when(cell["time"])
                if "@" not in email or any(c.isspace() for c in email):
                    result.problems.append(f"{source}:{line}: {email!r} is not an address")
                elif when is None:
                    result.problems.append(
                        f"{source}:{line}: time {cell['time']!r} is not ISO 8601 (skipped)"
                    )
                else:
                    reason = cell["reason"].strip() or "imported"
                    yield address_key(email), email, reason, when
        except csv.Error as exc:
            result.problems.append(f"{source}:{reader.line_num}: {exc}; the rest is skipped")

    listed = list(rows())  # read to the end first: one transaction adds them all, or none
    with Ledger(path) as ledger:
        result.added = ledger.copy_suppressions(listed)
    result.present = len(listed) - result.added
    return result
