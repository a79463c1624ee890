"""``RenderedEmail`` + ``Recipient`` -> the bytes of one email.

The issue is rendered once. ``Composer`` encodes the fixed parts once per issue (headers
folded, both bodies quoted-printable) and per recipient only encodes and splices in the
few personal fields (unsubscribe link, name, first name, address) and four headers (To,
Date, Message-ID, List-Unsubscribe). That keeps a 60 KB issue at tens of microseconds per
message, where building an ``EmailMessage`` per recipient costs milliseconds.

Safety: every header value is made one line (CR, LF and other control characters become
spaces) before it is folded, so a title, name or address can never add a header. Lines
are CRLF and at most 78 octets, except List-Unsubscribe, which stays unfolded (folding
breaks the URL in some clients) and is checked against the 998-octet limit.

Tokens: ``make_token``/``read_token`` sign an address with HMAC-SHA256 under a secret
from the environment; the unsubscribe link in the header and in the body carry the same
token.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import hashlib
import hmac
import html as _html
import logging
import re
import secrets
import time
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from .errors import ConfigError
from .render import PLACEHOLDERS, RenderedEmail, token

if TYPE_CHECKING:
    from .config import Config
    from .ledger import Ledger

log = logging.getLogger(__name__)

# -- tokens ------------------------------------------------------------------------------

_TOKEN_CONTEXT = b"digest-unsubscribe-v1\0"  # so the key signs nothing else by accident
_B64 = re.compile(r"[A-Za-z0-9_-]+")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64.fullmatch(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # only the canonical spelling: no malleable tokens
        raise ValueError("not canonical")
    return data


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), _TOKEN_CONTEXT + payload, hashlib.sha256).digest()


def make_token(secret: str, email: str) -> str:
    """A URL-safe token naming ``email``, signed with HMAC-SHA256 under ``secret``."""
    if not secret:
        raise ValueError("an unsubscribe token needs a secret")
    payload = email.encode("utf-8")
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def read_token(secret: str, token: str) -> str | None:
    """The address a token names, or None if it is malformed or was not signed by us."""
    if not secret or not isinstance(token, str) or len(token) > 2000:
        return None
    payload_text, dot, mac_text = token.partition(".")
    if not dot:
        return None
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        email = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return email if email and "@" in email else None


DEV_SECRET_NOTE = (
    "{env} is not set: unsubscribe links are signed with a development secret stored in "
    "the ledger ({where}). That is fine for the outbox and --dry-run; real SMTP sends "
    "refuse to start until {env} holds a secret."
)


def unsubscribe_secret(cfg: Config, ledger: Ledger | None, *, real: bool) -> str:
    """The secret that signs unsubscribe tokens.

    From the environment variable named by ``unsubscribe.secret_env``. Without it, a real
    (SMTP) send is refused; outbox sends, dry runs and ``digest serve`` during
    development use a random secret generated once and kept in the ledger file (so
    tokens written to the outbox still verify later), with a loud warning.
    """
    env = cfg.unsubscribe.secret_env
    value = cfg.unsubscribe.secret()
    if value:
        if len(value) < 16:
            raise ConfigError(
                cfg.source or "config",
                [("unsubscribe.secret_env", f"the secret in {env} is too short; use 16 or "
                  "more random characters, e.g. python -c 'import secrets; "
                  "print(secrets.token_urlsafe(32))'")],
            )  # fmt: skip
        return value
    if real:
        raise ConfigError(
            cfg.source or "config",
            [("unsubscribe.secret_env", f"the environment variable {env} is not set. Real "
              "sends sign every unsubscribe link with it; create one with python -c 'import "
              f"secrets; print(secrets.token_urlsafe(32))' and export {env}=<it> (keep it "
              "the same for every send and for 'digest serve')")],
        )  # fmt: skip
    stored = ledger.dev_secret() if ledger is not None else None
    where = str(ledger.path) if ledger is not None and stored else "this run only"
    log.warning(DEV_SECRET_NOTE.format(env=env or "unsubscribe.secret_env", where=where))
    return stored or secrets.token_urlsafe(32)


# -- recipients and headers --------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    email: str  # a validated address (ASCII)
    name: str = ""
    first_name: str = ""  # default: the first word of name


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(value: str) -> str:
    """A header-safe value: control characters (CR, LF, ...) become single spaces."""
    if value.isprintable() and value == value.strip() and "  " not in value:
        return value  # the common case, fast (no Cc, Zl, Zp characters)
    return " ".join(_CONTROL.sub(" ", value).split())


_POLICY = email.policy.SMTP.clone(max_line_length=78)


def fold(name: str, value: str) -> bytes:
    """``Name: value`` folded and RFC 2047-encoded as needed, CRLF-terminated."""
    return _POLICY.header_factory(name, one_line(value)).fold(policy=_POLICY).encode("ascii")


_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/^_`{|}~-]+)*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def to_header(address: str, name: str) -> bytes:
    """The To header. Plain ASCII names are written directly (the common case, fast);
    any other name is RFC 2047-encoded, folded at 78 octets."""
    name = one_line(name)
    if not name:
        line = f"To: {address}\r\n"
    elif "=?" in name:  # would be read as an encoded word: encode it instead
        line = ""
    elif _ATOMS.fullmatch(name):
        line = f"To: {name} <{address}>\r\n"
    elif _PRINTABLE.fullmatch(name):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        line = f'To: "{quoted}" <{address}>\r\n'
    else:
        line = ""
    if line and len(line) <= 80:
        return line.encode("ascii")
    # Not str(Address(...)) through the policy: its parser decodes anything that looks
    # like an encoded word, so a name spelled "=?utf-8?q?...?=" would not survive.
    words = Header(name, "utf-8", maxlinelen=78, header_name="To").encode(linesep="\r\n")
    last = words.rsplit("\r\n", 1)[-1]
    sep = " " if len(last) + len(address) + 3 <= 78 else "\r\n "
    return f"To: {words}{sep}<{address}>\r\n".encode("ascii")


def message_id(issue_id: str, address: str, domain: str) -> str:
    """The same Message-ID every time (issue, recipient) is sent: a message resent after
    a crash is recognisably the same message, and many receivers fold it."""
    digest = hashlib.sha256(f"{issue_id}\0{address.strip().lower()}".encode()).hexdigest()
    return f"<{digest[:32]}.{issue_id}@{domain}>"


# -- bodies ------------------------------------------------------------------------------

PERSONAL = ("unsubscribe_url", "name", "first_name", "email")
_ANY_TOKEN = re.compile("|".join(re.escape(token(n)) for n in PLACEHOLDERS))
_SPLIT = re.compile("(" + _ANY_TOKEN.pattern + ")")
_SOFT = b"=\r\n"  # a quoted-printable soft line break: decodes to nothing


def qp(text: str) -> bytes:
    """Quoted-printable (RFC 2045) with CRLF lines of at most 76 octets, ending in a line
    break so the next piece starts a fresh line (a soft break when the text does not end
    with one).

    A "." starting a line is written "=2E" (the same text once decoded), so no line of a
    composed message starts with a dot and SMTP needs no dot-stuffing pass over 60 KB per
    message (that scan alone costs as much as composing).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    out = out.replace(b"\r\n.", b"\r\n=2E")
    if out.startswith(b"."):  # every piece starts a line
        out = b"=2E" + out[1:]
    if out and not out.endswith(b"\r\n"):
        out += _SOFT
    return out


