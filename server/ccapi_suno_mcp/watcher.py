"""The watcher: one background loop that keeps the ledger's pending tasks fresh.

While any task is pending it batch-fetches all of them (one request per 100 ids) every
`interval` seconds, writes changes to the ledger and sends notifications. With nothing pending it
sleeps until woken by a new submission. On errors it backs off exponentially (capped). Waiters
(`suno_wait_for_tasks`) block on `wait_for_cycle` instead of polling CCAPI themselves.
"""

from __future__ import annotations

import logging

import anyio

from ccapi_suno_mcp.ccapi import CCAPIError, SunoClient
from ccapi_suno_mcp.ledger import TaskLedger
from ccapi_suno_mcp.notifications import Notifier

__all__ = ["DEFAULT_INTERVAL", "MAX_BACKOFF", "Watcher"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
MAX_BACKOFF = 120.0
MISSING_CYCLES_BEFORE_GIVING_UP = 5


class Watcher:
    """Polls pending tasks in the background; see the module docstring."""

    def __init__(
        self, client: SunoClient, ledger: TaskLedger, notifier: Notifier, *, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._notifier = notifier
        self.interval = interval
        self.cycles = 0
        self.requests_last_cycle = 0
        self.consecutive_failures = 0
        self._wake = anyio.Event()
        self._cycle_done = anyio.Event()
        self._missing: dict[str, int] = {}

    def wake(self) -> None:
        """Poll now: a task was submitted or someone is waiting."""
        self._wake.set()

    async def wait_for_cycle(self, seconds: float) -> bool:
        """Wait for the next completed poll cycle, at most `seconds`; True if one completed."""
        event = self._cycle_done
        with anyio.move_on_after(max(0.0, seconds)):
            await event.wait()
            return True
        return False

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            delay = await self.poll_once()
            if delay is None:
                await self._wake.wait()
            else:
                with anyio.move_on_after(delay):
                    await self._wake.wait()
            self._wake = anyio.Event()

    async def poll_once(self) -> float | None:
        """One cycle: fetch every pending task. Returns the delay before the next one (None: nothing pending)."""
        pending = [task_id for task_id in await self._ledger.pending_task_ids() if self._still_tracked(task_id)]
        if not pending:
            self._finish_cycle()
            return None
        try:
            tasks = await self._client.fetch_tasks(pending)
        except CCAPIError as exc:
            self.consecutive_failures += 1
            backoff = min(MAX_BACKOFF, self.interval * 2**self.consecutive_failures)
            logger.warning("polling %d pending task(s) failed (%s); next try in %.0fs", len(pending), exc, backoff)
            self._finish_cycle()
            return backoff
        self.consecutive_failures = 0
        self.requests_last_cycle = -(-len(pending) // 100)
        changed = [task.task_id for task in tasks if await self._ledger.apply_update(task)]
        answered = {task.task_id for task in tasks}
        for task_id in pending:
            self._missing[task_id] = 0 if task_id in answered else self._missing.get(task_id, 0) + 1
        if changed:
            await self._notifier.tasks_changed(changed, list_changed=True)
        self._finish_cycle()
        return self.interval

    def _still_tracked(self, task_id: str) -> bool:
        misses = self._missing.get(task_id, 0)
        if misses == MISSING_CYCLES_BEFORE_GIVING_UP:
            logger.warning("CCAPI no longer returns %s; not polling it until the server restarts", task_id)
            self._missing[task_id] += 1
        return misses < MISSING_CYCLES_BEFORE_GIVING_UP

    def _finish_cycle(self) -> None:
        self.cycles += 1
        done, self._cycle_done = self._cycle_done, anyio.Event()
        done.set()
