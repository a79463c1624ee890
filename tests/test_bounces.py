"""Bounces end to end: a real send over SMTP gives each reader a VERP envelope sender;
real DSNs (Postfix, Exim, Microsoft, Gmail: tests/fixtures/bounces/, see SOURCES.md) land
in a real Maildir; `digest bounces` suppresses those readers and the next send skips
them."""

from __future__ import annotations

import base64
import mailbox
import re
from pathlib import Path

import pytest

import imap_server
from digest import config
from digest.bounces import Readers, Verp, bounce_token, classify
from digest.ledger import Ledger
from digest.render import RenderedEmail
from smtp_server import Listener, SmtpServer
from test_send import SECRET, env, freeze, run, write_config

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
# fixture -> (the reader it is about, hard or soft)
CASES = {
    "postfix_dsn_user_unknown.eml": ("postfix-dsn@example.org", "hard"),
    "postfix_dsn_delayed.eml": ("postfix-delayed@example.org", "soft"),
    "postfix_legacy_user_unknown.eml": ("postfix-old@example.org", "hard"),
    "exim_user_unknown.eml": ("exim@example.org", "hard"),
    "microsoft_exchange_user_unknown.eml": ("exchange@example.org", "hard"),
    "microsoft_dsn_user_unknown.eml": ("ms-dsn@example.org", "hard"),
    "gmail_user_unknown.eml": ("gmail@example.org", "hard"),
    "gmail_delayed.eml": ("gmail-delayed@example.org", "soft"),
    # The report names "david...@gmail.com": only the VERP address says who it was.
    "gmail_spam_block_via_exim_address_cut.eml": ("verp-only@example.org", "hard"),
}
STAYING = ["stays1@example.org", "stays2@example.org", "stays3@example.org"]
W49 = "2026-W49"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def delivered(raw: bytes, to: str, n: int = 0) -> bytes:
    """The message as the bounce mailbox's server stores it: with the address it was
    delivered to (and a Received line of its own per delivery)."""
    return f"Delivered-To: {to}\nReceived: by mx.example.com (Postfix) id {n:08X}\n".encode() + raw


def subscribers(tmp_path: Path) -> list[str]:
    addresses = [a for a, _ in CASES.values()] + STAYING
    (tmp_path / "subscribers.csv").write_text(
        "email,name\n" + "".join(f"{a},Reader\n" for a in addresses)
    )
    return addresses


def second_issue() -> RenderedEmail:
    return RenderedEmail(W49, "The Weekly Digest #49", "pre", "<p>Hi</p>", "Hi\n")


# -- the token ---------------------------------------------------------------------------


def test_the_token_is_opaque_signed_and_short():
    token = bounce_token(SECRET, "2026-W48", "Ada.Lovelace@Example.org")
    assert re.fullmatch(r"2026-w48-[a-z2-7]{16}", token)
    assert token == bounce_token(SECRET, "2026-W48", "ada.lovelace@example.org")  # folded
    # Nothing of the address in it, in any of the usual encodings.
    for spelling in (b"ada.lovelace@example.org", b"ada.lovelace"):
        for enc in (base64.urlsafe_b64encode, base64.b32encode, base64.b16encode):
            assert enc(spelling).decode().lower().rstrip("=")[:8] not in token
    assert token != bounce_token("another-secret-0123456789", "2026-W48", "ada@example.org")
    assert token != bounce_token(SECRET, "2026-W49", "ada.lovelace@example.org")
    verp = Verp(SECRET, "bounces", "example.com", "+", "2026-W48")
    assert len(verp.address("x" * 64 + "@example.com").split("@")[0]) <= 64


