"""One edition per language (issue 11, newsletter.languages): build, send, resume, status.

Real parts only: `digest` in a subprocess, a real aiosmtpd server, real SQLite ledgers.
The fixture is a small nature blog with posts in English and Japanese (a Hugo-style
`name.ja.md` translation and `lang` front matter).
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.config import parse
from digest.errors import ConfigError
from digest.i18n import edition_for
from digest.ledger import Ledger
from digest.message import message_id
from smtp_server import Faults, SmtpServer

WEEK = "2026-W48"  # sent Monday 2026-11-23 09:00 UTC; posts from 2026-11-16 09:00
NOW = "2026-11-23T12:00:00+00:00"
SECRET = "editions-test-secret-0123456789abcdef"

POSTS = {
    # An English post and its Japanese translation (Hugo's name.ja.md).
    "tide-pools.md": (
        "---\ntitle: What lives in a tide pool\ndate: 2026-11-18 10:00\nlang: en\n---\n"
        "Anemones, hermit crabs and periwinkles wait in the rock pools for the sea to come "
        "back twice a day.\n"
    ),
    "tide-pools.ja.md": (
        "---\ntitle: 潮だまりの生き物\ndate: 2026-11-18 10:00\n---\n"
        "イソギンチャクやヤドカリが、岩のくぼみで一日二回の満ち潮を待っています。\n"
    ),
    # English only.
    "night-herons.en.md": (
        "---\ntitle: Night herons on the canal\ndate: 2026-11-19 08:00\n---\n"
        "Three night herons have wintered by the old lock this year, fishing at dusk.\n"
    ),
}


def write_site(
    tmp: Path, port: int | None, languages: str = '["en", "ja"]', extra: str = ""
) -> Path:
    transport = (
        f'transport = "smtp"\nconcurrency = 4\nretry_seconds = 0.01\nretry_max_seconds = 0.05\n'
        f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n'
        if port
        else 'transport = "outbox"\n'
    )
    (tmp / "config.toml").write_text(
        f"""
[newsletter]
name = "Shore Notes"
base_url = "https://shore.example.org"
languages = {languages}
postal_address = "1 Harbour Road, Portsea"

[sender]
email = "news@example.com"
name = "Shore Notes"

[content]
folder = "content"

[subscribers]
file = "subscribers.csv"

[ledger]
path = "ledger.sqlite3"

[unsubscribe]
secret_env = "DIGEST_TEST_SECRET"
url = "https://example.com/u"

[delivery]
{transport}
"""
    )
    (tmp / "content").mkdir(exist_ok=True)
    for name, text in POSTS.items():
        (tmp / "content" / name).write_text(text, encoding="utf-8")
    return tmp / "config.toml"


READERS = [
    ("ann@example.com", "Ann", "en"),
    ("kenji@example.com", "Kenji", "ja-JP"),  # primary subtag: ja
    ("yui@example.com", "Yui", "JA"),  # case-insensitive
    ("marie@example.com", "Marie", "fr"),  # no French edition: the first language
    ("zoe@example.com", "Zoe", ""),  # no language: the first language
]
# The edition each of READERS gets from a newsletter in English and Japanese.
ROUTED = {
    "ann@example.com": "en",
    "kenji@example.com": "ja",
    "yui@example.com": "ja",
    "marie@example.com": "en",
    "zoe@example.com": "en",
}


def write_readers(tmp: Path, readers=READERS) -> None:
    with (tmp / "subscribers.csv").open("w", encoding="utf-8") as f:
        f.write("email,name,lang\n")
        for address, name, lang in readers:
            f.write(f"{address},{name},{lang}\n")


def env(now: str = NOW) -> dict[str, str]:
    return {**os.environ, "DIGEST_TEST_SECRET": SECRET, "DIGEST_NOW": now, "PYTHONUTF8": "1"}


def digest(tmp: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "digest.cli", "--config", str(tmp / "config.toml"), *args]


def run(tmp: Path, *args: str, now: str = NOW) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        digest(tmp, *args), capture_output=True, text=True, env=env(now), timeout=120, cwd=tmp
    )


def text_part(data: bytes) -> tuple[str, str, str]:
    """(subject, lang of the HTML, plain text) of a received message."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    lang = html.split('<html lang="', 1)[1].split('"', 1)[0] if '<html lang="' in html else ""
    return str(msg["Subject"]), lang, text


