"""No article lost, none sent twice, numbers that never change: issues placed by the
ledger's history (early, late and skipped sends, a changed send day)."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import pytest

from digest import config, pipeline, sending
from digest.errors import NothingToSend
from digest.ledger import Ledger

MONDAY = dt.datetime(2026, 9, 7, 9, 0, tzinfo=dt.UTC)  # a send time (Mon 09:00 UTC)
WEEK = dt.timedelta(days=7)


def newsletter(tmp: Path) -> config.Config:
    (tmp / "content").mkdir()
    (tmp / "subscribers.csv").write_text("email\nreader@example.com\n")
    return config.parse(
        {
            "content": {"folder": str(tmp / "content")},
            "schedule": {"timezone": "UTC", "day": "mon", "time": "09:00", "grace_hours": 48},
            "subscribers": {"file": str(tmp / "subscribers.csv")},
            "ledger": {"path": str(tmp / "ledger.sqlite3")},
            "output": {"folder": str(tmp / "out")},
            "delivery": {"outbox": str(tmp / "outbox")},
            "newsletter": {"postal_address": "1 Example Street"},
        },
        source=tmp / "config.toml",
    )


def publish(cfg: config.Config, name: str, when: dt.datetime) -> None:
    (cfg.content.folder / f"{name}.md").write_text(
        f"---\ntitle: Story {name}\ndate: {when.isoformat()}\n---\nText of {name}.\n"
    )


def sent_titles(cfg: config.Config) -> dict[str, list[str]]:
    with Ledger(cfg.ledger.path, readonly=True) as ledger:
        return {r.id: sorted(set(re.findall(r"Story (a\d+)", r.text))) for r in ledger.issues()}


@pytest.mark.parametrize("seed", range(6))
def test_every_article_goes_out_in_exactly_one_issue(tmp_path: Path, seed: int) -> None:
    """Random publish times; each week sent early, on time, late, or not at all."""
    rng = random.Random(seed)
    cfg = newsletter(tmp_path)
    weeks = 6
    start = MONDAY - WEEK  # the first issue's window opens here
    articles = {}
    for i in range(rng.randint(8, 20)):
        when = start + dt.timedelta(seconds=rng.randrange(int((weeks * WEEK).total_seconds())))
        articles[f"a{i}"] = when
        publish(cfg, f"a{i}", when)
    clock = start
    closes: list[dt.datetime] = []
    for w in range(weeks):
        send_at = MONDAY + w * WEEK
        action = rng.choice(["early", "on time", "late", "skip"])
        if action == "skip":
            continue
        offset = {
            "early": -dt.timedelta(minutes=rng.randrange(1, 6 * 24 * 60)),
            "on time": dt.timedelta(minutes=1),
            "late": dt.timedelta(hours=rng.randrange(1, 40)),
        }[action]
        now = max(send_at + offset, clock + dt.timedelta(minutes=1))  # time runs forward
        clock = now
        week = f"{send_at.isocalendar().year}-W{send_at.isocalendar().week:02d}"
        try:
            sending.send(cfg, now, pipeline.Selection(week=week), yes=True)
        except NothingToSend:
            continue
        closes.append(min(now, send_at))
    sent = sent_titles(cfg)
    got: dict[str, list[str]] = {}
    for issue, names in sent.items():
        for name in names:
            got.setdefault(name, []).append(issue)
    past = pipeline.history(cfg)
    # The first issue sent covers its own week; what came before it is the archive.
    first = min((f.since for f in past if f.since), default=start)
    last = max(closes) if closes else start
    for name, when in articles.items():
        expected = 1 if first <= when < last else 0
        assert len(got.get(name, [])) == expected, (name, when, got.get(name), sent)


def test_an_early_send_closes_its_week_and_the_next_issue_starts_there(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path)
    publish(cfg, "a1", MONDAY - dt.timedelta(days=3))
    sending.send(cfg, MONDAY - dt.timedelta(days=2), pipeline.Selection(week="2026-W37"))
    # Published after the early send, still before its scheduled time: next issue.
    publish(cfg, "a2", MONDAY - dt.timedelta(days=1))
    built = pipeline.prepare(cfg, MONDAY + dt.timedelta(days=1), pipeline.Selection())
    assert built.issue.id == "2026-W38"
    assert [i.article.title for i in built.issue.items] == ["Story a2"]
    assert built.issue.number == 2  # #1 was the first issue this newsletter sent


def test_numbers_come_from_the_ledger_and_older_posts_renumber_nothing(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path)
    publish(cfg, "a1", MONDAY - dt.timedelta(days=2))
    first = pipeline.prepare(cfg, MONDAY - dt.timedelta(hours=1), pipeline.Selection())
    assert first.issue.number == 1  # years of older posts do not make this #600
    sending.send(cfg, MONDAY + dt.timedelta(minutes=5), pipeline.Selection(week="2026-W37"))
    publish(cfg, "old", MONDAY - 300 * WEEK)  # an old post added later
    publish(cfg, "a2", MONDAY + dt.timedelta(days=2))
    second = pipeline.prepare(cfg, MONDAY + dt.timedelta(days=3), pipeline.Selection())
    assert second.issue.number == 2
    again = pipeline.prepare(
        cfg, MONDAY + dt.timedelta(days=3), pipeline.Selection(week="2026-W37")
    )
    assert again.issue.number == 1  # a sent issue keeps its number
    assert again.notice is not None and "2026-W37 was already sent (#1)" in again.notice
    assert "goes out in 2026-W38" in again.notice and second.notice is None


def test_first_issue_setting_still_counts_weeks(tmp_path: Path) -> None:
    cfg = newsletter(tmp_path)
    cfg = cfg.model_copy(
        update={"newsletter": cfg.newsletter.model_copy(update={"first_issue": "2026-W35"})}
    )
    publish(cfg, "a1", MONDAY - dt.timedelta(days=2))
    built = pipeline.prepare(cfg, MONDAY - dt.timedelta(hours=1), pipeline.Selection())
    assert built.issue.number == 3  # W35, W36, W37
