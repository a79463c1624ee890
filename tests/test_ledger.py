"""The SQLite ledger: frozen issues, per-recipient rows, suppressions, the send lock."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from digest.ledger import (
    DEFERRED,
    FAILED,
    ISSUE_SENT,
    PENDING,
    SENT,
    SUPPRESSED,
    Ledger,
    SendBusy,
    content_hash,
)
from digest.model import RenderedEmail


def rendered(issue: str = "2026-W48", subject: str = "Issue", html: str = "<p>x</p>"):
    return RenderedEmail(issue, subject, "pre", html, "text __digest_name__", "en", {"a": "b"})


def rows(*emails: str):
    return [(e.lower(), e, f"Name {e}", "") for e in emails]


def test_schema_wal_and_reopen(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        ledger.freeze(rendered())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"issues", "deliveries", "suppressions", "meta"} <= tables
    db.close()
    with Ledger(path) as ledger:  # reopening keeps everything
        assert ledger.issue("2026-W48") is not None


def test_freeze_keeps_the_first_content(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        first = ledger.freeze(rendered(html="<p>first</p>"), number=3)
        again = ledger.freeze(rendered(html="<p>changed since</p>"), number=4)
        assert again.html == "<p>first</p>" and again.number == 3
        assert again.content_hash == content_hash(rendered(html="<p>first</p>"))
        assert first.rendered() == rendered(html="<p>first</p>")
        assert first.state == "sending" and not first.queued and not first.finished
        assert ledger.issue("2026-W01") is None


def test_issues_newest_first_with_frozen_content(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(rendered("2026-W47", "Older"))
        time.sleep(0.01)
        ledger.freeze(rendered("2026-W48", "Newer"))
        found = ledger.issues()
        assert [r.id for r in found] == ["2026-W48", "2026-W47"]
        assert found[0].subject == "Newer" and found[0].html == "<p>x</p>"
        assert found[0].created_at.tzinfo is not None
        assert found[0].defaults == {"a": "b"}


def test_enqueue_folds_duplicates_in_the_database(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(rendered())
        added, skipped = ledger.enqueue(
            "2026-W48", rows("a@x.org", "A@X.org", "b@x.org", "a@x.org"), batch=2
        )
        assert (added, skipped) == (2, 2)
        # Queueing again (a resumed queue, or --include-new) adds only the new ones.
        assert ledger.enqueue("2026-W48", rows("b@x.org", "c@x.org")) == (1, 1)
        assert ledger.counts("2026-W48")[PENDING] == 3
        assert [r.email for r in ledger.to_send("2026-W48")] == ["a@x.org", "b@x.org", "c@x.org"]
        assert ledger.is_queued("2026-W48", "C@x.org")


def test_to_send_reads_in_batches_and_skips_settled_rows(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(rendered("2026-W47"))
        ledger.freeze(rendered())
        ledger.enqueue("2026-W47", rows(*(f"old{i}@x.org" for i in range(5))))
        ledger.enqueue("2026-W48", rows(*(f"u{i}@x.org" for i in range(25))))
        seen = []
        for row in ledger.to_send("2026-W48", batch=4):
            seen.append(row.email)
            ledger.mark(row.id, SENT if len(seen) % 3 else DEFERRED, message_id="<m>")
        assert len(seen) == 25 and len(set(seen)) == 25
        # Only deferred ones come back; the other issue's rows never do.
        again = [r.email for r in ledger.to_send("2026-W48", batch=4)]
        assert len(again) == 8 and all(e.startswith("u") for e in again)


def test_mark_counts_attempts_and_keeps_errors(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(rendered())
        ledger.enqueue("2026-W48", rows("a@x.org", "b@x.org"))
        a, b = list(ledger.to_send("2026-W48"))
        ledger.mark(a.id, PENDING, error="451 try later")
        ledger.mark(a.id, SENT, message_id="<id@x>")
        ledger.mark(b.id, FAILED, error="RCPT: 550 no such user", message_id="<id2@x>")
        assert ledger.counts("2026-W48") == {
            PENDING: 0, SENT: 1, FAILED: 1, DEFERRED: 0, SUPPRESSED: 0
        }  # fmt: skip
        assert ledger.failures("2026-W48") == [("b@x.org", FAILED, "RCPT: 550 no such user", 1)]
        assert ledger.failure_reasons("2026-W48") == [("RCPT: 550 no such user", 1)]
        row = ledger._read("SELECT attempts, message_id FROM deliveries WHERE id = ?", (a.id,))
        assert row == [(2, "<id@x>")]
        assert len(ledger.sent_since(time.time() - 60)) == 1


def test_suppression_is_idempotent_and_case_insensitive(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.suppress("Ann@Example.org")
        ledger.suppress("ann@example.org", reason="complaint")  # no error, first reason stays
        assert ledger.is_suppressed("ANN@example.ORG")
        assert [(k, r) for k, _, r, _ in ledger.suppressions()] == [
            ("ann@example.org", "unsubscribe")
        ]
        ledger.freeze(rendered())
        ledger.enqueue("2026-W48", rows("ann@example.org", "bob@example.org"))
        assert ledger.suppress_pending("2026-W48") == 1
        assert ledger.counts("2026-W48")[SUPPRESSED] == 1
        ledger.unsuppress("ANN@example.org")
        assert not ledger.is_suppressed("ann@example.org")


def test_readonly_reads_but_never_writes(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger:
        ledger.freeze(rendered())
    with Ledger(path, readonly=True) as ro:
        assert ro.issue("2026-W48") is not None
        assert ro.dev_secret() is None  # never created by a reader
        with pytest.raises(sqlite3.OperationalError):
            ro.suppress("a@x.org")


def test_dev_secret_is_stable(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        first = ledger.dev_secret()
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        assert ledger.dev_secret() == first and len(first) >= 32


def test_issue_state(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(rendered())
        ledger.mark_queued("2026-W48", invalid=2, duplicates=3)
        ledger.set_issue_state("2026-W48", ISSUE_SENT)
        rec = ledger.issue("2026-W48")
        assert rec.finished and rec.queued and rec.finished_at is not None
        assert (rec.invalid, rec.duplicates) == (2, 3)


def test_send_lock_excludes_a_second_holder(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as one, Ledger(path) as two:
        busy = pytest.raises(SendBusy, match=r"another 'digest send' is running.*2026-W48")
        with one.lock("2026-W48"), busy, two.lock("2026-W48"):
            pass
        with two.lock("2026-W48"):  # released on exit
            pass


def test_send_lock_dies_with_its_process(tmp_path):
    """SIGKILL leaves no stale lock: the operating system releases it."""
    path = tmp_path / "l.sqlite3"
    code = textwrap.dedent(
        f"""
        import sys, time
        from digest.ledger import Ledger
        with Ledger({str(path)!r}) as l, l.lock("2026-W48"):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with Ledger(path) as ledger:
            with pytest.raises(SendBusy, match=f"pid {holder.pid}"), ledger.lock("2026-W48"):
                pass
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            with ledger.lock("2026-W48"):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_unsuppress_lifts_only_an_unsubscribe(tmp_path):
    """'Subscribe again' (digest serve) lifts the reader's own unsubscribe, never a
    suppression for another reason (a bounce, a complaint)."""
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.suppress("ann@example.com")  # reason: unsubscribe
        ledger.suppress("bob@example.com", reason="bounce")
        ledger.unsuppress("ANN@example.com")
        ledger.unsuppress("bob@example.com")
        assert not ledger.is_suppressed("ann@example.com")
        assert ledger.is_suppressed("bob@example.com")


