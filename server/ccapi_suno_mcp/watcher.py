"""The watcher: one background loop that keeps the ledger's pending tasks fresh.

While any task is pending it batch-fetches all of them (one request per 100 ids) every
`interval` seconds, writes changes to the ledger and sends notifications. With nothing pending it
sleeps until woken by a new submission. On errors it backs off exponentially (capped). Waiters
(`suno_wait_for_tasks`) block on `wait_for_cycle` instead of polling CCAPI themselves.

On a ledger several replicas share, one watcher polls at a time (`TaskLedger.lead_watcher`): the others ask
again every interval, and take over once the one that polled is gone. A follower's cycle polls nothing: it
ends at once, so that its waiters read again what the leader wrote (they also wake when a change is heard).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

import anyio

from ccapi_suno_mcp.ccapi import (
    BATCH_SIZE,
    AuthenticationError,
    CCAPIError,
    InsufficientBalanceError,
    PermissionDeniedError,
    SunoClient,
    within_deadline,
)
from ccapi_suno_mcp.ledger import LedgerUnavailableError, LedgerUnusableError, TaskLedger
from ccapi_suno_mcp.notifications import Notifier

__all__ = [
    "DEFAULT_INTERVAL",
    "GIVE_UP_AFTER_SECONDS",
    "MAX_BACKOFF",
    "POLL_DEADLINE",
    "REJECTED_INTERVAL",
    "Pause",
    "Watcher",
    "is_refusal",
    "wait_or_wake",
]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
MAX_BACKOFF = 120.0
POLL_DEADLINE = 15.0
"""Seconds one batch fetch of a poll may take, retries included: an answer that drips in never stalls the watcher."""
REJECTED_INTERVAL = 300.0
"""Seconds between polls while CCAPI refuses the key (or the balance is spent): asking sooner cannot help."""
SETTLE_EVERY_SECONDS = 60.0
"""How often the watcher marks submissions interrupted by a crash (left 'submitting') as outcome unknown."""
GIVE_UP_AFTER_SECONDS = 600.0
"""How long CCAPI may leave a pending task out of its answers before the watcher stops asking for it."""

Pause = Callable[[anyio.Event, float | None], Awaitable[None]]
"""How the loop waits between cycles: until the event is set, or at most the seconds given (None: no limit)."""


async def wait_or_wake(wake: anyio.Event, seconds: float | None) -> None:
    """The real `Pause`: return when `wake` is set or `seconds` have passed, whichever comes first."""
    if seconds is None:
        await wake.wait()
        return
    with anyio.move_on_after(seconds):
        await wake.wait()


def is_refusal(error: CCAPIError) -> bool:
    """Whether CCAPI refuses this key itself (rejected, out of balance, banned): waiting will not change it."""
    return isinstance(error, AuthenticationError | InsufficientBalanceError | PermissionDeniedError)


class Watcher:
    """Polls pending tasks in the background; see the module docstring."""

    def __init__(
        self,
        client: SunoClient,
        ledger: TaskLedger,
        notifier: Notifier,
        *,
        interval: float = DEFAULT_INTERVAL,
        poll_deadline: float = POLL_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
        pause: Pause = wait_or_wake,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._notifier = notifier
        self._clock = clock
        self._pause = pause  # tests pass one that records the delays and moves their clock instead of waiting
        self.interval = interval
        self.poll_deadline = poll_deadline
        self.cycles = 0
        self.consecutive_failures = 0
        self.last_error: CCAPIError | None = None
        """Why the latest poll failed; None once one succeeds."""
        self._wake = anyio.Event()
        self._cycle_done = anyio.Event()
        self._absent_since: dict[str, float] = {}
        self._given_up: set[str] = set()
        self._last_settled = float("-inf")
        self.leading = True
        """Whether this watcher polled in its latest cycle (False while another replica's watcher polls)."""

    @property
    def refusal(self) -> CCAPIError | None:
        """CCAPI's refusal of the key (see `is_refusal`) that stopped the latest poll, if any."""
        return self.last_error if self.last_error is not None and is_refusal(self.last_error) else None

    def note_success(self) -> None:
        """CCAPI just answered a call of this server: stop backing off, poll soon."""
        self.last_error = None
        self.wake(reset_backoff=True)

    def wake(self, *, reset_backoff: bool = False) -> None:
        """Poll soon: a task was submitted or someone started waiting.

        Ignored while backing off from errors, unless `reset_backoff` (CCAPI was just seen answering).
        """
        if reset_backoff:
            self.consecutive_failures = 0
        if self.consecutive_failures == 0:
            self._wake.set()

    async def wait_for_cycle(self, seconds: float) -> bool:
        """Wait for the next completed poll cycle, at most `seconds`; True if one completed."""
        event = self._cycle_done
        with anyio.move_on_after(max(0.0, seconds)):
            await event.wait()
            return True
        return False

    async def run(self) -> None:
        """Loop until cancelled. A failing cycle is logged and backed off from; it never stops the server."""
        while True:
            try:
                delay = await self.poll_once()
            except LedgerUnusableError:  # nothing to poll for until the user replaces the file (the ledger said why)
                logger.info("the watcher stopped: the ledger cannot be used")
                self._finish_cycle()
                return
            except LedgerUnavailableError as exc:  # a full disk, a database down: it says what to do
                self.consecutive_failures += 1
                delay = self._backoff()
                logger.warning("the watcher's poll cycle failed: %s Next try in %.0fs.", exc, delay)
                self._finish_cycle()
            except Exception:  # the top-level handler of a background loop: log, back off, keep going
                self.consecutive_failures += 1
                delay = self._backoff()
                logger.exception("the watcher's poll cycle failed; next try in %.0fs", delay)
                self._finish_cycle()
            await self._pause(self._wake, delay)
            self._wake = anyio.Event()

    async def poll_once(self) -> float | None:
        """One cycle: fetch every pending task. Returns the delay before the next one (None: nothing pending).

        Raises:
            LedgerError: the ledger could not be read or written (`run` logs it and backs off).
        """
        if self._clock() - self._last_settled >= SETTLE_EVERY_SECONDS:
            self._last_settled = self._clock()
            await self._ledger.settle_interrupted()
        leading = await self._ledger.lead_watcher()
        if leading != self.leading:
            logger.info("this watcher %s", "polls CCAPI now" if leading else "leaves polling to another replica")
            self.leading = leading
        if not leading:
            self.consecutive_failures = 0
            self._finish_cycle()
            return self.interval  # ask again: take over within one interval of the leader's going
        pending = [task_id for task_id in await self._ledger.pending_task_ids() if self._still_tracked(task_id)]
        if not pending:
            self.consecutive_failures = 0  # nothing to back off from: the next wake must poll at once
            self._finish_cycle()
            return None
        try:
            with within_deadline(self.poll_deadline * math.ceil(len(pending) / BATCH_SIZE)):  # per batch request
                tasks = await self._client.fetch_tasks(pending)
        except CCAPIError as exc:
            self.consecutive_failures += 1
            self.last_error = exc
            backoff = REJECTED_INTERVAL if is_refusal(exc) else self._backoff()
            logger.warning("polling %d pending task(s) failed (%s); next try in %.0fs", len(pending), exc, backoff)
            self._finish_cycle()
            return backoff
        self.consecutive_failures = 0
        self.last_error = None
        changed, _ = await self._ledger.apply_updates(tasks)  # one trip to the ledger for the whole batch
        answered = {task.task_id for task in tasks}
        now = self._clock()
        for task_id in pending:
            if task_id in answered:
                self._absent_since.pop(task_id, None)
            else:
                self._absent_since.setdefault(task_id, now)
        if changed:
            settled = any(task.is_terminal for task in tasks if task.task_id in changed)  # a charge was recorded
            await self._notifier.tasks_changed(changed, list_changed=True, spend=settled)
        self._finish_cycle()
        return self.interval

    def _backoff(self) -> float:
        return min(MAX_BACKOFF, self.interval * 2**self.consecutive_failures)

    def _still_tracked(self, task_id: str) -> bool:
        if task_id in self._given_up:
            return False
        since = self._absent_since.get(task_id)
        if since is None or self._clock() - since < GIVE_UP_AFTER_SECONDS:
            return True
        logger.warning("CCAPI has not returned %s for 10 minutes; not polling it until the server restarts", task_id)
        self._given_up.add(task_id)
        return False

    def _finish_cycle(self) -> None:
        self.cycles += 1
        done, self._cycle_done = self._cycle_done, anyio.Event()
        done.set()
