"""DKIM: keys made with openssl as the README says, signatures checked with dkimpy's
verifier against the published record (a DNS stub), byte-for-byte the header dkimpy's
own ``sign`` writes, and every message of a real send over SMTP verified."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dkim
import pytest

from digest import config
from digest.errors import ConfigError
from digest.message import Composer, Recipient
from digest.render import RenderedEmail
from digest.signing import Signer, check_dns, load_key
from smtp_server import SmtpServer
from test_send import env, freeze, run, write_config, write_subscribers

T = 1_790_000_000  # a pinned clock for the t= tag
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")


def make_key(folder: Path, kind: str) -> Path:
    """The README's commands."""
    path = folder / f"dkim-{kind}.pem"
    args = ["-algorithm", "ed25519"]
    if kind == "rsa":
        args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run([OPENSSL, "genpkey", *args, "-out", str(path)], check=True)
    return path


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def key_file(request, tmp_path_factory) -> Path:
    return make_key(tmp_path_factory.mktemp("keys"), request.param)


def dns_for(record: str, name: str = "s1._domainkey.example.com."):
    """dkimpy's dnsfunc: the record at ``name`` only, like a DNS server."""

    def dnsfunc(qname: bytes, timeout: float = 5) -> bytes | None:
        return record.encode() if qname.decode().rstrip(".") == name.rstrip(".") else None

    return dnsfunc


def rendered() -> RenderedEmail:
    return RenderedEmail(
        "2026-W48",
        "Ünïcode subject, long enough to be folded over more than one line of the header",
        "pre",
        "<p>Hi __digest_first_name__</p>\n.<p>A dot line.</p>\n"
        '<a href="__digest_unsubscribe_url__">Unsubscribe</a>\n',
        "Hi __digest_name__\n.\nNews.\n__digest_unsubscribe_url__\n",
    )


def composer(key_file: Path) -> Composer:
    c = Composer(
        rendered(),
        secret="dkim-test-secret-0123456789",
        from_email="news@example.com",
        from_name="The Weekly Digest",
        reply_to="editor@example.com",
        unsubscribe_url="https://example.com/u",
    )
    c.signer = Signer(load_key(key_file), "example.com", "s1", c._head, clock=lambda: T)
    return c


def split_signature(data: bytes) -> tuple[bytes, bytes]:
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"DKIM-Signature: ")
    i = 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[:i]) + b"\r\n", b"\r\n".join(lines[i:])


def test_signed_messages_verify_against_the_published_record(key_file):
    c = composer(key_file)
    record = c.signer.key.txt_record()
    for r in (Recipient("ada@example.com", "Ada Lovelace"), Recipient("b@example.org", "Bö")):
        data = c.compose(r).data
        assert dkim.verify(data, dnsfunc=dns_for(record))
        # Any change to what is signed breaks it: the reader, the body, the unsubscribe link.
        for old, new in ((b"ada@", b"eve@"), (b"News.", b"Newz."), (b"/u/", b"/v/")):
            if old in data:
                assert not dkim.verify(data.replace(old, new, 1), dnsfunc=dns_for(record))


def dkimpy_signature(c: Composer, unsigned: bytes) -> bytes:
    """The DKIM-Signature field dkimpy's own ``sign`` writes for this message and key."""
    key = c.signer.key
    return dkim.sign(
        unsigned,
        b"s1",
        b"example.com",
        key.pem,
        include_headers=list(c.signer.include),
        canonicalize=(b"relaxed", b"simple"),
        signature_algorithm=key.algorithm.encode(),
    )


def test_the_header_is_byte_for_byte_what_dkimpy_signs(key_file, monkeypatch):
    c = composer(key_file)
    monkeypatch.setattr(dkim.time, "time", lambda: T)
    for r in (Recipient("ada@example.com", "Ada"), Recipient("z@example.com", "Zoë Ünïcode")):
        mine, unsigned = split_signature(c.compose(r).data)
        assert mine == dkimpy_signature(c, unsigned)


