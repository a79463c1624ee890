"""digest serve / digest archive: a real uvicorn server on a free loopback port, a real
SQLite ledger, real sends through the outbox transport, and (marked ``browser``) a real
headless Chromium."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest

from digest import web
from digest.config import Config, load, parse
from digest.ledger import Ledger
from digest.model import RenderedEmail
from digest.tokens import make_token, remember
from digest.web import archive
from digest.web import server as web_server

SECRET = "web-test-secret-4f1c2a9b7d"
SECRET_ENV = "DIGEST_WEB_TEST_SECRET"
# Monday 2026-03-16 10:00 Berlin: the issue of week 12 (sent 09:00) is due.
NOW = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)
ADA = "ada.lovelace@example.com"
BOB = "bob@example.org"

ARTICLE = """---
title: {title}
date: {date}
summary: {summary}
---
{body}
"""


def _write_site(root: Path) -> Path:
    content = root / "content"
    content.mkdir()
    articles = [
        ("2026-03-10-first.md", "Readable error messages", "2026-03-10 12:00", "First."),
        # An unbreakable 60-letter word in the title and summary: wider than a phone.
        ("2026-03-12-second.md", "Long " + "x" * 60, "2026-03-12 12:00", "y" * 60),
        ("2026-03-03-older.md", "Last week's piece", "2026-03-03 12:00", "Older."),
        # Published after NOW: the next week's issue.
        ("2026-03-18-next.md", "Next week's piece", "2026-03-18 12:00", "Next."),
    ]
    for name, title, date, summary in articles:
        body = (
            f"{summary} Supercalifragilisticexpialidocious-unbreakable-words-here "
            "and https://example.com/a/very/long/url/that/should/not/push/the/page/wider "
            "than a phone screen.\n\nMore text follows here."
        )
        (content / name).write_text(
            ARTICLE.format(title=title.strip(), date=date, summary=summary, body=body),
            encoding="utf-8",
        )
    (root / "subscribers.csv").write_text(
        f"email,name\n{ADA},Ada Lovelace\n{BOB},Bob Example\n", encoding="utf-8"
    )
    config = root / "config.toml"
    config.write_text(
        f"""
[newsletter]
name = "Web Test Weekly"
base_url = "https://example.com"
postal_address = "1 Example Street, Berlin"

[schedule]
timezone = "Europe/Berlin"
day = "mon"
time = "09:00"

[subscribers]
file = "subscribers.csv"

[ledger]
path = "digest.sqlite3"

[delivery]
transport = "outbox"
outbox = "outbox"

[unsubscribe]
secret_env = "{SECRET_ENV}"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return load(_write_site(tmp_path))


def send(cfg: Config, now: dt.datetime = NOW) -> list[str]:
    """Run a real send of the due issue through the outbox; return who got a message."""
    from digest.pipeline import Selection
    from digest.sending import send as pipeline_send

    before = set(_outbox(cfg))
    pipeline_send(cfg, now, Selection(due=True))
    return sorted(to for path, to in _outbox(cfg).items() if path not in before)


def _outbox(cfg: Config) -> dict[Path, str]:
    found = {}
    for path in Path(cfg.delivery.outbox).rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if msg["To"] is not None:
                found[path] = msg["To"].addresses[0].addr_spec
    return found


