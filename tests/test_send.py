"""`digest send / preview / status` end to end: real processes, real SMTP, real ledger.

The crash tests kill a `digest send` process with SIGKILL (or SIGTERM) at random points of
a 2,000-recipient send and resume it, several times.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from digest import pipeline, sending
from digest.config import load
from digest.ledger import Ledger
from digest.message import message_id
from digest.model import RenderedEmail
from smtp_server import Faults, SmtpServer

SECRET = "send-test-secret-0123456789abcdef"
WEEK = "2026-W48"
REPO = Path(__file__).resolve().parents[1]
NOW = "2026-11-27T12:00:00+00:00"  # the sample content's latest issue is 2026-W48


def issue() -> RenderedEmail:
    return RenderedEmail(
        WEEK,
        "The Weekly Digest #48",
        "pre",
        "<p>Hi __digest_first_name__</p><p>News.</p>"
        '<a href="__digest_unsubscribe_url__">Unsubscribe</a>',
        "Hi __digest_name__\nNews.\n__digest_unsubscribe_url__\n",
    )


def write_config(
    tmp_path: Path, port: int | None = None, extra: str = "", concurrency: int = 4
) -> Path:
    transport = (
        f'transport = "smtp"\n\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        "timeout = 10\n"
        if port
        else 'transport = "outbox"\n'
    )
    text = f"""
[newsletter]
name = "The Weekly Digest"
base_url = "https://news.example.org"

[sender]
email = "news@example.com"
name = "The Weekly Digest"

[content]
folder = "content"

[subscribers]
file = "subscribers.csv"

[ledger]
path = "ledger.sqlite3"

[unsubscribe]
secret_env = "DIGEST_TEST_SECRET"
url = "https://example.com/u"

[delivery]
concurrency = {concurrency}
retry_seconds = 0.01
retry_max_seconds = 0.05
max_attempts = 10
{transport}
{extra}
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    (tmp_path / "content").mkdir(exist_ok=True)
    return path


def write_subscribers(tmp_path: Path, n: int, prefix: str = "reader") -> list[str]:
    addresses = [f"{prefix}{i}@example.com" for i in range(n)]
    with (tmp_path / "subscribers.csv").open("w") as f:
        f.write("email,name\n")
        for i, a in enumerate(addresses):
            f.write(f"{a},Reader {i}\n")
    return addresses


def freeze(config: Path) -> None:
    with Ledger(load(config).ledger.path) as ledger:
        ledger.freeze(issue())


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "DIGEST_TEST_SECRET": SECRET, "DIGEST_NOW": NOW, "PYTHONUTF8": "1"}
    out.update(extra)
    return out


def digest(config: Path, *args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "digest.cli", "--config", str(config), *args]


def run(config: Path, *args: str, environ=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        digest(config, *args), capture_output=True, text=True, env=environ or env(), timeout=120
    )


def sent_in_ledger(config: Path) -> dict[str, int]:
    return Ledger(load(config).ledger.path, readonly=True).counts(WEEK)


# -- crash safety ----------------------------------------------------------------------------


