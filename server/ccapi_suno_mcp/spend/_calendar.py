"""Days, weeks and months as the user lives them: in the machine's local time zone, at an injectable now."""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

__all__ = ["Calendar", "Periods"]


@dataclass(frozen=True, slots=True)
class Periods:
    """Where the spend periods of one moment begin (Unix times), and that moment's day."""

    day: float
    week: float
    """Monday 00:00 of this week."""
    month: float
    today: str
    """The local date, `YYYY-MM-DD`."""


class Calendar:
    """Local days, ISO weeks (from Monday) and calendar months.

    Args:
        now: the clock (Unix time); tests pass their own.
        zone: the time zone; None is the machine's local zone, with its daylight saving time.
    """

    def __init__(self, *, now: Callable[[], float] = _time.time, zone: tzinfo | None = None) -> None:
        self._now = now
        self._zone = zone

    def now(self) -> float:
        return self._now()

    def date_of(self, timestamp: float) -> date:
        """The local date of a moment."""
        return datetime.fromtimestamp(timestamp, self._zone).date()

    def start_of(self, day: date) -> float:
        """The moment a local day begins."""
        # A naive datetime is the machine's local time: .timestamp() applies the offset in force on that day.
        return datetime.combine(day, time(0), tzinfo=self._zone).timestamp()

    def periods(self, at: float | None = None) -> Periods:
        """The periods of `at` (default: now)."""
        today = self.date_of(self.now() if at is None else at)
        return Periods(
            day=self.start_of(today),
            week=self.start_of(today - timedelta(days=today.weekday())),
            month=self.start_of(today.replace(day=1)),
            today=today.isoformat(),
        )
