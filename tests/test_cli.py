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