def editions_in_ledger(tmp: Path) -> dict[str, str]:
    db = sqlite3.connect(tmp / "ledger.sqlite3")
    try:
        return dict(db.execute("SELECT email, edition FROM deliveries"))
    finally:
        db.close()


def test_a_reader_gets_the_edition_of_their_language_once(tmp_path: Path) -> None:
    write_readers(tmp_path)
    with SmtpServer() as server:
        write_site(tmp_path, server.port)
        done = run(tmp_path, "send", "--issue", WEEK, "--yes")
        assert done.returncode == 0, done.stderr
        got = {m.rcpt_tos[0]: text_part(m.data or b"") for m in server.messages}
        ids = {m.rcpt_tos[0]: m.message_id for m in server.messages}
    assert len(server.messages) == len(READERS)  # one message each, whatever the edition
    for address in ("ann@example.com", "marie@example.com", "zoe@example.com"):
        subject, lang, text = got[address]
        assert lang == "en" and "Night herons on the canal" in subject
        assert "Read more" in text and "What lives in a tide pool" in text
        assert "潮だまり" not in text and "続きを読む" not in text
    for address in ("kenji@example.com", "yui@example.com"):
        subject, lang, text = got[address]
        assert lang == "ja" and "潮だまりの生き物" in subject
        assert "続きを読む" in text and "Read more" not in text
        assert "Night herons" not in text and "tide pool" not in text  # no English post
    # Message-IDs (and so VERP and tokens) are per issue and reader, as in one language.
    assert all(ids[a] == message_id(WEEK, a, "example.com") for a in ids)
    assert editions_in_ledger(tmp_path) == ROUTED
    assert "edition en" in done.stdout and "edition ja" in done.stdout
    status = run(tmp_path, "status", WEEK)
    assert status.returncode == 0, status.stderr
    assert re.search(r"edition en\s+sent 3 ", status.stdout), status.stdout
    assert re.search(r"edition ja\s+sent 2 ", status.stdout), status.stdout
    # A repeated send is a no-op: no one gets a second edition.
    again = run(tmp_path, "send", "--issue", WEEK, "--yes")
    assert again.returncode == 0 and "was already sent to 5" in again.stdout, again.stdout


def test_build_writes_one_folder_per_edition_and_an_empty_one_is_not_sent(tmp_path: Path) -> None:
    write_readers(tmp_path)
    write_site(tmp_path, None)
    built = run(tmp_path, "build", "--week", WEEK)
    assert built.returncode == 0, built.stderr
    for lang in ("en", "ja"):
        assert (tmp_path / "out" / WEEK / lang / "email.html").is_file()
        assert f'lang="{lang}"' in (tmp_path / "out" / WEEK / lang / "email.html").read_text()
    assert not (tmp_path / "out" / WEEK / "email.html").exists()
    assert "Edition en of issue" in built.stdout and "Edition ja of issue" in built.stdout

    # The next week has an English post only: the Japanese edition is empty.
    (tmp_path / "content" / "storm-petrels.md").write_text(
        "---\ntitle: Storm petrels at dusk\ndate: 2026-11-25 17:00\nlang: en\n---\n"
        "They come ashore only after dark, to burrows under the stone walls.\n"
    )
    later = "2026-11-30T12:00:00+00:00"
    built = run(tmp_path, "build", "--week", "2026-W49", now=later)
    assert built.returncode == 0, built.stderr
    assert "Edition ja: not built" in built.stdout
    assert (tmp_path / "out" / "2026-W49" / "en" / "email.html").is_file()
    assert not (tmp_path / "out" / "2026-W49" / "ja").exists()
    checked = run(tmp_path, "check", "--week", "2026-W49", now=later)
    assert checked.returncode == 0 and "Edition ja:" in checked.stdout, checked.stdout
    sent = run(tmp_path, "send", "--issue", "2026-W49", "--yes", now=later)
    assert sent.returncode == 0, sent.stderr
    assert re.search(r"edition ja\s+no article that week, not sent; 2 reader", sent.stdout)
    outbox = list((tmp_path / "outbox" / "new").glob("*.eml"))
    to = {email.message_from_bytes(p.read_bytes())["To"] for p in outbox}
    assert not any("kenji" in t or "yui" in t for t in to)
    assert len(outbox) == 3
    status = run(tmp_path, "status", "2026-W49", now=later)
    assert "edition ja     no article that week" in status.stdout, status.stdout