# -- issue 13: privacy, damage, durability ---------------------------------------------------


def _fill(ledger: Ledger, n: int = 3000) -> None:
    """A ledger that spans many pages: an issue, n deliveries, a few suppressions."""
    ledger.freeze(rendered())
    ledger.enqueue("2026-W48", rows(*(f"reader{i}@example.com" for i in range(n))))
    for i in range(0, n, 100):
        ledger.suppress(f"reader{i}@example.com")


def test_ledger_and_its_wal_shm_and_lock_files_are_private(tmp_path):
    # Every address and the development secret live there: owner only (0600).
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger, ledger.lock("2026-W48"):
        _fill(ledger, 10)
        ledger.dev_secret()
        files = [path, tmp_path / "ledger.sqlite3-wal", tmp_path / "ledger.sqlite3-shm"]
        files.append(tmp_path / "ledger.sqlite3.lock")
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in files}
    assert modes == dict.fromkeys(modes, "0o600"), modes


def test_a_power_loss_rolls_back_at_most_about_a_hundred_deliveries(tmp_path, monkeypatch):
    # NORMAL syncs the WAL only before a checkpoint, every ~925 deliveries (FULL, a sync
    # per commit, costs more than our 10% bound: BENCHMARKS.md). A power loss keeps what
    # was synced: the database file (written only by checkpoints, synced after each) and
    # the WAL as of its last fsync. That state is rebuilt at 12 points of a send and
    # opened: the deliveries it has lost would be sent again after the reboot.
    import os
    import shutil

    path = tmp_path / "l.sqlite3"
    wal = tmp_path / "l.sqlite3-wal"
    synced: list[tuple[bytes, int]] = []  # (WAL header, size) at each fsync of the WAL
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if os.readlink(f"/proc/self/fd/{fd}") == str(wal):
            data = wal.read_bytes()
            synced.append((data[:32], len(data)))

    monkeypatch.setattr(os, "fsync", fsync)
    losses = []
    with Ledger(path) as ledger:
        _fill(ledger, 2000)
        ledger._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for i in range(1, 1801):
            ledger.mark(i, SENT, message_id=f"<{i}@example.com>")
            if i % 150 == 0:  # the power goes now
                lost = tmp_path / f"after-{i}"
                lost.mkdir()
                shutil.copy(path, lost / "l.sqlite3")
                data = wal.read_bytes()
                # The WAL's synced prefix, if it is still the same log (a checkpoint
                # restarts it with a new header; then nothing of it counts).
                if synced and data[:32] == synced[-1][0]:
                    (lost / "l.sqlite3-wal").write_bytes(data[: synced[-1][1]])
                with Ledger(lost / "l.sqlite3") as survived:
                    losses.append(i - survived.counts("2026-W48")[SENT])
    assert max(losses) <= 100, losses


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "garbage":
        path.write_bytes(b"this is not a database, it is a note\n" * 200)
    elif how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:  # corrupted pages: the header stays, every page after the first two is noise
        page = int.from_bytes(data[16:18], "big")
        for offset in range(2 * page, len(data), page):
            data[offset : offset + page] = bytes((i * 7 + 13) % 256 for i in range(page))
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["garbage", "truncated", "corrupted"])
def test_a_damaged_ledger_is_a_clear_error_naming_the_file(tmp_path, how):
    from digest.errors import LedgerError

    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        _fill(ledger)
    _damage(path, how)

    def use(readonly: bool) -> None:
        with Ledger(path, readonly=readonly) as ledger:
            for rec in ledger.issues():
                ledger.counts(rec.id)
                list(ledger.to_send(rec.id))
            list(ledger.suppressions())

    for readonly in (True, False):
        with pytest.raises(LedgerError) as exc:
            use(readonly)
        message = str(exc.value)
        assert str(path) in message and "digest ledger check" in message, message


