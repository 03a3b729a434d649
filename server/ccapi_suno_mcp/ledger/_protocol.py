"""The ledger interface and its errors, implemented by the embedded SQLite file and by a shared PostgreSQL database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ccapi_suno_mcp.ccapi import SunoTask
    from ccapi_suno_mcp.ledger._charges import Charge, ChargeTotal, SpendGate, SpendLimit
    from ccapi_suno_mcp.ledger._mcp_tasks import McpTaskRecord
    from ccapi_suno_mcp.ledger._models import ClipRecord, LocalFile, TaskPage, TaskRecord

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_PRINCIPAL",
    "ChangeListener",
    "InvalidCursorError",
    "LedgerClosedError",
    "LedgerError",
    "LedgerUnavailableError",
    "LedgerUnusableError",
    "OverBudgetError",
    "SchemaVersionError",
    "TaskLedger",
    "UnknownSubmissionError",
]

DEFAULT_DUPLICATE_WINDOW = 600.0
"""Seconds during which the same action and body count as a repeat of an earlier submission."""
DEFAULT_PRINCIPAL = "default"
"""Who owns the tasks when nobody is named: stdio, the single HTTP token, and ledgers made before principals."""


class LedgerError(Exception):
    """Base class of the ledger's own errors."""


class UnknownSubmissionError(LedgerError, LookupError):
    """No submission has the given submission id."""

    def __init__(self, submission_id: str) -> None:
        super().__init__(f"no submission {submission_id!r} in the ledger")
        self.submission_id = submission_id


class InvalidCursorError(LedgerError, ValueError):
    """A `list_tasks` cursor that no `list_tasks` call returned."""


class LedgerClosedError(LedgerError):
    """The ledger was used after `aclose`."""


class LedgerUnusableError(LedgerError):
    """The ledger file cannot be used: damaged, not a database, or written by a newer version of this program.

    The file is left exactly as it was. The message is one sentence for the user: which file, what is wrong,
    and what to do.
    """

    def __init__(self, path: str, problem: str, *, remedy: str = "", instead: str | None = None) -> None:
        name = Path(path).name
        advice = instead or (
            f"{remedy}move it aside (for example rename it to {name}.broken) and restart the server: a new, empty "
            "ledger is made on restart."
        )
        super().__init__(f"The task ledger {path} cannot be used: {problem}. It was not changed. {advice}")
        self.path = path
        self.problem = problem


class SchemaVersionError(LedgerUnusableError):
    """The database was written by a newer version of this program than the one running."""


class OverBudgetError(LedgerError):
    """A submission that would take spend past a budget (see `SpendGate`): nothing was recorded."""

    def __init__(self, limit: SpendLimit, committed_quota: int, price_quota: int | None) -> None:
        super().__init__(
            f"the {limit.name} budget of {limit.limit_quota} quota has {committed_quota} committed; a call priced "
            f"{'unknown' if price_quota is None else price_quota} does not fit"
        )
        self.limit = limit
        self.committed_quota = committed_quota
        self.price_quota = price_quota


class LedgerUnavailableError(LedgerError):
    """The ledger cannot be used just now (its database server is unreachable, its disk is full, its folder cannot
    be written); a later call may succeed. The message says what to do."""


