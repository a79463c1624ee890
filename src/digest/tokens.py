"""Secret + address -> an opaque signed token; and the one policy for that secret.

A token names a reader without showing the address: ``base64url(id) + "." +
base64url(MAC)``, where ``id`` is a keyed hash of the case-folded address (12 bytes of
HMAC-SHA256 under the secret) and the MAC (16 bytes) signs the id. The id is derived, not
stored, so composing a message needs no database round trip (~2 us a token); the ledger
keeps ``id -> address`` for every address mail went to (``remember``), and ``digest
serve`` resolves a token's id there. Tokens of the first format (the address itself,
base64url, with a 32-byte MAC) in mail already sent still verify.

Confirmation links (issue 16, double opt-in) are signed the same way under their own
context: ``make_confirm_token`` carries a random nonce (the id of that one confirmation
mail, which the ledger resolves) and an expiry time, never the address.

``secret_for`` decides, in one place, where the secret comes from for each use (a send, a
dry run, a preview, the web server), and refuses a secret too guessable to sign with.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from .errors import ConfigError
from .ledger import Ledger, address_key

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

MAX_TOKEN = 2000  # characters: longer is never ours (a signed address is at most ~400)
_TOKEN_CONTEXT = b"digest-unsubscribe-v1\0"  # so the key signs nothing else by accident
_ID_CONTEXT = b"digest-reader-id-v2\0"
_MAC_CONTEXT = b"digest-unsubscribe-v2\0"
ID_BYTES, MAC_BYTES = 12, 16  # 96-bit ids (no collision below ~10^14 readers), 128-bit MAC
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


@lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    # The key schedule once per secret; each token copies it (about half the cost).
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def keyed_mac(secret: str, data: bytes) -> bytes:
    h = _keyed(secret).copy()
    h.update(data)
    return h.digest()


def reader_id(secret: str, email: str) -> str:
    """The opaque id of an address under ``secret`` (base64url): stable, and no one
    without the secret can tell whose it is."""
    return _b64(keyed_mac(secret, _ID_CONTEXT + address_key(email).encode("utf-8"))[:ID_BYTES])


def make_token(secret: str, email: str) -> str:
    """An opaque, URL-safe token for ``email``: its id and a MAC, never the address.

    ``digest serve`` resolves the id in the ledger, so the address must be ``remember``-ed
    there before mail carrying the token goes out (sends and previews do this)."""
    if not secret:
        raise ValueError("an unsubscribe token needs a secret")
    rid = reader_id(secret, email)
    return f"{rid}.{_b64(keyed_mac(secret, _MAC_CONTEXT + rid.encode('ascii'))[:MAC_BYTES])}"


def remember(ledger: Ledger, secret: str, emails: Iterable[str]) -> None:
    """Record ``id -> address`` in the ledger for each address, so their tokens resolve."""
    ledger.remember_readers((reader_id(secret, e), e) for e in emails)


def read_token(
    secret: str | None, token: str, resolve: Callable[[str], str | None] | None = None
) -> str | None:
    """The address a token names, or None if it is malformed, was not signed by us, or
    (an opaque token) its id is unknown to ``resolve`` (id -> address, the ledger's)."""
    if not secret or not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        return None
    payload_text, dot, mac_text = token.partition(".")
    if not dot:
        return None
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        return None
    if len(payload) == ID_BYTES and len(mac) == MAC_BYTES:
        good = keyed_mac(secret, _MAC_CONTEXT + payload_text.encode("ascii"))[:MAC_BYTES]
        if not hmac.compare_digest(mac, good) or resolve is None:
            return None
        email = resolve(payload_text)
        # The id must still be this address's id: a row written under another secret
        # (or tampered with) names nobody.
        if email is None or not hmac.compare_digest(reader_id(secret, email), payload_text):
            return None
        return email
    # The first format (mail sent before tokens were opaque): the address, signed.
    if not hmac.compare_digest(mac, keyed_mac(secret, _TOKEN_CONTEXT + payload)):
        return None
    try:
        email = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return email if email and "@" in email else None


# --- confirmation links (issue 16) -------------------------------------------------------

_CONFIRM_CONTEXT = b"digest-confirm-v1\0"  # a confirm MAC never verifies as anything else
NONCE_BYTES = 16


def new_nonce() -> str:
    """The id of one confirmation mail (base64url, 128 random bits)."""
    return _b64(secrets.token_bytes(NONCE_BYTES))


def make_confirm_token(secret: str, nonce: str, expires: float) -> str:
    """A URL-safe token for the confirmation ``nonce`` that stops working at ``expires``
    (unix time): base64url(nonce + expiry) + "." + a MAC over it."""
    if not secret:
        raise ValueError("a confirmation token needs a secret")
    payload = _b64(_unb64(nonce) + int(expires).to_bytes(8, "big"))
    mac = keyed_mac(secret, _CONFIRM_CONTEXT + payload.encode("ascii"))[:MAC_BYTES]
    return f"{payload}.{_b64(mac)}"


def read_confirm_token(secret: str | None, token: str, now: float) -> tuple[str, str]:
    """("ok", nonce), ("expired", nonce) or ("bad", ""): a token that is malformed or
    not signed by us is "bad" whatever it says about time."""
    if not secret or not isinstance(token, str) or len(token) > MAX_TOKEN:
        return "bad", ""
    payload_text, dot, mac_text = token.partition(".")
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        return "bad", ""
    if not dot or len(payload) != NONCE_BYTES + 8 or len(mac) != MAC_BYTES:
        return "bad", ""
    good = keyed_mac(secret, _CONFIRM_CONTEXT + payload_text.encode("ascii"))[:MAC_BYTES]
    if not hmac.compare_digest(mac, good):
        return "bad", ""
    nonce = _b64(payload[:NONCE_BYTES])
    expires = int.from_bytes(payload[NONCE_BYTES:], "big")
    return ("expired" if now >= expires else "ok"), nonce


# --- how guessable a secret is ---------------------------------------------------------

MIN_SECRET_BITS = 80
SECRET_HOWTO = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def secret_bits(value: str) -> float:
    """A conservative estimate of a secret's entropy in bits.

    The smaller of two estimates: the characters that are not a repeat, a run
    (``aaaa``, ``abcd``) or a copy of an earlier stretch (``passwordpassword``), each worth
    the alphabet its character classes span; and the string's empirical Shannon entropy
    (with the Miller-Madow correction for short strings). ``secrets.token_urlsafe(16)``
    and ``token_hex(16)`` score 86+ and 104+; 16 spaces 0, ``password`` x4 38. Words
    from a dictionary are not recognised: use a generated secret.
    """
    n = len(value)
    if not n:
        return 0.0
    classes = [
        (26, lambda c: c.isascii() and c.islower()),
        (26, lambda c: c.isascii() and c.isupper()),
        (10, lambda c: c.isascii() and c.isdigit()),
        (33, lambda c: c.isascii() and not c.isalnum()),
        (100, lambda c: not c.isascii()),
    ]
    pool = sum(size for size, has in classes if any(has(c) for c in value))
    effective, i, step = 0, 0, None
    while i < n:
        copied = 0  # length of the longest earlier copy of value[i:]
        while i + copied < n and value.find(value[i : i + copied + 1], 0, i + copied) != -1:
            copied += 1
        if copied >= 3:
            effective, i, step = effective + 1, i + copied, None
            continue
        d = ord(value[i]) - ord(value[i - 1]) if i else None
        if d is None or not (d == 0 or (abs(d) == 1 and d == step)):
            effective += 1
        step, i = d, i + 1
    counts = collections.Counter(value).values()
    shannon = -sum(k * math.log2(k / n) for k in counts) + (len(counts) - 1) / (2 * math.log(2))
    return min(effective * math.log2(pool), shannon)


DEV_SECRET_NOTE = (
    "{env} is not set: unsubscribe links are signed with a development secret stored in "
    "the ledger ({where}). That is fine for the outbox and --dry-run; real SMTP sends "
    "refuse to start until {env} holds a secret."
)


def _policy(cfg: Config, ledger: Ledger | None, *, real: bool) -> str:
    """The secret that signs unsubscribe tokens.

    From the environment variable named by ``unsubscribe.secret_env``. Without it, a real
    (SMTP) send is refused; outbox sends, dry runs and ``digest serve`` during
    development use a random secret generated once and kept in the ledger file (so
    tokens written to the outbox still verify later), with a loud warning.
    """
    env = cfg.unsubscribe.secret_env
    value = cfg.unsubscribe.secret()
    if value:
        # The check is on its entropy, not its length (16 spaces are 16 characters). The
        # message never quotes the secret, not even in part.
        if secret_bits(value[:256]) < MIN_SECRET_BITS:
            raise ConfigError(
                cfg.source or "config",
                [("unsubscribe.secret_env", f"the secret in {env} is too easy to guess "
                  f"(about {secret_bits(value[:256]):.0f} bits of entropy; at least "
                  f"{MIN_SECRET_BITS} are needed: repeats, runs and short secrets are "
                  f"refused). Generate one with {SECRET_HOWTO} and export {env}=<it> (the "
                  "same for every send and for 'digest serve'; links in mail already "
                  "sent stop working when it changes)")],
            )  # fmt: skip
        return value
    if real:
        raise ConfigError(
            cfg.source or "config",
            [("unsubscribe.secret_env", f"the environment variable {env} is not set. Real "
              f"sends sign every unsubscribe link with it; create one with {SECRET_HOWTO} "
              f"and export {env}=<it> (keep it "
              "the same for every send and for 'digest serve')")],
        )  # fmt: skip
    stored = ledger.dev_secret() if ledger is not None else None
    where = str(ledger.path) if ledger is not None and stored else "this run only"
    log.warning(DEV_SECRET_NOTE.format(env=env or "unsubscribe.secret_env", where=where))
    return stored or secrets.token_urlsafe(32)


Purpose = Literal["send", "dry-run", "preview", "serve"]


def secret_for(cfg: Config, purpose: Purpose, ledger: Ledger | None = None) -> str:
    """The secret that signs (or checks) unsubscribe tokens for ``purpose``.

    Mail that really goes out (an SMTP send or preview, and ``digest serve`` answering
    its links) needs the secret from the environment. The outbox, dry runs and serving
    outbox mail use the development secret kept in the ledger (``ledger``, or the one at
    ``ledger.path``). ConfigError when the environment variable is needed and missing.
    """
    real = purpose != "dry-run" and cfg.delivery.transport == "smtp"
    if real or cfg.unsubscribe.secret() or ledger is not None or purpose == "dry-run":
        return _policy(cfg, ledger, real=real)
    with Ledger(cfg.ledger.path) as opened:
        return _policy(cfg, opened, real=False)
