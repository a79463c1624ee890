"""Issue 16, ``digest subscribers``: other tools' exports in, the whole list out, through
the real CLI (subprocess), a real SQLite ledger and real files. The fixtures under
tests/fixtures/exports/ are made-up addresses in each tool's column layout."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digest.config import Config, load
from digest.subscribers import Audience
from test_web import ADA, BOB, NOW, SECRET, SECRET_ENV, _write_site, send

EXPORTS = Path(__file__).parent / "fixtures" / "exports"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return load(_write_site(tmp_path))


def digest(cfg: Config, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUTF8": "1"}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(cfg.source), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def exported(cfg: Config, tmp_path: Path) -> dict[str, dict[str, str]]:
    out = tmp_path / "everyone.csv"
    r = digest(cfg, "subscribers", "export", str(out))
    assert r.returncode == 0, r.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    with out.open(encoding="utf-8", newline="") as f:
        return {row["email"]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize(
    ("name", "vendor", "active", "inactive"),
    [
        ("mailchimp_subscribed.csv", "mailchimp", {"mc.one@example.com", "mc.two@example.com"}, {}),
        ("mailchimp_unsubscribed.csv", "mailchimp", set(), {"mc.gone@example.com": "unsubscribed"}),
        ("substack.csv", "substack", {"ss.free@example.com", "ss.paid@example.com"},
         {"ss.off@example.com": "unsubscribed"}),
        ("buttondown.csv", "buttondown", {"bd.reg@example.com"},
         {"bd.new@example.com": "pending", "bd.left@example.com": "unsubscribed"}),
        ("listmonk.csv", "listmonk", {"lm.on@example.com"},
         {"lm.block@example.com": "unsubscribed"}),
    ],
)  # fmt: skip
def test_import_each_tools_export_then_send_mails_only_the_active(
    cfg: Config, tmp_path: Path, name: str, vendor: str, active: set[str], inactive: dict
) -> None:
    r = digest(cfg, "subscribers", "import", str(EXPORTS / name))
    assert r.returncode == 0, r.stderr
    assert f"as a {vendor} export" in r.stdout
    everyone = exported(cfg, tmp_path)
    for address in active:
        assert everyone[address]["state"] == "active"
        assert everyone[address]["source"] == f"import:{vendor}"
    for address, state in inactive.items():
        assert everyone[address]["state"] == state
    got = set(send(cfg, NOW))
    assert got == active | {ADA, BOB}


def test_mailchimp_names_are_joined(cfg: Config, tmp_path: Path) -> None:
    digest(cfg, "subscribers", "import", str(EXPORTS / "mailchimp_subscribed.csv"))
    assert exported(cfg, tmp_path)["mc.one@example.com"]["name"] == "Marta Castell"


def test_export_then_import_moves_the_whole_list(cfg: Config, tmp_path: Path) -> None:
    for name in ("buttondown.csv", "listmonk.csv"):
        digest(cfg, "subscribers", "import", str(EXPORTS / name))
    assert digest(cfg, "subscribers", "remove", BOB).returncode == 0
    before = exported(cfg, tmp_path)
    assert before[BOB]["state"] == "unsubscribed" and before[ADA]["state"] == "active"
    # Another newsletter (a fresh ledger, an empty CSV file) takes the export in.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(cfg.source, other / "config.toml")
    shutil.copytree(Path(cfg.source).parent / "content", other / "content")
    (other / "subscribers.csv").write_text("email\n", encoding="utf-8")
    cfg2 = load(other / "config.toml")
    r = digest(cfg2, "subscribers", "import", str(tmp_path / "everyone.csv"))
    assert r.returncode == 0, r.stderr
    after = exported(cfg2, other)
    assert {a: row["state"] for a, row in after.items()} == {
        a: row["state"] for a, row in before.items()
    }


def test_suppressed_export_and_reimport(cfg: Config, tmp_path: Path) -> None:
    digest(cfg, "subscribers", "remove", ADA)
    out = tmp_path / "suppressed.csv"
    assert digest(cfg, "subscribers", "export", "--suppressed", str(out)).returncode == 0
    assert ADA in out.read_text(encoding="utf-8")
    Path(cfg.ledger.path).unlink()
    assert digest(cfg, "subscribers", "import", "--suppressed", str(out)).returncode == 0
    assert set(send(cfg, NOW)) == {BOB}


def test_add_list_remove(cfg: Config) -> None:
    assert (
        digest(cfg, "subscribers", "add", "cli.one@example.com", "--name", "Cli One").returncode
        == 0
    )
    listed = digest(cfg, "subscribers", "list").stdout
    assert "cli.one@example.com\tactive\tcli" in listed and f"{ADA}\tactive\tcsv" in listed
    bad = digest(cfg, "subscribers", "add", "not-an-address")
    assert (
        bad.returncode == 2
        and "not a valid address" in bad.stderr
        and "Traceback" not in bad.stderr
    )
    digest(cfg, "subscribers", "remove", "cli.one@example.com")
    assert "cli.one@example.com" not in send(cfg, NOW)


@pytest.mark.parametrize("name", ["semicolon.csv", "tab.tsv"])
def test_subscribers_file_with_another_delimiter(tmp_path: Path, name: str) -> None:
    audience = Audience(EXPORTS / name)
    got = [(s.email, s.name) for s in audience]
    assert got and all(name_ and "@" in email for email, name_ in got)
    assert audience.invalid == 0


def test_subscribers_file_from_a_tool_skips_the_unsubscribed() -> None:
    audience = Audience(EXPORTS / "buttondown.csv")
    assert [s.email for s in audience] == ["bd.reg@example.com"]
    assert audience.inactive == 2


def test_unknown_status_is_a_bad_row_not_a_guess(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,status\nx@example.com,maybe\n", encoding="utf-8")
    audience = Audience(path)
    assert list(audience) == [] and audience.invalid == 1
    assert "'maybe'" in str(audience.problems[0])


def test_readers_suppressed_by_digest_bounces_are_listed_as_bounced(
    cfg: Config, tmp_path: Path
) -> None:
    from digest import bounces
    from digest.ledger import Ledger

    with Ledger(cfg.ledger.path) as ledger:  # the reasons `digest bounces` records
        ledger.suppress(ADA, reason=bounces.hard_reason("5.1.1 no such mailbox"))
        ledger.suppress(BOB, reason=bounces.soft_reason(3, 30, "4.2.2 mailbox full"))
    states = {a: row["state"] for a, row in exported(cfg, tmp_path).items()}
    assert states[ADA] == "bounced" and states[BOB] == "bounced"
