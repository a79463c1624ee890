"""Transports and the delivery engine against real SMTP servers on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time

import pytest

from digest import pipeline, sending
from digest.config import parse
from digest.delivery import (
    Engine,
    Fatal,
    Job,
    OutboxTransport,
    RateLimiter,
    Settings,
    SmtpTransport,
    backoff,
)
from digest.errors import ConfigError, DeliveryError
from digest.ledger import Ledger
from digest.message import Composer, message_id
from digest.model import Recipient, RenderedEmail
from digest.tokens import read_token
from smtp_server import Faults, Listener, SmtpServer, make_cert

SECRET = "delivery-test-secret-0123456789"
WEEK = "2026-W48"
SEL = pipeline.Selection(week=WEEK)
NOW = None  # the frozen issue is found by its week; the clock is not used


def issue(html_repeat: int = 20) -> RenderedEmail:
    return RenderedEmail(
        WEEK,
        "The Weekly Digest #48",
        "pre",
        "<p>Hi __digest_first_name__</p>" + "<p>Some news.</p>\n" * html_repeat
        + '<a href="__digest_unsubscribe_url__">Unsubscribe</a>',
        "Hi __digest_name__\n" + "Some news.\n" * html_repeat + "__digest_unsubscribe_url__\n",
    )  # fmt: skip


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def config(tmp_path, port: int, **sections):
    raw = {
        "newsletter": {"base_url": "https://news.example.org"},
        "sender": {"email": "news@example.com", "name": "The Weekly Digest"},
        "subscribers": {"file": "subscribers.csv"},
        "ledger": {"path": "ledger.sqlite3"},
        "delivery": {
            "transport": "smtp",
            "concurrency": 4,
            "retry_seconds": 0.01,
            "retry_max_seconds": 0.05,
            "max_attempts": 10,
            "pause_after_failures": 50,
        },
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5},
        "unsubscribe": {"secret_env": "DIGEST_TEST_SECRET", "url": "https://example.com/u"},
    }
    return parse(merge(raw, sections), tmp_path / "config.toml")


def subscribers(tmp_path, addresses: list[str]) -> list[str]:
    lines = ["email,name"] + [f"{a},Reader {i}" for i, a in enumerate(addresses)]
    (tmp_path / "subscribers.csv").write_text("\n".join(lines) + "\n")
    return addresses


def freeze(cfg, r: RenderedEmail | None = None) -> None:
    with Ledger(cfg.ledger.path) as ledger:
        ledger.freeze(r or issue())


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("DIGEST_TEST_SECRET", SECRET)


def send(cfg, **kw):
    return sending.send(cfg, NOW, SEL, **kw)


# -- the whole send under faults -------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [False, True])
def test_faults_every_deliverable_recipient_gets_the_issue_once(tmp_path, pipelining):
    addresses = subscribers(
        tmp_path,
        [f"{'bounce' if i % 37 == 5 else 'reader'}{i}@example.com" for i in range(400)],
    )
    faults = Faults(
        transient_rcpt=0.1,
        transient_data=0.1,
        drop_every=100,
        slow=0.05,
        slow_share=0.03,
        reject=lambda a: a.startswith("bounce"),
        seed=11,
    )
    with SmtpServer(faults=faults, pipelining=pipelining) as server:
        cfg = config(tmp_path, server.port)
        freeze(cfg)
        seen: list[tuple[int, int]] = []
        report = send(cfg, progress=lambda done, total: seen.append((done, total)))
    deliverable = {a for a in addresses if a.startswith("reader")}
    bounced = {a for a in addresses if a.startswith("bounce")}
    got = server.by_recipient()
    assert set(got) == deliverable  # nothing to the 550s, no one missing
    assert all(len(ids) == 1 for ids in got.values())  # no one twice
    assert len(server.messages) == len(deliverable)  # nothing else
    for m in server.messages:
        (rcpt,) = m.rcpt_tos
        assert m.message_id == message_id(WEEK, rcpt, "example.com")
        msg = email.message_from_bytes(m.data, policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec == rcpt
        assert msg["Subject"] == "The Weekly Digest #48"
        token = msg["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
        # The token is opaque; the send recorded whose id it is before mailing it.
        with Ledger(cfg.ledger.path, readonly=True) as ledger:
            assert read_token(SECRET, token, ledger.reader) == rcpt
    assert server.stats.rcpt_transient and server.stats.data_transient and server.stats.dropped
    assert (report.sent, report.failed, report.deferred, report.pending) == (
        len(deliverable), len(bounced), 0, 0,
    )  # fmt: skip
    assert report.exit_code == 0 and report.complete
    assert {a for a, _ in report.failures} == bounced
    assert all(why.startswith("RCPT: 550 5.1.1") for _, why in report.failures)
    assert seen and seen[-1][1] == 400 and seen[-1][0] <= 400
    (status,) = sending.status(cfg, WEEK)
    assert status.state == "sent" and status.counts["sent"] == len(deliverable)
    assert status.counts["failed"] == len(bounced) and len(status.failures) == len(bounced)


def test_a_second_send_is_a_noop_and_include_new_mails_only_the_new(tmp_path):
    addresses = subscribers(tmp_path, [f"r{i}@example.com" for i in range(20)])
    with SmtpServer() as server:
        cfg = config(tmp_path, server.port)
        freeze(cfg)
        assert send(cfg).sent == 20
        again = send(cfg)
        assert again.noop and again.sent == 0 and again.already_sent == 20
        assert again.new_since == 0 and again.exit_code == 0
        new = ["new1@example.com", "NEW2@example.com", "r3@EXAMPLE.com", "New1@example.com"]
        subscribers(tmp_path, [*addresses, *new])
        with Ledger(cfg.ledger.path) as ledger:  # new2 also signed up and confirmed
            ledger.signup("new2@example.com", source="form", nonce="n2")
            assert ledger.confirm_signup("n2")[0] == "confirmed"
        assert send(cfg).new_since == 2  # each new reader once
        assert len(server.messages) == 20
        added = send(cfg, include_new=True)
        assert (added.sent, added.already_sent) == (2, 20)
        assert send(cfg).noop
    got = server.by_recipient()
    assert len(server.messages) == 22 and all(len(v) == 1 for v in got.values())
    assert {"new1@example.com", "new2@example.com"} <= set(got)


def test_unsubscribed_addresses_are_not_mailed(tmp_path):
    subscribers(tmp_path, [f"r{i}@example.com" for i in range(10)])
    with SmtpServer() as server:
        cfg = config(tmp_path, server.port)
        freeze(cfg)
        with Ledger(cfg.ledger.path) as ledger:
            ledger.suppress("R3@Example.com")
            ledger.suppress("r7@example.com", reason="complaint")
        report = send(cfg)
    assert set(server.by_recipient()) == {f"r{i}@example.com" for i in range(10)} - {
        "r3@example.com",
        "r7@example.com",
    }
    assert (report.sent, report.suppressed) == (8, 2)


# -- TLS and AUTH ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


def test_starttls_self_signed_refused_by_default_accepted_with_ca_file(tmp_path, cert):
    subscribers(tmp_path, ["ann@example.com", "bob@example.com"])
    with SmtpServer(tls="starttls", cert=cert) as server:
        cfg = config(tmp_path, server.port, smtp={"security": "starttls"})
        freeze(cfg)
        with pytest.raises(Fatal) as exc:
            send(cfg)
        message = str(exc.value)
        assert "not trusted" in message and "self-signed" in message.replace(
            "self signed", "self-signed"
        )
        assert "smtp.ca_file" in message and "Nothing was sent" in message
        assert exc.value.exit_code == 5
        assert server.messages == []
        # Nothing is lost: once the CA is configured, the same send goes through.
        cfg = config(tmp_path, server.port, smtp={"security": "starttls", "ca_file": str(cert[0])})
        report = send(cfg)
    assert report.sent == 2 and len(server.messages) == 2


def test_implicit_tls(tmp_path, cert):
    subscribers(tmp_path, ["ann@example.com"])
    with SmtpServer(tls="tls", cert=cert) as server:
        cfg = config(tmp_path, server.port, smtp={"security": "tls", "ca_file": str(cert[0])})
        freeze(cfg)
        assert send(cfg).sent == 1


def test_starttls_required_but_not_offered(tmp_path):
    subscribers(tmp_path, ["ann@example.com"])
    with SmtpServer() as server:
        cfg = config(tmp_path, server.port, smtp={"security": "starttls"})
        freeze(cfg)
        with pytest.raises(Fatal, match="does not offer STARTTLS"):
            send(cfg)


def test_auth(tmp_path, cert, monkeypatch):
    subscribers(tmp_path, ["ann@example.com", "bob@example.com"])
    with SmtpServer(tls="starttls", cert=cert, users={"digest": "right horse"}) as server:
        smtp = {"security": "starttls", "ca_file": str(cert[0]), "username": "digest",
                "password_env": "DIGEST_TEST_PASSWORD"}  # fmt: skip
        cfg = config(tmp_path, server.port, smtp=smtp)
        freeze(cfg)
        monkeypatch.delenv("DIGEST_TEST_PASSWORD", raising=False)
        with pytest.raises(ConfigError, match="DIGEST_TEST_PASSWORD"):
            send(cfg)
        monkeypatch.setenv("DIGEST_TEST_PASSWORD", "wrong staple")
        with pytest.raises(Fatal) as exc:
            send(cfg)
        message = str(exc.value)
        assert "refused the login for user 'digest'" in message and "535" in message
        assert "DIGEST_TEST_PASSWORD" in message and "wrong staple" not in message
        assert server.messages == [] and server.stats.auth_failures >= 1
        monkeypatch.setenv("DIGEST_TEST_PASSWORD", "right horse")
        assert send(cfg).sent == 2


def test_real_send_needs_the_secret(tmp_path, monkeypatch):
    subscribers(tmp_path, ["ann@example.com"])
    with SmtpServer() as server:
        cfg = config(tmp_path, server.port)
        freeze(cfg)
        monkeypatch.delenv("DIGEST_TEST_SECRET")
        with pytest.raises(ConfigError, match="DIGEST_TEST_SECRET is not set"):
            send(cfg)
    assert server.messages == []


# -- pauses and failures -------------------------------------------------------------------------


def test_pause_after_consecutive_failures_then_resume(tmp_path):
    subscribers(tmp_path, [f"r{i}@example.com" for i in range(30)])
    faults = Faults(transient_rcpt=1.0)
    with SmtpServer(faults=faults) as server:
        cfg = config(tmp_path, server.port, delivery={"pause_after_failures": 8})
        freeze(cfg)
        report = send(cfg)
        assert report.paused and "8 failures in a row" in report.paused
        assert f"to resume, run: digest send --issue {WEEK}" in report.paused
        assert report.exit_code == 5 and report.sent == 0
        assert report.pending + report.deferred == 30
        faults.transient_rcpt = 0.0  # the server recovers
        report = send(cfg)
    assert report.complete and report.sent == 30
    assert len(server.messages) == 30


@pytest.mark.parametrize("closed", [True, False], ids=["refused", "timeout"])
def test_unreachable_server_pauses_with_a_clear_message(tmp_path, closed):
    subscribers(tmp_path, ["ann@example.com", "bob@example.com"])
    listener = Listener(closed=closed)
    try:
        cfg = config(
            tmp_path,
            listener.port,
            smtp={"timeout": 0.3},
            delivery={"max_attempts": 2, "concurrency": 2},
        )
        freeze(cfg)
        started = time.monotonic()
        report = send(cfg)
    finally:
        listener.close()
    assert time.monotonic() - started < 10
    assert report.paused.startswith("paused: cannot reach the server")
    assert f"127.0.0.1:{listener.port}" in report.paused
    assert report.exit_code == 5 and report.pending == 2


def test_refused_sender_stops_and_marks_no_one(tmp_path):
    subscribers(tmp_path, [f"r{i}@example.com" for i in range(10)])
    with SmtpServer(faults=Faults(reject_sender=True)) as server:
        cfg = config(tmp_path, server.port)
        freeze(cfg)
        with pytest.raises(Fatal, match=r"refused the sender address bounces\+\S+@example\.com"):
            send(cfg)
    (status,) = sending.status(cfg, WEEK)
    assert status.counts["pending"] == 10 and status.counts["failed"] == 0


def test_deferred_after_max_attempts_is_retried_next_run(tmp_path):
    subscribers(tmp_path, ["ann@example.com", "stuck@example.com"])
    stuck = {"stuck@example.com"}
    with SmtpServer(faults=Faults(defer=lambda a: a in stuck)) as server:
        cfg = config(tmp_path, server.port, delivery={"max_attempts": 3})
        freeze(cfg)
        report = send(cfg)
        # A 4xx for one address only: temporary, so it is deferred, not failed.
        assert (report.sent, report.deferred, report.failed, report.exit_code) == (1, 1, 0, 5)
        assert report.failures == [("stuck@example.com", "RCPT: 452 4.2.2 Mailbox full, try later")]
        stuck.clear()
        report = send(cfg)
    assert (report.sent, report.already_sent, report.complete) == (1, 1, True)
    assert len(server.messages) == 2


# -- engine and transports in isolation ----------------------------------------------------------


def composer() -> Composer:
    return Composer(issue(), secret=SECRET, from_email="news@example.com",
                    unsubscribe_url="https://example.com/u")  # fmt: skip


def run_engine(transport, jobs, stop=None, **settings):
    c = composer()
    recorded: list[tuple[str, str]] = []
    lock = threading.Lock()

    def compose(job):
        return c.compose(Recipient(job.email))

    def record(job, kind, detail, mid):
        with lock:
            recorded.append((job.email, kind))

    s = Settings("news@example.com", retry_base=0.01, retry_max=0.05, **settings)
    engine = Engine(transport, iter(jobs), compose=compose, record=record, settings=s, stop=stop)
    return engine, recorded


def test_stop_finishes_the_messages_in_flight(tmp_path):
    """What SIGTERM does: no new message starts, every started one is finished and
    recorded, so what the server accepted and what was recorded as sent are the same."""
    with SmtpServer(faults=Faults(slow=0.1, slow_share=1.0)) as server:
        t = SmtpTransport("127.0.0.1", server.port, security="none", timeout=5)
        stop = threading.Event()
        engine, recorded = run_engine(t, [Job(i, f"r{i}@example.com") for i in range(200)], stop)
        threading.Timer(0.5, stop.set).start()
        result = engine.run()
    sent = {e for e, kind in recorded if kind == "sent"}
    assert result.interrupted and 0 < result.sent < 200
    assert set(server.by_recipient()) == sent


def test_tcp_nodelay_and_connection_reuse():
    with SmtpServer() as server:
        t = SmtpTransport("127.0.0.1", server.port, security="none", timeout=5)
        conn = t.connect()
        assert conn.smtp.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        conn.close()
        engine, _ = run_engine(t, [Job(i, f"r{i}@example.com") for i in range(40)])
        assert engine.run().sent == 40
    peers = {m.peer for m in server.messages}
    assert len(peers) <= 4  # four connections, each reused


def test_outbox_is_a_maildir_and_rewrites_are_idempotent(tmp_path):
    t = OutboxTransport(tmp_path / "outbox")
    engine, _ = run_engine(t, [Job(i, f"r{i}@example.com") for i in range(5)])
    assert engine.run().sent == 5
    engine, _ = run_engine(t, [Job(1, "r1@example.com")])  # sent again after a "crash"
    engine.run()
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["cur", "new", "tmp"]
    files = list((tmp_path / "outbox" / "new").glob("*.eml"))
    assert len(files) == 5 and not list((tmp_path / "outbox" / "tmp").iterdir())
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "The Weekly Digest #48"


def test_rate_limits():
    stop = threading.Event()
    limiter = RateLimiter(per_second=50)
    started = time.monotonic()
    assert all(limiter.acquire(stop) for _ in range(21))
    assert time.monotonic() - started >= 0.38
    # Per hour, counting what was sent in the last hour (e.g. by a run before a restart).
    now = time.time()
    limiter = RateLimiter(per_hour=3, recent=[now - 100, now - 50])
    assert limiter.acquire(stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert not limiter.acquire(stop)  # would wait ~58 minutes; the stop ends the wait
    assert time.monotonic() - started < 2


def test_rate_limited_send(tmp_path):
    subscribers(tmp_path, [f"r{i}@example.com" for i in range(10)])
    with SmtpServer() as server:
        cfg = config(tmp_path, server.port, delivery={"rate_per_second": 20})
        freeze(cfg)
        started = time.monotonic()
        assert send(cfg).sent == 10
    assert time.monotonic() - started >= 0.45  # 10 messages, 50 ms apart


def test_backoff_grows_with_jitter():
    delays = [backoff(n, 1.0, 60.0) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.5 and 4 <= delays[3] <= 12
    assert all(d <= 90 for d in delays)
    assert len({round(backoff(3, 1.0, 60.0), 6) for _ in range(20)}) > 1


def test_delivery_error_tree():
    assert issubclass(Fatal, DeliveryError) and Fatal("x").exit_code == 5


@pytest.mark.parametrize("pipelining", [False, True])
def test_data_not_known_dot_safe_is_stuffed_and_line_ends_fixed(pipelining):
    """A message not built by the Composer is never trusted to be dot-safe: a line "."
    inside it must not end the DATA and let the rest run as SMTP commands."""
    from digest.message import Composed

    smuggle = (
        b"Subject: hi\r\n\r\nfirst\r\n.\r\nMAIL FROM:<e@evil.example>\r\n"
        b"RCPT TO:<v@evil.example>\r\nDATA\r\nforged\r\n.\r\nbare\n.\nend\r.\rx"
    )
    with SmtpServer(pipelining=pipelining) as server:
        t = SmtpTransport("127.0.0.1", server.port, security="none", timeout=5)
        recorded = []

        def record(job, kind, detail, mid):
            recorded.append((job.email, kind))

        engine = Engine(
            t,
            iter([Job(1, "ann@example.com"), Job(2, "bob@example.com")]),
            compose=lambda job: Composed(f"<{job.id}@example.com>", smuggle),
            record=record,
            settings=Settings("news@example.com", concurrency=1),
        )
        assert engine.run().sent == 2
    assert [m.rcpt_tos for m in server.messages] == [("ann@example.com",), ("bob@example.com",)]
    want = smuggle.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    assert all(m.data.rstrip(b"\r\n") == want.rstrip(b"\r\n") for m in server.messages)


def test_a_server_refusing_everyone_pauses_without_failing_anyone_for_good(tmp_path):
    """554 at the end of DATA for every message: the recipients refused in the run of
    failures that paused the send are put back in the queue, so the pause's "nothing is
    lost" is true and the resume mails them."""
    addresses = subscribers(tmp_path, [f"r{i}@example.com" for i in range(30)])
    faults = Faults(reject_data=lambda rcpt: True)
    with SmtpServer(faults=faults) as server:
        cfg = config(tmp_path, server.port, delivery={"pause_after_failures": 8})
        freeze(cfg)
        report = send(cfg)
        assert report.paused and "8 failures in a row" in report.paused
        assert "554 5.7.1" in report.paused and "nothing is lost" in report.paused.lower()
        assert "put back in the queue" in report.paused
        assert report.exit_code == 5 and report.sent == 0 and report.failed == 0
        assert report.pending + report.deferred == 30
        faults.reject_data = None  # the relay is fixed
        report = send(cfg)
    assert report.complete and report.sent == 30 and report.failed == 0
    assert set(server.by_recipient()) == set(addresses)


