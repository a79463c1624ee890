"""schedule.py (and digest.py's send times): when the weekly send fires, once per issue.

Europe/Berlin switch days in 2026: clocks go forward on Sun 03-29 (02:00 -> 03:00) and
back on Sun 10-25 (03:00 -> 02:00, so 02:00..02:59 happens twice). A send time of Sunday
02:30 falls into the skipped hour on the first and the repeated hour on the second.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_EXECUTED
from click.testing import CliRunner

from digest import cli, config, schedule, scheduler
from digest import issue as issues
from digest.ledger import Ledger
from smtp_server import Faults, SmtpServer

UTC = dt.UTC
BERLIN = "Europe/Berlin"
SECOND = dt.timedelta(seconds=1)


def cfg(day: str = "sun", time: str = "02:30", tz: str = BERLIN, **sched: object) -> config.Config:
    return config.parse({"schedule": {"timezone": tz, "day": day, "time": time, **sched}})


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# --- digest.py: window edges in DST weeks -------------------------------------------------

SPRING_SEND = utc(2026, 3, 29, 1, 30)  # 02:30 does not exist: sent at 03:30 CEST
AUTUMN_SEND = utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first of the two 02:30s


@pytest.mark.parametrize(
    ("send_at", "this", "before", "after"),
    [
        (SPRING_SEND, "2026-W13", "2026-W12", "2026-W14"),
        (AUTUMN_SEND, "2026-W43", "2026-W42", "2026-W44"),
    ],
)
def test_window_edges_one_second_before_and_at_the_send_time_in_a_dst_week(
    send_at: dt.datetime, this: str, before: str, after: str
) -> None:
    c = cfg()
    assert issues.window_for_week(c, this).send_at == send_at
    # One second before: still inside this issue's window; the previous one is due.
    w = issues.window_containing(c, send_at - SECOND)
    assert (w.id, w.send_at) == (this, send_at)
    assert w.contains(send_at - SECOND)
    assert issues.due_window(c, send_at - SECOND).id == before
    assert issues.next_window(c, send_at - SECOND).id == this
    # At the boundary: the instant belongs to the next window; this issue is due.
    w = issues.window_containing(c, send_at)
    assert (w.id, w.since) == (after, send_at)
    assert not issues.window_for_week(c, this).contains(send_at)
    assert issues.due_window(c, send_at).id == this
    assert issues.next_window(c, send_at).id == after


def test_window_edges_hold_for_local_times_given_in_the_newsletter_zone() -> None:
    # Aware datetimes sharing a ZoneInfo compare by wall time and ignore ``fold``: 02:15
    # in the repeated hour (CET, 01:15 UTC) is 45 minutes *after* the 02:30 CEST send.
    c = cfg()
    tz = c.schedule.tz
    second_0215 = dt.datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=tz)
    assert second_0215.astimezone(UTC) == utc(2026, 10, 25, 1, 15)
    assert issues.window_containing(c, second_0215).id == "2026-W44"
    assert not issues.window_for_week(c, "2026-W43").contains(second_0215)
    assert issues.window_for_week(c, "2026-W44").contains(second_0215)
    assert issues.due_window(c, second_0215).id == "2026-W43"
    # The first 02:29:59 (CEST) is one second before the send.
    first_0229 = dt.datetime(2026, 10, 25, 2, 29, 59, fold=0, tzinfo=tz)
    assert issues.window_containing(c, first_0229).id == "2026-W43"


def test_dst_week_windows_are_an_hour_shorter_or_longer_and_never_overlap() -> None:
    c = cfg()
    weeks = [issues.window_for_week(c, f"2026-W{n:02d}") for n in (12, 13, 14, 42, 43, 44)]
    lengths = {w.id: w.send_at - w.since for w in weeks}
    assert lengths["2026-W13"] == dt.timedelta(days=7)  # 02:30 CET -> 03:30 CEST: same UTC
    assert lengths["2026-W14"] == dt.timedelta(days=7, hours=-1)  # 03:30 CEST -> 02:30 CEST
    assert lengths["2026-W44"] == dt.timedelta(days=7, hours=1)  # 02:30 CEST -> 02:30 CET
    for a, b in (weeks[0:2], weeks[1:3], weeks[3:5], weeks[4:6]):
        assert a.send_at == b.since  # each window starts where the previous one ends


# --- send times: summer, winter and the switch days --------------------------------------


@pytest.mark.parametrize(
    ("after", "expected_utc"),
    [
        (utc(2026, 1, 10), utc(2026, 1, 12, 8)),  # winter: 09:00 CET = 08:00 UTC
        (utc(2026, 7, 10), utc(2026, 7, 13, 7)),  # summer: 09:00 CEST = 07:00 UTC
    ],
)
def test_send_time_is_the_local_time_in_winter_and_summer(
    after: dt.datetime, expected_utc: dt.datetime
) -> None:
    c = cfg("mon", "09:00")
    (send_at,) = issues.upcoming(c, after, 1)
    assert send_at == expected_utc
    local = send_at.astimezone(c.schedule.tz)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def fires(trigger: scheduler.SendTimes, start: dt.datetime, until: dt.datetime) -> list:
    """Walk a trigger the way APScheduler's Job._get_run_times does."""
    out, prev = [], None
    nxt = trigger.get_next_fire_time(None, start)
    while nxt <= until:
        out.append(nxt.astimezone(UTC))
        prev = nxt
        nxt = trigger.get_next_fire_time(prev, prev)
    return out


