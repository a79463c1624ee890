"""Bounces: a per-reader bounce address on every message, and ``digest bounces``.

VERP: each message's envelope sender (the Return-Path a bounce goes back to) is
``bounces+<token>@<domain>`` (``bounces.address``, ``bounces.delimiter``). The token is
``<issue>-<mac>``: the issue id and 80 bits of HMAC-SHA256 over (issue, address) under the
unsubscribe secret (a key of its own context, so a bounce token is never an unsubscribe
token). It names nobody to whoever reads it; ``digest bounces`` finds the reader by
computing the tokens of that issue's deliveries from the ledger. Lower case only: some
mail systems fold the case of local parts.

``digest bounces --maildir PATH`` (or ``--imap URL``) reads each message of the mailbox
the bounce address delivers to, and classifies it with flufl.bounce (GNU Mailman's
bounce detectors: RFC 3464 DSNs and the odd formats of many MTAs) plus the VERP token:

* the reader is the one the token names (a forwarding address that bounced still names
  the subscriber); without a valid token, the addresses flufl.bounce finds, if we
  mailed them (a forged bounce without a token cannot suppress arbitrary addresses);
* permanent failures are hard bounces: suppressed at once; temporary ones are soft:
  suppressed once ``bounces.soft_limit`` of them fall within ``bounces.soft_days``;
* the reason is the DSN's status code (RFC 3463) and diagnostic, when there is one.

Each bounce is recorded in the ledger once (by the message's hash), so reading a
message twice counts it once. Handled messages are moved to ``bounces.done_folder``;
what could not be classified (no failure found, or no reader we know) stays where it is
for a person to read. Auto-replies to the bounce address are moved and ignored.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import logging
import mailbox
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from .errors import ConfigError, DigestError
from .ledger import address_key
from .tokens import keyed_mac

if TYPE_CHECKING:
    from .config import Config
    from .ledger import Ledger

log = logging.getLogger(__name__)

_CONTEXT = b"digest-bounce-v1\0"  # so the unsubscribe key signs nothing else by accident
_MAC_CHARS = 16  # base32 characters: 80 bits
_TOKEN = re.compile(r"([a-z0-9-]+)-([a-z2-7]{16})")


class BounceError(DigestError):
    """The mailbox cannot be read or written (names it and what to do)."""


# -- VERP --------------------------------------------------------------------------------


# The suppression reasons a bounce records; ``roster`` tells bounced readers by them.
BOUNCE_REASONS = ("hard bounce", "soft bounces")


def hard_reason(detail: str) -> str:
    return f"{BOUNCE_REASONS[0]}: {detail}"


def soft_reason(count: int, days: float, detail: str) -> str:
    return f"{BOUNCE_REASONS[1]}: {count} in {days:g} days, last {detail}"


def bounce_token(secret: str, issue_id: str, address: str) -> str:
    """``<issue>-<mac>``: opaque, signed, lower case (see the module doc)."""
    issue = issue_id.lower()
    payload = _CONTEXT + issue.encode("utf-8") + b"\0" + address_key(address).encode("utf-8")
    mac = keyed_mac(secret, payload)
    return f"{issue}-{base64.b32encode(mac[:10]).decode('ascii').lower()}"


@dataclass(frozen=True)
class Verp:
    """The envelope sender of each reader's message."""

    secret: str
    local: str
    domain: str
    delimiter: str
    issue_id: str
    tokens: bool = True  # False: the plain bounce address for everyone

    def address(self, email: str) -> str:
        if not self.tokens:
            return f"{self.local}@{self.domain}"
        token = bounce_token(self.secret, self.issue_id, email)
        return f"{self.local}{self.delimiter}{token}@{self.domain}"

    def pattern(self) -> re.Pattern[str]:
        """Finds this mailbox's VERP addresses in a bounce; group 1 is the token."""
        return re.compile(
            rf"(?<![\w.+-]){re.escape(self.local)}{re.escape(self.delimiter)}"
            rf"([a-z0-9-]+-[a-z2-7]{{{_MAC_CHARS}}})@{re.escape(self.domain)}(?![\w-])",
            re.IGNORECASE,
        )


def bounce_base(cfg: Config) -> tuple[str, str]:
    """(local part, domain) of the bounce address."""
    address = cfg.bounces.address or f"bounces@{cfg.sender.email.rpartition('@')[2]}"
    local, _, domain = address.rpartition("@")
    return local, domain.lower()


