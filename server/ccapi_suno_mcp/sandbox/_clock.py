"""Clocks: the sandbox computes every task's state from the time it reads here."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock time in unix seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock (`time.time()`)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to, so tests drive task lifecycles without sleeping.

    The default start is the submit time of the task on CCAPI's batch-fetch page.
    """

    def __init__(self, start: float = 1_773_385_996.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Raises:
            ValueError: if `seconds` is negative (time never runs backwards).
        """
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds} s)")
        self._now += seconds