def test_trigger_fires_once_on_each_switch_day_at_digests_send_time() -> None:
    c = cfg()
    t = scheduler.SendTimes(c)
    spring = fires(t, utc(2026, 3, 21), utc(2026, 4, 6))
    assert spring == [utc(2026, 3, 22, 1, 30), SPRING_SEND, utc(2026, 4, 5, 0, 30)]
    autumn = fires(t, utc(2026, 10, 17), utc(2026, 11, 2))
    assert autumn == [utc(2026, 10, 18, 0, 30), AUTUMN_SEND, utc(2026, 11, 1, 1, 30)]
    # The same instants as the issue windows' send times.
    assert [issues.due_window(c, f).send_at for f in spring + autumn] == spring + autumn


def test_trigger_over_a_year_fires_once_a_week_at_0230_local_or_0330_on_the_gap_day() -> None:
    c = cfg()
    got = fires(scheduler.SendTimes(c), utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(got) == 52 == len({issues.due_window(c, f).id for f in got})
    local = [f.astimezone(c.schedule.tz) for f in got]
    assert all(x.weekday() == 6 for x in local)
    assert [x.strftime("%H:%M") for x in local if x.strftime("%H:%M") != "02:30"] == ["03:30"]
    assert all(
        (b - a) in {dt.timedelta(days=7, hours=h) for h in (-1, 0, 1)}
        for a, b in itertools.pairwise(got)
    )


def test_trigger_first_fire_is_at_or_after_now_and_never_repeats_after_a_clock_step_back() -> None:
    c = cfg()
    t = scheduler.SendTimes(c)
    assert t.get_next_fire_time(None, AUTUMN_SEND) == AUTUMN_SEND
    assert t.get_next_fire_time(None, AUTUMN_SEND + SECOND) == utc(2026, 11, 1, 1, 30)
    # The clock is set back an hour after the fire (e.g. a bad NTP step): no second fire.
    assert t.get_next_fire_time(AUTUMN_SEND, AUTUMN_SEND - dt.timedelta(hours=1)) == utc(
        2026, 11, 1, 1, 30
    )


def test_next_sends_names_the_issue_and_marks_the_switch_days() -> None:
    c = cfg()
    got = schedule.next_sends(c, utc(2026, 3, 20), 3)
    assert [i for i, _ in got] == ["2026-W12", "2026-W13", "2026-W14"]
    lines = [schedule.describe(c, t) for _, t in got]
    assert lines[0] == "Sun 2026-03-22 02:30 CET (01:30 UTC)"
    assert lines[1].startswith("Sun 2026-03-29 03:30 CEST (01:30 UTC); 02:30 does not exist")
    assert lines[2] == "Sun 2026-04-05 02:30 CEST (00:30 UTC)"
    ((_, autumn),) = schedule.next_sends(c, utc(2026, 10, 24), 1)
    assert "happens twice that day, sent at the first" in schedule.describe(c, autumn)
    # A UTC date that differs from the local one is spelled out.
    nz = cfg("mon", "09:00", "Pacific/Auckland")
    ((_, t),) = schedule.next_sends(nz, utc(2026, 7, 1), 1)
    assert schedule.describe(nz, t) == "Mon 2026-07-06 09:00 NZST (Sun 2026-07-05 21:00 UTC)"


# --- what is due, and the grace period ----------------------------------------------------


def test_due_inside_and_outside_the_grace_period() -> None:
    c = cfg("mon", "09:00", grace_hours=6)
    send = utc(2026, 11, 23, 8)  # Mon 09:00 CET
    assert schedule.check_due(c, send - SECOND).window.id == "2026-W47"
    for late in (dt.timedelta(0), dt.timedelta(hours=6)):
        d = schedule.check_due(c, send + late)
        assert (d.window.id, d.in_grace) == ("2026-W48", True)
    d = schedule.check_due(c, send + dt.timedelta(hours=6) + SECOND)
    assert (d.window.id, d.in_grace) == ("2026-W48", False)
    assert "past the grace of 6 h" in d.explain(c)
    assert "digest send --issue 2026-W48" in d.explain(c)


def test_grace_across_the_autumn_switch_is_measured_in_real_time() -> None:
    # 6 real hours after 02:30 CEST is 07:30 CET: wall clocks show 5 hours.
    c = cfg(grace_hours=6)
    tz = c.schedule.tz
    assert schedule.check_due(c, dt.datetime(2026, 10, 25, 7, 30, tzinfo=tz)).in_grace
    assert not schedule.check_due(c, dt.datetime(2026, 10, 25, 7, 31, tzinfo=tz)).in_grace


def test_zero_grace_still_allows_a_late_fire_by_seconds() -> None:
    c = cfg("mon", "09:00", grace_hours=0)
    send = utc(2026, 11, 23, 8)
    assert schedule.check_due(c, send + 30 * SECOND).in_grace
    assert not schedule.check_due(c, send + dt.timedelta(minutes=2)).in_grace


# --- real sends: the scheduler, a real SMTP server on 127.0.0.1, a real ledger ----------
#
# The clock is moved with time-machine (tick=True: it keeps running from the new time),
# which APScheduler, the ledger and digest all read; waits stay real.

SECRET_ENV = "DIGEST_TEST_SCHEDULE_SECRET"


def write_site(
    folder: Path,
    port: int,
    articles: list[str],
    *,
    recipients: int = 5,
    day: str = "mon",
    time: str = "09:00",
    grace_hours: float = 6,
    concurrency: int = 2,
) -> Path:
    """A newsletter folder: config.toml, articles dated ``articles`` (ISO), subscribers."""
    (folder / "content").mkdir(parents=True)
    for n, when in enumerate(articles):
        (folder / "content" / f"post-{n}.md").write_text(
            f'---\ntitle: "Post number {n}"\ndate: {when}\n---\n\n'
            f"Post {n} is about the grid. It has a second sentence for the summary.\n",
            encoding="utf-8",
        )
    rows = "".join(f"reader{i}@example.com,Reader {i}\n" for i in range(recipients))
    (folder / "subscribers.csv").write_text("email,name\n" + rows, encoding="utf-8")
    path = folder / "config.toml"
    path.write_text(
        f"""
[newsletter]
base_url = "https://news.example.org"

[sender]
email = "news@example.org"

[schedule]
timezone = "{BERLIN}"
day = "{day}"
time = "{time}"
grace_hours = {grace_hours}

[content]
folder = "content"

[subscribers]
file = "subscribers.csv"

[ledger]
path = "digest.sqlite3"

[delivery]
transport = "smtp"
concurrency = {concurrency}

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout = 10

[unsubscribe]
secret_env = "{SECRET_ENV}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv(SECRET_ENV, "a-test-secret-that-is-long-enough")
    with SmtpServer() as server:
        yield server


def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def sent_once(server: SmtpServer, recipients: int) -> bool:
    got = server.by_recipient()
    return len(got) == recipients and all(len(ids) == 1 for ids in got.values())


class Running:
    """A schedule.Runner in a thread (the same object ``digest schedule`` runs)."""

    def __init__(self, cfg: config.Config) -> None:
        self.runner = scheduler.Runner(cfg)
        self.code: int | None = None
        self.outcomes: list[schedule.RunResult] = []
        self.runner.scheduler.add_listener(
            lambda event: self.outcomes.append(event.retval), EVENT_JOB_EXECUTED
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.runner.run()

    def stop(self) -> int | None:
        self.runner.request_stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.code

    def next_run(self) -> dt.datetime:
        job = self.runner.scheduler.get_job(schedule.JOB_ID)
        return job.next_run_time


@pytest.mark.parametrize(
    ("day", "at", "issue", "send_at", "article", "next_send"),
    [
        # winter and summer time: Monday 09:00 local is 08:00 / 07:00 UTC
        (
            "mon",
            "09:00",
            "2026-W48",
            utc(2026, 11, 23, 8),
            "2026-11-18T10:00:00+01:00",
            utc(2026, 11, 30, 8),
        ),
        (
            "mon",
            "09:00",
            "2026-W29",
            utc(2026, 7, 13, 7),
            "2026-07-08T10:00:00+02:00",
            utc(2026, 7, 20, 7),
        ),
        # the switch days, Sunday 02:30: skipped (sent at 03:30 CEST) and repeated hour
        (
            "sun",
            "02:30",
            "2026-W13",
            SPRING_SEND,
            "2026-03-25T10:00:00+01:00",
            utc(2026, 4, 5, 0, 30),
        ),
        (
            "sun",
            "02:30",
            "2026-W43",
            AUTUMN_SEND,
            "2026-10-21T10:00:00+02:00",
            utc(2026, 11, 1, 1, 30),
        ),
    ],
    ids=["winter", "summer", "spring-switch", "autumn-switch"],
)
def test_scheduler_sends_at_the_local_send_time_once(
    tmp_path: Path,
    smtp: SmtpServer,
    day: str,
    at: str,
    issue: str,
    send_at: dt.datetime,
    article: str,
    next_send: dt.datetime,
) -> None:
    c = config.load(write_site(tmp_path, smtp.port, [article], day=day, time=at))
    with time_machine.travel(send_at - 1.5 * SECOND, tick=True):
        running = Running(c)
        assert wait_for(lambda: running.runner.scheduler.running)
        time.sleep(0.5)
        assert smtp.messages == []  # nothing before the send time
        assert wait_for(lambda: sent_once(smtp, 5))
        arrived = dt.datetime.now(UTC)
        assert send_at <= arrived < send_at + dt.timedelta(seconds=15)
        assert wait_for(lambda: bool(running.outcomes))
        assert [(o.issue, o.action) for o in running.outcomes] == [(issue, "sent")]
        # After the fire, the next one is next week's: no second fire that day.
        assert running.next_run() == next_send
        assert running.stop() == 0
    assert sent_once(smtp, 5)
    with Ledger(c.ledger.path) as ledger:
        rec = ledger.issue(issue)
        assert rec is not None and rec.finished


@pytest.mark.parametrize(
    ("grace_hours", "asleep", "wakes"),
    [
        # Suspended for 10 min, wakes 3 s before the send time: sent on time.
        (0, dt.timedelta(minutes=10), -3 * SECOND),
        # Suspended across the send time, wakes 1 h later: within the grace, sent now.
        (6, dt.timedelta(hours=2), dt.timedelta(hours=1)),
    ],
    ids=["wakes-before", "wakes-after-within-grace"],
)
def test_a_suspend_does_not_delay_the_send_past_the_wake_up(
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    grace_hours: float,
    asleep: dt.timedelta,
    wakes: dt.timedelta,
) -> None:
    # The scheduler sleeps on a clock that stops during a suspend (threading.Event.wait
    # is monotonic); the wall clock jumps on resume. time-machine's shift() is that jump:
    # the wall clock moves, the scheduler's timer does not. Without a cap on its sleep the
    # job fires `asleep` too late, and fire() calls the send missed.
    monkeypatch.setattr(scheduler, "TICK", 0.2)  # seconds; 30 in production
    c = config.load(
        write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"], grace_hours=grace_hours)
    )
    send_at = utc(2026, 11, 23, 8)
    with time_machine.travel(send_at + wakes - asleep, tick=True) as traveller:
        running = Running(c)
        assert wait_for(lambda: running.runner.scheduler.running)
        time.sleep(0.3)
        traveller.shift(asleep)  # the machine resumes
        assert wait_for(lambda: sent_once(smtp, 5), timeout=10)
        arrived = dt.datetime.now(UTC)
        assert send_at <= arrived < max(send_at, send_at + wakes) + dt.timedelta(seconds=10)
        assert wait_for(lambda: bool(running.outcomes))
        assert [(o.issue, o.action) for o in running.outcomes] == [("2026-W48", "sent")]
        assert running.next_run() == utc(2026, 11, 30, 8)
        assert running.stop() == 0
    assert sent_once(smtp, 5)


def test_a_missed_send_inside_the_grace_is_sent_once_and_a_restart_sends_nothing_again(
    tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    c = config.load(write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"]))
    send_at = utc(2026, 11, 23, 8)
    with time_machine.travel(send_at + dt.timedelta(hours=5, minutes=50), tick=True):
        first = Running(c)  # the machine was off at 09:00; it comes up at 14:50
        assert wait_for(lambda: sent_once(smtp, 5))
        assert first.stop() == 0
        second = Running(c)  # restarted an hour later: the ledger says it is sent
        time.sleep(1.5)
        assert second.stop() == 0
        # Two schedulers at once on the same ledger, and a double fire: nothing more.
        a, b = Running(c), Running(c)
        outcomes = [schedule.fire(c), schedule.fire(c)]
        time.sleep(1.0)
        assert a.stop() == b.stop() == 0
    assert sent_once(smtp, 5)
    assert len(smtp.messages) == 5
    assert [o.action for o in outcomes] == ["already", "already"]
    assert "within the grace of 6 h: sending it now" in caplog.text
    assert "2026-W48 was already sent (5 recipients)" in caplog.text


def test_a_missed_send_past_the_grace_is_logged_and_skipped(
    tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    c = config.load(write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"]))
    late = utc(2026, 11, 23, 8) + dt.timedelta(hours=6, minutes=1)
    with time_machine.travel(late, tick=True):
        running = Running(c)
        time.sleep(1.5)
        assert running.stop() == 0
        outcome = schedule.fire(c)  # a fire this late (after a long sleep) skips too
    assert smtp.messages == []
    assert outcome.action == "skipped"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("2026-W48 was due at Mon 2026-11-23 09:00 CET" in w for w in warnings)
    assert "and was not sent; past the grace of 6 h" in warnings[0]
    assert "digest send --issue 2026-W48" in warnings[0]
    assert "next send: 2026-W49 at Mon 2026-11-30 09:00 CET (08:00 UTC)" in caplog.text


def test_an_empty_week_logs_nothing_to_send_and_sends_nothing(
    tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    # The only article is in the week before: 2026-W49 (sent 11-30) has none.
    c = config.load(write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"]))
    with time_machine.travel(utc(2026, 11, 30, 8, 5), tick=False):
        outcome = schedule.fire(c)
    assert (outcome.issue, outcome.action) == ("2026-W49", "nothing")
    assert "nothing to send for 2026-W49" in caplog.text
    assert smtp.messages == []


def test_a_double_fire_and_a_second_scheduler_on_the_same_ledger_send_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "a-test-secret-that-is-long-enough")
    monkeypatch.setattr(schedule, "BUSY_RETRY", 0.2)  # seconds between tries when busy
    with SmtpServer(faults=Faults(slow=0.05, slow_share=1.0)) as server:
        path = write_site(tmp_path, server.port, ["2026-11-18T10:00:00+01:00"], recipients=20)
        c = config.load(path)
        with time_machine.travel(utc(2026, 11, 23, 9), tick=True):
            # Two schedulers come up at once, both within the grace, plus a stray fire.
            a, b = Running(c), Running(c)
            extra: list[schedule.RunResult] = []
            fire = threading.Thread(target=lambda: extra.append(schedule.fire(c)))
            fire.start()
            assert wait_for(lambda: len(a.outcomes) == len(b.outcomes) == 1, timeout=30)
            fire.join(30)
            assert a.stop() == b.stop() == 0
        assert sent_once(server, 20)
        assert len(server.messages) == 20
    # The ones that found the ledger busy waited for the send and then found it done.
    actions = sorted(o.action for o in a.outcomes + b.outcomes + extra)
    assert actions == ["already", "already", "sent"]


# --- SIGTERM during a send: a real `digest schedule` process --------------------------------


def digest_cli(path: Path, *args: str, now: str) -> list[str]:
    return [sys.executable, "-m", "digest.cli", "--config", str(path), "--now", now, *args]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_scheduled_send_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: signal.Signals
) -> None:
    monkeypatch.setenv(SECRET_ENV, "a-test-secret-that-is-long-enough")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    total = 60
    now = "2026-11-23T09:00:00+00:00"  # an hour after the 09:00 CET send: within the grace
    with SmtpServer(faults=Faults(slow=0.05, slow_share=1.0)) as server:
        path = write_site(tmp_path, server.port, ["2026-11-18T10:00:00+01:00"], recipients=total)
        proc = subprocess.Popen(
            digest_cli(path, "schedule", now=now),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert wait_for(lambda: len(server.messages) >= 5, timeout=30)
            proc.send_signal(signum)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out
        stopped_at = len(server.messages)
        time.sleep(0.3)
        assert len(server.messages) == stopped_at  # nothing goes out after the exit
        assert 5 <= stopped_at < total, out
        assert f"{signum.name}: stopping" in out
        assert "stopped as asked" in out and "scheduler stopped" in out, out
        got = server.by_recipient()
        assert all(len(ids) == 1 for ids in got.values())  # no duplicate
        c = config.load(path)
        with Ledger(c.ledger.path) as ledger:
            counts = ledger.counts("2026-W48")
        # Nothing lost: every message the server accepted is recorded as sent, and only
        # those; the rest are still pending.
        assert counts["sent"] == len(got) == stopped_at
        assert counts["pending"] == total - stopped_at

        # Cron mode picks it up and finishes it; a second run does nothing.
        done = subprocess.run(
            digest_cli(path, "send", "--due", "--yes", now="2026-11-23T10:00:00+00:00"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert sent_once(server, total)
        assert len(server.messages) == total
        again = subprocess.run(
            digest_cli(path, "send", "--due", "--yes", now="2026-11-23T11:00:00+00:00"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already sent" in again.stdout
        assert len(server.messages) == total


# --- the commands -------------------------------------------------------------------------


def test_schedule_next_prints_local_and_utc_times_and_exits(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[schedule]\ntimezone = "Europe/Berlin"\nday = "sun"\ntime = "02:30"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(
        cli.main, ["--config", str(path), "--now", "2026-03-20T12:00", "schedule", "--next", "5"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Next 5 sends (sun 02:30 Europe/Berlin):",
        "  2026-W12  Sun 2026-03-22 02:30 CET (01:30 UTC)",
        "  2026-W13  Sun 2026-03-29 03:30 CEST (01:30 UTC); 02:30 does not exist that day"
        " (clocks go forward)",
        "  2026-W14  Sun 2026-04-05 02:30 CEST (00:30 UTC)",
        "  2026-W15  Sun 2026-04-12 02:30 CEST (00:30 UTC)",
        "  2026-W16  Sun 2026-04-19 02:30 CEST (00:30 UTC)",
    ]


def test_send_due_outside_the_grace_does_nothing_and_says_why(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    path = write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"])
    runner = CliRunner()
    # Tuesday: Monday's send is a day old, past the 6-hour grace.
    late = runner.invoke(
        cli.main, ["--config", str(path), "--now", "2026-11-24T09:00", "send", "--due", "--yes"]
    )
    assert late.exit_code == 0, late.output
    # A missed week is a warning on stderr (cron mails it; stdout goes to the log), once.
    assert late.stdout == ""
    assert late.stderr.startswith("warning: 2026-W48 was due at Mon 2026-11-23 09:00 CET")
    assert "2026-W48 was due at Mon 2026-11-23 09:00 CET (08:00 UTC), 1 d ago" in late.stderr
    assert "was not sent; past the grace of 6 h" in late.stderr
    assert late.stderr.count("digest send --issue 2026-W48") == 1
    assert smtp.messages == []
    assert not (tmp_path / "digest.sqlite3").exists()
    # Within the grace it sends; a later hourly run says it was sent.
    due = runner.invoke(
        cli.main, ["--config", str(path), "--now", "2026-11-23T09:05", "send", "--due", "--yes"]
    )
    assert due.exit_code == 0, due.output
    assert sent_once(smtp, 5)
    after = runner.invoke(
        cli.main, ["--config", str(path), "--now", "2026-11-23T18:00", "send", "--due", "--yes"]
    )
    assert after.exit_code == 0, after.output
    assert "2026-W48 was due at Mon 2026-11-23 09:00 CET (08:00 UTC), 9 h ago" in after.stdout
    assert "and was sent: nothing to do" in after.stdout
    assert after.stderr == ""  # sent: nothing to warn about
    # The week after has no articles: past its grace that is no "missed" send either.
    empty = runner.invoke(
        cli.main, ["--config", str(path), "--now", "2026-12-01T09:00", "send", "--due", "--yes"]
    )
    assert empty.exit_code == 0, empty.output
    assert "2026-W49 was due at Mon 2026-11-30 09:00 CET (08:00 UTC), 1 d ago" in empty.output
    assert "that week had no articles: nothing to send" in empty.stdout
    assert empty.stderr == ""
    assert len(smtp.messages) == 5


@pytest.mark.parametrize("option", [["--week", "2026-W47"], ["--latest"]], ids=["week", "latest"])
def test_send_due_with_week_or_latest_is_a_usage_error(
    tmp_path: Path, smtp: SmtpServer, option: list[str]
) -> None:
    # --due picks the issue itself; a --week or --latest next to it was silently ignored.
    path = write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"])
    result = CliRunner().invoke(
        cli.main,
        ["--config", str(path), "--now", "2026-11-23T09:05", "send", "--due", *option, "--yes"],
    )
    assert result.exit_code == 2, result.output
    assert "--due excludes --week and --latest" in result.stderr
    assert smtp.messages == []
    assert not (tmp_path / "digest.sqlite3").exists()


def test_send_due_resumes_a_stranded_send_past_the_grace(tmp_path: Path, smtp: SmtpServer) -> None:
    """The grace guards starting a stale issue, not finishing one already started: a send
    interrupted and left past the grace is resumed by the next `send --due`, which exits
    non-zero for as long as recipients are stranded."""
    path = write_site(tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00"])
    text = path.read_text().replace(
        "concurrency = 2", "concurrency = 2\nmax_attempts = 1\nretry_seconds = 0.01"
    )
    path.write_text(text)
    runner = CliRunner()

    def due(now: str, port: int) -> Any:
        path.write_text(re.sub(r"port = \d+", f"port = {port}", path.read_text()))
        return runner.invoke(
            cli.main, ["--config", str(path), "--now", now, "send", "--due", "--yes"]
        )

    stuck = {"reader3@example.com", "reader4@example.com"}
    with SmtpServer(faults=Faults(defer=lambda a: a in stuck)) as deferring:
        first = due("2026-11-23T09:05", deferring.port)  # in the grace: 3 of 5 sent
        assert first.exit_code == 5, first.output
        # Tuesday, past the grace, the relay still refusing: stranded, so not exit 0.
        still = due("2026-11-24T10:00", deferring.port)
        assert still.exit_code != 0, still.output
        assert len(deferring.by_recipient()) == 3
    resumed = due("2026-11-24T11:00", smtp.port)
    assert resumed.exit_code == 0, resumed.output
    assert set(smtp.by_recipient()) == stuck  # the rest, once
    after = due("2026-11-24T12:00", smtp.port)
    assert after.exit_code == 0 and len(smtp.messages) == 2, after.output


def test_the_scheduler_resumes_a_stranded_issue_while_the_next_is_sent_and_in_its_grace(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """fire() makes the choice `send --due` makes: with this week's issue already sent and
    still in its grace, an older issue left unfinished is resumed, not ignored for hours."""
    path = write_site(
        tmp_path, smtp.port, ["2026-11-11T10:00:00+01:00", "2026-11-18T10:00:00+01:00"]
    )
    text = path.read_text().replace(
        "concurrency = 2", "concurrency = 2\nmax_attempts = 1\nretry_seconds = 0.01"
    )
    runner = CliRunner()
    stuck = {"reader3@example.com", "reader4@example.com"}
    with SmtpServer(faults=Faults(defer=lambda a: a in stuck)) as deferring:
        path.write_text(re.sub(r"port = \d+", f"port = {deferring.port}", text))
        w47 = runner.invoke(
            cli.main, ["--config", str(path), "--now", "2026-11-16T09:05", "send", "--due", "--yes"]
        )
        assert w47.exit_code == 5, w47.output  # W47: 3 of 5 sent, 2 stranded
    path.write_text(re.sub(r"port = \d+", f"port = {smtp.port}", text))
    w48 = runner.invoke(
        cli.main,
        [
            "--config",
            str(path),
            "--now",
            "2026-11-23T09:05",
            "send",
            "--issue",
            "2026-W48",
            "--yes",
        ],
    )
    assert w48.exit_code == 0, w48.output
    assert len(smtp.messages) == 5
    c = config.load(path)
    outcome = schedule.fire(c, clock=lambda: utc(2026, 11, 23, 8, 30))  # W48 sent, in grace
    assert outcome.issue == "2026-W47"
    assert {r for r, ids in smtp.by_recipient().items() if len(ids) == 2} == stuck
    assert schedule.stranded_issues(c) == []


@pytest.mark.parametrize(
    "before, after, article, sends, expected",
    [
        # mon -> fri: W48 was sent on Monday; Friday of W48 has the same id, already sent.
        # The article of Wednesday goes out with the next issue (W49, Fri Dec 4), not lost.
        (
            "mon",
            "fri",
            "2026-11-25T10:00:00+01:00",
            ["2026-11-27T09:05", "2026-12-04T09:05"],
            [0, 1, 2],
        ),
        # fri -> mon: W48 was sent on Friday 27; W49 (Mon Nov 30) starts at that send, so
        # the article of Tuesday 24, already sent in W48, is not sent again.
        # (Post 0, of Wed 18, belongs to W47 on Fridays: never sent in this test.)
        ("fri", "mon", "2026-11-28T10:00:00+01:00", ["2026-11-30T09:05"], [1, 2]),
    ],
)
def test_changing_schedule_day_within_a_week_loses_and_repeats_no_article(
    tmp_path: Path,
    smtp: SmtpServer,
    before: str,
    after: str,
    article: str,
    sends: list[str],
    expected: list[int],
) -> None:
    """The rule (NOTES.md): an issue's window starts at the previous issue's send time
    when the ledger has one in the week before; an issue id already sent is not sent
    again (the next issue is the next week)."""
    path = write_site(
        tmp_path, smtp.port, ["2026-11-18T10:00:00+01:00", "2026-11-24T10:00:00+01:00", article],
        day=before, recipients=1,
    )  # fmt: skip
    runner = CliRunner()

    def due(now: str) -> Any:
        return runner.invoke(
            cli.main, ["--config", str(path), "--now", now, "send", "--due", "--yes"]
        )

    first = due("2026-11-23T09:05" if before == "mon" else "2026-11-27T09:05")
    assert first.exit_code == 0, first.output
    path.write_text(path.read_text().replace(f'day = "{before}"', f'day = "{after}"'))
    for now in sends:
        assert due(now).exit_code in (0, 10)
    posts = [
        re.findall(rb"Post number (\d)", m.data or b"") for m in smtp.messages
    ]  # each issue's articles, in the order sent
    seen = [int(n) for issue in posts for n in dict.fromkeys(issue)]
    assert sorted(seen) == expected, posts  # every article once: none lost, none twice