def verp_for(cfg: Config, secret: str, issue_id: str) -> Verp | None:
    """The bounce addresses of an issue's messages (None: the envelope sender stays
    ``sender.email``, as with ``verp = false`` and no ``bounces.address``)."""
    b = cfg.bounces
    if not b.verp and not b.address:
        return None
    local, domain = bounce_base(cfg)
    verp = Verp(secret, local, domain, b.delimiter, issue_id, tokens=b.verp)
    longest = verp.address("x@example.com").rpartition("@")[0]
    if len(longest) > 64:
        raise ConfigError(
            cfg.source or "config",
            [("bounces.address", f"the local part with its token ({longest!r}) is longer "
              "than the 64 characters mail allows; use a shorter local part")],
        )  # fmt: skip
    return verp


class Readers:
    """Token -> (issue, address), computed from the ledger's deliveries, one issue at a
    time and only when a bounce names it."""

    def __init__(self, ledger: Ledger, secret: str) -> None:
        self.ledger = ledger
        self.secret = secret
        self._issues = {i[0].lower(): i[0] for i in ledger.listed()}  # ids, not the HTML
        self._tokens: dict[str, tuple[str, str]] = {}
        self._done: set[str] = set()

    def find(self, token: str) -> tuple[str, str] | None:
        m = _TOKEN.fullmatch(token.lower())
        if m is None:
            return None
        issue = self._issues.get(m.group(1))
        if issue is None:
            return None
        if issue not in self._done:
            self._done.add(issue)
            for _key, address in list(self.ledger.recipients(issue)):
                self._tokens[bounce_token(self.secret, issue, address)] = (issue, address)
        return self._tokens.get(token.lower())


# -- classification ------------------------------------------------------------------------

Kind = Literal["hard", "soft", "auto-reply", "unrecognised"]

# RFC 3463 enhanced status codes: what a reader of the report needs to tell them apart.
_STATUS = {
    "1.1": "no such mailbox",
    "1.2": "no such domain",
    "1.3": "bad address syntax",
    "1.6": "mailbox moved",
    "1.10": "no such domain (null MX)",
    "2.1": "mailbox disabled",
    "2.2": "mailbox full",
    "2.3": "message too big for the mailbox",
    "3.4": "message too big",
    "4.1": "no answer from the host",
    "4.2": "connection dropped",
    "4.4": "unable to route",
    "4.6": "routing loop",
    "4.7": "delivery time expired",
    "7.1": "refused by policy (blocked, spam)",
    "7.25": "reverse DNS check failed",
    "7.26": "authentication (SPF/DKIM/DMARC) failed",
}
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"\b([45]\d\d)[ -](?!\d)")
_ORIGINAL_ID = re.compile(rb"<[0-9a-f]{32}\.([A-Za-z0-9-]+)@")
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str
    readers: tuple[tuple[str, str | None], ...] = ()  # (address, issue id or None)
    via: str = ""  # "verp" or "flufl.bounce": how the reader was found
    unknown: tuple[str, ...] = ()  # failing addresses found that we never mailed