_Piece = bytes | str  # encoded fixed text, or the name of a personal field


def _pieces(body: str, *, html: bool, defaults: dict[str, str]) -> list[_Piece]:
    """Split a body at the personal tokens; encode the fixed text between them once."""
    out: list[_Piece] = []
    buf: list[str] = []
    for i, part in enumerate(_SPLIT.split(body)):
        if i % 2 == 0:
            buf.append(part)
            continue
        field = part[len("__digest_") : -2]
        if field in PERSONAL:
            out.append(qp("".join(buf)))
            out.append(field)
            buf = []
        else:  # not personal (web_url, postal_address): the same for everyone
            value = defaults.get(field, "")
            buf.append(_html.escape(value, quote=True) if html else value)
    out.append(qp("".join(buf)))
    return [p for p in out if p]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "newsletter"


@dataclass(frozen=True)
class Composed:
    message_id: str
    data: bytes  # the whole message, CRLF lines
    dot_safe: bool = True  # no line starts with "." (nothing to dot-stuff for SMTP)


class Composer:
    """Builds each recipient's message from one rendered issue."""

    def __init__(
        self,
        rendered: RenderedEmail,
        *,
        secret: str,
        from_email: str,
        from_name: str = "",
        reply_to: str = "",
        list_name: str = "",
        unsubscribe_url: str,
        unsubscribe_mailto: str = "",
        subject_prefix: str = "",
        random_ids: bool = False,
    ) -> None:
        if not secret:
            raise ValueError("Composer needs the unsubscribe secret")
        self.issue_id = rendered.issue_id
        self.secret = secret
        self.domain = from_email.rpartition("@")[2]
        self.random_ids = random_ids
        self.unsubscribe_base = unsubscribe_url.rstrip("/") + "/"
        if _CONTROL.search(self.unsubscribe_base) or re.search(r"[\s<>\"]", self.unsubscribe_base):
            raise ConfigError("config", [("unsubscribe.url", "must be a URL without spaces")])
        self.unsubscribe_tail = (
            f">,\r\n <mailto:{unsubscribe_mailto}?subject=unsubscribe>\r\n".encode("ascii")
            if unsubscribe_mailto
            else b">\r\n"
        )
        subject = subject_prefix + one_line(rendered.subject)
        list_id = f"{_slug(list_name or from_name)}.{self.domain}"
        head = [
            fold("From", str(Address(display_name=one_line(from_name), addr_spec=from_email))),
        ]
        if reply_to:
            head.append(fold("Reply-To", reply_to))
        head += [
            fold("Subject", subject),
            b"MIME-Version: 1.0\r\n",
            fold("List-Id", f"{one_line(list_name or from_name)} <{list_id}>"),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        ]
        # "=_" cannot occur in quoted-printable text, so the boundary never clashes.
        boundary = "=_digest_" + hashlib.sha256(rendered.html.encode("utf-8")).hexdigest()[:24]
        head.append(
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode()
        )
        self._head = b"".join(head)
        part = '--{b}\r\nContent-Type: text/{t}; charset="utf-8"\r\n'
        part += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        self._text_head = part.format(b=boundary, t="plain").encode()
        self._html_head = ("\r\n" + part.format(b=boundary, t="html")).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        defaults = dict(rendered.defaults)
        self._text = _pieces(rendered.text, html=False, defaults=defaults)
        self._html = _pieces(rendered.html, html=True, defaults=defaults)
        self._date_at = -1
        self._date = b""

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        rendered: RenderedEmail,
        secret: str,
        *,
        subject_prefix: str = "",
        random_ids: bool = False,
    ) -> Composer:
        return cls(
            rendered,
            secret=secret,
            from_email=cfg.sender.email,
            from_name=cfg.sender.name,
            reply_to=cfg.sender.reply_to,
            list_name=cfg.newsletter.name,
            unsubscribe_url=cfg.unsubscribe_url,
            unsubscribe_mailto=cfg.unsubscribe.mailto,
            subject_prefix=subject_prefix,
            random_ids=random_ids,
        )

    def unsubscribe_url(self, address: str) -> str:
        return self.unsubscribe_base + make_token(self.secret, address)

    def message_id(self, address: str) -> str:
        if self.random_ids:  # previews: never the Message-ID the real issue will have
            return make_msgid(idstring="preview", domain=self.domain)
        return message_id(self.issue_id, address, self.domain)

    def values(self, r: Recipient) -> dict[str, str]:
        name = one_line(r.name)
        first = one_line(r.first_name) or (name.split(" ", 1)[0] if name else "")
        return {
            "unsubscribe_url": self.unsubscribe_url(r.email),
            "name": name,
            "first_name": first,
            "email": r.email,
        }

    def compose(self, r: Recipient) -> Composed:
        if _CONTROL.search(r.email) or not r.email.isascii() or "@" not in r.email:
            raise ValueError(f"not a valid recipient address: {r.email!r}")
        values = self.values(r)
        now = int(time.time())
        if now != self._date_at:
            self._date_at, self._date = now, formatdate(now, usegmt=True).encode("ascii")
        mid = self.message_id(r.email)
        unsubscribe = values["unsubscribe_url"].encode("ascii")
        if len(unsubscribe) + 40 + len(self.unsubscribe_tail) > 998:
            raise ConfigError("config", [("unsubscribe.url", "too long for a header line")])
        text_values: dict[str, bytes] = {}
        html_values: dict[str, bytes] = {}
        parts = [
            b"Date: ",
            self._date,
            b"\r\nMessage-ID: ",
            mid.encode("ascii"),
            b"\r\n",
            to_header(r.email, values["name"]),
            b"List-Unsubscribe: <",
            unsubscribe,
            self.unsubscribe_tail,
            self._head,
            self._text_head,
        ]
        for piece in self._text:
            if isinstance(piece, bytes):
                parts.append(piece)
            else:
                v = text_values.get(piece)
                if v is None:
                    v = text_values[piece] = qp(values[piece])
                parts.append(v)
        parts.append(self._html_head)
        for piece in self._html:
            if isinstance(piece, bytes):
                parts.append(piece)
            else:
                v = html_values.get(piece)
                if v is None:
                    v = html_values[piece] = qp(_html.escape(values[piece], quote=True))
                parts.append(v)
        parts.append(self._tail)
        return Composed(mid, b"".join(parts))