class LedgerFullError(LedgerUnavailableError):
    """The disk holding the ledger is full: the write was not made (its transaction rolled back)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


ChangeListener = Callable[[list[str], bool, bool], Awaitable[None]]
"""Called with the task ids another process changed, whether its task list changed, and whether spend did."""


class TaskLedger(Protocol):
    """The server's memory of everything it submitted to CCAPI: tasks, clips, lineage and local files.

    A submission is recorded before its request is sent, and its task id the moment CCAPI answers, so that
    no task id is ever lost and nothing is submitted (and billed) twice by accident.
    """

    @property
    def principal(self) -> str:
        """Whose tasks this view of the ledger reads and records (`DEFAULT_PRINCIPAL` unless `for_principal`)."""
        ...

    def now(self) -> float:
        """The ledger's time (Unix seconds), in which its records are stamped: the database server's for a shared
        ledger, so an age (now minus a `created_at`) means the same on every replica."""
        ...

    def for_principal(self, principal: str) -> TaskLedger:
        """A view of this ledger that reads and records `principal`'s tasks only (the watcher's side spans all).

        Another principal's task, clip or id is to the view exactly as one it never saw.
        """
        ...

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
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def record_task_id(self, submission_id: str, task_id: str) -> TaskRecord:
        """Store the task id CCAPI answered with (state `submitted`), durably before returning.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerError: Another submission already holds this task id.
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def mark_outcome_unknown(self, submission_id: str, error: str) -> TaskRecord:
        """Note that the request may have reached CCAPI but no answer came.

        A submission whose task id is already known keeps state `submitted`; only the error is stored.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def mark_rejected(self, submission_id: str, error: str) -> TaskRecord:
        """Note that CCAPI refused the request (nothing was billed).

        A submission whose task id is already known keeps state `submitted`; only the error is stored.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerClosedError: The ledger is closed.
        """
        ...

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
        """Atomically return the newest duplicate within the window (`False`), or begin a submission (`True`).

        Two concurrent identical calls must not both begin: this is what prevents double billing. With a
        `budget`, a new submission reserves its price in the same transaction, and one that would take what is
        committed (charged, and reserved by calls in flight) since a limit's start past that limit is refused
        unless the gate is approved, so two concurrent calls cannot both slip under a budget. A limit counts
        every principal's calls, or one principal's (`SpendLimit.principal`); on a shared ledger, every
        replica's.

        Raises:
            TypeError: `body` holds something JSON cannot represent.
            OverBudgetError: The call does not fit a budget of the gate (nothing was recorded).
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def settle_interrupted(self) -> None:
        """Mark submissions left `submitting` long ago (their process stopped mid-send) as `outcome_unknown`.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def find_duplicate(
        self, action: str, body: Mapping[str, Any], *, within_seconds: float = DEFAULT_DUPLICATE_WINDOW
    ) -> TaskRecord | None:
        """The newest submission of the same action and body within the window that may have been billed.

        Submissions CCAPI rejected and tasks that ended in FAILURE do not count: they can be retried.

        Raises:
            TypeError: `body` holds something JSON cannot represent.
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def apply_update(self, task: SunoTask) -> bool:
        """Merge a fetched CCAPI task record into the ledger; True if anything visible changed.

        The record's `quota` is kept; once the task settles its charge is recorded (see `settled_charge`).
        Unknown task ids are ignored. A terminal task never moves back to a non-terminal status.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def apply_updates(
        self, tasks: Sequence[SunoTask], *, then_read: Sequence[str] = ()
    ) -> tuple[list[str], list[TaskRecord]]:
        """`apply_update` for each fetched task, then `get_tasks(then_read)`, in one round trip to the store.

        Returns the ids of the tasks whose visible state changed, and the records read afterwards.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """The task with this CCAPI id, with its clips, local files and status history.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def get_submission(self, submission_id: str) -> TaskRecord | None:
        """The submission with this id, with its clips, local files and status history.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """The known tasks among `task_ids`, in the given order (each once), with clips and local files.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def get_clip(self, clip_id: str) -> ClipRecord | None:
        """The clip with this id, with its local files and the lineage of the task that produced it.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

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
        ...

    async def pending_task_ids(self) -> list[str]:
        """The task ids the watcher should poll: submitted and not terminal, oldest first, of every principal.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def create_mcp_task(
        self, *, tool: str, task_ids: Sequence[str], ttl_seconds: float, wait_seconds: float | None = None
    ) -> McpTaskRecord:
        """Record a tool call answered as an MCP task (`io.modelcontextprotocol/tasks`) of this view's principal,
        durably, under a new unguessable id. It follows `task_ids` (CCAPI tasks of the ledger), is kept for
        `ttl_seconds`, and, with `wait_seconds`, ends that long after its creation whatever its tasks' state.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def get_mcp_task(self, mcp_task_id: str) -> McpTaskRecord | None:
        """This principal's MCP task with this id; another principal's is to the view as one never made.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def cancel_mcp_task(self, mcp_task_id: str) -> McpTaskRecord | None:
        """Mark this principal's MCP task cancelled (its CCAPI tasks run on); None when there is no such task.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def add_local_file(self, file: LocalFile) -> None:
        """Record a saved file; a file saved again at the same path replaces the earlier record.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def search_ids(self, prefix: str, *, kind: Literal["task", "clip"], limit: int = 20) -> list[str]:
        """Task or clip ids starting with `prefix`, newest first (for completions).

        Raises:
            ValueError: `limit` is less than 1.
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def count_tasks(self) -> int:
        """How many submissions the ledger holds for this view's principal.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    # -- spend (this view's principal's) ----------------------------------------------------------------

    async def committed_quota(self, since: Sequence[float], *, everyone: bool = False) -> list[int]:
        """For each time in `since`, the quota committed by this principal's submissions made since (everyone's,
        with `everyone`): what settled tasks were charged, and what calls in flight reported or reserved (see
        `Charge.counted_quota`).

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def recent_quotas(self, *, last: int, tool: str | None = None) -> dict[str, list[int]]:
        """The quota CCAPI reported on each tool's `last` newest tasks that report one, newest first (of every
        principal: a price is the same for everyone).

        Raises:
            ValueError: `last` is less than 1.
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def charges(self, *, since: float) -> list[Charge]:
        """Every submission of this principal made since `since` that may have been billed, oldest first.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def charge_totals(self) -> list[ChargeTotal]:
        """What each tool was charged for this principal over the whole ledger, by tool name.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    # -- replicas -----------------------------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        """Whether other server processes (replicas) may use this ledger at the same time, and hear `announce`."""
        ...

    async def lead_watcher(self) -> bool:
        """Whether this process's watcher is the one that polls CCAPI now (one at a time on a shared ledger).

        Asked before every poll cycle; a process that is refused asks again, and takes over once the process
        that polled is gone.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def announce(self, task_ids: Sequence[str], *, list_changed: bool, spend: bool = False) -> None:
        """Tell the other processes on this ledger that these tasks (and the task list, and spend, if so) changed.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        ...

    async def follow(self, listener: ChangeListener) -> None:
        """Call `listener` for every change another process announces, until cancelled (at once for a ledger
        that is not shared). After a lost connection it is called once with no ids and `True` for the list and
        spend: something may have changed unheard."""
        ...

    async def aclose(self) -> None:
        """Release the ledger's resources; calling it again does nothing."""
        ...
