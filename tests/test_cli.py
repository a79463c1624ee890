"""cli.py: every command is documented, errors are messages and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"digest {name} --help has no example"


def test_config_error_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[schedule]\ntimezone = "Mars/Olympus"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "build"])
    assert result.exit_code == 2
    assert "schedule.timezone: 'Mars/Olympus' is not a known time zone" in result.output
    assert "Traceback" not in result.output


def test_init_scaffolds_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "news"
    first = CliRunner().invoke(main, ["init", str(target), "--templates"])
    assert first.exit_code == 0, first.output
    assert (target / "config.toml").is_file()
    assert (target / "subscribers.csv").read_text() == "email,name\n"
    assert len(list((target / "content").glob("*.md"))) == 1
    assert list((target / "templates").iterdir())
    assert 'folder = "templates"' in (target / "config.toml").read_text()
    before = (target / "config.toml").read_text()
    second = CliRunner().invoke(main, ["init", str(target)])
    assert second.exit_code == 1
    assert "not overwriting existing files" in second.output
    assert (target / "config.toml").read_text() == before


# -- issue 13: the ledger's upkeep ----------------------------------------------------------


def _example(tmp_path: Path) -> Path:
    """The bundled example (outbox transport) copied into tmp_path; returns its config."""
    import shutil

    shutil.copytree(ROOT / "content", tmp_path / "content")
    shutil.copy(ROOT / "subscribers.example.csv", tmp_path)
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"


def _digest(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def _sent_to(tmp_path: Path) -> list[str]:
    import email

    found = []
    for path in sorted((tmp_path / "outbox" / "new").glob("*.eml")):
        found.append(email.message_from_bytes(path.read_bytes())["To"])
    return found


def test_status_and_send_on_a_damaged_ledger_say_what_to_do(tmp_path: Path) -> None:
    config = _example(tmp_path)
    assert _digest(config, "send", "--latest", "--yes").exit_code == 0
    ledger = tmp_path / "digest.sqlite3"
    data = bytearray(ledger.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = bytes(len(data) - page)  # every page after the first zeroed: malformed
    ledger.write_bytes(bytes(data))
    for args in (["status"], ["send", "--latest", "--yes"], ["ledger", "backup", "b.sqlite3"]):
        result = _digest(config, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        assert str(ledger) in result.output and "digest ledger check" in result.output, args
    check = _digest(config, "ledger", "check")
    assert check.exit_code == 1 and "damaged" in check.output and "backup" in check.output


def test_ledger_check_backup_and_a_lost_ledger_mails_no_one_who_unsubscribed(
    tmp_path: Path,
) -> None:
    config = _example(tmp_path)
    ledger = tmp_path / "digest.sqlite3"
    assert _digest(config, "send", "--latest", "--yes").exit_code == 0
    everyone = _sent_to(tmp_path)
    from digest.ledger import Ledger

    with Ledger(ledger) as opened:
        opened.suppress("ada@example.com")
    check = _digest(config, "ledger", "check")
    assert check.exit_code == 0 and "ok" in check.output and "1 suppressed" in check.output
    backup = _digest(config, "ledger", "backup", str(tmp_path / "backups" / "b.sqlite3"))
    assert backup.exit_code == 0, backup.output
    export = _digest(config, "ledger", "export-suppressions", str(tmp_path / "s.csv"))
    assert export.exit_code == 0 and "1 suppressed" in export.output
    # The ledger is lost. Without the import, the next send mails Ada again.
    ledger.unlink()
    imported = _digest(config, "ledger", "import-suppressions", str(tmp_path / "s.csv"))
    assert imported.exit_code == 0 and "1 new" in imported.output, imported.output
    for eml in (tmp_path / "outbox" / "new").glob("*.eml"):
        eml.unlink()
    assert _digest(config, "send", "--latest", "--yes").exit_code == 0
    again = _sent_to(tmp_path)
    assert again and not any("ada@example.com" in to.lower() for to in again)
    assert len(again) == len(everyone) - 1