@contextmanager
def running(cfg: Config, *, secret: str | None = SECRET, preview: bool = False) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free loopback port; yields its base URL."""
    closing = threading.Event()  # as web.serve: ends the preview's change streams
    app = web.create_app(cfg, secret=secret, preview=preview, now=lambda: NOW, closing=closing)
    sock = web_server.listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = web_server.server(app, limits=cfg.web, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        closing.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as c:
        yield c


def suppressed(cfg: Config, email: str) -> bool:
    with Ledger(cfg.ledger.path) as ledger:
        return ledger.is_suppressed(email)


def token_for(cfg: Config, secret: str, email: str) -> str:
    """The token of ``email``, its id recorded in the ledger as a send records it."""
    with Ledger(cfg.ledger.path) as ledger:
        remember(ledger, secret, [email])
    return make_token(secret, email)


def one_click(client: httpx.Client, url: str) -> httpx.Response:
    # What Gmail and Yahoo send (RFC 8058 section 3.2), urlencoded.
    return client.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


# --- one-click unsubscribe ---------------------------------------------------------------


def test_one_click_post_suppresses_and_the_next_send_skips_the_address(
    cfg: Config, client: httpx.Client
) -> None:
    assert send(cfg) == sorted([ADA, BOB])
    # The URL is exactly the one in Ada's List-Unsubscribe header.
    ada_message = next(p for p, to in _outbox(cfg).items() if to == ADA)
    header = BytesParser(policy=policy.default).parsebytes(ada_message.read_bytes())[
        "List-Unsubscribe"
    ]
    url = re.search(r"<(https://[^>]+)>", str(header)).group(1)
    assert url.startswith(cfg.unsubscribe_url + "/")
    path = url[len(cfg.newsletter.web_root) :]
    with running(cfg) as base:
        r = one_click(client, base + path)
        assert r.status_code == 200
        assert "unsubscribed" in r.text
        assert r.headers["cache-control"] == "no-store"
    assert suppressed(cfg, ADA)
    assert not suppressed(cfg, BOB)
    # The following week's issue goes to Bob only.
    assert send(cfg, NOW + dt.timedelta(days=7)) == [BOB]
    with Ledger(cfg.ledger.path) as ledger:
        counts = ledger.counts("2026-W13")
    assert (counts["sent"], counts["suppressed"]) == (1, 1)


def test_the_link_in_a_sent_message_does_not_carry_the_address(
    cfg: Config, client: httpx.Client
) -> None:
    # Proxy and access logs, browser history: the URL must not say whose it is.
    send(cfg)
    ada_message = next(p for p, to in _outbox(cfg).items() if to == ADA)
    url = re.search(rb"List-Unsubscribe: <(https://[^>]+)>", ada_message.read_bytes()).group(1)
    token = url.decode().rsplit("/", 1)[1]
    decoded = b"".join(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")
    )
    assert b"ada" not in decoded.lower() and b"example.com" not in decoded
    with running(cfg) as base:
        assert one_click(client, f"{base}/unsubscribe/{token}").status_code == 200
    assert suppressed(cfg, ADA) and not suppressed(cfg, BOB)


def test_links_of_the_first_token_format_still_unsubscribe(
    cfg: Config, client: httpx.Client
) -> None:
    # Mail sent before tokens were opaque carries base64url(address).MAC: still honoured.
    payload = ADA.encode()
    mac = hmac.new(SECRET.encode(), b"digest-unsubscribe-v1\0" + payload, hashlib.sha256)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    with running(cfg) as base:
        r = one_click(client, f"{base}/unsubscribe/{b64(payload)}.{b64(mac.digest())}")
    assert r.status_code == 200
    assert suppressed(cfg, ADA)


def test_a_damaged_ledger_gets_a_503_page_not_a_500(
    cfg: Config, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    send(cfg)
    token = token_for(cfg, SECRET, ADA)
    path = Path(cfg.ledger.path)
    path.write_bytes(b"not a database any more\n" * 500)
    with running(cfg) as base:
        answers = [
            client.get(f"{base}/"),
            client.get(f"{base}/issues/2026-W12/"),
            one_click(client, f"{base}/unsubscribe/{token}"),
        ]
    for r in answers:
        assert r.status_code == 503, (r.request.url, r.status_code)
        assert "Temporarily unavailable" in r.text and "Traceback" not in r.text
        assert str(path) not in r.text  # the file is for the operator's log, not the page
    assert str(path) in caplog.text and "digest ledger check" in caplog.text


def test_repeated_one_click_post_is_fine(cfg: Config, client: httpx.Client) -> None:
    token = token_for(cfg, SECRET, ADA)
    with running(cfg) as base:
        answers = [one_click(client, f"{base}/unsubscribe/{token}") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert suppressed(cfg, ADA)


def test_multipart_one_click_post_works_too(cfg: Config, client: httpx.Client) -> None:
    # RFC 8058 says the body SHOULD be multipart/form-data.
    token = token_for(cfg, SECRET, BOB)
    with running(cfg) as base:
        r = client.post(
            f"{base}/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
        )
    assert r.status_code == 200
    assert suppressed(cfg, BOB)


def test_any_post_with_a_valid_token_unsubscribes_and_the_confirm_form_sends_the_field(
    cfg: Config, client: httpx.Client
) -> None:
    # Decided (NOTES.md, "Web"): the signed token authorises the unsubscribe, not the body.
    # A client that drops or re-encodes "List-Unsubscribe=One-Click" still unsubscribes.
    bodies = {
        ADA: {"content": b""},
        BOB: {"content": b"List-Unsubscribe=One-Click", "headers": {"content-type": "text/plain"}},
    }
    with running(cfg) as base:
        for email, body in bodies.items():
            r = client.post(f"{base}/unsubscribe/{token_for(cfg, SECRET, email)}", **body)
            assert r.status_code == 200, email
        form = client.get(f"{base}/unsubscribe/{token_for(cfg, SECRET, ADA)}").text
    assert suppressed(cfg, ADA) and suppressed(cfg, BOB)
    # The confirm page's button posts what RFC 8058 clients post, so it would keep
    # working if the endpoint ever required the field.
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in form


def test_bad_tokens_get_one_400_page_that_reveals_nothing(
    cfg: Config, client: httpx.Client
) -> None:
    good = token_for(cfg, SECRET, ADA)
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    bad = {
        "tampered": flipped,
        "truncated": good[: len(good) // 2],
        "other secret": make_token("not-the-secret", ADA),
        "garbage": "not-a-token",
        "huge": "x" * 5000,
        "unicode": "%C3%A9%00",
    }
    with running(cfg) as base:
        bodies = set()
        for name, token in bad.items():
            for method in ("GET", "POST"):
                r = client.request(method, f"{base}/unsubscribe/{token}")
                assert r.status_code == 400, (name, method)
                assert ADA not in r.text and "lovelace" not in r.text.lower()
                assert token not in r.text
                bodies.add(r.text)
            r = client.post(f"{base}/resubscribe/{token}")
            assert r.status_code == 400, name
    # One page for every kind of bad token.
    assert len(bodies) == 1
    assert not Path(cfg.ledger.path).exists() or not suppressed(cfg, ADA)


def test_a_get_alone_unsubscribes_nobody(cfg: Config, client: httpx.Client) -> None:
    token = token_for(cfg, SECRET, ADA)
    with running(cfg) as base:
        for method in ("GET", "HEAD", "GET"):
            r = client.request(method, f"{base}/unsubscribe/{token}")
            assert r.status_code == 200
        page = client.get(f"{base}/unsubscribe/{token}").text
    assert '<form method="post">' in page
    assert not Path(cfg.ledger.path).exists() or not suppressed(cfg, ADA)


def test_resubscribe_takes_the_address_off_the_list(cfg: Config, client: httpx.Client) -> None:
    token = token_for(cfg, SECRET, ADA)
    with running(cfg) as base:
        one_click(client, f"{base}/unsubscribe/{token}")
        assert suppressed(cfg, ADA)
        assert client.get(f"{base}/resubscribe/{token}").status_code == 405  # GET: no change
        assert suppressed(cfg, ADA)
        r = client.post(f"{base}/resubscribe/{token}")
        assert r.status_code == 200
    assert not suppressed(cfg, ADA)


def test_no_secret_refuses_every_token(cfg: Config, client: httpx.Client) -> None:
    with running(cfg, secret=None) as base:
        r = one_click(client, f"{base}/unsubscribe/{token_for(cfg, SECRET, ADA)}")
    assert r.status_code == 400


def test_serve_needs_the_secret_when_mail_goes_out_over_smtp(
    cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    source = Path(cfg.source)
    source.write_text(source.read_text().replace('"outbox"\n', '"smtp"\n', 1))
    r = subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(source), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "unsubscribe.secret_env" in r.stderr and SECRET_ENV in r.stderr
    assert "Traceback" not in r.stderr


# --- security -----------------------------------------------------------------------------


def test_security_headers_on_every_kind_of_answer(cfg: Config, client: httpx.Client) -> None:
    token = token_for(cfg, SECRET, ADA)
    with running(cfg) as base:
        answers = [
            client.get(base + "/"),
            client.get(base + "/style.css"),
            client.get(f"{base}/unsubscribe/{token}"),
            client.get(base + "/unsubscribe/bad"),
            client.get(base + "/no/such/page"),
            client.put(base + "/unsubscribe/x"),
        ]
    for r in answers:
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", r.url
        assert h["referrer-policy"] == "no-referrer"
        assert h["x-frame-options"] == "DENY"
        assert "default-src 'none'" in h["content-security-policy"]
        assert "script-src" not in h["content-security-policy"]  # so: no script at all
        assert "server" not in h
    assert [r.status_code for r in answers] == [200, 200, 200, 400, 404, 405]


def test_no_open_redirects(cfg: Config, client: httpx.Client) -> None:
    with running(cfg) as base:
        # The one redirect is relative, to the same path plus "/".
        r = client.get(base + "/issues/2026-W12")
        assert (r.status_code, r.headers["location"]) == (308, "2026-W12/")
        for path in (
            "//evil.example/",
            "/issues/%2F%2Fevil.example",
            "/issues/..%2F..%2Fetc%2Fpasswd",
            "/issues/evil.example%2F",
            "/unsubscribe/x?next=https://evil.example/",
            "/issues/2026-W12?next=//evil.example",
        ):
            r = client.get(base + path, headers={"host": "evil.example"})
            location = r.headers.get("location", "")
            assert "evil" not in location, path
            assert not location.startswith(("/", "http")), path


def test_tokens_stay_out_of_the_access_log(cfg: Config, client: httpx.Client) -> None:
    token = token_for(cfg, SECRET, ADA)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    access = logging.getLogger("uvicorn.access")  # uvicorn's: it does not propagate
    with running(cfg) as base:
        handler, level = Collect(), access.level
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        try:
            client.get(f"{base}/unsubscribe/{token}")
            one_click(client, f"{base}/unsubscribe/{token}")
        finally:
            access.removeHandler(handler)
            access.setLevel(level)
    assert len(lines) == 2 and all("/unsubscribe/[token]" in line for line in lines), lines
    assert not any(token in line or token[:20] in line for line in lines)


def test_token_paths_are_redacted_under_a_prefix_and_for_signup_confirmations() -> None:
    redact = web_server._RedactTokens()
    for path, shown in (
        ("/newsletter/unsubscribe/abc.def?x=1", "/newsletter/unsubscribe/[token]?x=1"),
        ("/subscribe/confirm/Zm9v.YmFy", "/subscribe/confirm/[token]"),
        ("/resubscribe/abc", "/resubscribe/[token]"),
        ("/issues/2026-W48/", "/issues/2026-W48/"),
    ):
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, "", 0, "%s %s %s", ("1.2.3.4", "GET", path), None
        )
        redact.filter(record)
        assert record.args[2] == shown  # type: ignore[index]


# --- archive --------------------------------------------------------------------------------


def test_archive_lists_sent_issues_newest_first_with_no_personal_data(
    cfg: Config, client: httpx.Client, tmp_path: Path
) -> None:
    send(cfg)
    send(cfg, NOW + dt.timedelta(days=7))
    with running(cfg) as base:
        index = client.get(base + "/")
        issues = re.findall(r'href="issues/([^/"]+)/"', index.text)
        assert issues == ["2026-W13", "2026-W12"]
        pages = {i: client.get(f"{base}/issues/{i}/") for i in issues}
    for issue_id, r in pages.items():
        assert r.status_code == 200
        assert "script-src" not in r.headers["content-security-policy"]
        text = r.text
        for private in (ADA, BOB, "Lovelace", "Bob Example", "__digest_"):
            assert private not in text, (issue_id, private)
        # No tracking: no script, no 1x1 images, no links to the unsubscribe tokens.
        assert "<script" not in text.lower()
        assert not re.search(r"/unsubscribe/[A-Za-z0-9_-]{8,}", text)
        assert 'href="../../unsubscribe/"' in text
        assert 'href="../../"' in text

    out = tmp_path / "site"
    files = web.write_archive(cfg, out)
    assert {p.relative_to(out).as_posix() for p in files} == {
        "index.html",
        "style.css",
        "unsubscribe/index.html",
        "issues/2026-W12/index.html",
        "issues/2026-W13/index.html",
    }
    static = (out / "issues/2026-W12/index.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in static
    # The static page is the served page plus the <meta> CSP (no headers on static hosts).
    served = pages["2026-W12"].text
    assert re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', "", static) == served


def test_an_older_week_sent_late_by_hand_is_listed_below_the_newer_one(
    cfg: Config, client: httpx.Client, tmp_path: Path
) -> None:
    from digest.pipeline import Selection
    from digest.sending import send as pipeline_send

    later = NOW + dt.timedelta(days=7)
    assert send(cfg, later)  # W13 goes out on schedule; W12 was never sent
    pipeline_send(cfg, later + dt.timedelta(hours=1), Selection(week="2026-W12"))
    with Ledger(cfg.ledger.path) as ledger:  # the ledger has W12 as the newer send
        assert [r.id for r in ledger.issues()] == ["2026-W12", "2026-W13"]
    with running(cfg) as base:
        served = client.get(base + "/").text
    assert re.findall(r'href="issues/([^/"]+)/"', served) == ["2026-W13", "2026-W12"]
    web.write_archive(cfg, tmp_path / "site")
    static = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'href="issues/([^/"]+)/"', static) == ["2026-W13", "2026-W12"]


def test_the_index_reads_no_issue_body_and_an_issue_page_reads_one(
    cfg: Config, client: httpx.Client
) -> None:
    """Issue 14: the index lists metadata only. A damaged body (bytes that are not UTF-8)
    shows it: the index and the other issue's page still answer."""
    send(cfg)
    send(cfg, NOW + dt.timedelta(days=7))
    with sqlite3.connect(cfg.ledger.path) as db:
        db.execute("UPDATE issues SET html = CAST(X'80FF' AS TEXT) WHERE id = '2026-W12'")
    assert [i.id for i in archive.published_issues(cfg)] == ["2026-W13", "2026-W12"]
    with running(cfg) as base:
        index = client.get(base + "/")
        other = client.get(base + "/issues/2026-W13/")
        # The index page is kept between requests: a new send still shows at once.
        later = RenderedEmail("2026-W14", "Later", "", "<html><body>x</body></html>", "x")
        with Ledger(cfg.ledger.path) as ledger:
            ledger.freeze(later, send_at=NOW + dt.timedelta(days=14))
        again = client.get(base + "/")
    assert index.status_code == 200 and 'href="issues/2026-W12/"' in index.text
    assert other.status_code == 200
    assert re.findall(r'href="issues/([^/"]+)/"', again.text) == [
        "2026-W14",
        "2026-W13",
        "2026-W12",
    ]


