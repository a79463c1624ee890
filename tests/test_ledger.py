"""The SQLite ledger: frozen issues, per-recipient rows, suppressions, the send lock."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

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