def test_retry_failed_puts_refused_recipients_back(tmp_path):
    """Fewer recipients than the pause threshold, all refused: the send completes with
    them failed; --retry-failed tries them again once the cause is fixed."""
    addresses = subscribers(tmp_path, [f"r{i}@example.com" for i in range(5)])
    faults = Faults(reject_data=lambda rcpt: rcpt != "r0@example.com")
    with SmtpServer(faults=faults) as server:
        cfg = config(tmp_path, server.port)
        freeze(cfg)
        report = send(cfg)
        assert (report.sent, report.failed, report.complete) == (1, 4, True)
        assert send(cfg).noop
        faults.reject_data = None
        report = send(cfg, retry_failed=True)
        assert (report.sent, report.already_sent, report.failed) == (4, 1, 0)
        assert report.complete
    assert set(server.by_recipient()) == set(addresses)
    assert all(len(ids) == 1 for ids in server.by_recipient().values())


AUTH_BUSY = "454 4.7.0 Temporary authentication failure"


def auth_config(tmp_path, port, monkeypatch, **delivery):
    monkeypatch.setenv("DIGEST_TEST_PASSWORD", "right horse")
    smtp = {"username": "digest", "password_env": "DIGEST_TEST_PASSWORD"}
    d = {"concurrency": 1, "max_attempts": 10, **delivery}
    return config(tmp_path, port, smtp=smtp, delivery=d)


