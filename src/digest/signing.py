"""DKIM (RFC 6376): the key, the TXT record to publish, and a signature on every message.

``[dkim] domain, selector, key_file``: an RSA (2048 bits or more) or Ed25519 (RFC 8463)
private key in PEM, as ``openssl genpkey`` writes it.

Why not ``dkim.sign()`` per message: dkimpy parses the whole 60 KB message, parses the
PEM key and does the RSA operation in pure Python, about 10 ms a message here (a
10,000-recipient send would take minutes longer). The signature itself cannot be shared:
To, Message-ID, List-Unsubscribe and the body differ per reader, and RFC 8058 wants
List-Unsubscribe signed. So ``Signer`` does per issue what is the same for every message
and per message only the rest, producing exactly the header dkimpy's ``sign`` would:

* per issue: the key loaded once (OpenSSL, through ``cryptography``); the fixed header
  fields (From, Subject, Content-Type...) canonicalized with dkimpy's relaxed
  canonicalization and fed into a SHA-256 state, since ``h=`` lists them first;
* per send: the DKIM-Signature field folded once with holes for t=, bh= and b=, whose
  values have fixed lengths and no spaces, so dkimpy's folding is the same every time;
* per message: a copy of that state plus the four personal fields and the signature
  field itself (the template filled in); the body hash over the message's body
  (``c=relaxed/simple``: the body is hashed as it is, no 60 KB canonicalization pass);
  one private-key operation.

The tag list, their order and the folding are dkimpy's (its ``fold``), so for the same
message and second the header is byte-identical to ``dkim.sign(..., canonicalize=
(b"relaxed", b"simple"))``; tests check that, and verify every message of a send with
dkimpy's verifier. ``Signer`` also verifies one message with dkimpy when it is created,
so a key or code problem stops a send before the first message, not after it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config
    from .message import Composed

# Fixed fields: the same in every message of an issue. Personal: To and the three that
# carry the reader's Message-ID, date and unsubscribe token. "from" is listed twice: the
# second names a From that does not exist, so a second From added later breaks the
# signature (dkimpy's default "frozen" From does the same).
FIXED_FIELDS = (
    b"from",
    b"reply-to",
    b"subject",
    b"mime-version",
    b"list-id",
    b"list-unsubscribe-post",
    b"content-type",
)
PERSONAL_FIELDS = (b"date", b"message-id", b"to", b"list-unsubscribe")
_FIELD = re.compile(rb"([!-9;-~]+):(.*)", re.S)
_PLACEHOLDER = b"0" * 60  # dkimpy's b= placeholder: it puts b= on a line of its own
_HOLE = b"\0"  # stands for a character of t=, bh= or b= in a field's template
_BH_LEN = 44  # base64 of a SHA-256


class DkimError(ConfigError):
    """The DKIM key or its DNS record is unusable (names the key and what to do)."""


@dataclass(frozen=True)
class Key:
    algorithm: str  # "rsa-sha256" or "ed25519-sha256"
    private: Any  # a cryptography private key
    pem: bytes  # as dkimpy expects it (PKCS#8 PEM; for Ed25519 the base64 seed)
    bits: int
    path: Path

    @property
    def public_b64(self) -> str:
        """The p= value of the TXT record."""
        from cryptography.hazmat.primitives import serialization as s

        pub = self.private.public_key()
        if self.algorithm == "ed25519-sha256":
            raw = pub.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        else:
            raw = pub.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(raw).decode("ascii")

    def txt_record(self) -> str:
        """The TXT record value to publish at <selector>._domainkey.<domain>."""
        k = "ed25519" if self.algorithm == "ed25519-sha256" else "rsa"
        return f"v=DKIM1; k={k}; p={self.public_b64}"

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature over the SHA-256 ``digest`` of the canonicalized header fields."""
        if self.algorithm == "ed25519-sha256":
            # RFC 8463: Ed25519 signs the SHA-256 hash (PureEdDSA over those 32 bytes).
            return bytes(self.private.sign(digest))
        return bytes(self.private.sign(digest, *_rsa_args()))