def crash_and_resume(
    tmp_path: Path, sig: signal.Signals, seed: int, rounds: int = 5, concurrency: int = 4
):
    """Start `digest send`, kill it with ``sig`` once the server has taken a random number
    of messages, and start it again; ``rounds`` times, then let it finish."""
    addresses = write_subscribers(tmp_path, 2000)
    server = SmtpServer(pipelining=True, keep_data=False).start()
    try:
        config = write_config(tmp_path, server.port, concurrency=concurrency)
        freeze(config)
        rng = random.Random(seed)
        kills, codes = 0, []
        for _ in range(rounds):
            before = len(server.messages)
            target = before + rng.randint(30, 350)
            proc = subprocess.Popen(
                digest(config, "send", "--issue", WEEK, "--yes"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env(),
            )
            deadline = time.monotonic() + 60
            while (
                len(server.messages) < target
                and proc.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.001)
            if proc.poll() is None:
                proc.send_signal(sig)
                kills += 1
            _, err = proc.communicate(timeout=60)
            codes.append(proc.returncode)
            if sig == signal.SIGTERM and proc.returncode == 5:
                assert "stopped before the end" in err, err
        final = run(config, "send", "--issue", WEEK, "--yes")
        assert final.returncode == 0, final.stderr
    finally:
        server.stop()
    got = server.by_recipient()
    return addresses, got, kills, codes, config, final


@pytest.mark.parametrize("concurrency", [4, 8])
def test_sigkill_at_random_points_then_resume(tmp_path, concurrency):
    """The README's bound: after a crash, at most the messages in flight are sent again,
    one per connection, with the same Message-ID; everyone receives the issue."""
    addresses, got, kills, codes, config, _ = crash_and_resume(
        tmp_path, signal.SIGKILL, seed=5, concurrency=concurrency
    )
    assert kills >= 3 and codes.count(-signal.SIGKILL) == kills
    assert set(got) == set(addresses)  # everyone received it
    duplicates = 0
    for address, ids in got.items():
        # Anyone who got it twice got the same message: the same Message-ID.
        assert set(ids) == {message_id(WEEK, address, "example.com")}, address
        duplicates += len(ids) - 1
    assert duplicates <= concurrency * kills  # at most one per connection in flight per kill
    counts = sent_in_ledger(config)
    assert counts["sent"] == 2000 and counts["pending"] == 0


def test_sigterm_finishes_in_flight_zero_duplicates(tmp_path):
    addresses, got, kills, codes, config, final = crash_and_resume(tmp_path, signal.SIGTERM, seed=9)
    assert kills >= 3 and all(code in (0, 5) for code in codes), codes
    assert set(got) == set(addresses)
    assert all(len(ids) == 1 for ids in got.values())  # not one duplicate
    assert sent_in_ledger(config)["sent"] == 2000
    assert "already sent" in final.stdout


def test_two_sends_at_once_one_refuses(tmp_path):
    write_subscribers(tmp_path, 60)
    # Slow enough that the first send is still running while the second one starts up,
    # even on a loaded 2-core machine (at 0.03 s a reply it once finished first).
    with SmtpServer(faults=Faults(slow=0.12, slow_share=1.0)) as server:
        config = write_config(tmp_path, server.port)
        freeze(config)
        first = subprocess.Popen(
            digest(config, "send", "--issue", WEEK, "--yes"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        deadline = time.monotonic() + 30
        while not server.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        second = run(config, "send", "--issue", WEEK, "--yes")
        _, err = first.communicate(timeout=60)
    assert second.returncode == 5, second.stderr
    assert "another 'digest send' is running" in second.stderr
    assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    assert first.returncode == 0, err
    got = server.by_recipient()
    assert len(got) == 60 and all(len(ids) == 1 for ids in got.values())


# -- the commands ---------------------------------------------------------------------------


def test_send_summary_status_and_second_send(tmp_path):
    write_subscribers(tmp_path, 12)
    with (tmp_path / "subscribers.csv").open("a") as f:
        f.write("not-an-address,Broken\nREADER3@example.com,Duplicate\nbounce@example.com,B\n")
    faults = Faults(reject=lambda a: a.startswith("bounce"))
    with SmtpServer(faults=faults) as server:
        config = write_config(tmp_path, server.port)
        freeze(config)
        first = run(config, "send", "--issue", WEEK, "--yes")
        second = run(config, "send", "--issue", WEEK, "--yes")
        status = run(config, "status", WEEK)
        overview = run(config, "status")
    assert first.returncode == 0, first.stderr
    lines = first.stdout
    assert "sent                              12" in lines
    assert "invalid (skipped)                  1" in lines
    assert "duplicates (folded)                1" in lines
    assert "failed (refused)                   1" in lines
    assert "bounce@example.com: RCPT: 550 5.1.1" in lines
    assert f"digest send --issue {WEEK} --retry-failed" in lines
    assert "subscribers.csv:14: 'not-an-address' is not a valid address" in first.stderr
    assert second.returncode == 0 and "was already sent to 12" in second.stdout
    assert "No one has joined since" in second.stdout
    assert len(server.messages) == 12
    assert status.returncode == 0 and "sent 12  failed 1" in status.stdout
    assert "bounce@example.com (failed, 1 attempt(s)): RCPT: 550" in status.stdout
    assert WEEK in overview.stdout and "“The Weekly Digest #48”" in overview.stdout
    assert SECRET not in first.stdout + first.stderr + status.stdout


def test_not_interactive_needs_yes(tmp_path):
    write_subscribers(tmp_path, 3)
    config = write_config(tmp_path)
    freeze(config)
    result = run(config, "send", "--issue", WEEK)
    assert result.returncode == 2 and "pass --yes" in result.stderr
    assert not (tmp_path / "outbox").exists()


def test_outbox_default_works_with_nothing_to_start(tmp_path):
    write_subscribers(tmp_path, 5)
    config = write_config(tmp_path)
    freeze(config)
    environ = env()
    del environ["DIGEST_TEST_SECRET"]  # the outbox works without a secret, loudly
    result = run(config, "send", "--issue", WEEK, "--yes", environ=environ)
    assert result.returncode == 0, result.stderr
    assert "development secret" in result.stderr
    files = list((tmp_path / "outbox" / "new").glob("*.eml"))
    assert len(files) == 5
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        dev = ledger.dev_secret()
    assert dev not in result.stdout + result.stderr


def test_dry_run_touches_no_ledger_and_no_server(tmp_path):
    write_subscribers(tmp_path, 25)
    with SmtpServer() as server:
        config = write_config(tmp_path, server.port)
        freeze(config)
        with Ledger(tmp_path / "ledger.sqlite3") as ledger:
            ledger.suppress("reader4@example.com")
        before = hashlib.sha256((tmp_path / "ledger.sqlite3").read_bytes()).hexdigest()
        result = run(config, "send", "--issue", WEEK, "--dry-run")
        assert result.returncode == 0, result.stderr
        assert server.messages == []
    after = hashlib.sha256((tmp_path / "ledger.sqlite3").read_bytes()).hexdigest()
    assert before == after
    files = list((tmp_path / "out" / WEEK / "dry-run" / "new").glob("*.eml"))
    assert len(files) == 24  # the suppressed address is left out
    assert "Dry run of 2026-W48" in result.stdout
    counts = sent_in_ledger(config)
    assert counts["sent"] == 0 and counts["pending"] == 0


def test_dry_run_writes_a_sample_and_counts_the_rest(tmp_path):
    """Issue 14: 100,000 recipients were ~6 GB of files; the first N are enough to look at."""
    write_subscribers(tmp_path, 30)
    config = write_config(tmp_path, extra="dry_run_sample = 5")
    freeze(config)
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.suppress("reader4@example.com")
    result = run(config, "send", "--issue", WEEK, "--dry-run")
    assert result.returncode == 0, result.stderr
    files = list((tmp_path / "out" / WEEK / "dry-run" / "new").glob("*.eml"))
    assert len(files) == 5
    assert re.search(r"sent\s+29\b", result.stdout)  # every message composed and counted
    assert "5 written, the other 24 composed and counted only" in result.stdout
    assert not (tmp_path / "outbox").exists()


def test_empty_week_sends_nothing(tmp_path):
    write_subscribers(tmp_path, 3)
    config = write_config(tmp_path)
    result = run(config, "send", "--week", "2020-W01", "--yes")
    assert result.returncode == 10 and "nothing to send" in result.stdout
    assert not (tmp_path / "outbox").exists()
    assert sending.status(load(config)) == []


# -- with the real render -------------------------------------------------------------------


def sample_site(tmp_path: Path, port: int | None = None) -> Path:
    shutil.copytree(REPO / "content", tmp_path / "content")
    return write_config(tmp_path, port)


def test_preview_is_the_issue_marked_and_not_recorded(tmp_path):
    write_subscribers(tmp_path, 3)
    config = sample_site(tmp_path)
    result = run(config, "preview", "--latest", "--to", "me@example.com,ed@example.org")
    assert result.returncode == 0, result.stderr
    assert "sent to me@example.com" in result.stdout
    files = list((tmp_path / "outbox" / "new").glob("*.eml"))
    assert len(files) == 2
    for f in files:
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        assert msg["Subject"].startswith("[Preview] ")
        rcpt = msg["To"].addresses[0].addr_spec
        assert msg["Message-ID"] != message_id(WEEK, rcpt, "example.com")
        assert "__digest_" not in msg.get_body(("html",)).get_content()
    assert sending.status(load(config)) == []  # nothing recorded


def test_declining_the_confirmation_sends_and_freezes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_TEST_SECRET", SECRET)
    write_subscribers(tmp_path, 7)
    cfg = load(sample_site(tmp_path))
    plans: list[sending.SendPlan] = []

    def decline(plan: sending.SendPlan) -> bool:
        plans.append(plan)
        return False

    now = dt.datetime.fromisoformat(NOW)
    report = sending.send(cfg, now, pipeline.Selection(latest=True), yes=False, confirm=decline)
    assert report.cancelled and report.exit_code == 0 and report.sent == 0
    (plan,) = plans
    assert (plan.issue_id, plan.recipients, plan.resume) == (WEEK, 7, False)
    assert plan.subject.startswith("The Weekly Digest #") and plan.transport.startswith("outbox")
    assert sending.status(cfg) == []  # not frozen: a later send renders afresh
    assert not (tmp_path / "outbox").exists()


def test_resume_sends_the_frozen_content_not_a_new_render(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_TEST_SECRET", SECRET)
    write_subscribers(tmp_path, 4)
    config = sample_site(tmp_path)
    cfg = load(config)
    now = dt.datetime.fromisoformat(NOW)
    sel = pipeline.Selection(latest=True)
    stop = threading.Event()
    stop.set()  # stopped right after the issue was frozen, before anyone was mailed
    first = sending.send(cfg, now, sel, stop=stop)
    assert first.interrupted and first.exit_code == 5 and first.sent == 0
    (frozen,) = Ledger(cfg.ledger.path, readonly=True).issues()
    # Articles change after the first send started.
    for path in (tmp_path / "content").rglob("*.md"):
        text = path.read_text()
        path.write_text(text.replace("passkeys", "PASSWORDLESS-EDIT"))
    assert "PASSWORDLESS-EDIT" in pipeline.prepare(cfg, now, sel).rendered.html
    second = sending.send(cfg, now, sel)
    assert second.sent == 4 and second.complete
    for f in (tmp_path / "outbox" / "new").glob("*.eml"):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        html = msg.get_body(("html",)).get_content()
        assert "PASSWORDLESS-EDIT" not in html and "PASSWORDLESS-EDIT" not in msg["Subject"]
        assert msg["Subject"] == frozen.subject


@pytest.mark.parametrize("command", ["preview", "send", "status"])
def test_commands_have_help_with_an_example(command):
    result = subprocess.run(
        [sys.executable, "-m", "digest.cli", command, "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "Example" in result.stdout


# -- header injection and SMTP smuggling through RFC 2047 encoded words ----------------------

SMUGGLE = (
    "=?utf-8?q?x=0D=0A.=0D=0AMAIL_FROM:<e@evil.example>=0D=0ARCPT_TO:<v@evil.example>"
    "=0D=0ADATA=0D=0ABcc:_w@evil.example?="
)
INJECT = "=?utf-8?q?Hi=0D=0ABcc:_victim@evil.example?="


def evil_site(tmp_path: Path, port: int) -> Path:
    config = sample_site(tmp_path, port)
    (tmp_path / "content" / "2026-11-23-evil.md").write_text(
        f'---\ntitle: "{SMUGGLE}"\nfeatured: true\n---\n\n'
        "Some body text for the evil article. It is long enough to summarise properly.\n"
    )
    text = config.read_text().replace("concurrency = 4", "concurrency = 1")
    text = text.replace('name = "The Weekly Digest"', f'name = "{INJECT}"')  # both names
    text = text.replace("[sender]", 'subject = "{{ top_title }}"\n\n[sender]')
    config.write_text(text)
    return config


def decoded(value: str) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(value)))


@pytest.mark.parametrize("pipelining", [False, True])
def test_encoded_words_cannot_smuggle_a_message_or_add_a_header(tmp_path, pipelining):
    addresses = write_subscribers(tmp_path, 3)
    with SmtpServer(pipelining=pipelining) as server:
        config = evil_site(tmp_path, server.port)
        result = run(config, "send", "--latest", "--yes")
        preview = run(config, "preview", "--latest", "--to", "me@example.com")
    assert result.returncode == 0, result.stderr
    assert preview.returncode == 0, preview.stderr
    # Exactly one intact message per recipient, nothing to anyone else.
    assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(
        [*addresses, "me@example.com"]
    )
    assert all(len(m.rcpt_tos) == 1 for m in server.messages)
    # Our envelope sender only: each reader's own VERP bounce address (see test_bounces).
    assert all(
        re.fullmatch(r"bounces\+2026-w48-[a-z2-7]{16}@example\.com", m.mail_from)
        for m in server.messages
    )
    for m in server.messages:
        head = m.data.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^(Bcc|MAIL FROM|RCPT TO|DATA)", head, re.M | re.I), head
        msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
        assert msg["Bcc"] is None
        assert SMUGGLE in decoded(msg["Subject"])
        assert INJECT in decoded(msg["From"]) and INJECT in decoded(msg["List-Id"])
        assert msg.is_multipart() and len(msg.get_payload()) == 2  # text and HTML, whole
    (preview_msg,) = [m for m in server.messages if m.rcpt_tos == ("me@example.com",)]
    assert decoded(
        email.message_from_bytes(preview_msg.data, policy=email.policy.compat32)["Subject"]
    ).startswith("[Preview] ")
    assert sent_in_ledger(config)["sent"] == 3


# -- a recipient whose message cannot be built -----------------------------------------------


def set_unsubscribe_url(config: Path, url: str) -> None:
    text = re.sub(r'(?m)^url = ".*"$', lambda _: f'url = "{url}"', config.read_text())
    config.write_text(text)


def test_unsubscribe_url_that_cannot_fit_fails_before_anything_is_frozen(tmp_path):
    """A URL too long for the List-Unsubscribe header line is a config error before the
    send starts, not a crash at a recipient. (Tokens are opaque since issue 13: the same
    length for every address, so a URL either fits everyone or no one.)"""
    write_subscribers(tmp_path, 3)
    with (tmp_path / "subscribers.csv").open("a") as f:
        f.write("x" * 64 + "@" + ("d" * 60 + ".") * 2 + "example.com,Long\n")
    config = sample_site(tmp_path)
    set_unsubscribe_url(config, "https://example.com/" + "p" * 960)
    result = run(config, "send", "--latest", "--yes")
    assert result.returncode == 2, result.stderr
    assert "unsubscribe.url" in result.stderr and "998" in result.stderr
    assert "Traceback" not in result.stderr
    assert sending.status(load(config)) == []  # nothing frozen, nothing queued
    assert not (tmp_path / "outbox").exists()
    # A URL that fits sends to everyone, the long address too.
    set_unsubscribe_url(config, "https://example.com/" + "p" * 660)
    result = run(config, "send", "--latest", "--yes")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "outbox" / "new").glob("*.eml"))) == 4


def test_unsubscribe_url_must_be_https_and_becomes_ascii(tmp_path):
    write_subscribers(tmp_path, 2)
    config = sample_site(tmp_path)
    set_unsubscribe_url(config, "http://example.com/u")
    result = run(config, "send", "--latest", "--yes")
    assert result.returncode == 2 and "unsubscribe.url" in result.stderr
    assert "https" in result.stderr and "Traceback" not in result.stderr
    set_unsubscribe_url(config, "https://exämple.com/désabonner")
    assert load(config).unsubscribe.url == "https://xn--exmple-cua.com/d%C3%A9sabonner"
    result = run(config, "send", "--latest", "--yes")
    assert result.returncode == 0, result.stderr
    for f in (tmp_path / "outbox" / "new").glob("*.eml"):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        assert msg["List-Unsubscribe"].startswith("<https://xn--exmple-cua.com/d%C3%A9sabonner/")


def test_a_message_that_cannot_be_composed_is_a_failed_row_not_a_stop(tmp_path):
    """A row the Composer refuses (here an address a hand-edited or older ledger holds)
    is recorded as failed with its reason; everyone else is sent, and a resume is not
    stuck on it."""
    write_subscribers(tmp_path, 5)
    config = write_config(tmp_path)
    freeze(config)
    with Ledger(load(config).ledger.path) as ledger:
        ledger.enqueue(WEEK, [("bad address@example.com", "bad address@example.com", "", "")])
    first = run(config, "send", "--issue", WEEK, "--yes")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "failed (refused)                   1" in first.stdout
    assert "bad address@example.com: not sent: cannot compose the message" in first.stdout
    counts = sent_in_ledger(config)
    assert (counts["sent"], counts["failed"], counts["pending"]) == (5, 1, 0)
    second = run(config, "send", "--issue", WEEK, "--yes")
    assert second.returncode == 0 and "was already sent" in second.stdout


def test_a_stray_quote_in_the_list_refuses_the_send_before_anything_is_frozen(tmp_path):
    write_subscribers(tmp_path, 50)
    lines = (tmp_path / "subscribers.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",Reader", ',"Reader')  # line 4: a quote never closed
    (tmp_path / "subscribers.csv").write_text("\n".join(lines) + "\n")
    with SmtpServer() as server:
        config = sample_site(tmp_path, server.port)
        for args in (["--yes"], ["--dry-run"]):
            result = run(config, "send", "--latest", *args)
            assert result.returncode == 3, result.stderr
            assert 'subscribers.csv:4: a quote (") opened on this line runs on to line 51' in (
                result.stderr
            )
            assert "Traceback" not in result.stderr
        assert server.messages == []
    assert sending.status(load(config)) == []  # nothing frozen or queued
    assert not (tmp_path / "out" / WEEK / "dry-run" / "new").exists()


@pytest.mark.parametrize(
    "csv_text, message",
    [
        (None, "subscribers.csv: subscriber list not found"),
        ("address,name\nann@example.com,Ann\n", "subscribers.csv:1: no 'email' column"),
    ],
)
def test_an_unreadable_list_freezes_nothing(tmp_path, csv_text, message):
    """The list is checked before the issue is frozen: a missing file or a header without
    an email column leaves no issue half-started in the ledger."""
    config = sample_site(tmp_path)
    if csv_text is not None:
        (tmp_path / "subscribers.csv").write_text(csv_text)
    result = run(config, "send", "--latest", "--yes")
    assert result.returncode == 3, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sending.status(load(config)) == []


# -- the confirmation prompt, on a real terminal (a pty) ---------------------------------------


def spawn_on_a_terminal(config: Path, *args: str) -> tuple[int, int]:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execve(sys.executable, digest(config, *args), env())
    return pid, fd


def read_terminal(fd: int, until: str, timeout: float) -> str:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while until.encode() not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child has gone
                break
            if not chunk:
                break
            out += chunk
    return out.decode("utf-8", "replace")


def wait_exit(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_ctrl_c_at_the_confirmation_prompt_cancels(tmp_path):
    write_subscribers(tmp_path, 5)
    config = sample_site(tmp_path)
    pid, fd = spawn_on_a_terminal(config, "send", "--latest")
    try:
        prompt = read_terminal(fd, "[y/N]", 30)
        assert "Send 2026-W48" in prompt, prompt
        # As a person would, not within microseconds of the prompt: a SIGINT between
        # Python writing the prompt and starting to read is only seen after the read.
        time.sleep(0.5)
        os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT
        read_terminal(fd, "\n", 2)
        code = wait_exit(pid, 5)
    finally:
        os.close(fd)
    assert code is not None, "Ctrl-C at the prompt was ignored"
    assert code != 0
    assert sending.status(load(config)) == []  # nothing frozen
    assert not (tmp_path / "outbox").exists()


def test_time_at_the_prompt_is_not_counted_in_the_rate(tmp_path):
    write_subscribers(tmp_path, 5)
    config = sample_site(tmp_path)
    pid, fd = spawn_on_a_terminal(config, "send", "--latest")
    try:
        read_terminal(fd, "[y/N]", 30)
        time.sleep(2.0)  # the editor thinks it over
        os.write(fd, b"y\r")
        out = read_terminal(fd, "messages/s", 30)
        code = wait_exit(pid, 10)
    finally:
        os.close(fd)
    assert code == 0, out
    seconds = float(re.search(r"Done in ([0-9.]+) s", out).group(1))
    assert seconds < 1.5, out
    assert len(list((tmp_path / "outbox" / "new").glob("*.eml"))) == 5


# -- resume hints name the issue ------------------------------------------------------------------


def test_resume_hints_name_the_issue_and_an_unfinished_one_is_pointed_out(tmp_path):
    """'Run the same command again' is unsafe when the command picks the issue by the
    clock: the hints give the explicit command, and an implicit send that picks another
    issue than an unfinished one says so."""
    write_subscribers(tmp_path, 6)
    with SmtpServer(faults=Faults(transient_rcpt=1.0)) as server:
        config = sample_site(tmp_path, server.port)
        text = config.read_text().replace("max_attempts = 10", "max_attempts = 10\n"
                                          "pause_after_failures = 3")  # fmt: skip
        config.write_text(text)
        with Ledger(tmp_path / "ledger.sqlite3") as ledger:
            older = RenderedEmail("2026-W47", "The Weekly Digest #47", "p", "<p>h</p>", "t")
            ledger.freeze(older)
            ledger.enqueue("2026-W47", [("x@example.com", "x@example.com", "", "")])
        paused = run(config, "send", "--latest", "--yes")
    assert paused.returncode == 5, paused.stderr
    assert "2026-W47 was started but is not finished" in paused.stderr
    assert "digest send --issue 2026-W47" in paused.stderr
    assert "paused after 3 failures in a row" in paused.stderr
    assert f"to resume, run: digest send --issue {WEEK}" in paused.stderr
    assert "same command" not in paused.stdout + paused.stderr
    # Named explicitly: no warning about the other issue.
    with SmtpServer() as server:
        config.write_text(re.sub(r"port = \d+", f"port = {server.port}", config.read_text()))
        done = run(config, "send", "--issue", WEEK, "--yes")
    assert done.returncode == 0, done.stderr
    assert "2026-W47" not in done.stderr


def test_include_new_asks_about_the_new_subscribers_not_the_0_left(tmp_path):
    write_subscribers(tmp_path, 3)
    config = sample_site(tmp_path)
    assert run(config, "send", "--latest", "--yes").returncode == 0
    with (tmp_path / "subscribers.csv").open("a") as f:
        f.write("new1@example.com,New One\nnew2@example.com,New Two\n")
    pid, fd = spawn_on_a_terminal(config, "send", "--issue", WEEK, "--include-new")
    try:
        prompt = read_terminal(fd, "[y/N]", 30)
        time.sleep(0.2)
        os.write(fd, b"y\r")
        out = read_terminal(fd, "messages/s", 30)
        code = wait_exit(pid, 10)
    finally:
        os.close(fd)
    assert "0 left" not in prompt and "Resume" not in prompt
    assert f"Send {WEEK}" in prompt and "who joined since it was sent (about 2)" in prompt
    assert code == 0, out
    assert len(list((tmp_path / "outbox" / "new").glob("*.eml"))) == 5


def test_ctrl_c_during_include_new_names_the_command_that_resumes(tmp_path):
    """Stopped during `send --include-new`, the hint must name a command that finishes
    the job: `digest send --issue ID` alone is a no-op on a sent issue."""
    write_subscribers(tmp_path, 5)
    with SmtpServer(faults=Faults(slow=0.05, slow_share=1.0)) as server:
        config = write_config(tmp_path, server.port, concurrency=1)
        freeze(config)
        assert run(config, "send", "--issue", WEEK, "--yes").returncode == 0
        addresses = write_subscribers(tmp_path, 45)  # the first 5 and 40 who joined since
        proc = subprocess.Popen(
            digest(config, "send", "--issue", WEEK, "--include-new", "--yes"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        deadline = time.monotonic() + 30
        while len(server.messages) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 5, err
        hint = re.search(r"to resume, run: (digest send [^\n]*)", err)
        assert hint, err
        assert "--include-new" in hint.group(1)
        args = hint.group(1).split()[1:]
        resumed = run(config, *args, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    got = server.by_recipient()
    assert set(got) == set(addresses) and all(len(ids) == 1 for ids in got.values())


def test_an_unsubscribe_during_the_send_is_honoured_for_every_row_not_yet_sent(tmp_path):
    """Readers who unsubscribe (through `digest serve`, another process) while their rows
    are queued but not sent get nothing: suppression is checked just before each message,
    not once per batch of rows read ahead."""
    addresses = write_subscribers(tmp_path, 200)
    with SmtpServer() as server:
        config = write_config(tmp_path, server.port, concurrency=2)
        paced = config.read_text().replace("max_attempts = 10", "max_attempts = 10\n"
                                           "rate_per_second = 60")  # fmt: skip
        config.write_text(paced)
        freeze(config)
        proc = subprocess.Popen(
            digest(config, "send", "--issue", WEEK, "--yes"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        deadline = time.monotonic() + 30
        while len(server.messages) < 20 and time.monotonic() < deadline:
            time.sleep(0.005)
        leaving = addresses[100:]
        with Ledger(load(config).ledger.path) as ledger:  # as `digest serve` does
            for address in leaving:
                ledger.suppress(address)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = server.by_recipient()
    assert not set(got) & set(leaving), sorted(set(got) & set(leaving))[:5]
    assert set(addresses[:20]) <= set(got)
    counts = sent_in_ledger(config)
    assert counts["suppressed"] == 100 and counts["sent"] == len(got) == 100


def test_a_list_rewritten_in_place_during_queueing_is_read_again_not_cut_short(tmp_path):
    """An export job truncates the list and writes it again while the send reads it: the
    read hits an early end without any error. The send must not queue (and mark sent)
    only the rows before the cut: it notices the change and reads the list again."""
    addresses = write_subscribers(tmp_path, 10_000)
    path = tmp_path / "subscribers.csv"
    data = path.read_bytes()
    config = write_config(tmp_path)
    freeze(config)
    cfg = load(config)

    def export_job() -> None:
        # Once the send has queued its first batch (5,000 rows), rewrite the file in
        # place, slowly, as a job writing a big export does.
        db = Ledger(cfg.ledger.path, readonly=True)
        deadline = time.monotonic() + 30
        while db.counts(WEEK)["pending"] < 5000 and time.monotonic() < deadline:
            time.sleep(0.0005)
        with path.open("wb") as f:
            for i in range(0, len(data), 16384):
                f.write(data[i : i + 16384])
                f.flush()
                time.sleep(0.04)

    writer = threading.Thread(target=export_job)
    writer.start()
    try:
        report = sending.send(cfg, dt.datetime.fromisoformat(NOW), pipeline.Selection(week=WEEK))
    finally:
        writer.join()
    assert report.complete and report.sent == 10_000, report
    sent = [
        email.utils.parseaddr(email.message_from_bytes(p.read_bytes())["To"])[1]
        for p in (tmp_path / "outbox" / "new").glob("*.eml")
    ]
    assert sorted(sent) == sorted(addresses)  # everyone, once
    again = sending.send(cfg, dt.datetime.fromisoformat(NOW), pipeline.Selection(week=WEEK))
    assert again.noop and again.new_since == 0  # nobody is "joined since"