def test_a_temporary_auth_failure_is_retried_not_fatal(tmp_path, monkeypatch):
    """454 to AUTH (the server's auth backend is busy), on the first connection and on a
    reconnect halfway through: retried like any 4xx, and everyone gets the issue once."""
    addresses = subscribers(tmp_path, [f"r{i}@example.com" for i in range(10)])
    faults = Faults(drop_every=4, auth_reply=lambda n: AUTH_BUSY if n in (1, 3) else None)
    with SmtpServer(faults=faults, users={"digest": "right horse"}, require_auth=False) as server:
        cfg = auth_config(tmp_path, server.port, monkeypatch)
        freeze(cfg)
        report = send(cfg)
    assert report.complete and report.sent == 10
    assert server.stats.auth_failures >= 2 and server.stats.dropped >= 2
    got = server.by_recipient()
    assert set(got) == set(addresses) and all(len(ids) == 1 for ids in got.values())


def test_a_refused_login_mid_send_says_what_was_sent(tmp_path, monkeypatch):
    """The password stops working on a reconnect halfway through: a fatal stop whose
    message says how many were sent, never "Nothing was sent"."""
    subscribers(tmp_path, [f"r{i}@example.com" for i in range(10)])
    refuse = "535 5.7.8 Authentication credentials invalid"
    faults = Faults(drop_every=4, auth_reply=lambda n: refuse if n >= 2 else None)
    with SmtpServer(faults=faults, users={"digest": "right horse"}, require_auth=False) as server:
        cfg = auth_config(tmp_path, server.port, monkeypatch)
        freeze(cfg)
        with pytest.raises(Fatal) as exc:
            send(cfg)
    message = str(exc.value)
    assert "refused the login" in message and "535" in message
    assert "Nothing was sent" not in message
    assert "3 message(s) were sent before it stopped" in message
    assert len(server.messages) == 3
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        assert ledger.counts(WEEK)["sent"] == 3


def test_the_smtp_password_is_never_in_a_repr(tmp_path, monkeypatch):
    from digest.delivery import transport_for

    password = "s3cret-horse-battery"
    monkeypatch.setenv("DIGEST_TEST_PASSWORD", password)
    cfg = config(tmp_path, 25, smtp={"username": "digest", "password_env": "DIGEST_TEST_PASSWORD"})
    transport = transport_for(cfg)
    assert transport.password == password  # it is there, to log in with
    for shown in (repr(transport), str(transport), repr(cfg), str(cfg), repr(cfg.smtp)):
        assert password not in shown