@functools.cache
def _rsa_args() -> tuple[Any, Any]:
    """PKCS#1 v1.5 over a SHA-256 digest computed by us (built once, not per message)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    return padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())


def load_key(path: Path, where: str = "config") -> Key:
    """Read an RSA (>= 2048 bits) or Ed25519 private key in PEM (PKCS#1 or PKCS#8)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def bad(why: str) -> DkimError:
        return DkimError(where, [("dkim.key_file", f"{path}: {why}")])

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise bad("no such file; create the key (see README, DKIM) or fix the path") from None
    except OSError as exc:
        raise bad(f"cannot read it ({exc.strerror or exc})") from None
    try:
        private = s.load_pem_private_key(data, password=None)
    except TypeError:
        raise bad("the key is encrypted; store it without a passphrase (chmod 600)") from None
    except ValueError:
        raise bad(
            "not a PEM private key; create one with 'openssl genpkey -algorithm "
            "ed25519' or 'openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048'"
        ) from None
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise bad(f"an RSA key of {private.key_size} bits; DKIM needs 2048 or more")
        pem = private.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
        return Key("rsa-sha256", private, pem, private.key_size, path)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        seed = private.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
        return Key("ed25519-sha256", private, base64.b64encode(seed), 256, path)
    raise bad(f"a {type(private).__name__}; DKIM keys are RSA (2048 bits) or Ed25519")


def _fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """(name, value) of each field of a CRLF header block, as dkimpy's parser gives them
    (the value keeps its folding and the CRLF)."""
    out: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\r\n")[:-1]:
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            name, value = out[-1]
            out[-1] = (name, value + line + b"\r\n")
            continue
        m = _FIELD.fullmatch(line)
        if m is None:
            raise ValueError(f"not a header field: {line[:60]!r}")
        out.append((m.group(1), m.group(2) + b"\r\n"))
    return out


def _relaxed(name: bytes, value: bytes) -> bytes:
    """One field, relaxed-canonicalized (RFC 6376 3.4.2), CRLF-terminated: the name in
    lower case, the value unfolded, runs of white space made one space, trimmed. Our
    header blocks are printable ASCII (``message.check_header_block``), where
    ``bytes.split()`` does exactly that, about 5x faster than dkimpy's regular
    expressions (the differential test against ``dkim.sign`` holds it to them)."""
    return name.lower().rstrip() + b":" + b" ".join(value.split()) + b"\r\n"


class Signer:
    """Signs the messages of one issue; built once per Composer (see the module doc)."""

    def __init__(
        self,
        key: Key,
        domain: str,
        selector: str,
        fixed_head: bytes,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.clock = clock
        present = {n.lower(): (n, v) for n, v in _fields(fixed_head)}
        fixed = [f for f in FIXED_FIELDS if f in present]
        self.include = (*fixed, *PERSONAL_FIELDS, b"from")
        self._fixed = hashlib.sha256()
        for name in fixed:
            self._fixed.update(_relaxed(*present[name]))
        self._h = b" : ".join(self.include)
        # b= is the base64 of a signature as long as the key's modulus (Ed25519: 64 bytes).
        size = 64 if key.algorithm == "ed25519-sha256" else (key.bits + 7) // 8
        self._b_len = len(base64.b64encode(bytes(size)))
        self._cache: dict[int, tuple[_Holes, _Holes]] = {}

    def _tags(self, body_hash: bytes, now: bytes, b: bytes, *, final: bool) -> bytes:
        from dkim import fold

        fields = [
            (b"v", b"1"),
            (b"a", self.key.algorithm.encode()),
            (b"c", b"relaxed/simple"),
            (b"d", self.domain),
            (b"i", b"@" + self.domain),
            (b"q", b"dns/txt"),
            (b"s", self.selector),
            (b"t", now),
            (b"h", self._h),
            (b"bh", body_hash),
            (b"b", b),
        ]
        value = b"; ".join(b"=".join(f) for f in fields)
        # dkimpy folds the final field with its line break, the unsigned one without.
        value += b"\r\n" if final else b""
        return bytes(fold(value, namelen=len(b"DKIM-Signature"), linesep=b"\r\n"))

    def _templates(self, t_len: int) -> tuple[_Holes, _Holes]:
        """The field as hashed (relaxed, b= empty; holes for t= and bh=) and as written
        (holes for t=, bh= and b=), for a t= of ``t_len`` digits.

        ``fold`` breaks lines at spaces and at fixed widths only, and the three values
        have no spaces and a fixed length (t= 10 digits until 2286, bh= 44, b= the
        key's), so each message's field is the same folding with other characters in
        the holes: dkimpy's folding, computed once instead of twice a message."""
        cached = self._cache.get(t_len)
        if cached is not None:
            return cached
        from dkim import RE_BTAG

        t, bh = _HOLE * t_len, _HOLE * _BH_LEN
        # As dkimpy: folded with a placeholder b= (60 zeros) so that b= starts a line of
        # its own, hashed with b= empty and without the final line break.
        unsigned = self._tags(bh, t, _PLACEHOLDER, final=False)
        unsigned = RE_BTAG.sub(rb"\1", unsigned)
        hashed = _relaxed(b"DKIM-Signature", b" " + unsigned).rstrip()
        written = b"DKIM-Signature: " + self._tags(bh, t, _HOLE * self._b_len, final=True)
        cached = self._cache[t_len] = (_Holes(hashed), _Holes(written))
        return cached

    def digest(self, personal: bytes, body: bytes | memoryview) -> tuple[bytes, bytes]:
        """What the private key signs (the SHA-256 of the canonicalized fields) for a
        message whose header is ``personal`` + the fixed head and whose body is ``body``,
        and the t= and bh= values the field will carry (for ``field``)."""
        # One call over the whole body: hashlib lets go of the GIL for each call on 2 KB or
        # more, and with four sending threads every release costs a wait to get it back
        # (hashing piece by piece made Ed25519 sends 0.3 ms a message slower).
        values = str(int(self.clock())).encode("ascii") + base64.b64encode(
            hashlib.sha256(body).digest()
        )
        h = self._fixed.copy()
        present = {n.lower(): (n, v) for n, v in _fields(personal)}
        for name in PERSONAL_FIELDS:
            if name in present:
                h.update(_relaxed(*present[name]))
        hashed, _ = self._templates(len(values) - _BH_LEN)
        h.update(hashed.fill(values))
        return h.digest(), values

    def field(self, values: bytes, signature: bytes) -> bytes:
        """The ``DKIM-Signature: ...\\r\\n`` field: ``values`` from ``digest``, and the
        key's ``signature`` over that digest."""
        _, written = self._templates(len(values) - _BH_LEN)
        return written.fill(values + base64.b64encode(signature))

    def sign(self, personal: bytes, body: bytes | memoryview) -> bytes:
        """The ``DKIM-Signature: ...\\r\\n`` field for a message whose header is
        ``personal`` + the fixed head and whose body is ``body``."""
        digest, values = self.digest(personal, body)
        return self.field(values, self.key.sign_digest(digest))


class _Holes:
    """Bytes with holes (runs of ``_HOLE``), filled in order from one string of values."""

    def __init__(self, template: bytes) -> None:
        self.parts = re.split(b"(" + re.escape(_HOLE) + b"+)", template)
        self.size = template.count(_HOLE)

    def fill(self, values: bytes) -> bytes:
        if len(values) != self.size:
            raise ValueError(f"{len(values)} bytes for {self.size} holes")
        out, at = [], 0
        for i, part in enumerate(self.parts):
            if i % 2:
                out.append(values[at : at + len(part)])
                at += len(part)
            else:
                out.append(part)
        return b"".join(out)


def signer_for(cfg: Config, fixed_head: bytes) -> Signer | None:
    """The configured signer (None without [dkim]); a bad key is a ConfigError."""
    d = cfg.dkim
    if not d.domain:
        return None
    assert d.key_file is not None  # the config's cross-checks require it with a domain
    key = load_key(d.key_file, str(cfg.source or "config"))
    return Signer(key, d.domain, d.selector, fixed_head)


def dns_name(cfg: Config) -> str:
    return f"{cfg.dkim.selector}._domainkey.{cfg.dkim.domain}"


def self_check(signer: Signer, message: bytes) -> str | None:
    """Verify ``message`` (signed by ``signer``) with dkimpy against the key's own public
    record: None if valid, else why not."""
    import dkim

    record = signer.key.txt_record().encode("ascii")

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return record

    d = dkim.DKIM(message)
    try:
        ok = d.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as exc:
        return str(exc)
    return None if ok else "dkimpy does not accept the signature"


def check_dns(cfg: Config, dnsfunc: Callable[..., bytes | None] | None = None) -> list[str]:
    """Problems with the published record of the configured key (empty: it matches).

    Looks up <selector>._domainkey.<domain> (dkimpy's resolver unless ``dnsfunc``)."""
    import dkim.util

    assert cfg.dkim.key_file is not None
    key = load_key(cfg.dkim.key_file, str(cfg.source or "config"))
    name = dns_name(cfg)
    if dnsfunc is None:
        from dkim.dnsplug import get_txt

        dnsfunc = get_txt
    try:
        found = dnsfunc(name.encode("ascii"), timeout=5)
    except Exception as exc:  # resolver errors vary by backend
        return [f"cannot look up the TXT record {name}: {exc}"]
    if not found:
        return [f"no TXT record at {name}; publish: {key.txt_record()}"]
    text = found.decode("ascii", "replace") if isinstance(found, bytes) else str(found)
    try:
        tags = dkim.util.parse_tag_value(text.encode("ascii", "replace"))
    except dkim.util.InvalidTagValueList as exc:
        return [f"the TXT record at {name} is not a DKIM record ({exc}): {text!r}"]
    problems = []
    want_k = b"ed25519" if key.algorithm == "ed25519-sha256" else b"rsa"
    if tags.get(b"k", b"rsa") != want_k:
        got = tags.get(b"k", b"rsa").decode("ascii", "replace")
        problems.append(f"{name}: k={got} but the key is {want_k.decode()}")
    published = re.sub(rb"\s+", b"", tags.get(b"p", b"")).decode("ascii", "replace")
    if not published:
        problems.append(f"{name}: p= is empty (the key was revoked)")
    elif published != key.public_b64:
        problems.append(
            f"{name}: the published public key is not the one of {key.path}; publish: "
            f"{key.txt_record()}"
        )
    return problems


def check_signer(cfg: Config, signer: Signer, sample: Composed) -> None:
    """Stop before the first message if dkimpy does not accept what ``signer`` signs."""
    why = self_check(signer, sample.data)
    if why is not None:
        raise DkimError(
            cfg.source or "config",
            [("dkim.key_file", f"messages signed with {signer.key.path} do not verify ({why})")],
        )
