"""What both SQL backends share: every `TaskLedger` method, as a call of `_queries` on one of their sessions.

A backend says how to run a piece of work on a session (`_run`: SQLite in its one worker thread, PostgreSQL on
a pooled connection in a worker thread) and how it closes; everything the methods mean is here, once.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from ccapi_suno_mcp.ccapi import SunoTask
from ccapi_suno_mcp.ledger import _mcp_tasks as mcp_tasks
from ccapi_suno_mcp.ledger import _queries as queries
from ccapi_suno_mcp.ledger import _spend as spend
from ccapi_suno_mcp.ledger._charges import Charge, ChargeTotal, SpendGate
from ccapi_suno_mcp.ledger._dialect import Session
from ccapi_suno_mcp.ledger._mcp_tasks import McpTaskRecord
from ccapi_suno_mcp.ledger._models import ClipRecord, LocalFile, TaskPage, TaskRecord, body_fingerprint
from ccapi_suno_mcp.ledger._owner import current_owner
from ccapi_suno_mcp.ledger._protocol import DEFAULT_DUPLICATE_WINDOW, DEFAULT_PRINCIPAL, TaskLedger
from ccapi_suno_mcp.ledger._rows import decode_cursor, request_title

__all__ = ["SQLLedger"]

_T = TypeVar("_T")

POINT_READ_LIMIT = 20
"""At most this many tasks by id make a small read (`_read`): a status call's, not a list's."""


class SQLLedger(TaskLedger, ABC):
    """The task ledger on a SQL database; subclasses provide the sessions."""

    def __init__(self, *, clock: Callable[[], float] = time.time, owner: str | None = None) -> None:
        self._clock = clock
        self._owner = owner
        self._principal = DEFAULT_PRINCIPAL

    @property
    def principal(self) -> str:
        """Whose tasks this view of the ledger reads and records."""
        return self._principal

    def now(self) -> float:
        """The ledger's time, in which its records are stamped."""
        return self._clock()

    def for_principal(self, principal: str) -> Self:
        """A view of this ledger that reads and records `principal`'s tasks only, on the same connections.

        The watcher's side (`pending_task_ids`, `apply_update`, `settle_interrupted`, what a submission id or a
        task id is updated with) spans every principal; every read of tasks, clips and ids is the principal's.
        Closing any view closes the ledger.
        """
        if principal == self._principal:
            return self
        view = copy.copy(self)  # shares the backend's state object, and so its connections
        view._principal = principal
        return view

    @property
    def owner(self) -> str:
        """How this process names itself as the sender of its submissions (`_owner.current_owner()`)."""
        return self._owner or current_owner()

    @abstractmethod
    async def _run(self, work: Callable[[Session], _T]) -> _T:
        """Run `work` on a session of this ledger, off the event loop, and return what it returns.

        Raises:
            LedgerClosedError: The ledger is closed.
            LedgerUnusableError: The database cannot be used (damaged, or of a newer schema).
        """

    async def _read(self, work: Callable[[Session], _T]) -> _T:
        """Run a small read (a few rows by key) as `_run` does; a backend may answer it without the thread hop."""
        return await self._run(work)

    async def _before_claim(self) -> None:
        """Made ready to claim a submission (a backend whose liveness check needs a session opens it here)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- submissions ----------------------------------------------------------------------------------

    async def begin_submission(
        self,
        *,
        tool: str,
        action: str,
        body: Mapping[str, Any],
        parent_task_id: str | None = None,
        parent_clip_id: str | None = None,
    ) -> TaskRecord:
        """Record a submission about to be sent, in state `submitting` and status NOT_START.

        Raises:
            TypeError: `body` holds something JSON cannot represent.
            ValueError: `body` holds a circular reference or a non-finite float.
            LedgerClosedError: The ledger is closed.
        """
        record, _ = await self.begin_unless_duplicate(
            tool=tool, action=action, body=body, parent_task_id=parent_task_id, parent_clip_id=parent_clip_id,
            within_seconds=None,
        )  # fmt: skip
        return record

    async def begin_unless_duplicate(
        self,
        *,
        tool: str,
        action: str,
        body: Mapping[str, Any],
        parent_task_id: str | None = None,
        parent_clip_id: str | None = None,
        within_seconds: float | None = DEFAULT_DUPLICATE_WINDOW,
        budget: SpendGate | None = None,
    ) -> tuple[TaskRecord, bool]:
        """In one transaction: the newest duplicate within the window, or a new submission.

        Returns `(duplicate, False)` when an identical request (see `find_duplicate`) was made within
        `within_seconds`, else `(new submission, True)`. Two concurrent identical calls, even from two
        processes, cannot both begin. `within_seconds=None` never looks for a duplicate. A new submission
        passes the `budget` gate in the same transaction and reserves its price, so concurrent calls (from any
        process, or replica) cannot both slip under a budget.

        Raises:
            TypeError: `body` holds something JSON cannot represent.
            ValueError: `body` holds a circular reference or a non-finite float.
            OverBudgetError: The call does not fit a budget of the gate (nothing was recorded).
            LedgerClosedError: The ledger is closed.
        """
        request = dict(body)
        request_json = json.dumps(request, ensure_ascii=False, allow_nan=False)
        new = queries.Claim(
            submission_id=uuid.uuid4().hex,
            tool=tool,
            action=action,
            request_json=request_json,
            fingerprint=body_fingerprint(action, request),
            title=request_title(request),
            parent_task_id=parent_task_id,
            parent_clip_id=parent_clip_id,
            owner=self.owner,
            principal=self._principal,
        )
        await self._before_claim()
        return await self._run(
            lambda s: queries.claim(s, new, now=self._clock(), within_seconds=within_seconds, budget=budget)
        )

    async def record_task_id(self, submission_id: str, task_id: str) -> TaskRecord:
        """Store the task id CCAPI answered with (state `submitted`), durably before returning.

        Recording the same task id again is harmless.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerError: The submission already has another task id, or another submission has this one.
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: queries.record_task_id(s, submission_id, task_id, self._clock()))

    async def mark_outcome_unknown(self, submission_id: str, error: str) -> TaskRecord:
        """Note that the request may have reached CCAPI but no answer came.

        A submission whose task id is already known keeps state `submitted`; only the error is stored.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: queries.mark(s, submission_id, "outcome_unknown", error, self._clock()))

    async def mark_rejected(self, submission_id: str, error: str) -> TaskRecord:
        """Note that CCAPI refused the request (nothing was billed).

        A submission whose task id is already known keeps state `submitted`; only the error is stored.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: queries.mark(s, submission_id, "rejected", error, self._clock()))

    async def settle_interrupted(self) -> None:
        """Mark submissions left `submitting` by a process that stopped mid-send as `outcome_unknown`.

        A submission whose owner process has died is settled at once; any other once it is older than
        `INTERRUPTED_AFTER` seconds, far longer than a request may take. A younger submission of a live (or
        uncheckable) owner may be in flight and is left alone.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        await self._run(lambda s: queries.settle_interrupted(s, self._clock()))

    async def find_duplicate(
        self, action: str, body: Mapping[str, Any], *, within_seconds: float = DEFAULT_DUPLICATE_WINDOW
    ) -> TaskRecord | None:
        """The newest submission of the same action and body within the window that may have been billed.

        Submissions CCAPI rejected and tasks that ended in FAILURE do not count: they can be retried.

        Raises:
            TypeError: `body` holds something JSON cannot represent.
            ValueError: `body` holds a circular reference or a non-finite float.
            LedgerClosedError: The ledger is closed.
        """
        fingerprint = body_fingerprint(action, body)

        def find(session: Session) -> TaskRecord | None:
            with session.transaction(write=False):
                return queries.newest_duplicate(session, self._principal, fingerprint, self._clock() - within_seconds)

        return await self._run(find)

    # -- CCAPI updates --------------------------------------------------------------------------------

    async def apply_update(self, task: SunoTask) -> bool:
        """Merge a fetched CCAPI task record into the ledger; True if anything visible changed.

        Status, progress, fail reason, result link, quota and raw result are taken over (and, once the task
        settles, its charge: see `settled_charge`), the clips are stored
        under this task, the title follows the first clip, and a status history entry is added when the
        status or progress changed. Unknown task ids are ignored. A terminal task never moves back to a
        non-terminal status: such a (stale) record is ignored.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: queries.apply_update(s, task, self._clock))

    async def apply_updates(
        self, tasks: Sequence[SunoTask], *, then_read: Sequence[str] = ()
    ) -> tuple[list[str], list[TaskRecord]]:
        """`apply_update` for each fetched task (each in its own transaction), then `get_tasks(then_read)`, all in
        one trip to a worker thread: a watcher cycle or a status call pays for one, not one per task.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        wanted = list(dict.fromkeys(then_read))

        def apply(session: Session) -> tuple[list[str], list[TaskRecord]]:
            changed = [task.task_id for task in tasks if queries.apply_update(session, task, self._clock)]
            return changed, queries.read_tasks(session, self._principal, wanted) if wanted else []

        return await self._run(apply)

    # -- reads ----------------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """The task with this CCAPI id, with its clips, local files and status history.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._read(lambda s: queries.find_task(s, self._principal, "task_id", task_id))

    async def get_submission(self, submission_id: str) -> TaskRecord | None:
        """The submission with this id, with its clips, local files and status history.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._read(lambda s: queries.find_task(s, self._principal, "submission_id", submission_id))

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """The known tasks among `task_ids`, in the given order (each once), with clips and local files.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        wanted = list(dict.fromkeys(task_ids))
        if not wanted:
            return []
        read = self._read if len(wanted) <= POINT_READ_LIMIT else self._run
        return await read(lambda s: queries.read_tasks(s, self._principal, wanted))

    async def get_clip(self, clip_id: str) -> ClipRecord | None:
        """The clip with this id, with its local files and the lineage of the task that produced it.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._read(lambda s: queries.get_clip(s, self._principal, clip_id))

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        action: str | None = None,
        text: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> TaskPage:
        """A page of submissions, newest first, with their clips and local files (no history).

        Args:
            status: A CCAPI status (any case), or `pending` (not terminal and not rejected), or one of the
                submission states `submitting`, `outcome_unknown`, `rejected`.
            action: A CCAPI action token (any case) or a tool name.
            text: A case-insensitive substring of the title, tool, action, task id, request JSON or a clip title.
            limit: Page size, at least 1.
            cursor: `next_cursor` of the previous page, with the same filters.

        Raises:
            ValueError: `limit` is less than 1.
            InvalidCursorError: `cursor` is not one that `list_tasks` returned.
            LedgerClosedError: The ledger is closed.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if cursor is not None:
            decode_cursor(cursor)  # a bad cursor is refused before any trip to the database
        principal = self._principal
        return await self._run(
            lambda s: queries.list_page(
                s, principal, status=status, action=action, text=text, limit=limit, cursor=cursor
            )
        )

    async def pending_task_ids(self) -> list[str]:
        """The task ids the watcher should poll: submitted and not terminal, oldest first.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(queries.pending_task_ids)

    # -- MCP tasks -----------------------------------------------------------------------------------------

    async def create_mcp_task(
        self, *, tool: str, task_ids: Sequence[str], ttl_seconds: float, wait_seconds: float | None = None
    ) -> McpTaskRecord:
        """Record a tool call answered as an MCP task of this principal, durably, with a new unguessable id.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        wanted = list(task_ids)
        return await self._run(
            lambda s: mcp_tasks.create(
                s, self._principal, tool=tool, task_ids=wanted, ttl_seconds=ttl_seconds, wait_seconds=wait_seconds,
                now=self._clock(),
            )
        )  # fmt: skip

    async def get_mcp_task(self, mcp_task_id: str) -> McpTaskRecord | None:
        """This principal's MCP task with this id (None for another principal's, as for one never made).

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._read(lambda s: mcp_tasks.find(s, self._principal, mcp_task_id))

    async def cancel_mcp_task(self, mcp_task_id: str) -> McpTaskRecord | None:
        """Mark this principal's MCP task cancelled; None when there is no such task.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: mcp_tasks.cancel(s, self._principal, mcp_task_id, self._clock()))

    async def add_local_file(self, file: LocalFile) -> None:
        """Record a saved file; a file saved again at the same path replaces the earlier record.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        await self._run(lambda s: queries.add_local_file(s, file))

    async def search_ids(self, prefix: str, *, kind: Literal["task", "clip"], limit: int = 20) -> list[str]:
        """Task or clip ids starting with `prefix` (ignoring ASCII case), newest first (for completions).

        Raises:
            ValueError: `limit` is less than 1.
            LedgerClosedError: The ledger is closed.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        return await self._run(lambda s: queries.search_ids(s, self._principal, prefix, kind=kind, limit=limit))

    async def count_tasks(self) -> int:
        """How many submissions the ledger holds for this principal.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: queries.count_tasks(s, self._principal))

    # -- spend ------------------------------------------------------------------------------------------

    async def committed_quota(self, since: Sequence[float], *, everyone: bool = False) -> list[int]:
        """For each time in `since`, the quota committed by this principal's submissions made since (by everyone's
        with `everyone`): what settled tasks were charged, and what calls in flight reported or reserved.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        starts = list(since)
        principal = None if everyone else self._principal

        def read(session: Session) -> list[int]:
            with session.transaction(write=False):
                return [spend.committed(session, start, principal) for start in starts]

        return await self._run(read)

    async def recent_quotas(self, *, last: int, tool: str | None = None) -> dict[str, list[int]]:
        """The quota CCAPI reported on each tool's `last` newest tasks that report one, newest first (every
        principal's: a price is the same for all).

        Raises:
            ValueError: `last` is less than 1.
            LedgerClosedError: The ledger is closed.
        """
        if last < 1:
            raise ValueError(f"last must be at least 1, not {last}")
        return await self._run(lambda s: spend.recent_quotas(s, last, tool))

    async def charges(self, *, since: float) -> list[Charge]:
        """Every submission of this principal made since `since` that may have been billed, oldest first.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: spend.charge_rows(s, since, self._principal))

    async def charge_totals(self) -> list[ChargeTotal]:
        """What each tool was charged for this principal over the whole ledger, by tool name.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda s: spend.charge_totals(s, self._principal))
