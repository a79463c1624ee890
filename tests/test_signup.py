"""Issue 16, signup with double opt-in: a real ``digest serve`` app (uvicorn on
127.0.0.1), a real SQLite ledger, the confirmation mail through the real outbox and, for
the SMTP path, a real aiosmtpd server; then a real send of the next issue."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import dkim
import httpx
import pytest

import test_web
from digest import web
from digest.config import Config, load
from digest.ledger import Ledger
from digest.signing import load_key
from digest.signup import RateLimit
from digest.tokens import make_confirm_token, new_nonce
from smtp_server import SmtpServer
from test_web import ADA, NOW, SECRET, SECRET_ENV, _outbox, _write_site, send

NEW = "new.reader@example.net"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = _write_site(tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8") + "\n[subscribe]\nenabled = true\n" + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return load(_config(tmp_path))


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(follow_redirects=False, timeout=10) as c:
        yield c


APPS: list = []  # type: ignore[type-arg]


@contextmanager
def running(cfg: Config) -> Iterator[str]:
    """test_web's real uvicorn server; the app is kept to wait on its background work."""
    create = web.create_app

    def keep(*args: Any, **kwargs: Any) -> Any:
        APPS.append(create(*args, **kwargs))
        return APPS[-1]

    web.create_app = keep  # type: ignore[assignment]
    try:
        with test_web.running(cfg) as base:
            yield base
    finally:
        web.create_app = create  # type: ignore[assignment]


def post(client: httpx.Client, url: str, **fields: str) -> httpx.Response:
    """POST the form. The confirmation mail goes out after the answer (so its timing
    tells nothing): wait until the server has handed it over."""
    r = client.post(url, data=fields, headers=FORM)
    assert APPS[-1].state.signups_in_flight.wait(10)
    return r


def mails_to(cfg: Config, address: str) -> list[bytes]:
    out = [p.read_bytes() for p, to in _outbox(cfg).items() if to == address]
    return out


def confirm_link(cfg: Config, mail: bytes) -> str:
    """The path (below the server root) of the confirmation link in the mail's text."""
    msg = BytesParser(policy=policy.default).parsebytes(mail)
    text = msg.get_body(("plain",)).get_content()
    url = re.search(r"(https://\S+/subscribe/confirm/\S+)", text).group(1)
    assert url.startswith(cfg.newsletter.web_root + "/subscribe/confirm/")
    return url[len(cfg.newsletter.web_root) :]


def state(cfg: Config, email: str) -> str | None:
    with Ledger(cfg.ledger.path) as ledger:
        return ledger.signup_state(email)


def test_signup_confirm_then_the_next_issue_reaches_the_reader(
    cfg: Config, client: httpx.Client
) -> None:
    with running(cfg) as base:
        form = client.get(base + "/subscribe")
        assert form.status_code == 200
        assert 'name="email"' in form.text and 'name="website"' in form.text  # honeypot
        assert "<script" not in form.text  # works without JavaScript

        r = post(client, base + "/subscribe", email=NEW, name="Nora Reader", lang="en")
        assert r.status_code == 200 and "Check your inbox" in r.text
        assert state(cfg, NEW) == "pending"
        [mail] = mails_to(cfg, NEW)
        msg = BytesParser(policy=policy.default).parsebytes(mail)
        assert msg["Subject"] == "Confirm your subscription to Web Test Weekly"
        assert msg["Auto-Submitted"] == "auto-generated"
        link = confirm_link(cfg, mail)
        assert NEW not in link and "new.reader" not in link  # the address is not in URLs

        # A GET (a person, or a mail scanner prefetching the link) never confirms.
        page = client.get(base + link)
        assert page.status_code == 200 and 'method="post"' in page.text
        assert state(cfg, NEW) == "pending"

        done = client.post(base + link)
        assert done.status_code == 200 and "You are subscribed" in done.text
        assert state(cfg, NEW) == "active"

        # The link again: a clear page, not a second confirmation, never a 500.
        again = client.post(base + link)
        assert again.status_code == 200 and "Already confirmed" in again.text

    got = send(cfg)
    assert NEW in got and ADA in got
    parsed = [BytesParser(policy=policy.default).parsebytes(m) for m in mails_to(cfg, NEW)]
    [issue] = [m for m in parsed if m["List-Unsubscribe"] is not None]  # the issue itself
    assert str(issue["To"]) == f"Nora Reader <{NEW}>"
    with Ledger(cfg.ledger.path) as ledger:
        [row] = [r for r in ledger.signups() if r[1] == NEW]
    # The consent record: when, from where, which confirmation.
    assert row[5] == "form" and row[7] and row[8] and row[9]


