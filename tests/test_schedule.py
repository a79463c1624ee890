"""schedule.py (and digest.py's send times): when the weekly send fires, once per issue.

Europe/Berlin switch days in 2026: clocks go forward on Sun 03-29 (02:00 -> 03:00) and
back on Sun 10-25 (03:00 -> 02:00, so 02:00..02:59 happens twice). A send time of Sunday
02:30 falls into the skipped hour on the first and the repeated hour on the second.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from digest import config, digest, schedule

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
    assert digest.window_for_week(c, this).send_at == send_at
    # One second before: still inside this issue's window; the previous one is due.
    w = digest.window_containing(c, send_at - SECOND)
    assert (w.id, w.send_at) == (this, send_at)
    assert w.contains(send_at - SECOND)
    assert digest.due_window(c, send_at - SECOND).id == before
    assert digest.next_window(c, send_at - SECOND).id == this
    # At the boundary: the instant belongs to the next window; this issue is due.
    w = digest.window_containing(c, send_at)
    assert (w.id, w.since) == (after, send_at)
    assert not digest.window_for_week(c, this).contains(send_at)
    assert digest.due_window(c, send_at).id == this
    assert digest.next_window(c, send_at).id == after


def test_window_edges_hold_for_local_times_given_in_the_newsletter_zone() -> None:
    # Aware datetimes sharing a ZoneInfo compare by wall time and ignore ``fold``: 02:15
    # in the repeated hour (CET, 01:15 UTC) is 45 minutes *after* the 02:30 CEST send.
    c = cfg()
    tz = c.schedule.tz
    second_0215 = dt.datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=tz)
    assert second_0215.astimezone(UTC) == utc(2026, 10, 25, 1, 15)
    assert digest.window_containing(c, second_0215).id == "2026-W44"
    assert not digest.window_for_week(c, "2026-W43").contains(second_0215)
    assert digest.window_for_week(c, "2026-W44").contains(second_0215)
    assert digest.due_window(c, second_0215).id == "2026-W43"
    # The first 02:29:59 (CEST) is one second before the send.
    first_0229 = dt.datetime(2026, 10, 25, 2, 29, 59, fold=0, tzinfo=tz)
    assert digest.window_containing(c, first_0229).id == "2026-W43"


def test_dst_week_windows_are_an_hour_shorter_or_longer_and_never_overlap() -> None:
    c = cfg()
    weeks = [digest.window_for_week(c, f"2026-W{n:02d}") for n in (12, 13, 14, 42, 43, 44)]
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
    (send_at,) = digest.upcoming(c, after, 1)
    assert send_at == expected_utc
    local = send_at.astimezone(c.schedule.tz)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def fires(trigger: schedule.SendTimes, start: dt.datetime, until: dt.datetime) -> list:
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
    t = schedule.SendTimes(c)
    spring = fires(t, utc(2026, 3, 21), utc(2026, 4, 6))
    assert spring == [utc(2026, 3, 22, 1, 30), SPRING_SEND, utc(2026, 4, 5, 0, 30)]
    autumn = fires(t, utc(2026, 10, 17), utc(2026, 11, 2))
    assert autumn == [utc(2026, 10, 18, 0, 30), AUTUMN_SEND, utc(2026, 11, 1, 1, 30)]
    # The same instants as the issue windows' send times.
    assert [digest.due_window(c, f).send_at for f in spring + autumn] == spring + autumn


def test_trigger_over_a_year_fires_once_a_week_at_0230_local_or_0330_on_the_gap_day() -> None:
    c = cfg()
    got = fires(schedule.SendTimes(c), utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(got) == 52 == len({digest.due_window(c, f).id for f in got})
    local = [f.astimezone(c.schedule.tz) for f in got]
    assert all(x.weekday() == 6 for x in local)
    assert [x.strftime("%H:%M") for x in local if x.strftime("%H:%M") != "02:30"] == ["03:30"]
    assert all(
        (b - a) in {dt.timedelta(days=7, hours=h) for h in (-1, 0, 1)}
        for a, b in itertools.pairwise(got)
    )


def test_trigger_first_fire_is_at_or_after_now_and_never_repeats_after_a_clock_step_back() -> None:
    c = cfg()
    t = schedule.SendTimes(c)
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
    assert "digest send --week 2026-W48" in d.explain(c)


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
