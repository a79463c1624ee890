"""A signup from the form -> a pending reader and a confirmation mail; a confirmation
link -> an active reader (double opt-in, issue 16).

``request`` records the pending signup in the ledger (with its consent record: when,
from where) and mails a confirmation through the configured transport (the outbox by
default) with a signed link that expires (``tokens.make_confirm_token``). ``confirm``
turns the link's nonce into an active reader, whom the next send mails
(``sending._queue`` reads active signups after the CSV list). ``RateLimit`` bounds how
often one key (an address, a client) may ask, in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Literal

from . import delivery
from .config import Config
from .errors import DigestError
from .ledger import SIGNUP_ACTIVE, Ledger
from .message import Composed, confirmation_message
from .subscribers import MAX_NAME, InvalidAddress, normalize
from .text import one_line
from .tokens import make_confirm_token, new_nonce, read_confirm_token

log = logging.getLogger(__name__)

_LANG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")

__all__ = ["InvalidAddress", "RateLimit", "Signup", "confirm", "peek", "request"]


class RateLimit:
    """At most ``per_hour`` events per key in any hour, in this process's memory.

    Bounded: at most ``max_keys`` keys are remembered (the least recently seen are
    forgotten first), each with at most ``per_hour`` times, so memory stays under a few
    MB whatever arrives. A restart forgets every count (README, "Signup form")."""

    def __init__(self, per_hour: int, *, max_keys: int = 10_000, window: float = 3600.0):
        self.per_hour, self.max_keys, self.window = per_hour, max_keys, window
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count one event for ``key``; False (and not counted) if over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.pop(key, None) or deque(maxlen=self.per_hour)
            while times and now - times[0] >= self.window:
                times.popleft()
            ok = len(times) < self.per_hour
            if ok:
                times.append(now)
            self._seen[key] = times  # most recently seen last
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            return ok

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class Signup:
    email: str  # normalised
    name: str = ""
    lang: str = ""


def parse(email: str, name: str = "", lang: str = "") -> Signup:
    """The form's fields, checked: InvalidAddress for a bad address; a name is one line
    of at most MAX_NAME characters; a language that is not a tag is dropped."""
    address = normalize(email[:320])
    lang = lang.strip()
    return Signup(address, one_line(name)[:MAX_NAME], lang if _LANG.fullmatch(lang) else "")


def confirm_url(cfg: Config, token: str) -> str:
    return f"{cfg.newsletter.web_root}/subscribe/confirm/{token}"


def _text(cfg: Config, s: Signup, url: str, expires: float) -> str:
    until = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%d %B %Y, %H:%M UTC")
    hello = f"Hello {s.name}," if s.name else "Hello,"
    return (
        f"{hello}\n\n"
        f"someone, probably you, asked to receive {cfg.newsletter.name} at this address.\n"
        "To confirm, open this link and press the button on the page:\n\n"
        f"{url}\n\n"
        f"The link works until {until}. If you did not ask for this, ignore this email:\n"
        "you will not be added, and we will not write again.\n"
    )


def request(
    cfg: Config, secret: str, s: Signup, *, detail: str = "form", send_mail: bool = True
) -> Literal["mailed", "active", "skipped", "failed"]:
    """Record a pending signup and mail its confirmation. An address already active is
    not mailed ("active"); ``send_mail=False`` (the per-address limit was reached)
    records nothing and mails nothing ("skipped"). A mail the transport refuses is
    logged ("failed"); the reader may try again."""
    if not send_mail:
        return "skipped"
    nonce = new_nonce()
    expires = time.time() + cfg.subscribe.confirm_hours * 3600
    with Ledger(cfg.ledger.path) as ledger:
        before = ledger.signup(
            s.email, name=s.name, lang=s.lang, source="form", detail=detail, nonce=nonce
        )
    if before == SIGNUP_ACTIVE:
        return "active"
    url = confirm_url(cfg, make_confirm_token(secret, nonce, expires))
    composed = confirmation_message(
        from_email=cfg.sender.email,
        from_name=cfg.sender.name,
        to_email=s.email,
        to_name=s.name,
        subject=cfg.subscribe.subject.replace("{name}", cfg.newsletter.name),
        text=_text(cfg, s, url, expires),
    )
    try:
        composed = _signed(cfg, composed)  # as every issue: unsigned mail is spam to Gmail
        conn = delivery.transport_for(cfg).connect()
        try:
            outcome = conn.send(
                cfg.sender.email,
                s.email,
                composed.data,
                composed.message_id,
                dot_safe=composed.dot_safe,
            )
        finally:
            conn.close()
    except (DigestError, delivery.Transient, OSError) as exc:
        log.error("signup: the confirmation mail could not be sent: %s", exc)
        return "failed"
    if not outcome.ok:
        log.warning("signup: the confirmation mail was refused: %s", outcome.detail)
        return "failed"
    log.info("signup: a confirmation mail was sent")
    return "mailed"


def _signed(cfg: Config, composed: Composed) -> Composed:
    """The message with a DKIM-Signature field when ``[dkim]`` is set (a ConfigError for
    a bad key, as a send would give)."""
    from .signing import signer_for

    head, _, body = composed.data.partition(b"\r\n\r\n")
    signer = signer_for(cfg, head + b"\r\n")
    if signer is None:
        return composed
    signature = signer.sign(head + b"\r\n", body)
    return replace(composed, data=signature + composed.data)


Outcome = Literal["ok", "confirmed", "used", "expired", "bad", "unknown"]


def peek(cfg: Config, secret: str | None, token: str) -> Outcome:
    """What confirming this link would do, without doing it (the page a GET shows):
    "ok" (pending), "used", "expired", "bad" or "unknown"."""
    verdict, nonce = read_confirm_token(secret, token, time.time())
    if verdict != "ok":
        return verdict  # type: ignore[return-value]
    with Ledger(cfg.ledger.path) as ledger:
        state = ledger.nonce_state(nonce)
    return "ok" if state == "pending" else ("used" if state == "used" else "unknown")


def confirm(cfg: Config, secret: str | None, token: str) -> Outcome:
    """Confirm the signup of a link (the page's POST): "confirmed", or why not."""
    verdict, nonce = read_confirm_token(secret, token, time.time())
    if verdict != "ok":
        return verdict  # type: ignore[return-value]
    with Ledger(cfg.ledger.path) as ledger:
        result, _ = ledger.confirm_signup(nonce)
    if result == "confirmed":
        log.info("signup: one reader confirmed")
    return result  # type: ignore[return-value]