def test_a_forged_or_foreign_token_names_nobody(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(RenderedEmail("2026-W48", "s", "p", "h", "t"))
        ledger.enqueue("2026-W48", [("ada@example.org", "ada@example.org", "", "")])
        readers = Readers(ledger, SECRET)
        good = bounce_token(SECRET, "2026-W48", "ada@example.org")
        assert readers.find(good) == ("2026-W48", "ada@example.org")
        assert readers.find(good.upper()) == ("2026-W48", "ada@example.org")  # case folded
        assert readers.find(good[:-1] + ("a" if good[-1] != "a" else "b")) is None
        assert (
            readers.find(bounce_token("other-secret-0123456789", "2026-W48", "ada@example.org"))
            is None
        )
        assert readers.find("2026-w47-" + good.rsplit("-", 1)[1]) is None


# -- classification of real DSNs ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_bounces_are_classified(tmp_path, name):
    reader, kind = CASES[name]
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.freeze(RenderedEmail("2026-W48", "s", "p", "h", "t"))
        ledger.enqueue("2026-W48", [(reader, reader, "", "")])
        (row,) = list(ledger.to_send("2026-W48"))
        ledger.mark(row.id, "sent")
        verp = Verp(SECRET, "bounces", "example.com", "+", "2026-W48")
        readers = Readers(ledger, SECRET)
        # Delivered to the reader's VERP address: found by the token, whatever it says.
        v = classify(delivered(fixture(name), verp.address(reader)), verp, readers, ledger)
        assert (v.kind, v.readers, v.via) == (kind, ((reader, "2026-W48"),), "verp")
        # Delivered to the plain address: flufl.bounce finds the reader, if it can.
        v = classify(fixture(name), verp, readers, ledger)
        assert v.kind == kind
        if name.startswith("gmail_spam_block"):
            assert v.readers == () and v.unknown == ("david...@gmail.com",)
        else:
            assert v.readers == ((reader, "2026-W48"),) and v.via == "flufl.bounce"


def test_reasons_come_from_the_status_codes():
    verdicts = {n: classify(fixture(n), None, None, _NoLedger()) for n in CASES}
    assert verdicts["exim_user_unknown.eml"].reason == "5.1.1 no such mailbox"
    assert verdicts["microsoft_dsn_user_unknown.eml"].reason == "5.1.1 no such mailbox"
    assert verdicts["postfix_dsn_delayed.eml"].reason.startswith("4.")


class _NoLedger:
    def last_issue_sent_to(self, email: str) -> None:
        return None

    def issue(self, issue_id: str) -> None:
        return None


# -- end to end ------------------------------------------------------------------------------


def test_real_bounces_suppress_their_readers_and_the_next_send_skips_them(tmp_path):
    addresses = subscribers(tmp_path)
    with SmtpServer(pipelining=True) as server:
        path = write_config(
            tmp_path, server.port, extra="[bounces]\nsoft_limit = 2\nsoft_days = 30\n"
        )
        freeze(path)
        first = run(path, "send", "--issue", "2026-W48", "--yes")
        assert first.returncode == 0, first.stderr
        sender_of = {m.rcpt_tos[0]: m.mail_from for m in server.messages}
        assert sorted(sender_of) == sorted(addresses)
        assert len(set(sender_of.values())) == len(addresses)  # one bounce address each
        for address, sender in sender_of.items():
            assert address.split("@")[0] not in sender  # opaque

        # The bounces arrive in a real Maildir: most at the reader's VERP address, the
        # Exim one at the plain bounce address (found by flufl.bounce), plus a reader's
        # reply that is no bounce at all.
        box = mailbox.Maildir(tmp_path / "Maildir", create=True)
        for n, (name, (reader, _)) in enumerate(CASES.items()):
            to = "bounces@example.com" if name.startswith("exim") else sender_of[reader]
            box.add(delivered(fixture(name), to, n))
        box.add(b"From: stays1@example.org\nTo: bounces@example.com\nSubject: Re: hi\n\nThanks!\n")
        result = run(path, "bounces", "--maildir", str(tmp_path / "Maildir"))
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "Read 10 message(s): 9 handled, 1 left in the mailbox" in out
        assert re.search(r"hard bounces\s+7\n", out) and re.search(r"soft bounces\s+2\n", out)
        assert re.search(r"readers suppressed\s+7\n", out)  # one soft bounce each: not yet
        assert re.search(r"2 x hard: 5\.1\.1 no such mailbox", out)
        assert re.search(r"2 x hard: 5\.0\.0 permanent failure", out)  # Postfix; Gmail via Exim
        assert "1 x hard: 554 permanent failure" in out  # the older Postfix report
        assert "1 x soft: 4.0.0 temporary failure" in out
        # Handled messages moved to the done folder; the reply stays for a person.
        assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 1
        assert len(mailbox.Maildir(tmp_path / "Maildir").get_folder("digest-handled")) == 9

        # A second soft bounce for each of the two soft readers, another run: suppressed.
        for n, name in enumerate(("gmail_delayed.eml", "postfix_dsn_delayed.eml"), 100):
            box.add(delivered(fixture(name), sender_of[CASES[name][0]], n))
        again = run(path, "bounces", "--maildir", str(tmp_path / "Maildir"))
        assert again.returncode == 0, again.stderr
        assert re.search(r"readers suppressed\s+2\n", again.stdout)
        assert "soft bounces: 2 in 30 days" in again.stdout

        status = run(path, "status")
        assert "bounced 7 hard, 4 soft" in status.stdout, status.stdout

        # The next issue goes to the readers who did not bounce, and only them.
        with Ledger(config.load(path).ledger.path) as ledger:
            ledger.freeze(second_issue())
        server.messages.clear()
        second = run(path, "send", "--issue", W49, "--yes")
        assert second.returncode == 0, second.stderr
    assert sorted(m.rcpt_tos[0] for m in server.messages) == STAYING
    assert re.search(r"suppressed \(unsubscribed\)\s+9", second.stdout), second.stdout


def test_a_bounce_read_twice_counts_once(tmp_path):
    subscribers(tmp_path)
    with SmtpServer() as server:
        path = write_config(tmp_path, server.port, extra="[bounces]\nsoft_limit = 2\n")
        freeze(path)
        assert run(path, "send", "--issue", "2026-W48", "--yes").returncode == 0
        sender = {m.rcpt_tos[0]: m.mail_from for m in server.messages}["gmail-delayed@example.org"]
    raw = delivered(fixture("gmail_delayed.eml"), sender)
    for _ in range(2):  # e.g. a crash after the record and before the move
        mailbox.Maildir(tmp_path / "Maildir", create=True).add(raw)
        result = run(path, "bounces", "--maildir", str(tmp_path / "Maildir"))
        assert result.returncode == 0, result.stderr
    assert re.search(r"already recorded\s+1\n", result.stdout)
    assert re.search(r"readers suppressed\s+0\n", result.stdout)


def test_mailbox_problems_are_errors_not_crashes(tmp_path):
    path = write_config(tmp_path)
    result = run(path, "bounces", "--maildir", str(tmp_path))
    assert result.returncode == 1 and "is not a Maildir" in result.stderr
    assert "Traceback" not in result.stderr
    result = run(path, "bounces")
    assert result.returncode == 2 and "bounces.maildir" in result.stderr
    closed = Listener(closed=True)
    url = f"imap://bounces@127.0.0.1:{closed.port}/INBOX"
    result = run(path, "bounces", "--imap", url)
    assert result.returncode == 1 and "DIGEST_IMAP_PASSWORD" in result.stderr
    result = run(path, "bounces", "--imap", url, environ=env(DIGEST_IMAP_PASSWORD="pw"))
    assert result.returncode == 1 and f"IMAP 127.0.0.1:{closed.port}" in result.stderr
    assert "Traceback" not in result.stderr and "pw" not in result.stderr


def test_verp_can_be_turned_off_or_given_another_address(tmp_path):
    from digest.message import Composer, Recipient

    def sender(bounces: dict) -> str:
        cfg = config.parse(
            {"sender": {"email": "news@example.com"}, "bounces": bounces},
            tmp_path / "config.toml",
        )
        composer = Composer.from_config(cfg, second_issue(), SECRET)
        return composer.compose(Recipient("ada@example.org")).sender

    token = bounce_token(SECRET, W49, "ada@example.org")
    assert sender({}) == f"bounces+{token}@example.com"
    assert sender({"address": "rp@mail.example.net", "delimiter": "-"}) == (
        f"rp-{token}@mail.example.net"
    )
    assert sender({"verp": False}) == ""  # the engine uses sender.email, as before
    assert sender({"verp": False, "address": "rp@example.net"}) == "rp@example.net"


@pytest.mark.skipif(not imap_server.available(), reason="needs Dovecot (dovecot-imapd)")
@pytest.mark.parametrize("starttls", [False, True], ids=["imaps", "imap+starttls"])
def test_bounces_read_over_imap_from_a_real_server(tmp_path, starttls):
    subscribers(tmp_path)
    with SmtpServer() as server:
        path = write_config(tmp_path, server.port)
        freeze(path)
        assert run(path, "send", "--issue", "2026-W48", "--yes").returncode == 0
        sender_of = {m.rcpt_tos[0]: m.mail_from for m in server.messages}
    with imap_server.ImapServer(tmp_path) as imap:
        for n, name in enumerate(("exim_user_unknown.eml", "gmail_user_unknown.eml")):
            imap.deliver(delivered(fixture(name), sender_of[CASES[name][0]], n), f"b{n}")
        imap.deliver(b"From: a@example.org\nSubject: hi\n\nhello\n", "reply")
        environ = env(
            DIGEST_IMAP_PASSWORD=imap_server.PASSWORD, SSL_CERT_FILE=str(imap.cert)
        )  # the test server's own certificate, trusted like a system CA
        url = imap.starttls_url if starttls else imap.url
        result = run(path, "bounces", "--imap", url, environ=environ)
        assert result.returncode == 0, result.stderr
        assert "Read 3 message(s): 2 handled, 1 left in the mailbox" in result.stdout
        assert re.search(r"readers suppressed\s+2\n", result.stdout)
        assert imap_server.PASSWORD not in result.stdout + result.stderr
        assert len(imap.folder("digest-handled")) == 2
        assert len(imap.inbox()) == 1  # the reply stays
        wrong = run(
            path, "bounces", "--imap", url, environ={**environ, "DIGEST_IMAP_PASSWORD": "x"}
        )
        assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
        assert "AUTHENTICATIONFAILED" in wrong.stderr or "failed" in wrong.stderr.lower()
    with Ledger(config.load(path).ledger.path, readonly=True) as ledger:
        assert ledger.is_suppressed("exim@example.org") and ledger.is_suppressed(
            "gmail@example.org"
        )
