"""The long-running ``digest schedule``: APScheduler firing ``schedule.fire`` at send times.

Takes a ``Config``; gives a blocking scheduler (``Runner``, ``run``). Apart from
``schedule.py`` so that ``digest schedule --next 5`` and ``send --due`` never import
APScheduler (issue 14: start-up is what a user waits for).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from . import issue as issues
from .config import Config
from .errors import NotDue
from .schedule import JOB_ID, Clock, Due, _utc, due_selection, fire, grace, log_next
from .text import utcnow

log = logging.getLogger("digest.schedule")

# The longest the scheduler sleeps before it looks at the wall clock again (seconds):
# well under schedule.SLACK, so a machine that wakes just before the send time still sends it
# even with grace_hours = 0.
TICK = 30


class SendTimes(BaseTrigger):
    """An APScheduler trigger that fires at digest's send times, once per issue."""

    __slots__ = ("cfg",)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        # After a fire: the send time after that one, even if the clock was set back
        # (a send time is never returned twice). First call: the first one at or after now.
        if previous_fire_time is not None:
            after = _utc(previous_fire_time)
        else:
            after = _utc(now) - dt.timedelta(microseconds=1)
        return issues.upcoming(self.cfg, after, 1)[0]

    def __str__(self) -> str:
        s = self.cfg.schedule
        return f"weekly[{s.day} {s.time} {s.timezone}]"


# --- the long-running scheduler --------------------------------------------------------


class WallClockScheduler(BlockingScheduler):
    """A BlockingScheduler that looks at the wall clock at least every ``TICK`` seconds.

    APScheduler 3.x computes the wait until the next run from the wall clock, then sleeps
    it in ``threading.Event.wait``, whose clock (CLOCK_MONOTONIC on Linux) stops while
    the machine is suspended. After a 7-hour suspend on Tuesday, Monday's 09:00 send
    would run at 16:00, and ``fire()`` would call it missed although the machine was
    awake at 09:00. Capping every sleep notices the wall clock's jump within ``TICK``.
    A private hook, but the one BlockingScheduler's own loop uses all through 3.x
    (pyproject pins apscheduler < 4); a no-op interval job would do the same with a
    thread and two log lines per tick.
    """

    def _process_jobs(self) -> float:
        wait: float | None = super()._process_jobs()
        return TICK if wait is None else min(wait, TICK)


def build_scheduler(
    cfg: Config, clock: Clock = utcnow, stop: threading.Event | None = None
) -> BlockingScheduler:
    """A BlockingScheduler with one job: ``fire`` at every send time.

    If the issue due now is within the grace period (the machine was off or the process
    down at its send time), the job's first run is right away.
    """
    stop = stop or threading.Event()
    sched = WallClockScheduler(timezone=cfg.schedule.tz)
    first: dict[str, dt.datetime] = {}
    now = clock()
    try:  # the choice fire() makes: if it would send now, the first run is now
        sel = due_selection(cfg, now)  # (it warns of a stranded send it resumes)
    except NotDue as exc:
        log.log(logging.WARNING if exc.missed else logging.INFO, "%s", exc)
    else:
        due = Due(issues.window_for_week(cfg, sel.week or ""), now, grace(cfg))
        if due.in_grace:
            log.info("%s: sending it now", due.explain(cfg))
        first["next_run_time"] = dt.datetime.now(cfg.schedule.tz)
    sched.add_job(
        fire,
        SendTimes(cfg),
        args=(cfg,),
        kwargs={"clock": clock, "stop": stop},
        id=JOB_ID,
        name="weekly send",
        # One run at a time; after a long sleep, the missed fires collapse into one, and
        # fire() itself decides (with the grace period) whether that one still sends.
        # APScheduler's own misfire check (default 1 s) would silently drop a weekly run.
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        **first,
    )
    return sched


class Runner:
    """The long-running scheduler: ``run()`` blocks until ``request_stop()``."""

    def __init__(self, cfg: Config, clock: Clock = utcnow) -> None:
        self.cfg = cfg
        self.clock = clock
        self.stop = threading.Event()  # seen by a send in progress
        self.scheduler = build_scheduler(cfg, clock, self.stop)
        self._started = threading.Event()
        self.scheduler.add_listener(lambda _event: self._started.set(), EVENT_SCHEDULER_STARTED)
        self._stopper: threading.Thread | None = None

    def request_stop(self, why: str = "stop requested") -> None:
        """Safe from a signal handler: sets ``stop`` and shuts down in another thread,
        because shutting down waits for a running send to finish its messages in flight."""
        if self.stop.is_set():
            return
        log.info("%s: stopping; a send in progress finishes the messages in flight first", why)
        self.stop.set()
        self._stopper = threading.Thread(target=self._shutdown, name="digest-shutdown")
        self._stopper.start()

    def _shutdown(self) -> None:
        self._started.wait()  # a signal can come before start(); shutdown() needs it running
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=True)

    def run(self) -> int:
        """Returns the exit code: 0 (a failed send is logged; the next week still runs)."""
        log_next(self.cfg, self.clock())
        self.scheduler.start()  # blocks until shut down
        if self._stopper is not None:
            self._stopper.join()  # the running send, if any, has returned
        log.info("scheduler stopped")
        return 0


def run(cfg: Config, clock: Clock = utcnow) -> int:
    """``digest schedule``: run until SIGTERM or SIGINT, then exit 0 after a send in
    progress has finished its messages in flight and recorded them."""
    runner = Runner(cfg, clock)

    def on_signal(signum: int, _frame: object) -> None:
        runner.request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return runner.run()