def test_archive_order_is_by_send_time_across_years_and_utc_offsets() -> None:
    def issue(issue_id: str, send_at: str) -> archive.ListedIssue:
        return archive.ListedIssue(issue_id, "", "", dt.datetime.fromisoformat(send_at))

    got = archive.newest_first(
        [
            issue("2025-W52", "2025-12-22T09:00:00+01:00"),
            issue("2026-W13", "2026-03-30T09:00:00+02:00"),  # summer time: 07:00 UTC
            issue("2026-W01", "2025-12-29T09:00:00+01:00"),  # ISO week 1 starts in December
            issue("2026-W12", "2026-03-23T09:00:00+01:00"),
            issue("2026-W14", "2026-04-06T08:30:00+02:00"),
        ]
    )
    assert [i.id for i in got] == ["2026-W14", "2026-W13", "2026-W12", "2026-W01", "2025-W52"]


def test_unsent_issues_are_not_in_the_archive(cfg: Config, client: httpx.Client) -> None:
    with running(cfg) as base:
        assert "No issues have been sent yet" in client.get(base + "/").text
        assert client.get(base + "/issues/2026-W12/").status_code == 404
    assert not Path(cfg.ledger.path).exists()  # looking does not create a ledger


def test_archive_command(cfg: Config, tmp_path: Path) -> None:
    send(cfg)
    out = tmp_path / "public"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "digest.cli",
            "--config",
            str(cfg.source),
            "archive",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 1 issue(s)" in r.stdout
    assert (out / "issues" / "2026-W12" / "index.html").is_file()