def test_check_says_ok_or_lists_the_damage(tmp_path):
    from digest.upkeep import check

    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        _fill(ledger)
    sound = check(path)
    assert sound.ok and (sound.issues, sound.deliveries, sound.suppressions) == (1, 3000, 30)
    _damage(path, "corrupted")
    damaged = check(path)
    assert not damaged.ok and damaged.problems


def test_backup_is_a_checked_private_copy_taken_while_a_writer_is_busy(tmp_path):
    from digest.errors import LedgerError
    from digest.upkeep import backup, check

    path, dest = tmp_path / "ledger.sqlite3", tmp_path / "backups" / "b.sqlite3"
    with Ledger(path) as ledger:
        _fill(ledger)
        ledger.mark(1, SENT)  # still open, its WAL not checkpointed: the copy has it too
        r = backup(path, dest)
    assert r.path == dest and oct(dest.stat().st_mode & 0o777) == "0o600"
    assert check(dest).ok
    with Ledger(dest, readonly=True) as copy:
        assert copy.counts("2026-W48")[SENT] == 1 and copy.is_suppressed("reader100@example.com")
    with pytest.raises(LedgerError, match="already exists"):
        backup(path, dest)
    backup(path, dest, force=True)
    _damage(path, "corrupted")
    with pytest.raises(LedgerError, match="damaged"):
        backup(path, tmp_path / "bad.sqlite3")
    assert not (tmp_path / "bad.sqlite3").exists()


def test_suppressions_survive_a_lost_ledger_through_export_and_import(tmp_path):
    from digest.upkeep import export_suppressions, import_suppressions

    path, csv_file = tmp_path / "ledger.sqlite3", tmp_path / "suppressed.csv"
    with Ledger(path) as ledger:
        ledger.suppress("Ada@Example.com", "unsubscribe")
        ledger.suppress("bounced@example.com", "bounce")
    assert export_suppressions(path, csv_file) == 2
    assert oct(csv_file.stat().st_mode & 0o777) == "0o600"
    lines = csv_file.read_text().splitlines()
    assert lines[0] == "email,reason,time" and lines[1].startswith("Ada@Example.com,unsubscribe,")
    path.unlink()  # the ledger is lost
    with csv_file.open("a") as f:
        f.write("not-an-address,unsubscribe,\nzoe@example.com,,\n")
    result = import_suppressions(path, csv_file)
    assert (result.added, result.present) == (3, 0)
    assert result.problems == [f"{csv_file}:4: 'not-an-address' is not an address"]
    with Ledger(path) as ledger:
        assert ledger.is_suppressed("ada@example.com") and ledger.is_suppressed("zoe@example.com")
        reasons = {email: reason for _, email, reason, _ in ledger.suppressions()}
    assert reasons == {
        "Ada@Example.com": "unsubscribe",
        "bounced@example.com": "bounce",
        "zoe@example.com": "imported",
    }
    again = import_suppressions(path, csv_file)
    assert (again.added, again.present) == (0, 3)


def test_a_ledger_from_an_older_digest_reads_without_the_newer_tables(tmp_path: Path) -> None:
    """status, the archive and serve open old ledgers read-only: tables added later
    (bounces, signups, readers, windows) read as empty, never as a damaged file."""
    path = tmp_path / "old.sqlite3"
    with Ledger(path) as ledger:
        ledger.freeze(
            rendered("2026-W48"), number=1, send_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
        )
    db = sqlite3.connect(path)
    for table in ("bounces", "signups", "readers", "windows"):
        db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()
    with Ledger(path, readonly=True) as old:
        assert old.bounce_counts("2026-W48") == {}
        assert list(old.signups()) == [] and old.count_signups() == 0
        assert old.reader("abc") is None
        assert [f.id for f in old.history()] == ["2026-W48"]
