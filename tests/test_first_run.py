"""A new newsletter starts with its own values, and no real send goes out with the
example's or with TODO markers still in the config."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from digest.cli import main
from smtp_server import SmtpServer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "x7Rk2pQ9vLm4Tz8Wc1Nb6Yh3Jd5Fg0Sa"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), env=env)
    finally:
        os.chdir(old)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_init_names_the_newsletter_after_its_folder_and_marks_what_to_fill(
    tmp_path: Path,
) -> None:
    code, out = run("init", "weekly-notes", cwd=tmp_path)
    assert code == 0, out
    text = (tmp_path / "weekly-notes" / "config.toml").read_text()
    assert 'name = "Weekly Notes"' in text and "Signal Weekly" not in text
    assert text.count("TODO") >= 3
    code, out = run("build", "--latest", cwd=tmp_path / "weekly-notes")
    assert code == 0 and "Weekly Notes #1" in out  # building works at once


def test_a_real_send_refuses_example_and_todo_values_naming_the_keys(tmp_path: Path) -> None:
    run("init", "news", cwd=tmp_path)
    folder = tmp_path / "news"
    config = folder / "config.toml"
    config.write_text(config.read_text().replace('transport = "outbox"', 'transport = "smtp"'))
    (folder / "subscribers.csv").write_text("email\nreader@example.org\n")
    env = {"DIGEST_SECRET": SECRET}
    code, out = run("send", "--latest", "--yes", cwd=folder, env=env)
    assert code == 2, out  # a config error, before any connection is tried
    for key in ("newsletter.base_url", "newsletter.postal_address", "sender.email"):
        assert key in out
    ledger = folder / "digest.sqlite3"
    if ledger.exists():  # nothing was frozen: the first real send starts from scratch
        from digest.ledger import Ledger

        with Ledger(ledger, readonly=True) as opened:
            assert opened.issues() == []
    # The outbox (the default) is for trying things out: it still works as it is.
    config.write_text(config.read_text().replace('transport = "smtp"', 'transport = "outbox"'))
    code, out = run("send", "--latest", "--yes", cwd=folder, env=env)
    assert code == 0, out


def test_a_copied_example_config_cannot_mail_real_readers(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text()
    text = text.replace('folder = "content"', f'folder = "{ROOT / "content"}"', 1)
    text = text.replace(
        'file = "subscribers.example.csv"', f'file = "{ROOT}/subscribers.example.csv"'
    )
    text = text.replace('transport = "outbox"', 'transport = "smtp"')
    (tmp_path / "config.toml").write_text(text)
    code, out = run(
        "--now", "2026-11-26T12:00:00+01:00", "send", "--latest", "--yes",
        cwd=tmp_path, env={"DIGEST_SECRET": SECRET},
    )  # fmt: skip
    assert code == 2, out
    for key in ("newsletter.base_url", "newsletter.postal_address", "sender.email", "sender.name"):
        assert f"{key}: is the example's value" in out


def test_a_folder_name_with_quotes_and_a_backslash_makes_a_valid_config(tmp_path: Path) -> None:
    folder = 'ops "weekly"\\notes'
    code, out = run("init", folder, cwd=tmp_path)
    assert code == 0, out
    from digest.config import load

    cfg = load(tmp_path / folder / "config.toml")
    assert cfg.newsletter.name == cfg.sender.name == 'Ops "weekly"\\notes'


def test_a_real_send_refuses_placeholder_defaults_left_unset(tmp_path: Path) -> None:
    """A config that never names the base URL or the sender would mail links to
    example.com (the unsubscribe link among them) from newsletter@example.com."""
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "post.md").write_text(
        "---\ntitle: A post\ndate: 2026-11-18\n---\n\nA post about the garden.\n"
    )
    (tmp_path / "subscribers.csv").write_text("email\nreader@example.org\n")
    base = (
        '[content]\nfolder = "content"\n\n[subscribers]\nfile = "subscribers.csv"\n\n'
        '[delivery]\ntransport = "smtp"\n\n[smtp]\nhost = "127.0.0.1"\nport = 9\n'
    )
    (tmp_path / "config.toml").write_text(base)
    code, out = run("--now", "2026-11-23T12:00:00+01:00", "check", cwd=tmp_path)
    assert "newsletter.base_url: is not set" in out and "(a real send refuses)" in out, out
    args = ("--now", "2026-11-23T12:00:00+01:00", "send", "--latest", "--yes")
    code, out = run(*args, cwd=tmp_path, env={"DIGEST_SECRET": SECRET})
    assert code == 2, out
    assert "newsletter.base_url: is not set, and its default (https://example.com)" in out
    assert "sender.email: is not set, and its default (newsletter@example.com)" in out
    # With the web version's own address, the base URL's placeholder reaches no reader.
    with SmtpServer() as smtp:
        (tmp_path / "config.toml").write_text(
            '[newsletter]\narchive_url = "https://news.example.org/letters"\n\n'
            '[sender]\nemail = "news@example.org"\n\n'
            + base.replace("port = 9", f'port = {smtp.port}\nsecurity = "none"')
        )
        code, out = run(*args, cwd=tmp_path, env={"DIGEST_SECRET": SECRET})
        assert code == 0, out
        (message,) = smtp.messages
    assert b"https://news.example.org/letters/unsubscribe/" in message.data
