"""Secret + address -> a signed, URL-safe token; and the one policy for that secret.

``make_token``/``read_token`` sign an address with HMAC-SHA256 under a secret from the
environment; the unsubscribe link in the header and in the body carry the same token,
and ``digest serve`` reads it back. ``secret_for`` decides, in one place, where the
secret comes from for each use (a send, a dry run, a preview, the web server).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from typing import TYPE_CHECKING, Literal

from .errors import ConfigError
from .ledger import Ledger

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

MAX_TOKEN = 2000  # characters: longer is never ours (a signed address is at most ~400)
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


def read_token(secret: str | None, token: str) -> str | None:
    """The address a token names, or None if it is malformed or was not signed by us."""
    if not secret or not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
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