def _status(msg: Message) -> tuple[str, str]:
    """(enhanced status code, diagnostic) from the DSN, or from the text."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload[1:] if isinstance(payload, list) else []
        for block in blocks:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            if action in ("failed", "delayed") or not action:
                code = str(block.get("Status", "")).strip()
                diag = " ".join(str(block.get("Diagnostic-Code", "")).split())
                if code:
                    return code.split()[0], diag.partition(";")[2].strip() or diag
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        try:
            text = part.get_payload(decode=True) or b""
        except Exception:  # a broken transfer encoding: nothing to read there
            continue
        body = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        m = _ENHANCED.search(body)
        if m:
            return m.group(0), ""
        m = _REPLY.search(body)
        if m:
            return m.group(1), ""
        break  # the first text part is the human-readable report
    return "", ""


def describe(code: str, diagnostic: str = "") -> str:
    """A short reason: ``5.1.1 no such mailbox``."""
    m = _ENHANCED.fullmatch(code)
    if m:
        what = _STATUS.get(f"{m.group(2)}.{m.group(3)}", "")
        what = what or ("temporary failure" if m.group(1) == "4" else "permanent failure")
        return f"{code} {what}"
    if code:
        return f"{code} {'temporary' if code.startswith('4') else 'permanent'} failure"
    return "no status code in the bounce"


def _auto_reply(msg: Message) -> bool:
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    return (
        auto.startswith("auto-replied")
        or precedence == "auto_reply"
        or "X-Autoreply" in msg
        or "X-Autorespond" in msg
    )


def _looks_like_bounce(msg: Message) -> bool:
    if msg.get_content_type() == "multipart/report":
        return True
    return bool(_BOUNCE_FROM.search(str(msg.get("From", ""))))


def classify(raw: bytes, verp: Verp | None, readers: Readers | None, ledger: Ledger) -> Verdict:
    """What one message in the bounce mailbox says, and about whom."""
    from flufl.bounce import all_failures

    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    code, diagnostic = _status(msg)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over a malformed message: no verdict from it
        log.debug("flufl.bounce failed on a message", exc_info=True)
        temporary, permanent = frozenset(), frozenset()
    kind: Kind
    if permanent:
        kind = "hard"
    elif temporary:
        kind = "soft"
    elif _auto_reply(msg):
        return Verdict("auto-reply", "auto-reply (ignored)")
    elif _looks_like_bounce(msg) and code[:1] in ("4", "5"):
        kind = "hard" if code.startswith("5") else "soft"  # found by its status code alone
    else:
        return Verdict("unrecognised", "not recognised as a bounce (left in the mailbox)")
    reason = describe(code, diagnostic)
    # The reader: the VERP token, when it is one of ours...
    if verp is not None and readers is not None:
        for m in verp.pattern().finditer(raw.decode("latin-1")):
            found = readers.find(m.group(1))
            if found is not None:
                issue, address = found
                return Verdict(kind, reason, ((address, issue),), via="verp")
    # ...else what flufl.bounce found, if we mailed that address.
    ids = _ORIGINAL_ID.search(raw)
    issue_of_message = ids.group(1).decode("ascii") if ids else None
    if issue_of_message and ledger.issue(issue_of_message) is None:
        issue_of_message = None  # not one of ours
    known: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    for b in sorted(permanent | temporary):
        address = b.decode("utf-8", "replace").strip().strip("<>")
        last = ledger.last_issue_sent_to(address)
        if last is None:
            unknown.append(address)
            continue
        known.append((address, issue_of_message or last))
    return Verdict(kind, reason, tuple(known), via="flufl.bounce", unknown=tuple(unknown))


# -- applying ------------------------------------------------------------------------------


@dataclass
class BounceReport:
    read: int = 0
    handled: int = 0  # moved to the done folder
    left: int = 0  # left in the mailbox: unrecognised, or no reader we know
    hard: int = 0  # bounces recorded, per kind
    soft: int = 0
    repeated: int = 0  # bounces recorded in an earlier run (the same message)
    suppressed: list[tuple[str, str]] = field(default_factory=list)  # (address, why)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, reason)
    unknown: list[str] = field(default_factory=list)  # failing addresses never mailed


def apply(
    ledger: Ledger, verdict: Verdict, source: str, cfg: Config, now: float, report: BounceReport
) -> bool:
    """Record a verdict; suppress as the settings say. True if the message was handled."""
    report.reasons[(verdict.kind, verdict.reason)] += 1
    report.unknown.extend(verdict.unknown)
    if verdict.kind == "auto-reply":
        return True
    if verdict.kind == "unrecognised" or not verdict.readers:
        return False
    for address, issue in verdict.readers:
        if not ledger.record_bounce(source, address, issue, verdict.kind, verdict.reason, now):
            report.repeated += 1
            continue
        if verdict.kind == "hard":
            report.hard += 1
            why = hard_reason(verdict.reason)
        else:
            report.soft += 1
            days, limit = cfg.bounces.soft_days, cfg.bounces.soft_limit
            n = ledger.soft_bounces(address, now - days * 86400)
            if n < limit:
                continue
            why = soft_reason(n, days, verdict.reason)
        if not ledger.is_suppressed(address):
            ledger.suppress(address, reason=why)
            report.suppressed.append((address, why))
    return True


# -- mailboxes ----------------------------------------------------------------------------


class Mailbox:
    """Messages to read, and a way to move one out of the way once handled."""

    def messages(self) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def move(self, key: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MaildirBox(Mailbox):
    """A Maildir (new/ and cur/); handled messages move to its ``.<done_folder>`` folder
    (Maildir++, as Dovecot and Courier show sub-folders)."""

    def __init__(self, path: Path, done: str) -> None:
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise BounceError(
                f"{path} is not a Maildir (no new/ and cur/ folders); give the folder the "
                "bounce address delivers to (--maildir or bounces.maildir)"
            )
        self.path = path
        self.box = mailbox.Maildir(path, factory=None, create=False)
        self.done_name = done
        self._done: mailbox.Maildir | None = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.box.keys()):
            try:
                yield key, self.box.get_bytes(key)
            except KeyError:  # taken by another reader meanwhile
                continue

    def move(self, key: str) -> None:
        try:
            if self._done is None:
                self._done = self.box.add_folder(self.done_name)
            # Added first, then removed: a crash in between leaves a copy that is counted
            # once anyway (the ledger knows the message), never a lost bounce.
            self._done.add(self.box.get_bytes(key))
            self.box.remove(key)
        except OSError as exc:
            raise BounceError(f"cannot move a message out of {self.path}: {exc}") from None


class ImapBox(Mailbox):
    """An IMAP folder (imaplib). ``imaps://user@host[:port]/FOLDER`` (TLS) or
    ``imap://...`` (STARTTLS); the password from ``bounces.imap_password_env``.
    Handled messages are moved (MOVE, else COPY + \\Deleted + EXPUNGE) to the done folder.
    Tested against Dovecot (tests/imap_server.py); the COPY path has met no server."""

    def __init__(self, url: str, password: str | None, done: str, timeout: float = 30) -> None:
        import imaplib
        import ssl

        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise BounceError(
                f"--imap {url!r}: use imaps://USER@HOST/FOLDER (or imap:// for STARTTLS)"
            )
        if not parts.username:
            raise BounceError(f"--imap {url!r}: name the user, imaps://USER@HOST/FOLDER")
        if not password:
            raise BounceError(
                "no IMAP password: set the environment variable named by "
                "bounces.imap_password_env (DIGEST_IMAP_PASSWORD by default)"
            )
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.done = done
        ctx = ssl.create_default_context()
        where = f"{parts.hostname}:{parts.port or (993 if parts.scheme == 'imaps' else 143)}"
        try:
            if parts.scheme == "imaps":
                self.imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    parts.hostname, parts.port or 993, ssl_context=ctx, timeout=timeout
                )
            else:
                self.imap = imaplib.IMAP4(parts.hostname, parts.port or 143, timeout=timeout)
                self.imap.starttls(ssl_context=ctx)
            self.imap.login(unquote(parts.username), password)
            typ, _ = self.imap.select(self._quote(self.folder))
            if typ != "OK":
                raise BounceError(f"IMAP {where}: no folder {self.folder!r}")
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise BounceError(f"IMAP {where}: {exc}") from None
        self._moved = False

    @staticmethod
    def _quote(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def messages(self) -> Iterator[tuple[str, bytes]]:
        typ, data = self.imap.uid("SEARCH", "ALL")
        uids = data[0].split() if typ == "OK" and data and data[0] else []
        for uid in uids:
            typ, fetched = self.imap.uid("FETCH", uid, "(BODY.PEEK[])")
            for item in fetched or ():
                if isinstance(item, tuple):
                    yield uid.decode("ascii"), item[1]
                    break

    def move(self, key: str) -> None:
        done = self._quote(self.done)
        self.imap.create(done)  # fails harmlessly when it exists
        if "MOVE" in self.imap.capabilities:  # RFC 6851
            self.imap.uid("MOVE", key, done)
        else:
            self.imap.uid("COPY", key, done)
            self.imap.uid("STORE", key, "+FLAGS.SILENT", r"(\Deleted)")
        self._moved = True

    def close(self) -> None:
        try:
            if self._moved:
                self.imap.expunge()
            self.imap.logout()
        except Exception:  # closing: nothing left to save
            log.debug("IMAP logout failed", exc_info=True)


def process(
    cfg: Config,
    box: Mailbox,
    secret: str | None = None,
    *,
    now: float | None = None,
) -> BounceReport:
    """Read every message of ``box``, record and apply the bounces, move what was handled.
    ``secret``: the one the sends signed the tokens with (by default, as a send finds it)."""
    from .ledger import Ledger
    from .tokens import secret_for

    report = BounceReport()
    now = time.time() if now is None else now
    local, domain = bounce_base(cfg)
    with Ledger(cfg.ledger.path) as ledger:
        if secret is None:
            secret = secret_for(cfg, "send", ledger)
        verp = Verp(secret, local, domain, cfg.bounces.delimiter, "")
        readers = Readers(ledger, secret)
        for key, raw in box.messages():
            report.read += 1
            verdict = classify(raw, verp, readers, ledger)
            source = hashlib.sha256(raw).hexdigest()
            if apply(ledger, verdict, source, cfg, now, report):
                box.move(key)
                report.handled += 1
            else:
                report.left += 1
    return report


def open_mailbox(cfg: Config, maildir: Path | None, imap: str | None) -> Mailbox:
    if maildir and imap:
        raise ConfigError("--maildir", [("--maildir", "--maildir and --imap exclude each other")])
    if imap or (not maildir and cfg.bounces.imap_url):
        import os

        env = cfg.bounces.imap_password_env
        password = os.environ.get(env) if env else None
        return ImapBox(imap or cfg.bounces.imap_url, password, cfg.bounces.done_folder)
    path = maildir or cfg.bounces.maildir
    if path is None:
        raise ConfigError(
            cfg.source or "config",
            [("bounces.maildir", "no mailbox to read: pass --maildir PATH or --imap URL, or "
              "set bounces.maildir")],
        )  # fmt: skip
    return MaildirBox(Path(path), cfg.bounces.done_folder)


def run(cfg: Config, maildir: Path | None = None, imap: str | None = None) -> BounceReport:
    """``digest bounces``: the mailbox from the options or the config."""
    box = open_mailbox(cfg, maildir, imap)
    try:
        return process(cfg, box)
    finally:
        box.close()
