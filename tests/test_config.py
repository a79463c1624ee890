"""config.py: typed settings, every problem at once with its dotted key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest import config
from digest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_is_valid_and_has_no_unknown_keys() -> None:
    cfg = config.load(ROOT / "config.example.toml")
    assert cfg.warnings == ()
    assert cfg.schedule.timezone == "Europe/Berlin"
    assert cfg.content.folder == ROOT / "content"  # relative to the config file


def test_example_config_documents_every_setting() -> None:
    text = (ROOT / "config.example.toml").read_text()
    for section, model in config.settings(config.Config).items():
        if section in ("source", "warnings", "export"):
            continue
        assert f"[{section}]" in text, section
        for key in config.settings(model):
            assert f"{key} =" in text, f"{section}.{key} is not documented"


def test_all_problems_reported_at_once_with_dotted_keys(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text(
        '[schedule]\ntimezone = "Europe/Berln"\nday = "someday"\ntime = "25:00"\n'
        '[content]\nsummary_words = "many"\n[delivery]\ntransport = "pigeon"\n'
    )
    with pytest.raises(ConfigError) as exc:
        config.load(f)
    keys = [k for k, _ in exc.value.problems]
    assert keys == [
        "schedule.timezone",
        "schedule.day",
        "schedule.time",
        "content.summary_words",
        "delivery.transport",
    ]
    text = str(exc.value)
    assert "schedule.timezone: 'Europe/Berln' is not a known time zone" in text
    assert str(f) in text


def test_unknown_keys_warn_but_load(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text('[newsletter]\nnmae = "x"\n[bogus]\na = 1\n')
    cfg = config.load(f)
    assert any(w.startswith("newsletter.nmae:") for w in cfg.warnings)
    assert any(w.startswith("bogus:") for w in cfg.warnings)


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[newsletter\nname = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        config.load(bad)


def test_header_injection_in_names_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        config.parse({"sender": {"name": "A\r\nBcc: x@evil.test", "email": "a@b\n.c"}})
    assert {k for k, _ in exc.value.problems} == {"sender.name", "sender.email"}


def test_secrets_come_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.parse({"smtp": {"password_env": "MY_RELAY_PW"}})
    monkeypatch.delenv("MY_RELAY_PW", raising=False)
    assert cfg.smtp.password() is None
    monkeypatch.setenv("MY_RELAY_PW", "s3cret")
    assert cfg.smtp.password() == "s3cret"
    assert "s3cret" not in repr(cfg)
    assert os.environ["MY_RELAY_PW"] == "s3cret"


def test_a_single_problem_reads_as_one_line(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text('[schedule]\nday = "someday"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(f)
    assert str(exc.value) == (
        f"{f}: schedule.day: 'someday' is not a weekday; use one of mon, tue, wed, thu, fri, "
        "sat, sun"
    )


def test_a_missing_templates_folder_and_crossed_sizes_are_errors(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text('[templates]\nfolder = "nope"\n[output]\nwarn_kb = 120\n')
    with pytest.raises(ConfigError) as exc:
        config.load(f)
    assert [k for k, _ in exc.value.problems] == ["templates.folder", "output.warn_kb"]
    assert "nope' is not a folder" in str(exc.value)
    (tmp_path / "nope").mkdir()
    f.write_text('[templates]\nfolder = "nope"\n')
    assert config.load(f).templates.folder == tmp_path / "nope"


def test_wrong_types_and_bounds_name_the_key_and_the_fix(tmp_path: Path) -> None:
    """Issue 14 (no pydantic): every kind of bad value, all at once, each with its key."""
    f = tmp_path / "config.toml"
    f.write_text(
        "[delivery]\nconcurrency = 0\nretry_seconds = 0\nmax_attempts = 51\n"
        'rate_per_second = "fast"\n[content]\nlead = "yes"\nexclude = "README*"\n'
        '[export.listmonk]\nlist_ids = [1, "two"]\n[web]\nport = 80.5\n'
    )
    with pytest.raises(ConfigError) as exc:
        config.load(f)
    problems = dict(exc.value.problems)
    assert problems == {
        "delivery.concurrency": "0 is too small; use 1 or more",
        "delivery.retry_seconds": "0.0 is too small; use more than 0",
        "delivery.max_attempts": "51 is too large; use 50 or less",
        "delivery.rate_per_second": "'fast' is not a number",
        "content.lead": "'yes' is not true or false",
        "content.exclude": '\'README*\' is not a list; use e.g. ["a", "b"]',
        "export.listmonk.list_ids.1": "'two' is not a whole number",
        "web.port": "80.5 is not a whole number",
    }


def test_keys_given_are_told_from_defaults_and_copies_keep_them() -> None:
    given = config.parse({"newsletter": {"base_url": "https://example.com/"}})
    assert given.newsletter.base_url == "https://example.com"  # normalised by its check
    assert given.newsletter.base_url_set
    assert not config.parse({}).newsletter.base_url_set  # the same value, but a default
    copy = given.model_copy(update={"output": given.output.model_copy(update={"max_kb": 200})})
    assert copy.newsletter.base_url_set and copy.output.max_kb == 200
    assert config.parse({"schedule": {"day": "Friday"}}).schedule.day == "fri"


def test_sections_are_frozen_values_built_by_keyword() -> None:
    """Config sections share one __init__, ==, hash and repr (issue 14: no generated
    methods at import); they behave as frozen dataclasses did."""
    import copy
    import dataclasses
    import pickle

    from digest import config as c

    cfg = c.load(Path(__file__).resolve().parents[1] / "config.example.toml")
    assert cfg == copy.deepcopy(cfg) == pickle.loads(pickle.dumps(cfg))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.newsletter.name = "Other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del cfg.smtp.host  # type: ignore[misc]
    smtp = c.Smtp(host="mail.example.com", port=465)
    assert smtp == c.Smtp(host="mail.example.com", port=465) != c.Smtp()
    assert hash(smtp) == hash(c.Smtp(host="mail.example.com", port=465))
    assert repr(smtp).startswith("Smtp(host='mail.example.com', port=465, security=")
    assert dataclasses.replace(smtp, port=25).port == 25 and smtp.port == 465
    assert [f.name for f in dataclasses.fields(c.Dkim)][:3] == ["domain", "selector", "key_file"]
    with pytest.raises(TypeError, match="unexpected keys: hots"):
        c.Smtp(hots="typo")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no __post_init__"):

        class Later(c._Section):
            x: int = 1

            def __post_init__(self) -> None:
                pass


def test_model_values_are_frozen_and_compared_by_value() -> None:
    """model.py's classes share ==, hash, repr and frozenness (issue 14, as for sections)."""
    import dataclasses
    import pickle

    from digest.model import KeyPoint, Problem, Summary

    p = Problem(Path("a.md"), 3, "no title")
    assert p == Problem(Path("a.md"), 3, "no title") != Problem(Path("a.md"), 4, "no title")
    assert {p: 1}[Problem(Path("a.md"), 3, "no title")] == 1 and pickle.loads(pickle.dumps(p)) == p
    assert repr(Summary("x", (KeyPoint("Cost", "up"),))) == (
        "Summary(text='x', key_points=(KeyPoint(lead='Cost', text='up'),), standfirst='')"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.line = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.extra = 1  # type: ignore[attr-defined]
    assert dataclasses.replace(p, line=5).line == 5 and p.line == 3
