"""Per-recipient messages: tokens, headers, render-once bodies, no header injection."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import logging
import random
import re
import secrets
import uuid
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.utils import parseaddr

import pytest

from digest.config import parse
from digest.errors import ConfigError
from digest.message import Composer, message_id
from digest.model import Recipient, RenderedEmail
from digest.tokens import make_token, read_token, reader_id, remember, secret_for

SECRET = "a-test-secret-of-enough-length"

HTML = (
    "<html><body><p>Hello __digest_first_name__ (__digest_name__, __digest_email__),</p>"
    + '<p style="color:#333">This week in <b>digest</b> land: 5 > 3 & "quotes".</p>\n' * 700
    + '<a href="__digest_web_url__">View in browser</a> '
    + '<a href="__digest_unsubscribe_url__">Unsubscribe</a>\n.\n.a line starting with a dot\n'
    + "<p>__digest_postal_address__</p></body></html>"
)
TEXT = (
    "Hi __digest_first_name__ (__digest_name__)!\n\n"
    + "A line of the text part, long enough to need folding when encoded. " * 30
    + "\n.\n..dots\nWeb: __digest_web_url__\nUnsubscribe: __digest_unsubscribe_url__\n"
)


def rendered(subject: str = "Digest #3: Ünïcode & more", html: str = HTML, text: str = TEXT):
    return RenderedEmail(
        "2026-W48",
        subject,
        "preheader",
        html,
        text,
        defaults={
            "web_url": "https://example.com/issues/2026-W48?a=1&b=2",
            "postal_address": "1 Rd",
        },
    )


def composer(r: RenderedEmail | None = None, **kw) -> Composer:
    args = dict(
        secret=SECRET,
        from_email="news@example.com",
        from_name="The Weekly Digest",
        reply_to="editor@example.com",
        list_name="The Weekly Digest",
        unsubscribe_url="https://example.com/unsubscribe",
        unsubscribe_mailto="unsubscribe@example.com",
    )
    args.update(kw)
    return Composer(r or rendered(), **args)


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def bodies(msg) -> tuple[str, str]:
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    return text, html


# -- tokens --------------------------------------------------------------------------------


ADDRESSES = ("ann@example.com", "o'brien+news@sub.example.org", "x@xn--bcher-kva.de")
KNOWN = {reader_id(SECRET, a): a for a in (*ADDRESSES, "bob@example.com")}


def test_token_roundtrip_and_url_safe():
    for address in ADDRESSES:
        token = make_token(SECRET, address)
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)
        assert read_token(SECRET, token, KNOWN.get) == address


def _decoded(token: str) -> bytes:
    return b"".join(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split("."))


def test_tokens_are_opaque_and_resolve_through_the_ledger(tmp_path):
    # A token in a URL (proxy logs, browser history) must not say whose it is.
    from digest.ledger import Ledger

    with Ledger(tmp_path / "l.sqlite3") as ledger:
        remember(ledger, SECRET, ADDRESSES)
        for address in ADDRESSES:
            token = make_token(SECRET, address)
            assert address.encode() not in _decoded(token)
            assert address.split("@")[0].encode() not in _decoded(token)
            assert len(token) == 39  # the same for every address
            assert read_token(SECRET, token, ledger.reader) == address
            assert make_token(SECRET, address.upper()) == token  # one id per folded address
        unknown = make_token(SECRET, "never-mailed@example.com")
        assert read_token(SECRET, unknown, ledger.reader) is None
        assert read_token(SECRET, make_token(SECRET, ADDRESSES[0])) is None  # no resolver


def legacy_token(secret: str, email: str) -> str:
    """A token as digest wrote them before they were opaque: base64url(address).MAC."""
    payload = email.encode()
    mac = hmac.new(secret.encode(), b"digest-unsubscribe-v1\0" + payload, hashlib.sha256)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return f"{b64(payload)}.{b64(mac.digest())}"


def test_links_in_mail_already_sent_still_verify():
    token = legacy_token(SECRET, "ann@example.com")
    assert read_token(SECRET, token) == "ann@example.com"
    assert read_token(SECRET, token, {}.get) == "ann@example.com"
    assert read_token("another-secret-entirely", token) is None
    mac = token.split(".")[1]
    assert (
        read_token(SECRET, f"{legacy_token(SECRET, 'bob@example.com').split('.')[0]}.{mac}") is None
    )


def test_tampered_or_malformed_tokens_are_refused():
    token = make_token(SECRET, "ann@example.com")
    payload, mac = token.split(".")
    other = make_token(SECRET, "bob@example.com").split(".")[0]
    bad = [
        "",
        "garbage",
        token + "x",
        token[:-1],
        f"{other}.{mac}",  # someone else's address with Ann's signature
        f"{payload}.{mac[:-2]}",
        token.replace(".", ""),
        f"{payload}=.{mac}",  # padding: not the canonical spelling
        f"{payload}.{mac}.extra",
        "a" * 5000,
        f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}",
    ]
    for t in bad:
        assert read_token(SECRET, t, KNOWN.get) is None, t
    assert read_token(SECRET, token, KNOWN.get) == "ann@example.com"
    assert read_token("another-secret-entirely", token, KNOWN.get) is None
    assert read_token("", token, KNOWN.get) is None
    # A ledger row that maps Ann's id to someone else (tampered, or another secret's row)
    # names nobody.
    assert read_token(SECRET, token, {payload: "bob@example.com"}.get) is None
    with pytest.raises(ValueError):
        make_token("", "ann@example.com")


def test_secret_from_env_required_for_real_sends(tmp_path, monkeypatch, caplog):
    unsub = {"secret_env": "DIGEST_TEST_SECRET"}
    smtp = parse(
        {"unsubscribe": unsub, "delivery": {"transport": "smtp"}, "smtp": {"host": "127.0.0.1"}},
        tmp_path / "c.toml",
    )
    outbox = parse({"unsubscribe": unsub}, tmp_path / "c.toml")
    monkeypatch.delenv("DIGEST_TEST_SECRET", raising=False)
    for purpose in ("send", "preview", "serve"):
        with pytest.raises(ConfigError, match="DIGEST_TEST_SECRET is not set"):
            secret_for(smtp, purpose)
    from digest.ledger import Ledger

    with Ledger(tmp_path / "l.sqlite3") as ledger, caplog.at_level(logging.WARNING):
        dev = secret_for(outbox, "send", ledger)
        assert dev == ledger.dev_secret()
        assert secret_for(smtp, "dry-run", ledger) == dev  # a dry run mails no one
        assert "development secret" in caplog.text and dev not in caplog.text
    monkeypatch.setenv("DIGEST_TEST_SECRET", "short")
    with pytest.raises(ConfigError, match="too easy to guess") as exc:
        secret_for(smtp, "send")
    assert "short'" not in str(exc.value)
    monkeypatch.setenv("DIGEST_TEST_SECRET", SECRET)
    assert secret_for(smtp, "send") == SECRET
    assert secret_for(outbox, "serve") == SECRET


@pytest.mark.parametrize(
    "weak",
    [" " * 16, " " * 64, "a" * 64, "ab" * 32, "password" * 4, "0123456789" * 3, "Tr0ub4dor&3xyzzy"],
)
def test_a_low_entropy_secret_is_refused_without_being_printed(tmp_path, monkeypatch, weak):
    unsub = {"secret_env": "DIGEST_TEST_SECRET"}
    smtp = parse(
        {"unsubscribe": unsub, "delivery": {"transport": "smtp"}, "smtp": {"host": "127.0.0.1"}},
        tmp_path / "c.toml",
    )
    monkeypatch.setenv("DIGEST_TEST_SECRET", weak)
    with pytest.raises(ConfigError) as exc:
        secret_for(smtp, "send")
    message = str(exc.value)
    assert "DIGEST_TEST_SECRET" in message and "secrets.token_urlsafe(32)" in message
    assert weak not in message and weak[:8] not in message


def test_generated_secrets_are_accepted(tmp_path, monkeypatch):
    smtp = parse(
        {"unsubscribe": {"secret_env": "DIGEST_TEST_SECRET"}, "delivery": {"transport": "smtp"},
         "smtp": {"host": "127.0.0.1"}},
        tmp_path / "c.toml",
    )  # fmt: skip
    made = [secrets.token_urlsafe(32) for _ in range(200)] + [
        secrets.token_hex(16) for _ in range(200)
    ]
    made += [secrets.token_urlsafe(16) for _ in range(200)] + [
        str(uuid.uuid4()) for _ in range(200)
    ]
    for value in made:
        monkeypatch.setenv("DIGEST_TEST_SECRET", value)
        assert secret_for(smtp, "send") == value


# -- headers -------------------------------------------------------------------------------


def test_headers_of_a_message():
    c = composer()
    m = c.compose(Recipient("ann@example.com", "Ann Example"))
    msg = parsed(m.data)
    assert msg["From"] == "The Weekly Digest <news@example.com>"
    assert msg["Reply-To"] == "editor@example.com"
    assert msg["To"] == "Ann Example <ann@example.com>"
    assert msg["Subject"] == "Digest #3: Ünïcode & more"
    assert msg["Date"] and msg["Date"].datetime.tzinfo is not None
    assert msg["Message-ID"] == m.message_id
    assert msg["MIME-Version"] == "1.0"
    assert msg["List-Id"] == "The Weekly Digest <the-weekly-digest.example.com>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    urls = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert urls[1] == "mailto:unsubscribe@example.com?subject=unsubscribe"
    base, token = urls[0].rsplit("/", 1)
    assert base == "https://example.com/unsubscribe"
    assert read_token(SECRET, token, KNOWN.get) == "ann@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    # The body's unsubscribe link carries the same token.
    text, html = bodies(msg)
    assert urls[0] in text and f'href="{urls[0]}"' in html


def test_date_has_a_numeric_zone_and_feedback_id_is_optional():
    # RFC 5322 prefers a numeric zone; "GMT" is obsolete syntax some filters score.
    m = composer().compose(Recipient("ann@example.com"))
    head = m.data.split(b"\r\n\r\n", 1)[0].decode()
    assert re.search(r"^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$", head, re.M)
    assert "Feedback-ID" not in head
    m = composer(feedback_id="{issue}:weekly:digest").compose(Recipient("ann@example.com"))
    assert parsed(m.data)["Feedback-ID"] == "2026-W48:weekly:digest"
    with pytest.raises(ConfigError, match=r"sender\.feedback_id"):
        composer(feedback_id="a\r\nBcc: x@example.com")


def test_message_id_is_deterministic_per_issue_and_recipient():
    c = composer()
    a1 = c.compose(Recipient("ann@example.com")).message_id
    assert a1 == composer().compose(Recipient("ANN@example.com", "Other")).message_id
    assert a1 == message_id("2026-W48", "ann@example.com", "example.com")
    assert a1 != c.compose(Recipient("bob@example.com")).message_id
    other_issue = composer(RenderedEmail("2026-W49", "s", "p", "h", "t"))
    assert a1 != other_issue.compose(Recipient("ann@example.com")).message_id
    assert re.fullmatch(r"<[0-9a-f]{32}\.2026-W48@example\.com>", a1)
    # Previews never reuse the Message-ID the real issue will have.
    preview = composer(random_ids=True, subject_prefix="[Preview] ")
    p1 = preview.compose(Recipient("ann@example.com"))
    assert (
        p1.message_id != a1
        and p1.message_id != preview.compose(Recipient("ann@example.com")).message_id
    )
    assert parsed(p1.data)["Subject"].startswith("[Preview] Digest #3")


def test_crlf_and_line_lengths():
    c = composer(rendered(subject="A very long subject " * 12))
    data = c.compose(Recipient("ann@example.com", "Ä" * 120)).data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    # Everything but List-Unsubscribe (kept unfolded on purpose) fits in 78 octets.
    assert all(len(line) <= 78 for line in lines if not line.startswith(b"List-Unsubscribe: <"))
    assert data.isascii()


def test_to_header_with_all_kinds_of_names():
    c = composer()
    for name in [
        "",
        "Ann Example",
        "Example, Ann",
        'Ann "the analyst" Example',
        "J. R. R. Tolkien",
        "Zoë Ünïcode-Ñame",
        "李小龙",
        "=?utf-8?q?not_an_encoded_word?=",
        "back\\slash",
        "x" * 150,
    ]:
        data = c.compose(Recipient("ann@example.com", name)).data
        raw = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
        # decode_header, not policy.default: the latter puts spaces between adjacent
        # encoded words, which RFC 2047 says to drop.
        display, addr = parseaddr(str(make_header(decode_header(raw))))
        assert addr == "ann@example.com", name
        assert display == name, name
        assert parsed(data)["To"].addresses[0].addr_spec == "ann@example.com"


@pytest.mark.parametrize("field", ["subject", "name", "first_name", "from_name", "list_name"])
def test_no_header_injection(field):
    evil = "Hello\r\nBcc: victim@evil.example\r\n\r\nInjected body\nX-Evil: 1\rY-Evil: 2"
    r = rendered(subject=evil if field == "subject" else "Subject")
    kw = {field: evil} if field in ("from_name", "list_name") else {}
    c = composer(r, **kw)
    rcpt = Recipient(
        "ann@example.com",
        evil if field == "name" else "Ann",
        evil if field == "first_name" else "",
    )
    data = c.compose(rcpt).data
    msg = parsed(data)
    assert msg["Bcc"] is None and msg["X-Evil"] is None and msg["Y-Evil"] is None
    head = data.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^(Bcc|X-Evil|Y-Evil):", head, re.MULTILINE | re.IGNORECASE)
    assert len(msg.get_all("To")) == 1 and len(msg.get_all("Subject")) == 1
    assert msg.get_content_type() == "multipart/alternative"


def test_addresses_with_line_breaks_are_refused():
    with pytest.raises(ValueError):
        composer().compose(Recipient("ann@example.com\r\nBcc: x@evil.example"))
    with pytest.raises(ConfigError):
        composer(unsubscribe_url="https://example.com/u\r\nBcc: x@evil.example")


# -- bodies --------------------------------------------------------------------------------


def test_bodies_equal_a_fill_of_the_render():
    r = rendered()
    c = composer(r)
    for rcpt in [
        Recipient("ann@example.com", "Ann <b>Example</b> & Co", ""),
        Recipient("bob@example.com", "", ""),
        Recipient("cy@example.com", "Cy Young", "Cyrus"),
    ]:
        msg = parsed(c.compose(rcpt).data)
        text, html = bodies(msg)
        want_html, want_text = r.fill(c.values(rcpt))
        assert text == want_text and html == want_html
    # Values are escaped in the HTML, never in the text.
    text, html = bodies(parsed(c.compose(Recipient("ann@example.com", "A <b> & B")).data))
    assert "A &lt;b&gt; &amp; B" in html and "A <b> & B" in text
    assert "a=1&amp;b=2" in html and "a=1&b=2" in text  # non-personal defaults too
    assert c.values(Recipient("ann@example.com", "Ann Example"))["first_name"] == "Ann"


def test_random_bodies_survive_encoding():
    """Tokens anywhere (line starts, line ends, mid-word, next to spaces and dots) and any
    characters: the decoded message is exactly the filled render."""
    rng = random.Random(7)
    alphabet = "abc xyz .,;:=-_\n\t<>&\"'äöü€😀 ..\n. \n"
    tokens = ["__digest_name__", "__digest_email__", "__digest_unsubscribe_url__",
              "__digest_first_name__", "__digest_web_url__"]  # fmt: skip
    for _ in range(40):
        parts = []
        for _ in range(rng.randint(1, 30)):
            parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))))
            parts.append(rng.choice(tokens))
        body = "".join(parts)
        r = rendered(html=body, text=body)
        c = composer(r)
        rcpt = Recipient("ann@example.com", "".join(rng.choice(alphabet) for _ in range(20)))
        composed = c.compose(rcpt)
        data = composed.data
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        # No line starts with a dot, so SMTP needs no dot-stuffing pass.
        assert composed.dot_safe and b"\r\n." not in data
        text, html = bodies(parsed(data))
        want_html, want_text = r.fill(c.values(rcpt))
        norm = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
        assert text == norm(want_text) and html == norm(want_html)


def test_composing_is_fast_enough():
    """Render once, substitute per recipient: a 60 KB issue well under a millisecond."""
    import time

    c = composer()
    n = 2000
    started = time.perf_counter()
    for i in range(n):
        c.compose(Recipient(f"user{i}@example.com", "Ann Example"))
    per_message = (time.perf_counter() - started) / n
    assert len(c.compose(Recipient("a@example.com")).data) > 55_000
    assert per_message < 0.0005, f"{per_message * 1e6:.0f} us per message"


def test_display_names_render_as_address_objects():
    # Sanity check of the slow path against the email package's own formatting.
    assert str(Address(display_name="Ann", addr_spec="a@example.com")) == "Ann <a@example.com>"


# -- encoded words in the input (RFC 2047): text, never decoded into the header ------------

INJECT = "=?utf-8?q?Hi=0D=0ABcc:_victim@evil.example?="
SMUGGLE = "=?utf-8?q?x=0D=0A.=0D=0AMAIL_FROM:<e@evil.example>=0D=0ARCPT_TO:<v@evil.example>?="
HEADER_LINE = re.compile(rb"[!-9;-~]+:[ \t][\t -~]*|[ \t][\t -~]*[!-~][\t -~]*")


def assert_clean_header_block(data: bytes) -> None:
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        # A field or a continuation (starts with WSP); no bare CR or LF anywhere.
        assert HEADER_LINE.fullmatch(line), line
    assert b"\r\n." not in data and not data.startswith(b".")


@pytest.mark.parametrize("evil", [INJECT, SMUGGLE, f"Weekly: {INJECT} and more"])
@pytest.mark.parametrize("field", ["subject", "from_name", "list_name", "subject_prefix"])
def test_encoded_words_in_input_never_become_line_breaks(field, evil):
    r = rendered(subject=evil if field == "subject" else "Subject")
    kw = {field: evil} if field != "subject" else {}
    c = composer(r, **kw)
    composed = c.compose(Recipient("ann@example.com", "Ann"))
    data = composed.data
    assert_clean_header_block(data)
    assert composed.dot_safe
    msg = parsed(data)
    assert msg["Bcc"] is None and msg["MAIL FROM"] is None
    assert not re.search(rb"^(Bcc|MAIL FROM|RCPT TO)", data, re.MULTILINE | re.IGNORECASE)
    # What was written is what the reader sees: the encoded word as text.
    raw = email.message_from_bytes(data, policy=email.policy.compat32)
    if field in ("subject", "subject_prefix"):
        assert evil in str(make_header(decode_header(raw["Subject"])))
    if field == "from_name":
        assert str(make_header(decode_header(raw["From"]))) == f"{evil} <news@example.com>"
    if field == "list_name":
        assert evil in str(make_header(decode_header(raw["List-Id"])))
    assert msg.get_content_type() == "multipart/alternative"


def test_header_block_check_refuses_what_smuggles():
    from digest.message import check_header_block

    check_header_block(b"Subject: fine\r\n folded\r\nTo: a@example.com\r\n")
    for bad in [
        b"Subject: x\r\n.\r\nMAIL FROM:<e@evil.example>\r\n",  # a line that is no field
        b"Subject: x\nBcc: v@evil.example\r\n",  # bare LF
        b"Subject: x\rBcc: v@evil.example\r\n",  # bare CR
        b"Subject: x\r\n\r\n",  # an empty line ends the header early
        b"Subject: x",  # not CRLF-terminated
        b" continuation first\r\n",
        b"Subject: \xc3\xa9\r\n",  # 8-bit
        b"Subject: " + b"x" * 1000 + b"\r\n",  # over 998 octets
    ]:
        with pytest.raises(ValueError):
            check_header_block(bad)


def test_unsubscribe_url_is_checked_against_the_longest_address_up_front():
    with pytest.raises(ConfigError, match=r"unsubscribe\.url: too long.*998"):
        composer(unsubscribe_url="https://example.com/" + "p" * 960)
    # Tokens are opaque, the same length for every address: a long URL still fits.
    composer(unsubscribe_url="https://example.com/" + "p" * 660)
    c = composer(unsubscribe_url="https://example.com/" + "p" * 400, unsubscribe_mailto="")
    longest = "x" * 64 + "@" + ("d" * 63 + ".") * 2 + "d" * 53 + ".example"
    assert len(longest) == 254
    data = c.compose(Recipient(longest)).data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    # Not ASCII: the host becomes IDNA, the rest percent-encoded (headers are ASCII).
    c = composer(unsubscribe_url="https://exämple.com/désabonner")
    assert c.unsubscribe_url("a@example.com").startswith(
        "https://xn--exmple-cua.com/d%C3%A9sabonner/"
    )