@pytest.mark.parametrize("now", [999_999_999, T, 10_000_000_000])
def test_the_folding_template_is_dkimpys_folding(key_file, now, monkeypatch, tmp_path):
    """The field is filled into a template folded once per send (t=, bh= and b= have
    fixed lengths); for a t= of 9, 10 or 11 digits and a longer RSA key (a longer b=) it
    is still byte for byte what dkimpy writes, for readers of all kinds."""
    keys = [key_file]
    if now == T and "rsa" in key_file.name:
        keys.append(tmp_path / "rsa-3072.pem")
        subprocess.run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:3072", "-out", str(keys[1])], check=True)  # fmt: skip
    monkeypatch.setattr(dkim.time, "time", lambda: now)
    for path in keys:
        c = composer(path)
        c.signer.clock = lambda: now
        key = c.signer.key
        for i, name in enumerate(["", "A", "Zoë Ünïcode " * 8, "x" * 200]):
            mine, unsigned = split_signature(c.compose(Recipient(f"r{i}@example.com", name)).data)
            assert mine == dkimpy_signature(c, unsigned)
            assert dkim.verify(mine + unsigned, dnsfunc=dns_for(key.txt_record()))


def test_signed_fields_cover_one_click_unsubscribe(key_file):
    c = composer(key_file)
    sig, _ = split_signature(c.compose(Recipient("ada@example.com")).data)
    h = dkim.util.parse_tag_value(sig.split(b":", 1)[1])[b"h"]
    signed = {x.strip() for x in h.split(b":")}
    assert {b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe"} <= signed
    assert {b"list-unsubscribe-post", b"content-type", b"reply-to"} <= signed


def test_the_txt_record_and_the_dns_check(key_file, tmp_path):
    cfg = config.parse(
        {"dkim": {"domain": "example.com", "selector": "s1", "key_file": str(key_file)}},
        tmp_path / "config.toml",
    )
    key = load_key(key_file)
    record = key.txt_record()
    assert record.startswith(f"v=DKIM1; k={'rsa' if key.bits == 2048 else 'ed25519'}; p=")
    assert check_dns(cfg, dns_for(record)) == []
    # Published with the key split into quoted strings, as DNS shows long records: same key.
    assert check_dns(cfg, dns_for(record[:60] + " " + record[60:])) == []
    assert "no TXT record" in check_dns(cfg, dns_for(record, "other._domainkey.example.com"))[0]
    other = load_key(make_key(tmp_path, "rsa" if key.bits == 2048 else "ed25519"))
    assert "not the one of" in check_dns(cfg, dns_for(other.txt_record()))[0]
    assert "revoked" in check_dns(cfg, dns_for(record.split("p=")[0] + "p="))[0]


def test_key_problems_are_config_errors_naming_the_key(tmp_path):
    def parse(dkim_section: dict) -> config.Config:
        return config.parse({"dkim": dkim_section}, tmp_path / "config.toml")

    with pytest.raises(ConfigError) as exc:
        parse({"domain": "example.com", "selector": "s1", "key_file": "missing.pem"})
    assert "dkim.key_file" in str(exc.value) and "missing.pem" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        parse({"domain": "example.com"})
    assert {k for k, _ in exc.value.problems} == {"dkim.selector", "dkim.key_file"}
    small = tmp_path / "small.pem"
    subprocess.run(
        [OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out",
         str(small)], check=True)  # fmt: skip
    with pytest.raises(ConfigError, match="1024 bits; DKIM needs 2048"):
        load_key(small)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match=r"dkim\.key_file: .*junk\.pem: not a PEM private key"):
        load_key(junk)


def test_the_example_config_works_unchanged_without_a_key():
    cfg = config.load(Path(__file__).resolve().parents[1] / "config.example.toml")
    assert cfg.dkim.domain == "" and cfg.bounces.verp


def test_check_prints_the_record_to_publish(tmp_path, key_file):
    path = write_config(tmp_path, extra=f'[dkim]\ndomain = "example.com"\nselector = "s1"\n'
                        f'key_file = "{key_file}"\n')  # fmt: skip
    result = run(path, "check")
    assert f'"{load_key(key_file).txt_record()}"' in result.stdout
    assert "s1._domainkey.example.com." in result.stdout
    assert "PRIVATE" not in result.stdout + result.stderr  # the secret half is never shown