# --- the CLI server -----------------------------------------------------------------------


def test_serve_command_with_the_outbox_dev_secret_unsubscribes_and_stops_cleanly(
    cfg: Config, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No secret in the environment: outbox sends sign with a development secret kept in
    # the ledger, and `digest serve` checks links with that same secret.
    monkeypatch.delenv(SECRET_ENV)
    with Ledger(cfg.ledger.path) as ledger:
        dev_secret = ledger.dev_secret()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(cfg.source), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"Serving (http://127\.0\.0\.1:\d+/)", line)
        assert m, (line, proc.poll())
        base = m.group(1).rstrip("/")
        assert client.get(base + "/").status_code == 200
        assert one_click(client, f"{base}/unsubscribe/{token_for(cfg, dev_secret, ADA)}").is_success
        assert (
            one_click(client, f"{base}/unsubscribe/{token_for(cfg, SECRET, BOB)}").status_code
            == 400
        )
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, the documented way to stop
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Finished server process" in err
    assert "Traceback" not in err
    assert "development secret" in err  # said loudly
    assert suppressed(cfg, ADA) and not suppressed(cfg, BOB)


def test_port_in_use_is_a_clear_error(cfg: Config) -> None:
    taken = web_server.listen("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "digest.cli",
                "--config",
                str(cfg.source),
                "serve",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        taken.close()
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
    assert "Traceback" not in r.stderr


# --- preview ----------------------------------------------------------------------------------


def test_preview_serve_is_the_live_preview_and_stops_on_ctrl_c(
    cfg: Config, client: httpx.Client
) -> None:
    """Issue 14: `digest preview --serve`, as MkDocs users expect; Ctrl-C ends it even with
    a page listening for changes."""
    assert cfg.source is not None
    free = web_server.listen("127.0.0.1", 0)
    port = free.getsockname()[1]
    free.close()  # `preview --serve` listens on web.port
    cfg.source.write_text(cfg.source.read_text() + f"\n[web]\nport = {port}\n")
    cmd = [sys.executable, "-m", "digest.cli", "--config", str(cfg.source)]
    cmd += ["--now", NOW.isoformat()]
    both = subprocess.run([*cmd, "preview", "--serve", "--to", ADA], capture_output=True, text=True)
    assert both.returncode == 2 and "--to ADDR (send a preview) or --serve" in both.stderr
    proc = subprocess.Popen(
        [*cmd, "preview", "--serve", "--week", "2026-W12"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        m = re.search(r"preview at (http://127\.0\.0\.1:\d+/preview)", line)
        assert m, (line, proc.poll())
        page = client.get(m.group(1))
        assert page.status_code == 200 and "Readable error messages" in page.text
        with client.stream("GET", m.group(1) + "/events?since=0") as events:
            assert next(events.iter_lines()) == "retry: 1000"
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert "Finished server process" in err and "Traceback" not in err


def test_preview_renders_current_content_on_each_reload(cfg: Config, client: httpx.Client) -> None:
    with running(cfg, preview=True) as base:
        first = client.get(base + "/preview?week=2026-W12")
        assert first.status_code == 200
        assert "Readable error messages" in first.text
        assert first.text.count("srcdoc=") == 2
        assert "__digest_" not in first.text  # every placeholder filled
        assert "https://example.com/newsletter/unsubscribe/TOKEN" in first.text
        # Edit an article; the next reload shows it, without restarting the server.
        path = Path(cfg.content.folder) / "2026-03-10-first.md"
        path.write_text(path.read_text().replace("Readable error", "Friendlier error"))
        second = client.get(base + "/preview?week=2026-W12")
        assert "Friendlier error messages" in second.text
        assert "Readable error messages" not in second.text
        # A broken article is a finding on the page, not a crash.
        (Path(cfg.content.folder) / "2026-03-11-broken.md").write_text("---\ntitle: [\n---\nx\n")
        third = client.get(base + "/preview?week=2026-W12")
        assert third.status_code == 200
        assert "2026-03-11-broken.md" in third.text
    with running(cfg, preview=False) as base:
        assert client.get(base + "/preview").status_code == 404


def _next_event(client: httpx.Client, url: str, change: Callable[[], None]) -> str:
    """The first event (not a comment) on the stream at ``url`` after ``change()``."""
    with client.stream("GET", url, timeout=15) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "retry: 1000"
        change()
        for line in lines:
            if line.startswith("data:"):
                return line
    return ""


def test_preview_pages_reload_when_content_templates_or_config_change(
    cfg: Config, client: httpx.Client, tmp_path: Path
) -> None:
    """Issue 14: the page listens on /preview/events and reloads; no hand reload."""
    article = Path(cfg.content.folder) / "2026-03-10-first.md"
    source = cfg.source
    assert source is not None
    with running(cfg, preview=True) as base:
        page = client.get(base + "/preview?week=2026-W12")
        since = re.search(r'<script src="preview/reload.js" data-since="(\d+)" defer>', page.text)
        assert since is not None
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
        js = client.get(base + "/preview/reload.js")
        assert js.status_code == 200 and "new EventSource(" in js.text
        events = f"{base}/preview/events?since={since.group(1)}"
        edit = lambda: article.write_text(article.read_text() + "\nMore.\n")  # noqa: E731
        assert _next_event(client, events, edit) == "data: reload"
        # An edit made after the render but before the page listens still reloads it.
        assert _next_event(client, events, lambda: None) == "data: reload"
        page = client.get(base + "/preview?week=2026-W12")
        since = re.search(r'data-since="(\d+)"', page.text)
        assert since is not None
        events = f"{base}/preview/events?since={since.group(1)}"
        touch = lambda: source.write_text(source.read_text() + "\n")  # noqa: E731
        assert _next_event(client, events, touch) == "data: reload"
    with running(cfg, preview=False) as base:
        assert client.get(base + "/preview/events").status_code == 404


# --- browser ----------------------------------------------------------------------------------


@pytest.mark.browser
def test_browser_confirm_then_unsubscribed_then_resubscribe(cfg: Config, browser) -> None:
    token = token_for(cfg, SECRET, ADA)
    with running(cfg) as base:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/unsubscribe/{token}")
        assert page.locator("h1").inner_text().startswith("Unsubscribe from")
        assert not suppressed_if_exists(cfg, ADA)
        page.click("#confirm")
        page.wait_for_selector("#done")
        assert page.locator("#done").inner_text() == "You are unsubscribed"
        assert suppressed(cfg, ADA)
        # The stylesheet loaded under the CSP (no violations in the console).
        assert (
            page.evaluate("getComputedStyle(document.querySelector('button')).borderRadius")
            == "6px"
        )
        page.click("#resubscribe")
        page.wait_for_selector("text=You are subscribed again")
        assert not suppressed(cfg, ADA)
        assert errors == []
        page.close()


def suppressed_if_exists(cfg: Config, email: str) -> bool:
    return Path(cfg.ledger.path).exists() and suppressed(cfg, email)


@pytest.mark.browser
def test_browser_archive_has_no_horizontal_overflow_at_375px(
    cfg: Config, browser, tmp_path: Path
) -> None:
    send(cfg)
    out = tmp_path / "site"
    web.write_archive(cfg, out)
    with running(cfg) as base:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        for url in (
            f"{base}/",
            f"{base}/issues/2026-W12/",
            (out / "issues/2026-W12/index.html").as_uri(),
            (out / "index.html").as_uri(),
        ):
            page.goto(url)
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1] == 375, (url, widths)
        page.close()


@pytest.mark.browser
def test_browser_preview_shows_the_email_at_375_and_600(cfg: Config, browser) -> None:
    with running(cfg, preview=True) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/preview?week=2026-W12")
        frames = page.locator("iframe")
        assert frames.count() == 2
        assert [frames.nth(i).bounding_box()["width"] for i in range(2)] == [377, 602]  # + border
        for i in range(2):
            inner = page.frame_locator("iframe").nth(i)
            assert "Readable error messages" in inner.locator("body").inner_text()
        assert errors == []
        page.close()


@pytest.mark.browser
def test_browser_preview_reloads_itself_after_an_edit_and_shows_a_broken_file(
    cfg: Config, browser
) -> None:
    article = Path(cfg.content.folder) / "2026-03-10-first.md"
    with running(cfg, preview=True) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/preview?week=2026-W12")
        article.write_text(article.read_text().replace("Readable error", "Friendlier error"))
        inner = page.frame_locator("iframe").nth(0)
        inner.get_by_role("link", name="Friendlier error messages", exact=True).wait_for(
            timeout=10_000
        )
        broken = Path(cfg.content.folder) / "2026-03-11-broken.md"
        broken.write_text("---\ntitle: [\n---\nx\n")
        page.locator("#findings", has_text="2026-03-11-broken.md").wait_for(timeout=10_000)
        assert errors == []
        page.close()


# --- behind a proxy, and under attack (issue 13) ------------------------------------------


def with_web(cfg: Config, **settings: object) -> Config:
    web = parse({"web": {**dataclasses.asdict(cfg.web), **settings}}).web  # checked
    return cfg.model_copy(update={"web": web})


def test_half_open_connections_are_bounded_in_count_and_closed_after_the_timeout(
    cfg: Config, client: httpx.Client
) -> None:
    cfg = with_web(cfg, request_timeout=1, max_connections=50)
    with running(cfg) as base:
        port = int(base.rsplit(":", 1)[1])
        socks = []
        for i in range(300):  # slowloris: half a request head, or nothing at all
            s = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        started = time.monotonic()
        # A reader who clicks during the flood is answered: the oldest waiting
        # connection makes room.
        assert client.get(base + "/").status_code == 200
        sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed: dict[socket.socket, float] = {}
        while len(closed) < len(socks) and time.monotonic() - started < 6:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(4096)
                except ConnectionError:
                    data = b""
                if not data:
                    closed[s] = time.monotonic() - started
                    sel.unregister(s)
        open_after = len(socks) - len(closed)
        early = sum(1 for t in closed.values() if t < 0.5)
        for s in socks:
            s.close()
        # Over the limit: closed at once (oldest first); the rest after the 1 s timeout.
        assert early >= len(socks) - 50 - 1, (early, sorted(closed.values())[:5])
        assert open_after == 0, f"{open_after} connections still open after 6 s"
        assert max(closed.values()) < 4
        # And the server still answers a reader who comes now, on a new connection (the
        # client's kept-alive one from the flood was closed by the 1 s timeout: reusing
        # it raced that close under load).
        assert httpx.get(base + "/", timeout=10).status_code == 200


def test_root_path_serves_links_and_routes_under_the_prefix(
    cfg: Config, client: httpx.Client
) -> None:
    from urllib.parse import urljoin

    cfg = with_web(cfg, root_path="/newsletter/")  # a trailing slash is fine
    send(cfg)
    token = make_token(SECRET, ADA)
    with running(cfg) as base:
        url = f"{base}/newsletter/unsubscribe/{token}"
        page = client.get(url)
        assert page.status_code == 200 and "Unsubscribe" in page.text
        # Every link on the page resolves to a page the server answers, under the prefix.
        links = re.findall(r'(?:href|action)="([^"#]*)"', page.text)
        assert links
        for link in links:
            target = urljoin(url, link)
            if target.startswith(base):
                assert target.startswith(base + "/newsletter/"), target
                if target != url:
                    assert client.get(target).status_code == 200, target
        assert one_click(client, url).status_code == 200
        assert suppressed(cfg, ADA)
        assert client.get(f"{base}/unsubscribe/{token}").status_code == 404
        # /newsletter (no slash) redirects, relatively, to the archive at /newsletter/.
        r = client.get(base + "/newsletter")
        assert r.status_code == 308 and urljoin(r.url.path, r.headers["location"]) == "/newsletter/"
        index = client.get(base + "/newsletter/")
        (issue,) = re.findall(r'href="(issues/[^"]+/)"', index.text)[:1]
        assert client.get(urljoin(base + "/newsletter/", issue)).status_code == 200
        assert client.get(base + "/newsletter/style.css").status_code == 200