def test_same_answer_for_new_pending_and_existing_addresses(
    cfg: Config, client: httpx.Client
) -> None:
    with running(cfg) as base:
        first = post(client, base + "/subscribe", email=NEW)
        pending = post(client, base + "/subscribe", email=NEW)
        client.post(base + confirm_link(cfg, sorted(mails_to(cfg, NEW))[0]))  # superseded
        link = None
        for mail in mails_to(cfg, NEW):
            link = confirm_link(cfg, mail)
            if client.post(base + link).status_code == 200:
                break
        assert state(cfg, NEW) == "active"
        existing = post(client, base + "/subscribe", email=NEW)
        # Listed in the CSV file: the same answer again.
        listed = post(client, base + "/subscribe", email=ADA)
    assert first.status_code == pending.status_code == existing.status_code == 200
    # The page repeats the address typed, nothing else differs.
    assert first.text == pending.text == existing.text == listed.text.replace(ADA, NEW)
    # On the CSV list but not signed up: mailed a confirmation like anyone (folded later).
    assert state(cfg, ADA) == "pending"


def test_bad_expired_and_superseded_links_get_clear_pages(
    cfg: Config, client: httpx.Client
) -> None:
    with running(cfg) as base:
        post(client, base + "/subscribe", email=NEW)
        old = confirm_link(cfg, mails_to(cfg, NEW)[0])
        time.sleep(0.01)
        for path in _outbox(cfg):
            path.unlink()
        post(client, base + "/subscribe", email=NEW)  # a new mail: the old link is replaced
        r = client.post(base + old)
        assert r.status_code == 400 and "does not work" in r.text
        assert state(cfg, NEW) == "pending"

        tampered = old[:-3] + ("AAA" if not old.endswith("AAA") else "BBB")
        for path in (tampered, "/subscribe/confirm/nonsense", "/subscribe/confirm/a.b"):
            for method in ("GET", "POST"):
                r = client.request(method, base + path)
                assert r.status_code == 400, (method, path, r.status_code)
                assert "does not work" in r.text

        expired = make_confirm_token(SECRET, new_nonce(), time.time() - 1)
        for method in ("GET", "POST"):
            r = client.request(method, base + "/subscribe/confirm/" + expired)
            assert r.status_code == 410 and "expired" in r.text


def test_honeypot_and_bad_address_record_nothing(cfg: Config, client: httpx.Client) -> None:
    with running(cfg) as base:
        bot = post(client, base + "/subscribe", email=NEW, website="http://spam.example")
        assert bot.status_code == 200 and "Check your inbox" in bot.text
        bad = post(client, base + "/subscribe", email="not an address")
        assert bad.status_code == 400 and "does not look like an email address" in bad.text
        wrong_type = client.post(base + "/subscribe", json={"email": NEW})
        assert wrong_type.status_code == 400
    assert state(cfg, NEW) is None and not mails_to(cfg, NEW)


def test_header_injection_through_the_name_stays_text(cfg: Config, client: httpx.Client) -> None:
    evil = "Nora\r\nBcc: victim@example.org\r\nX-Evil: 1"
    with running(cfg) as base:
        assert post(client, base + "/subscribe", email=NEW, name=evil).status_code == 200
    [mail] = mails_to(cfg, NEW)
    head = mail.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX-Evil:" not in head
    msg = BytesParser(policy=policy.default).parsebytes(mail)
    assert msg["Bcc"] is None and msg["To"].addresses[0].addr_spec == NEW


