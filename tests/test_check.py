"""check.py and the build's own findings: what would go wrong, before anyone gets it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from digest.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-26T12:00:00+01:00"  # the sample's 2026-W48 issue is the latest


def newsletter(tmp: Path, *, postal: str = "1 Example Street, Berlin", extra: str = "") -> Path:
    (tmp / "content").mkdir()
    (tmp / "content" / "2026-11-18-good.md").write_text(
        "---\ntitle: A good article\n---\n\nThe lede of a good article. It reads well.\n"
    )
    cfg = tmp / "config.toml"
    cfg.write_text(
        f'[newsletter]\nname = "Test"\npostal_address = "{postal}"\n'
        '[schedule]\ntimezone = "Europe/Berlin"\n' + extra
    )
    return cfg


def run(cfg: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(cfg), "--now", NOW, *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_sample_is_clean_and_check_reports_its_size() -> None:
    code, out = run(ROOT / "config.example.toml", "check", "--latest", "--strict")
    assert code == 0, out
    assert "Issue 2026-W48: 6 articles, HTML" in out
    assert "Gmail clips above 102 KB" in out
    assert "0 error(s), 0 warning(s)" in out


def test_bad_file_image_without_alt_and_relative_link_are_reported(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path)
    (tmp_path / "content" / "2026-11-19-broken.md").write_text("---\ntitle: [oops\n---\nx\n")
    (tmp_path / "content" / "2026-11-20-pic.md").write_text(
        "---\ntitle: Pictures\nimage: https://example.com/a.png\n---\n\nA picture post.\n"
    )
    code, out = run(cfg, "check", "--latest")
    assert code == 3  # a bad file is an error
    assert "2026-11-19-broken.md:" in out and "broken YAML front matter" in out
    assert "1 error(s)" in out
    code, out = run(cfg, "check", "--latest", "--strict")
    assert code == 3


def test_missing_postal_address_is_a_warning_and_strict_fails(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path, postal="")
    code, out = run(cfg, "check", "--latest")
    assert code == 0, out
    assert "newsletter.postal_address is empty" in out
    code, _ = run(cfg, "check", "--latest", "--strict")
    assert code == 3


def test_a_template_that_loses_the_unsubscribe_link_is_caught_by_build_and_check(
    tmp_path: Path,
) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "footer.mjml.j2").write_text(
        '<mj-section><mj-column><mj-text>Bye. <a href="/about">About</a>'
        "</mj-text></mj-column></mj-section>\n"
    )
    cfg = newsletter(tmp_path, extra='[templates]\nfolder = "tpl"\n')
    code, out = run(cfg, "check", "--latest")
    assert code == 3
    assert "no unsubscribe link" in out
    assert "relative link (readers can't follow it): /about" in out
    assert "the postal address is missing from the email" in out
    code, out = run(cfg, "build", "--latest")
    assert "no unsubscribe link" in out  # build says so too, not only check


def test_empty_week_is_a_notice_not_an_error(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path)
    code, out = run(cfg, "check", "--week", "2026-W40")
    assert code == 0, out
    assert "notice: nothing to send for 2026-W40" in out


def test_issue_json_describes_the_issue(tmp_path: Path) -> None:
    code, out = run(ROOT / "config.example.toml", "build", "--latest", "--out", str(tmp_path))
    assert code == 0, out
    data = json.loads((tmp_path / "2026-W48" / "issue.json").read_text())
    assert data["id"] == "2026-W48" and data["number"] == 1  # the first issue this newsletter sends
    assert data["send_at"] == "2026-11-23T09:00:00+01:00"
    assert len(data["articles"]) == 6
    first = data["articles"][0]
    assert first["source"] == "2026-11-17-passkeys-at-banks.md"
    assert first["url"].startswith("https://example.com/")
    assert first["summary"] and len(first["key_points"]) == 3
    html = (tmp_path / "2026-W48" / "email.html").read_bytes()
    assert data["sizes"]["html_bytes"] == len(html)  # the file as written


def test_unwritable_output_and_out_of_range_week_are_messages(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out_dir = blocker / "out"
    code, out = run(ROOT / "config.example.toml", "build", "--latest", "--out", str(out_dir))
    assert code == 1
    assert f"cannot write {out_dir}/2026-W48" in out and "check --out" in out
    code, out = run(ROOT / "config.example.toml", "build", "--week", "0001-W01")
    assert code == 2 and "out of range" in out


# --- headers a send would refuse (issue 13) ---------------------------------------------


def long_name(tmp: Path) -> Path:
    cfg = newsletter(tmp)
    name = " ".join(["Weekly"] * 200)  # 1,399 characters: the List-Id line is too long
    cfg.write_text(cfg.read_text().replace('name = "Test"', f'name = "{name}"'))
    (tmp / "subscribers.csv").write_text("email,name\nada@example.com,Ada\n")
    return cfg


def test_check_builds_every_header_a_send_would(tmp_path: Path) -> None:
    code, out = run(long_name(tmp_path), "check", "--latest")
    assert code != 0, out
    assert "newsletter.name" in out and "List-Id" in out and "1 error(s)" in out


def test_send_refuses_a_header_it_cannot_write_before_freezing(tmp_path: Path) -> None:
    import sqlite3

    cfg = long_name(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "--now", NOW, "send", "--latest", "--yes"]
    )
    assert result.exit_code == 2, result.output  # a config error, not a crash
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "newsletter.name" in result.output and "List-Id" in result.output
    ledger = tmp_path / "digest.sqlite3"
    if ledger.exists():
        with sqlite3.connect(ledger) as db:
            assert db.execute("SELECT count(*) FROM issues").fetchone() == (0,)
    assert not list(tmp_path.glob("outbox/new/*.eml"))


def test_check_counts_what_it_skipped_quietly_in_words_that_agree(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path)
    (tmp_path / "content" / "about.md").write_text("---\ntitle: About us\n---\nWho we are.\n")
    code, out = run(cfg, "check", "--latest")
    assert code == 0 and "Skipped quietly: 1 page (not a post)" in out, out
