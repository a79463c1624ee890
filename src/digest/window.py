"""``Window``: the send time of an issue and the span it covers.

Apart from ``model`` (which re-exports it) so that printing send times
(``digest schedule --next``) does not build the other frozen types (issue 14).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """The send time of an issue and the span of publication dates it covers."""

    id: str  # ISO week of the send date, "2026-W48"
    since: dt.datetime  # the previous send time (inclusive)
    send_at: dt.datetime  # this send time (exclusive end of the window)
    closed: dt.datetime | None = None  # frozen before send_at (an early send): ends there

    @property
    def end(self) -> dt.datetime:
        """Where the span of publication dates ends (exclusive)."""
        return (
            self.closed if self.closed is not None and self.closed < self.send_at else self.send_at
        )

    def contains(self, when: dt.datetime) -> bool:
        # Compare instants in UTC: aware datetimes that share a tzinfo compare by wall time
        # and ignore ``fold``, so 02:15 in the repeated autumn hour would sort before 02:30.
        return self.since <= when.astimezone(dt.UTC) < self.end