def test_rate_limits_per_address_and_per_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    cfg = load(_config(tmp_path, "per_address_per_hour = 2\nper_client_per_hour = 5\n"))
    with running(cfg) as base:
        answers = [post(client, base + "/subscribe", email=NEW) for _ in range(4)]
        # Per address: the same answer, but only two mails.
        assert {a.status_code for a in answers} == {200}
        assert len({a.text for a in answers}) == 1
        assert len(mails_to(cfg, NEW)) == 2
        r = post(client, base + "/subscribe", email="other@example.net")
        assert r.status_code == 200  # the fifth from this client
        r = post(client, base + "/subscribe", email="third@example.net")
        assert r.status_code == 429 and r.headers["retry-after"]
        assert not mails_to(cfg, "third@example.net")


def test_rate_limit_memory_is_bounded() -> None:
    limit = RateLimit(2, max_keys=100)
    for i in range(10_000):
        limit.allow(f"client-{i}", now=float(i))
    assert len(limit) == 100
    assert limit.allow("a", now=0) and limit.allow("a", now=1) and not limit.allow("a", now=2)
    assert limit.allow("a", now=3601)  # an hour after the first


def test_form_is_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    cfg = load(_write_site(tmp_path))
    with running(cfg) as base, httpx.Client() as c:
        assert c.get(base + "/subscribe").status_code == 404
        assert c.post(base + "/subscribe", data={"email": NEW}).status_code in (404, 405)


def test_confirming_lifts_an_unsubscribe_but_not_a_bounce(
    cfg: Config, client: httpx.Client
) -> None:
    with Ledger(cfg.ledger.path) as ledger:
        ledger.suppress(NEW, reason="unsubscribe")
        ledger.suppress("dead@example.net", reason="bounce")
    with running(cfg) as base:
        for address in (NEW, "dead@example.net"):
            post(client, base + "/subscribe", email=address)
            assert client.post(base + confirm_link(cfg, mails_to(cfg, address)[0])).is_success
    with Ledger(cfg.ledger.path) as ledger:
        assert not ledger.is_suppressed(NEW)
        assert ledger.is_suppressed("dead@example.net")
    got = send(cfg)
    assert NEW in got and "dead@example.net" not in got


def test_confirmation_mail_over_real_smtp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    """Through a real SMTP server, DKIM-signed like the issues: the confirmation mail and
    the next issue both verify against the published key (a DNS stub)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = tmp_path / "dkim.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with SmtpServer() as smtp:
        monkeypatch.setenv(SECRET_ENV, SECRET)
        path = _config(tmp_path)  # the outbox config, switched to SMTP here
        path.write_text(
            path.read_text(encoding="utf-8")
            .replace('transport = "outbox"', 'transport = "smtp"')
            # A real send refuses the example's base URL (config.first_run_values).
            .replace('base_url = "https://example.com"', 'base_url = "https://news.example.org"')
            + f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
            + '\n[sender]\nemail = "news@example.org"\n'
            + f'\n[dkim]\ndomain = "example.org"\nselector = "s1"\nkey_file = "{key}"\n',
            encoding="utf-8",
        )
        cfg = load(path)
        with running(cfg) as base:
            assert post(client, base + "/subscribe", email=NEW).status_code == 200
        [(rcpts, data)] = [(m.rcpt_tos, m.data) for m in smtp.messages]
        assert rcpts == (NEW,)
        link = confirm_link(cfg, data)
        with running(cfg) as base:
            assert client.post(base + link).status_code == 200
        assert state(cfg, NEW) == "active"
        send(cfg, NOW)
        assert any(NEW in m.rcpt_tos for m in smtp.messages[1:])
    record = load_key(key).txt_record().encode()

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return record if name.decode().rstrip(".") == "s1._domainkey.example.org" else None

    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dnsfunc)  # the confirmation mail
    assert all(dkim.verify(m.data, dnsfunc=dnsfunc) for m in smtp.messages[1:])  # the issue
    assert not dkim.verify(data.replace(b"confirm/", b"confirn/", 1), dnsfunc=dnsfunc)