def test_an_issue_with_every_edition_empty_is_nothing_to_send(tmp_path: Path) -> None:
    write_readers(tmp_path)
    write_site(tmp_path, None)
    sent = run(tmp_path, "send", "--issue", "2026-W50", "--yes", now="2026-12-08T12:00:00+00:00")
    assert sent.returncode == 10, sent.stderr
    assert "no edition has an article: en, ja" in sent.stdout + sent.stderr
    assert "Traceback" not in sent.stderr


def test_a_killed_send_resumes_without_a_second_edition(tmp_path: Path) -> None:
    readers = [
        (f"r{i}@example.com", f"R {i}", ("ja-JP", "en", "", "pt")[i % 4]) for i in range(400)
    ]
    write_readers(tmp_path, readers)
    server = SmtpServer(faults=Faults(slow=0.01, slow_share=1.0)).start()
    try:
        write_site(tmp_path, server.port)
        proc = subprocess.Popen(
            digest(tmp_path, "send", "--issue", WEEK, "--yes"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(server.messages) < 120 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, "the send ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        with Ledger(tmp_path / "ledger.sqlite3", readonly=True) as ledger:
            left = ledger.counts(WEEK)["pending"]
        assert left > 0
        server.faults.slow = 0.0
        done = run(tmp_path, "send", "--issue", WEEK, "--yes")
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()
    got: dict[str, list[tuple[str, str]]] = {}
    for m in server.messages:
        _, lang, _ = text_part(m.data or b"")
        got.setdefault(m.rcpt_tos[0], []).append((m.message_id, lang))
    assert set(got) == {a for a, _, _ in readers}
    for address, _, lang in readers:
        want = "ja" if lang.startswith("ja") else "en"
        # Twice at most for the messages in flight at the kill: the same message, the
        # same edition.
        assert {g for g in got[address]} == {(message_id(WEEK, address, "example.com"), want)}
    assert sum(len(v) - 1 for v in got.values()) <= 4  # one per connection in flight
    with Ledger(tmp_path / "ledger.sqlite3", readonly=True) as ledger:
        assert ledger.edition_counts(WEEK) == {
            "en": {"pending": 0, "sent": 300, "failed": 0, "deferred": 0, "suppressed": 0},
            "ja": {"pending": 0, "sent": 100, "failed": 0, "deferred": 0, "suppressed": 0},
        }


def test_signups_dry_run_preview_and_export_follow_the_editions(tmp_path: Path) -> None:
    write_readers(tmp_path, [("ann@example.com", "Ann", "en")])
    write_site(tmp_path, None)
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:  # a reader who joined by the form
        ledger.signup("aiko@example.com", name="Aiko", lang="ja", source="form", nonce="n1")
        assert ledger.confirm_signup("n1")[0] == "confirmed"
    dry = run(tmp_path, "send", "--issue", WEEK, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    written = {
        str(email.message_from_bytes(p.read_bytes())["To"]): text_part(p.read_bytes())[1]
        for p in (tmp_path / "out" / WEEK / "dry-run" / "new").glob("*.eml")
    }
    assert written == {"Ann <ann@example.com>": "en", "Aiko <aiko@example.com>": "ja"}
    assert not editions_in_ledger(tmp_path)  # a dry run records nothing

    exported = run(tmp_path, "export", "--for", "generic", "--week", WEEK, "--lang", "ja")
    assert exported.returncode == 0, exported.stderr
    assert "Edition ja (of en, ja" in exported.stderr
    assert "潮だまり" in (tmp_path / "out" / WEEK / "ja" / "generic" / "subject.txt").read_text()
    exported = run(tmp_path, "export", "--for", "generic", "--week", WEEK)
    assert exported.returncode == 0 and "Edition en (of en, ja" in exported.stderr
    bad = run(tmp_path, "preview", "--to", "me@example.com", "--lang", "fr")
    assert bad.returncode == 2 and "--lang fr: not an edition (en, ja)" in bad.stderr
    assert "Traceback" not in bad.stderr
    shown = run(tmp_path, "preview", "--to", "me@example.com", "--lang", "ja-JP", "--week", WEEK)
    assert shown.returncode == 0 and "Edition ja" in shown.stderr, shown.stderr
    (preview,) = (tmp_path / "outbox" / "new").glob("*.eml")
    assert text_part(preview.read_bytes())[1] == "ja"

    sent = run(tmp_path, "send", "--issue", WEEK, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert editions_in_ledger(tmp_path) == {"ann@example.com": "en", "aiko@example.com": "ja"}


def test_a_ledger_from_before_editions_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE issues (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, number INTEGER,"
        " subject TEXT NOT NULL, preheader TEXT NOT NULL, html TEXT NOT NULL, text TEXT NOT"
        " NULL, lang TEXT NOT NULL, defaults TEXT NOT NULL, content_hash TEXT NOT NULL, state"
        " TEXT NOT NULL, created_at REAL NOT NULL, send_at TEXT, queued_at REAL, finished_at"
        " REAL, invalid INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, issue INTEGER NOT NULL, key TEXT NOT"
        " NULL, email TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', first_name TEXT NOT NULL"
        " DEFAULT '', state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT"
        " 0, last_error TEXT, message_id TEXT, updated_at REAL, UNIQUE (issue, key));"
        "INSERT INTO issues (id, subject, preheader, html, text, lang, defaults, content_hash,"
        " state, created_at) VALUES ('2026-W40', 's', 'p', 'h', 't', 'en', '{}', 'x', 'sent', 0);"
        "INSERT INTO deliveries (issue, key, email, state) VALUES (1, 'a@x.org', 'a@x.org',"
        " 'sent');"
    )
    db.commit()
    db.close()
    with Ledger(path, readonly=True) as old:  # read-only: nothing migrated, nothing fails
        assert old.edition_counts("2026-W40") == {} and old.editions("2026-W40") == []
        assert old.counts("2026-W40")["sent"] == 1
    with Ledger(path) as ledger:
        assert ledger.edition_counts("2026-W40") == {}
        assert [r.edition for r in ledger.to_send("2026-W40")] == []
    db = sqlite3.connect(path)
    assert db.execute("SELECT email, edition FROM deliveries").fetchall() == [("a@x.org", "")]
    db.close()


# -- config and routing ---------------------------------------------------------------------


def test_languages_and_language_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        parse({"newsletter": {"language": "en", "languages": ["ja", "en"]}})
    assert ("newsletter.languages", "the first language is the main one and must be "
            "newsletter.language ('en'), not 'ja'; put 'en' first, or remove "
            "newsletter.language") in exc.value.problems  # fmt: skip
    cfg = parse({"newsletter": {"languages": ["ja", "en"]}})
    assert cfg.newsletter.language == "ja" and cfg.newsletter.editions == ("ja", "en")
    assert parse({"newsletter": {"languages": ["de"]}}).newsletter.editions == ()
    with pytest.raises(ConfigError) as exc:
        parse({"newsletter": {"languages": ["pt-BR", "pt-PT", "e n"]}})
    keys = [k for k, _ in exc.value.problems]
    assert keys == ["newsletter.languages", "newsletter.languages"]
    with pytest.raises(ConfigError) as exc:
        parse({"newsletter": {"languages": ["en", "de"]}, "content": {"other_languages": "keep"}})
    assert exc.value.problems[0][0] == "content.other_languages"


def test_check_names_the_key_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[newsletter]\nlanguage = "en"\nlanguages = ["ja", "en"]\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "check"],
        capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "newsletter.languages: the first language is the main one" in done.stderr


@pytest.mark.parametrize(
    ("lang", "edition"),
    [("ja-JP", "ja"), ("JA", "ja"), ("ja_jp", "ja"), ("en-GB", "en"), ("fr", "en"),
     ("", "en"), ("  ", "en"), ("pt-BR", "pt-BR"), ("pt", "pt-BR")],
)  # fmt: skip
def test_routing_is_by_primary_subtag_else_the_first(lang: str, edition: str) -> None:
    assert edition_for(lang, ["en", "ja", "pt-BR"]) == edition


def test_dkim_bounces_and_suppression_work_for_every_edition(tmp_path: Path) -> None:
    """Each edition's messages are signed and verify; a bounce of a Japanese-edition
    message found by its VERP address suppresses that reader, and the next issue skips
    them and the reader who unsubscribed, in whichever edition they were."""
    dkim = pytest.importorskip("dkim")
    from digest.signing import load_key
    from test_bounces import FIXTURES, delivered
    from test_dkim import dns_for, make_key

    write_readers(tmp_path)
    key = make_key(tmp_path, "ed25519")
    with SmtpServer() as server:
        write_site(tmp_path, server.port)
        with (tmp_path / "config.toml").open("a") as f:
            f.write(f'\n[dkim]\ndomain = "example.com"\nselector = "s1"\nkey_file = "{key}"\n')
        done = run(tmp_path, "send", "--issue", WEEK, "--yes")
        assert done.returncode == 0, done.stderr
        record = load_key(key).txt_record()
        langs = set()
        for m in server.messages:
            assert dkim.verify(m.data, dnsfunc=dns_for(record)), m.rcpt_tos
            assert m.mail_from.startswith("bounces+2026-w48-"), m.mail_from  # VERP
            langs.add(text_part(m.data or b"")[1])
        assert langs == {"en", "ja"}
        sender_of = {m.rcpt_tos[0]: m.mail_from for m in server.messages}

        box = mailbox.Maildir(tmp_path / "Maildir", create=True)
        dsn = (FIXTURES / "postfix_dsn_user_unknown.eml").read_bytes()
        box.add(delivered(dsn, sender_of["kenji@example.com"]))
        bounced = run(tmp_path, "bounces", "--maildir", str(tmp_path / "Maildir"))
        assert bounced.returncode == 0, bounced.stderr
        with Ledger(tmp_path / "ledger.sqlite3") as ledger:
            assert (ledger.suppression("kenji@example.com") or "").startswith("hard bounce")
            ledger.suppress("ann@example.com")  # unsubscribed from the English edition

        posts = (("puffins.md", "Puffins", "en"), ("puffins.ja.md", "ツノメドリ", ""))
        for name, title, lang in posts:
            front = f"lang: {lang}\n" if lang else ""
            (tmp_path / "content" / name).write_text(
                f"---\ntitle: {title}\ndate: 2026-11-25 10:00\n{front}---\nBurrows.\n",
                encoding="utf-8",
            )
        server.messages.clear()
        later = "2026-11-30T12:00:00+00:00"
        done = run(tmp_path, "send", "--issue", "2026-W49", "--yes", now=later)
        assert done.returncode == 0, done.stderr
        mailed = {m.rcpt_tos[0] for m in server.messages}
    assert mailed == {"yui@example.com", "marie@example.com", "zoe@example.com"}
    with Ledger(tmp_path / "ledger.sqlite3", readonly=True) as ledger:
        counts = ledger.edition_counts("2026-W49")
    assert (counts["en"]["sent"], counts["en"]["suppressed"]) == (2, 1)
    assert (counts["ja"]["sent"], counts["ja"]["suppressed"]) == (1, 1)


def test_send_due_the_scheduler_path_sends_the_editions(tmp_path: Path) -> None:
    write_readers(tmp_path)
    write_site(tmp_path, None)
    done = run(tmp_path, "send", "--due", "--yes", now="2026-11-23T10:00:00+00:00")
    assert done.returncode == 0, done.stderr
    assert WEEK in done.stdout
    assert editions_in_ledger(tmp_path) == ROUTED
    langs = sorted(text_part(p.read_bytes())[1] for p in (tmp_path / "outbox/new").glob("*.eml"))
    assert langs == ["en", "en", "en", "ja", "ja"]


def test_a_missed_week_with_posts_in_one_edition_only_is_missed_not_empty(tmp_path: Path) -> None:
    write_readers(tmp_path)
    write_site(tmp_path, None)
    for name in ("tide-pools.md", "night-herons.en.md"):  # W48 holds a Japanese post only
        (tmp_path / "content" / name).unlink()
    late = run(tmp_path, "send", "--due", "--yes", now="2026-11-24T12:00:00+00:00")
    assert late.returncode == 0, late.stderr
    assert "2026-W48 was due" in late.stderr and "was not sent; past the grace" in late.stderr
    assert "no articles" not in late.stdout + late.stderr


def test_each_edition_has_its_web_version_and_its_unsubscribe_link_works(
    tmp_path: Path,
) -> None:
    """The "view in the browser" link of a Japanese-edition message opens the Japanese
    page (served and in the static archive); its one-click unsubscribe link works."""
    import httpx

    from digest.config import load
    from test_web import one_click, running

    write_readers(tmp_path)
    config = write_site(tmp_path, None)
    config.write_text(config.read_text().replace('url = "https://example.com/u"\n', ""))
    done = run(tmp_path, "send", "--issue", WEEK, "--yes")
    assert done.returncode == 0, done.stderr
    cfg = load(config)
    messages = {
        str(m["To"]): m
        for p in (tmp_path / "outbox" / "new").glob("*.eml")
        if (m := email.message_from_bytes(p.read_bytes(), policy=email.policy.default))
    }
    kenji = messages["Kenji <kenji@example.com>"]
    html = kenji.get_body(("html",)).get_content()  # type: ignore[union-attr]
    web_root = cfg.newsletter.web_root
    assert f'href="{web_root}/issues/{WEEK}/ja/"' in html
    assert f'href="{web_root}/issues/{WEEK}/en/"' in (
        messages["Ann <ann@example.com>"].get_body(("html",)).get_content()  # type: ignore[union-attr]
    )
    unsubscribe = re.search(r"<(https://[^>]+)>", str(kenji["List-Unsubscribe"])).group(1)  # type: ignore[union-attr]
    with running(cfg, secret=SECRET) as base, httpx.Client(timeout=10) as client:
        ja = client.get(f"{base}/issues/{WEEK}/ja/")
        assert ja.status_code == 200 and 'lang="ja"' in ja.text and "潮だまり" in ja.text
        en = client.get(f"{base}/issues/{WEEK}/en/")
        assert en.status_code == 200 and "Night herons" in en.text and "潮だまり" not in en.text
        assert client.get(f"{base}/issues/{WEEK}/fr/").status_code == 404
        assert client.get(f"{base}/issues/{WEEK}/").status_code == 200  # the main edition
        # The index links each edition of the issue, in its language.
        index = client.get(f"{base}/").text
        assert f'<a href="issues/{WEEK}/ja/" hreflang="ja" lang="ja">ja</a>' in index
        assert f'<a href="issues/{WEEK}/en/" hreflang="en" lang="en">en</a>' in index
        assert one_click(client, base + unsubscribe[len(web_root) :]).status_code == 200
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        assert ledger.suppression("kenji@example.com") == "unsubscribe"
    archived = run(tmp_path, "archive", "--out", str(tmp_path / "site"))
    assert archived.returncode == 0, archived.stderr
    assert f'href="issues/{WEEK}/ja/"' in (tmp_path / "site" / "index.html").read_text()
    page = (tmp_path / "site" / "issues" / WEEK / "ja" / "index.html").read_text()
    assert 'lang="ja"' in page and 'href="../../../"' in page
    assert "../../../unsubscribe/" in page


def test_readers_added_imported_or_joining_later_get_their_edition(tmp_path: Path) -> None:
    write_readers(tmp_path, [("ann@example.com", "Ann", "en")])
    write_site(tmp_path, None)
    added = run(tmp_path, "subscribers", "add", "kenji@example.com", "--lang", "ja-JP")
    assert added.returncode == 0, added.stderr
    bad = run(tmp_path, "subscribers", "add", "x@example.com", "--lang", "not a tag")
    assert bad.returncode == 2 and "--lang 'not a tag' is not a language code" in bad.stderr
    (tmp_path / "mailchimp.csv").write_text(
        "Email Address,First Name,Last Name,Language\nhana@example.com,Hana,Sato,ja\n"
    )
    imported = run(tmp_path, "subscribers", "import", str(tmp_path / "mailchimp.csv"))
    assert imported.returncode == 0, imported.stderr
    sent = run(tmp_path, "send", "--issue", WEEK, "--yes")
    assert sent.returncode == 0, sent.stderr
    assert editions_in_ledger(tmp_path) == {
        "ann@example.com": "en",
        "kenji@example.com": "ja",
        "hana@example.com": "ja",
    }
    # Someone joins after the send: --include-new mails them their edition, and only them.
    with (tmp_path / "subscribers.csv").open("a") as f:
        f.write("ren@example.com,Ren,ja\n")
    later = run(tmp_path, "send", "--issue", WEEK, "--include-new", "--yes")
    assert later.returncode == 0, later.stderr
    assert editions_in_ledger(tmp_path)["ren@example.com"] == "ja"
    to = [
        email.message_from_bytes(p.read_bytes())["To"]
        for p in (tmp_path / "outbox" / "new").glob("*.eml")
    ]
    assert len(to) == 4 and sum("ren@" in t for t in to) == 1


def test_the_scheduler_sends_the_editions_and_logs_them(tmp_path: Path, monkeypatch) -> None:
    import datetime as dt

    from digest import schedule
    from digest.config import load

    write_readers(tmp_path)
    config = write_site(tmp_path, None)
    monkeypatch.setenv("DIGEST_TEST_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    cfg = load(config)
    now = dt.datetime(2026, 11, 23, 9, 5, tzinfo=dt.UTC)
    result = schedule.send_window(cfg, now, schedule.issues.window_for_week(cfg, WEEK))
    assert result.action == "sent", result.detail
    assert result.detail.endswith("(sent per edition: en 3, ja 2)"), result.detail


def test_check_counts_posts_in_no_edition_as_skipped(tmp_path: Path) -> None:
    """With editions in en and ja, a post in German is in no edition: skipped and counted,
    as a newsletter in one language counts the posts in others."""
    write_readers(tmp_path)
    write_site(tmp_path, None)
    (tmp_path / "content" / "kraniche.md").write_text(
        "---\ntitle: Kraniche über dem Watt\ndate: 2026-11-19 08:00\nlang: de\n---\n"
        "Im November ziehen die Kraniche in großen Keilen über die Küste.\n"
    )
    checked = run(tmp_path, "check", "--week", WEEK)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 in another language" in checked.stdout, checked.stdout
    built = run(tmp_path, "build", "--week", WEEK)
    assert built.returncode == 0, built.stderr
    for lang in ("en", "ja"):
        assert "Kraniche" not in (tmp_path / "out" / WEEK / lang / "email.txt").read_text()
