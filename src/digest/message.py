"""``RenderedEmail`` + ``Recipient`` -> the bytes of one email.

The issue is rendered once. ``Composer`` encodes the fixed parts once per issue (headers
folded, both bodies quoted-printable) and per recipient only encodes and splices in the
few personal fields (unsubscribe link, name, first name, address) and four headers (To,
Date, Message-ID, List-Unsubscribe). That keeps a 60 KB issue at tens of microseconds per
message, where building an ``EmailMessage`` per recipient costs milliseconds.

Safety: every header value is made one line (CR, LF and other control characters become
spaces) and then encoded here, never handed to the email package's header parser: that
parser decodes RFC 2047 encoded words, so a title spelled ``=?utf-8?q?Hi=0D=0ABcc:...?=``
would come out as a real line break and header (Python before 3.11.10/3.12.5,
CVE-2024-6923). Printable ASCII is folded at spaces as it is; anything else, including
text that merely looks like an encoded word, becomes encoded words (``email.header``'s
encoder, which only encodes). The finished header block is checked line by line (every
line a field or a continuation starting with a space; no bare CR or LF; at most 998
octets). Lines are CRLF and at most 78 octets, except List-Unsubscribe, which stays
unfolded (folding breaks the URL in some clients).

SMTP needs no dot-stuffing pass over the body (see ``qp``), and that is verified, not
assumed: each fixed piece is checked once per issue, each personal piece per message,
and ``Composed.dot_safe`` is only true when every piece passed.

Unsubscribe links carry a signed token (``tokens``).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import html as _html
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from .errors import ConfigError
from .model import PLACEHOLDERS, Recipient, RenderedEmail, token
from .text import ascii_url, one_line  # header values: control characters become spaces
from .tokens import make_token

if TYPE_CHECKING:
    from .bounces import Verp
    from .config import Config
    from .signing import Signer

log = logging.getLogger(__name__)

# -- recipients and headers --------------------------------------------------------------


_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/^_`{|}~-]+)*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
# An address as written into a header: an ASCII dot-atom local part and a host name (what
# the subscriber list and the config produce); nothing that could end or add a field.
_HOST = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@" + _HOST)
_LIST_ID = re.compile(_HOST)
_HEADER_LINE = re.compile(rb"[!-9;-~]+:[\t -~]*|[ \t][\t -~]*[!-~][\t -~]*")


def _encoded_words(field: str, value: str) -> str:
    # email.header.Header only encodes (it never parses its input), unlike the policy's
    # header_factory: an encoded word in the value stays text.
    return Header(value, "utf-8", maxlinelen=78, header_name=field).encode(linesep="\r\n")


def _fold_ascii(used: int, value: str) -> str | None:
    """Printable ASCII folded at spaces into lines of at most 78 octets (None if a word is
    too long for a line of 998)."""
    words = value.split(" ")
    out, width = words[0], used + len(words[0])
    longest = width
    for word in words[1:]:
        if width + 1 + len(word) > 78:
            out += "\r\n " + word
            width = 1 + len(word)
        else:
            out += " " + word
            width += 1 + len(word)
        longest = max(longest, width)
    return out if longest <= 998 else None


def fold_header(name: str, value: str) -> bytes:
    """``Name: value`` for an unstructured field (Subject...), CRLF-terminated: printable
    ASCII folded as is, anything else (or anything containing "=?") as encoded words."""
    value = one_line(value)
    folded = None
    if _PRINTABLE.fullmatch(value) and "=?" not in value:
        folded = _fold_ascii(len(name) + 2, value)
    if folded is None:
        folded = _encoded_words(name, value)
    return f"{name}: {folded}\r\n".encode("ascii")


def address_header(field: str, address: str, name: str = "", *, angle: bool = False) -> bytes:
    """``Field: name <address>``: plain ASCII names are written directly (the common case,
    fast); any other name is RFC 2047-encoded, folded at 78 octets. ``angle``: a List-Id
    (a dotted id, in angle brackets even without a name)."""
    if not (_LIST_ID if angle else _ADDRESS).fullmatch(address):
        raise ValueError(f"not an address we can write into a header: {address!r}")
    name = one_line(name)
    if not name:
        return (f"{field}: <{address}>\r\n" if angle else f"{field}: {address}\r\n").encode()
    line = ""
    plain = "=?" not in name  # else it would be read as an encoded word: encode it
    if plain and _ATOMS.fullmatch(name):
        line = f"{field}: {name} <{address}>\r\n"
    elif plain and _PRINTABLE.fullmatch(name):
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        line = f'{field}: "{quoted}" <{address}>\r\n'
    if line and len(line) <= 80:
        return line.encode("ascii")
    words = _encoded_words(field, name)
    last = words.rsplit("\r\n", 1)[-1]
    sep = " " if len(last) + len(address) + 3 <= 78 else "\r\n "
    return f"{field}: {words}{sep}<{address}>\r\n".encode("ascii")


def to_header(address: str, name: str) -> bytes:
    """The To header (see ``address_header``)."""
    return address_header("To", address, name)


def check_header_block(block: bytes) -> None:
    """Raise ValueError unless ``block`` is header fields only: CRLF-terminated lines of
    printable ASCII, each a ``Name: value`` field or a continuation starting with a space
    or tab, at most 998 octets, no bare CR or LF, no empty line."""
    if not block.endswith(b"\r\n"):
        raise ValueError("a header block ends with CRLF")
    lines = block[:-2].split(b"\r\n")
    if lines[0][:1] in (b" ", b"\t"):
        raise ValueError("a header block cannot start with a continuation line")
    for line in lines:
        if len(line) > 998 or not _HEADER_LINE.fullmatch(line):
            raise ValueError(f"not a header line: {line[:80]!r}")


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


def line_safe(piece: bytes) -> bool:
    """Whether ``piece`` may follow a line break anywhere in SMTP DATA without dot-stuffing:
    empty, or whole CRLF lines (no bare CR or LF) of which none starts with "."."""
    if not piece:
        return True
    return (
        piece.endswith(b"\r\n")
        and not piece.startswith(b".")
        and b"\r\n." not in piece
        and piece.count(b"\r") == piece.count(b"\n") == piece.count(b"\r\n")
    )


MAX_ADDRESS = 254  # octets in an address (RFC 5321 4.5.3.1.3 path less the brackets)


def _unsubscribe_base(url: str) -> str:
    """The unsubscribe URL with a trailing "/", in ASCII (it goes into a header as is)."""
    try:
        base = ascii_url(url.rstrip("/")) + "/"
    except ValueError as exc:
        raise ConfigError("config", [("unsubscribe.url", str(exc))]) from None
    if not base.isprintable() or re.search(r"[\s<>\"]", base) or not base.isascii():
        raise ConfigError("config", [("unsubscribe.url", "must be a URL without spaces")])
    if not base.lower().startswith("https://"):
        log.warning(
            "the unsubscribe link %s is not https: one-click unsubscribe (RFC 8058) needs "
            "https, and Gmail and Yahoo ignore it otherwise; set unsubscribe.url or make "
            "newsletter.base_url https",
            base,
        )
    return base


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "newsletter"


def _qp_html(value: str) -> bytes:
    return qp(_html.escape(value, quote=True))


def _splice(
    out: list[bytes],
    pieces: list[_Piece],
    values: dict[str, str],
    encode: Callable[[str], bytes],
) -> bool:
    """Append ``pieces`` to ``out``, each personal field (a str: its name) encoded once.
    Whether every encoded value is line-safe (no dot-stuffing needed)."""
    safe = True
    encoded: dict[str, bytes] = {}
    for piece in pieces:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        v = encoded.get(piece)
        if v is None:
            v = encoded[piece] = encode(values[piece])
            safe = safe and line_safe(v)
        out.append(v)
    return safe


@dataclass(frozen=True)
class Composed:
    message_id: str
    data: bytes  # the whole message, CRLF lines
    # Verified: CRLF lines only and none starts with "." (SMTP needs no dot-stuffing pass).
    # False unless the Composer checked every piece: the transport then stuffs.
    dot_safe: bool = False
    sender: str = ""  # the envelope sender (VERP bounce address); "" = sender.email


def _config_header(key: str, field: str, build: Callable[..., bytes], *args: str) -> bytes:
    """``build(field, *args)``, checked; a ConfigError naming ``key`` when mail cannot
    carry it (a List-Id line over 998 octets from a 1,200-character name, say)."""
    try:
        header = build(field, *args)
        longest = max(len(line) for line in header.split(b"\r\n"))
        why = f"a line of {longest:,} octets, more than the 998 mail allows"
        if longest <= 998:
            why = ""
            check_header_block(header)
    except ValueError as exc:
        why = str(exc)
    if not why:
        return header
    raise ConfigError("config", [(key, f"cannot be written into the {field} header: {why}; "
        "shorten it")])  # fmt: skip


def date_value(ts: float) -> str:
    """The Date field's value: a numeric zone (RFC 5322 3.3), since "GMT" is obsolete
    syntax that spam filters score."""
    return formatdate(ts, usegmt=True).removesuffix("GMT") + "+0000"


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
        feedback_id: str = "",
    ) -> None:
        if not secret:
            raise ValueError("Composer needs the unsubscribe secret")
        for key, value in (
            ("sender.email", from_email),
            ("sender.reply_to", reply_to),
            ("unsubscribe.mailto", unsubscribe_mailto),
        ):
            if value and not _ADDRESS.fullmatch(value):
                raise ConfigError("config", [(key, f"{value!r} cannot be written into a "
                    "header; use a plain ASCII address (a domain in its xn-- form)")])  # fmt: skip
        self.issue_id = rendered.issue_id
        self.secret = secret
        self.domain = from_email.rpartition("@")[2]
        self.random_ids = random_ids
        self.unsubscribe_base = _unsubscribe_base(unsubscribe_url)
        self.unsubscribe_tail = (
            f">,\r\n <mailto:{unsubscribe_mailto}?subject=unsubscribe>\r\n".encode("ascii")
            if unsubscribe_mailto
            else b">\r\n"
        )
        # Fail here, before anything is frozen or sent, if a token would not fit (tokens
        # are opaque and all the same length; the longest address is tried all the same).
        first, _, second = self._list_unsubscribe("x" * MAX_ADDRESS).partition(b"\r\n")
        if len(first) > 998 or len(second) > 1000:
            room = 998 - (len(first) - len(self.unsubscribe_base))
            key, why = ("unsubscribe.url", f"too long: with a token the List-Unsubscribe "
                f"header line would be "
                f"{len(first)} octets, more than the 998 mail allows; use a URL of at most "
                f"{room - 1} characters")  # fmt: skip
            if len(first) <= 998:
                key, why = "unsubscribe.mailto", "too long for a header line"
            raise ConfigError("config", [(key, why)])
        subject = subject_prefix + one_line(rendered.subject)
        list_id = f"{_slug(list_name or from_name)}.{self.domain}"
        # "=_" cannot occur in quoted-printable text, so the boundary never clashes.
        boundary = "=_digest_" + hashlib.sha256(rendered.html.encode("utf-8")).hexdigest()[:24]
        # Each header is built and checked with the config key it comes from, so one that
        # mail cannot carry is a ConfigError naming that key, before anything is frozen.
        head = [
            _config_header("sender.name", "From", address_header, from_email, from_name),
            _config_header("sender.reply_to", "Reply-To", address_header, reply_to)
            if reply_to
            else b"",
        ]
        if feedback_id:
            # Gmail's Feedback-ID ("campaign:customer:type:sender"): ASCII, one line.
            value = feedback_id.replace("{issue}", rendered.issue_id)
            if not re.fullmatch(r"[!-~]+(?: [!-~]+)*", value) or len(value) > 200:
                raise ConfigError("config", [("sender.feedback_id", f"{feedback_id!r} "
                    "cannot be a header: use up to 200 printable ASCII characters, like "
                    "'{issue}:weekly:newsletter'")])  # fmt: skip
            head.append(f"Feedback-ID: {value}\r\n".encode("ascii"))
        head += [
            _config_header("newsletter.subject", "Subject", fold_header, subject),
            b"MIME-Version: 1.0\r\n",
            _config_header(
                "newsletter.name" if list_name else "sender.name",
                "List-Id",
                functools.partial(address_header, angle=True),
                list_id,
                list_name or from_name,
            ),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
        ]
        self._head = b"".join(head)
        check_header_block(self._head)
        self._head += b"\r\n"
        part = '--{b}\r\nContent-Type: text/{t}; charset="utf-8"\r\n'
        part += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        self._text_head = part.format(b=boundary, t="plain").encode()
        self._html_head = ("\r\n" + part.format(b=boundary, t="html")).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        defaults = dict(rendered.defaults)
        self._text = _pieces(rendered.text, html=False, defaults=defaults)
        self._html = _pieces(rendered.html, html=True, defaults=defaults)
        fixed = [self._head, self._text_head, self._html_head, self._tail]
        fixed += [p for p in (*self._text, *self._html) if isinstance(p, bytes)]
        self._dot_safe = all(line_safe(p) for p in fixed)  # once per issue
        self._date_at = -1
        self._date = b""
        # Set by from_config: the per-reader bounce address (bounces.py) and the DKIM
        # signer (signing.py); both None for a Composer built without a config.
        self.verp: Verp | None = None
        self.signer: Signer | None = None

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
        try:
            composer = cls(
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
                feedback_id=cfg.sender.feedback_id,
            )
        except ConfigError as exc:  # name the config file
            raise ConfigError(cfg.source or "config", exc.problems) from None
        from .bounces import verp_for
        from .signing import check_signer, signer_for

        composer.verp = verp_for(cfg, secret, rendered.issue_id)
        composer.signer = signer_for(cfg, composer._head)
        if composer.signer is not None:  # before anything is frozen or sent
            check_signer(cfg, composer.signer, composer.compose(Recipient(cfg.sender.email)))
        return composer

    def _list_unsubscribe(self, address: str) -> bytes:
        url = self.unsubscribe_url(address).encode("ascii")
        return b"List-Unsubscribe: <" + url + self.unsubscribe_tail

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
        if not _ADDRESS.fullmatch(r.email):
            raise ValueError(f"not a valid recipient address: {r.email!r}")
        values = self.values(r)
        now = int(time.time())
        if now != self._date_at:
            self._date_at, self._date = now, date_value(now).encode("ascii")
        mid = self.message_id(r.email)
        personal = b"".join(
            [
                b"Date: ",
                self._date,
                b"\r\nMessage-ID: ",
                mid.encode("ascii"),
                b"\r\n",
                to_header(r.email, values["name"]),
                b"List-Unsubscribe: <",
                values["unsubscribe_url"].encode("ascii"),
                self.unsubscribe_tail,
            ]
        )
        check_header_block(personal)  # ValueError: this recipient's message is not sent
        parts = [personal, self._head, self._text_head]
        safe = _splice(parts, self._text, values, qp) and self._dot_safe
        parts.append(self._html_head)
        safe = _splice(parts, self._html, values, _qp_html) and safe
        parts.append(self._tail)
        data = b"".join(parts)
        if self.signer is not None:  # header lines: starting with a letter or a space
            body = memoryview(data)[len(personal) + len(self._head) :]
            data = self.signer.sign(personal, body) + data
        sender = self.verp.address(r.email) if self.verp is not None else ""
        return Composed(mid, data, dot_safe=safe, sender=sender)


# -- the confirmation mail of a signup (issue 16) -----------------------------------------


def confirmation_message(
    *,
    from_email: str,
    from_name: str,
    to_email: str,
    to_name: str,
    subject: str,
    text: str,
) -> Composed:
    """A small plain-text message (the double opt-in mail). Every header goes through
    the same encoders as an issue's (``address_header``, ``fold_header``) and the block
    is checked, so a name typed into the form ("Ann\\r\\nBcc: ...") stays text."""
    if not _ADDRESS.fullmatch(to_email):
        raise ValueError(f"not a valid recipient address: {to_email!r}")
    domain = from_email.rpartition("@")[2]
    mid = make_msgid(idstring="confirm", domain=domain)
    date = date_value(time.time())
    head = b"".join(
        [
            f"Date: {date}\r\nMessage-ID: {mid}\r\n".encode("ascii"),
            address_header("From", from_email, from_name),
            to_header(to_email, to_name),
            fold_header("Subject", subject),
            b"MIME-Version: 1.0\r\n",
            # RFC 3834: mailed by a program; auto-responders do not answer it.
            b"Auto-Submitted: auto-generated\r\n",
            b'Content-Type: text/plain; charset="utf-8"\r\n',
            b"Content-Transfer-Encoding: quoted-printable\r\n",
        ]
    )
    check_header_block(head)
    body = qp(text)
    return Composed(mid, head + b"\r\n" + body, dot_safe=line_safe(body))