def test_every_message_of_a_send_verifies(tmp_path, key_file):
    addresses = write_subscribers(tmp_path, 40)
    with SmtpServer(pipelining=True) as server:
        path = write_config(
            tmp_path,
            server.port,
            extra=f'[dkim]\ndomain = "example.com"\nselector = "s1"\nkey_file = "{key_file}"\n',
        )
        freeze(path)
        result = run(path, "send", "--issue", "2026-W48", "--yes", environ=env())
        assert result.returncode == 0, result.stderr
    record = load_key(key_file).txt_record()
    assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(addresses)
    for m in server.messages:
        assert m.data is not None
        assert dkim.verify(m.data, dnsfunc=dns_for(record)), m.rcpt_tos
        assert m.mail_from.startswith("bounces+2026-w48-") and m.mail_from.endswith("@example.com")


def test_signed_sends_through_faults_are_exactly_once_and_all_verify(tmp_path, key_file):
    """Messages are composed and signed ahead of the sending threads (prefetch.py): with
    retries, dropped connections, a refused reader and one that cannot be composed, each
    reader still gets one message, every one verifies, and the odd rows are recorded."""
    from digest.ledger import Ledger
    from smtp_server import Faults

    addresses = write_subscribers(tmp_path, 120)
    refused = addresses[7]
    faults = Faults(transient_rcpt=0.1, drop_every=13, reject=lambda a: a == refused, seed=3)
    with SmtpServer(faults=faults, pipelining=True) as server:
        path = write_config(
            tmp_path,
            server.port,
            extra=f'[dkim]\ndomain = "example.com"\nselector = "s1"\nkey_file = "{key_file}"\n',
        )
        freeze(path)
        with Ledger(config.load(path).ledger.path) as ledger:
            ledger.enqueue("2026-W48", [("bad address@example.com", "bad address@example.com",
                                         "", "")])  # fmt: skip
        result = run(path, "send", "--issue", "2026-W48", "--yes")
        assert result.returncode == 0, result.stderr
    assert "bad address@example.com: not sent: cannot compose the message" in result.stdout
    got = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert got == sorted(a for a in addresses if a != refused)
    record = load_key(key_file).txt_record()
    assert all(dkim.verify(m.data, dnsfunc=dns_for(record)) for m in server.messages)
    with Ledger(config.load(path).ledger.path, readonly=True) as ledger:
        counts = ledger.counts("2026-W48")
    assert (counts["sent"], counts["failed"], counts["pending"]) == (119, 2, 0)


@pytest.mark.parametrize("threads", [1, 2])
def test_messages_composed_ahead_in_batches_all_verify(key_file, threads):
    """``prefetch.Ahead``, one or two threads, batches of 8, a row that cannot be
    composed among them: every job is handed out once, each message verifies, the bad
    row raises for its own job only, a retry is composed afresh."""
    from digest import prefetch
    from digest.delivery import Job

    c = composer(key_file)
    jobs = [Job(i + 1, f"r{i}@example.com", f"Reader {i}") for i in range(45)]
    jobs[17] = Job(18, "bad address@example.com")

    def recipient(job: Job) -> Recipient:
        return Recipient(job.email, job.name)

    assert prefetch.composing_threads(c.signer.key.algorithm) in (1, 2)
    ahead = prefetch.Ahead(iter(jobs), lambda job: c.compose(recipient(job)), threads=threads)
    try:
        assert ahead._batch == 8
        handed = list(ahead.jobs())
        record = dns_for(c.signer.key.txt_record())
        assert sorted(j.id for j in handed) == list(range(1, 46))
        for job in handed:
            if job.id == 18:
                with pytest.raises(ValueError, match="not a valid recipient"):
                    ahead.compose(job)
                continue
            data = ahead.compose(job).data
            assert dkim.verify(data, dnsfunc=record) and job.email.encode() in data
        assert dkim.verify(ahead.compose(handed[0]).data, dnsfunc=record)  # a retry
    finally:
        ahead.close()
