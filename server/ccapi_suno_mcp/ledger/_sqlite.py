"""The embedded ledger: one SQLite file in WAL mode, written from a worker thread.

One connection serves the process. Its blocking calls run in a worker thread, one at a time
(`anyio.CapacityLimiter(1)`), so the event loop never waits on the disk. Every write is one
`BEGIN IMMEDIATE` transaction, so a crash never leaves half a write and a second process on the
same file waits (busy timeout) instead of failing. Nothing is cached between calls: another process
may have written in the meantime.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeVar

import anyio
import anyio.to_thread

from ccapi_suno_mcp._json import json_list, json_object
from ccapi_suno_mcp.ccapi import Clip, SunoTask, TaskStatus, lenient
from ccapi_suno_mcp.ledger import _sqlite_spend as spend_sql
from ccapi_suno_mcp.ledger._charges import Charge, ChargeTotal, SpendGate, settled_charge
from ccapi_suno_mcp.ledger._models import (
    TERMINAL_STATUSES,
    ClipRecord,
    LocalFile,
    StatusChange,
    TaskPage,
    TaskRecord,
    body_fingerprint,
    canonical_json,
)
from ccapi_suno_mcp.ledger._owner import current_owner, owner_alive
from ccapi_suno_mcp.ledger._protocol import (
    DEFAULT_DUPLICATE_WINDOW,
    InvalidCursorError,
    LedgerClosedError,
    LedgerError,
    LedgerUnusableError,
    SchemaVersionError,
    TaskLedger,
    UnknownSubmissionError,
)

__all__ = ["BUSY_TIMEOUT", "SQLiteLedger"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT = 10.0
"""Seconds a write waits for another process holding the file before it fails."""

_T = TypeVar("_T")

# Each step runs in its own transaction and sets PRAGMA user_version to its position (1-based).
# Never edit a released step: append a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY,
            submission_id TEXT NOT NULL UNIQUE,
            task_id TEXT UNIQUE,
            tool TEXT NOT NULL,
            action TEXT NOT NULL,
            request TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('submitting', 'submitted', 'outcome_unknown', 'rejected')),
            status TEXT NOT NULL,
            progress TEXT,
            fail_reason TEXT,
            error TEXT,
            title TEXT,
            result_url TEXT,
            result TEXT,
            parent_task_id TEXT,
            parent_clip_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            search_text TEXT NOT NULL
        )
        """,
        "CREATE INDEX tasks_by_created ON tasks (created_at)",
        "CREATE INDEX tasks_by_fingerprint ON tasks (fingerprint, created_at)",
        "CREATE INDEX tasks_by_status ON tasks (status, created_at)",
        """
        CREATE INDEX tasks_pending ON tasks (created_at)
        WHERE state = 'submitted' AND status NOT IN ('SUCCESS', 'FAILURE')
        """,
        """
        CREATE TABLE clips (
            clip_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks (task_id),
            position INTEGER NOT NULL,
            title TEXT,
            tags TEXT,
            lyrics TEXT,
            audio_url TEXT,
            video_url TEXT,
            image_url TEXT,
            state TEXT,
            duration REAL,
            created_at TEXT,
            raw TEXT NOT NULL,
            seen_at REAL NOT NULL
        )
        """,
        "CREATE INDEX clips_by_task ON clips (task_id, position)",
        "CREATE INDEX clips_by_seen ON clips (seen_at)",
        """
        CREATE TABLE status_history (
            id INTEGER PRIMARY KEY,
            submission_id TEXT NOT NULL REFERENCES tasks (submission_id),
            status TEXT NOT NULL,
            progress TEXT,
            at REAL NOT NULL
        )
        """,
        "CREATE INDEX status_history_by_submission ON status_history (submission_id, id)",
        """
        CREATE TABLE local_files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            clip_id TEXT,
            task_id TEXT,
            kind TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        "CREATE INDEX local_files_by_clip ON local_files (clip_id)",
        "CREATE INDEX local_files_by_task ON local_files (task_id)",
    ),
    (
        # The process sending a submission (`_owner.current_owner()`), so a dead owner's row is settled at once.
        "ALTER TABLE tasks ADD COLUMN owner TEXT",
        "CREATE INDEX tasks_in_flight ON tasks (created_at) WHERE state = 'submitting'",
    ),
    (
        # Money (see _charges.py): CCAPI's reported quota, the price reserved at submit, the charge once settled.
        "ALTER TABLE tasks ADD COLUMN quota INTEGER",
        "ALTER TABLE tasks ADD COLUMN reserved_quota INTEGER",
        "ALTER TABLE tasks ADD COLUMN charged_quota INTEGER",
        "ALTER TABLE tasks ADD COLUMN refunded_quota INTEGER",
        "CREATE INDEX tasks_priced ON tasks (tool, created_at) WHERE quota IS NOT NULL",
    ),
)

_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
"""SQLite's answers for a file that is not a database or is damaged: the ledger is then unusable, untouched."""

INTERRUPTED_AFTER = 120.0
"""Seconds after which a submission still `submitting` when a ledger opens is taken as interrupted."""

_TASK_COLUMNS = (
    "seq, submission_id, task_id, tool, action, request, fingerprint, state, status, progress, fail_reason, error, "
    "title, result_url, result, parent_task_id, parent_clip_id, created_at, updated_at, finished_at, "
    "quota, reserved_quota, charged_quota, refunded_quota"
)
_CLIP_COLUMNS = (
    "clips.clip_id, clips.task_id, clips.title, clips.tags, clips.lyrics, clips.audio_url, clips.video_url, "
    "clips.image_url, clips.state, clips.duration, clips.created_at, clips.raw"
)
_FILE_COLUMNS = "clip_id, task_id, kind, path, size, content_type, created_at"
_PENDING = "state != 'rejected' AND status NOT IN ('SUCCESS', 'FAILURE')"
_SUBMISSION_STATE_FILTERS = frozenset({"submitting", "outcome_unknown", "rejected"})

# Where a readable name for a task may be found in its request body, best first.
_TITLE_FIELDS = ("title", "gpt_description_prompt", "prompt", "description", "tags")
_TITLE_MAX = 60
_SECTION_TAG = re.compile(r"\[[^\]]*\]")


class SQLiteLedger(TaskLedger):
    """The task ledger in one SQLite file, safe to share with other processes on the same machine.

    Construct it with `await SQLiteLedger.open(path)` (or construct it and let the first call open the
    file), and close it with `aclose()` or `async with`.
    """

    SCHEMA_VERSION: ClassVar[int] = len(_MIGRATIONS)

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self._path = os.fspath(path)
        self._clock = clock
        self._limiter = anyio.CapacityLimiter(1)
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        self._unusable: LedgerUnusableError | None = None

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> Self:
        """Open (creating folders, file and schema as needed) the ledger at `path`.

        Raises:
            LedgerUnusableError: The file is not a database, is damaged, cannot be opened, or was written by a
                newer version of this program (`SchemaVersionError`). It is left as it was.
        """
        ledger = cls(path, clock=clock)
        await ledger.settle_interrupted()
        return ledger

    async def settle_interrupted(self) -> None:
        """Mark submissions left `submitting` by a process that stopped mid-send as `outcome_unknown`.

        A submission whose owner process (on this host) has died is settled at once; any other once it is older
        than `INTERRUPTED_AFTER` seconds, far longer than a request may take. A younger submission of a live (or
        uncheckable) owner may be in flight and is left alone.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        await self._run(self._settle_interrupted)

    def _settle_interrupted(self, connection: sqlite3.Connection) -> None:
        now = self._clock()
        rows = connection.execute(
            "SELECT submission_id, owner, created_at FROM tasks WHERE state = 'submitting' AND task_id IS NULL"
        ).fetchall()
        orphans = [row["submission_id"] for row in rows if _orphaned(row["owner"], row["created_at"], now)]
        if not orphans:
            return
        with _transaction(connection, durable=True):
            for row in rows:
                if row["submission_id"] in orphans:
                    _settle_orphan(connection, row["submission_id"], row["owner"], now)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection; calling it again does nothing."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

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
        process) cannot both slip under a budget.

        Raises:
            TypeError: `body` holds something JSON cannot represent.
            ValueError: `body` holds a circular reference or a non-finite float.
            OverBudgetError: The call does not fit a budget of the gate (nothing was recorded).
            LedgerClosedError: The ledger is closed.
        """
        request = dict(body)
        fingerprint = body_fingerprint(action, request)
        request_json = json.dumps(request, ensure_ascii=False, allow_nan=False)
        submission_id = uuid.uuid4().hex
        title = _request_title(request)

        def claim(connection: sqlite3.Connection) -> tuple[TaskRecord, bool]:
            now = self._clock()
            with _transaction(connection, durable=True):
                if within_seconds is not None:
                    duplicate = _newest_duplicate(connection, fingerprint, now - within_seconds)
                    if duplicate is not None and duplicate.state == "submitting" and duplicate.task_id is None:
                        owner = _owner_of(connection, duplicate.submission_id)
                        if owner_alive(owner) is False:  # its sender died mid-send: nobody will record an answer
                            _settle_orphan(connection, duplicate.submission_id, owner, now)
                            duplicate = _one_task(
                                connection, "submission_id = ?", duplicate.submission_id, history=False
                            )
                    if duplicate is not None:
                        return duplicate, False
                if budget is not None:
                    spend_sql.check_gate(connection, budget)
                connection.execute(
                    "INSERT INTO tasks (submission_id, tool, action, request, fingerprint, state, status, title, "
                    "parent_task_id, parent_clip_id, created_at, updated_at, search_text, owner, reserved_quota) "
                    "VALUES (?, ?, ?, ?, ?, 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        submission_id,
                        tool,
                        action,
                        request_json,
                        fingerprint,
                        TaskStatus.NOT_START.value,
                        title,
                        parent_task_id,
                        parent_clip_id,
                        now,
                        now,
                        _search_text(title, tool, action, None, request_json, []),
                        current_owner(),
                        None if budget is None else budget.price_quota,
                    ),
                )
                connection.execute(
                    "INSERT INTO status_history (submission_id, status, progress, at) VALUES (?, ?, NULL, ?)",
                    (submission_id, TaskStatus.NOT_START.value, now),
                )
                return _one_task(connection, "submission_id = ?", submission_id, history=True), True

        return await self._run(claim)

    async def record_task_id(self, submission_id: str, task_id: str) -> TaskRecord:
        """Store the task id CCAPI answered with (state `submitted`), durably before returning.

        Recording the same task id again is harmless.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerError: The submission already has another task id, or another submission has this one.
            LedgerClosedError: The ledger is closed.
        """

        def record(connection: sqlite3.Connection) -> TaskRecord:
            with _transaction(connection, durable=True):
                row = _submission_row(connection, submission_id)
                if row["task_id"] not in (None, task_id):
                    raise LedgerError(f"submission {submission_id!r} already has task id {row['task_id']!r}")
                clip_titles = _clip_titles(connection, task_id)
                try:
                    connection.execute(
                        "UPDATE tasks SET task_id = ?, state = 'submitted', error = NULL, updated_at = ?, "
                        "search_text = ? WHERE submission_id = ?",
                        (
                            task_id,
                            self._clock(),
                            _search_text(
                                row["title"], row["tool"], row["action"], task_id, row["request"], clip_titles
                            ),
                            submission_id,
                        ),
                    )
                except sqlite3.IntegrityError as error:
                    raise LedgerError(f"task id {task_id!r} is already recorded for another submission") from error
                return _one_task(connection, "submission_id = ?", submission_id, history=True)

        return await self._run(record)

    async def mark_outcome_unknown(self, submission_id: str, error: str) -> TaskRecord:
        """Note that the request may have reached CCAPI but no answer came.

        A submission whose task id is already known keeps state `submitted`; only the error is stored.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda connection: self._mark(connection, submission_id, "outcome_unknown", error))

    async def mark_rejected(self, submission_id: str, error: str) -> TaskRecord:
        """Note that CCAPI refused the request (nothing was billed).

        A submission whose task id is already known keeps state `submitted`; only the error is stored.

        Raises:
            UnknownSubmissionError: No submission has this id.
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda connection: self._mark(connection, submission_id, "rejected", error))

    def _mark(
        self,
        connection: sqlite3.Connection,
        submission_id: str,
        state: Literal["outcome_unknown", "rejected"],
        error: str,
    ) -> TaskRecord:
        with _transaction(connection, durable=True):
            row = _submission_row(connection, submission_id)
            # A known task id is proof CCAPI accepted the request: keep it submitted so the watcher follows it.
            new_state = "submitted" if row["task_id"] is not None else state
            connection.execute(
                "UPDATE tasks SET state = ?, error = ?, updated_at = ? WHERE submission_id = ?",
                (new_state, error, self._clock(), submission_id),
            )
            return _one_task(connection, "submission_id = ?", submission_id, history=True)

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

        def find(connection: sqlite3.Connection) -> TaskRecord | None:
            with _transaction(connection, write=False):
                return _newest_duplicate(connection, fingerprint, self._clock() - within_seconds)

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
        return await self._run(lambda connection: self._apply_update(connection, task))

    async def apply_updates(
        self, tasks: Sequence[SunoTask], *, then_read: Sequence[str] = ()
    ) -> tuple[list[str], list[TaskRecord]]:
        """`apply_update` for each fetched task (each in its own transaction), then `get_tasks(then_read)`, all in
        one trip to the worker thread: a watcher cycle or a status call pays for one, not one per task.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        wanted = list(dict.fromkeys(then_read))

        def apply(connection: sqlite3.Connection) -> tuple[list[str], list[TaskRecord]]:
            changed = [task.task_id for task in tasks if self._apply_update(connection, task)]
            return changed, _read_tasks(connection, wanted) if wanted else []

        return await self._run(apply)

    def _apply_update(self, connection: sqlite3.Connection, task: SunoTask) -> bool:
        status = task.status.strip().upper() or TaskStatus.UNKNOWN.value
        clips = _clips_with_raw(task)
        with _transaction(connection):
            row = connection.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = ?", (task.task_id,)).fetchone()
            if row is None:
                return False
            if row["status"] in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
                return False
            now = self._clock()
            first_title = next((clip.title for clip, _ in clips if clip.title), None)
            quota = task.quota if task.quota is not None else row["quota"]
            charged_quota, refunded_quota = settled_charge(status, quota, row["reserved_quota"])
            fields: dict[str, Any] = {
                "status": status,
                "progress": task.progress or None,
                "fail_reason": task.fail_reason or None,
                "result_url": task.result_url or None,
                "title": first_title or row["title"],
                "finished_at": row["finished_at"] or (now if status in TERMINAL_STATUSES else None),
                "quota": quota,
                "charged_quota": charged_quota,
                "refunded_quota": refunded_quota,
            }
            changed = any(row[name] != value for name, value in fields.items())
            if _loads(row["result"]) != task.data:
                changed = True
            if _upsert_clips(connection, task.task_id, clips, now):
                changed = True
            if not changed:
                return False
            if status != row["status"] or fields["progress"] != row["progress"]:
                connection.execute(
                    "INSERT INTO status_history (submission_id, status, progress, at) VALUES (?, ?, ?, ?)",
                    (row["submission_id"], status, fields["progress"], now),
                )
            search_text = _search_text(
                fields["title"],
                row["tool"],
                row["action"],
                task.task_id,
                row["request"],
                _clip_titles(connection, task.task_id),
            )
            connection.execute(
                "UPDATE tasks SET status = :status, progress = :progress, fail_reason = :fail_reason, "
                "result_url = :result_url, title = :title, finished_at = :finished_at, result = :result, "
                "quota = :quota, charged_quota = :charged_quota, refunded_quota = :refunded_quota, "
                "updated_at = :updated_at, search_text = :search_text WHERE submission_id = :submission_id",
                {
                    **fields,
                    "result": None if task.data is None else json.dumps(task.data, ensure_ascii=False),
                    "updated_at": now,
                    "search_text": search_text,
                    "submission_id": row["submission_id"],
                },
            )
            return True

    # -- reads ----------------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """The task with this CCAPI id, with its clips, local files and status history.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda connection: _find_task(connection, "task_id = ?", task_id))

    async def get_submission(self, submission_id: str) -> TaskRecord | None:
        """The submission with this id, with its clips, local files and status history.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda connection: _find_task(connection, "submission_id = ?", submission_id))

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """The known tasks among `task_ids`, in the given order (each once), with clips and local files.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        wanted = list(dict.fromkeys(task_ids))
        if not wanted:
            return []
        return await self._run(lambda connection: _read_tasks(connection, wanted))

    async def get_clip(self, clip_id: str) -> ClipRecord | None:
        """The clip with this id, with its local files and the lineage of the task that produced it.

        Raises:
            LedgerClosedError: The ledger is closed.
        """

        def get(connection: sqlite3.Connection) -> ClipRecord | None:
            with _transaction(connection, write=False):
                row = connection.execute(
                    f"SELECT {_CLIP_COLUMNS}, tasks.parent_task_id, tasks.parent_clip_id "
                    "FROM clips LEFT JOIN tasks ON tasks.task_id = clips.task_id WHERE clips.clip_id = ?",
                    (clip_id,),
                ).fetchone()
                if row is None:
                    return None
                files = connection.execute(
                    f"SELECT {_FILE_COLUMNS} FROM local_files WHERE clip_id = ? ORDER BY created_at, id", (clip_id,)
                ).fetchall()
            return _clip_record(row, row["parent_task_id"], row["parent_clip_id"], [_local_file(f) for f in files])

        return await self._run(get)

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
        clauses: list[str] = []
        params: list[Any] = []
        if status:
            word = status.strip().lower()
            if word == "pending":
                clauses.append(_PENDING)
            elif word in _SUBMISSION_STATE_FILTERS:
                clauses.append("state = ?")
                params.append(word)
            else:
                clauses.append("status = ?")
                params.append(status.strip().upper())
        if action:
            clauses.append("(action = ? OR tool = ?)")
            params += [action.strip().upper(), action.strip()]
        if text:
            clauses.append("instr(search_text, ?) > 0")
            params.append(text.casefold())
        if cursor is not None:
            created_at, seq = _decode_cursor(cursor)
            clauses.append("(created_at, seq) < (?, ?)")
            params += [created_at, seq]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {_TASK_COLUMNS} FROM tasks {where} ORDER BY created_at DESC, seq DESC LIMIT ?"

        def page(connection: sqlite3.Connection) -> TaskPage:
            with _transaction(connection, write=False):
                rows = connection.execute(query, (*params, limit + 1)).fetchall()
                tasks = _assemble(connection, rows[:limit], history=False)
            next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
            return TaskPage(tasks=tasks, next_cursor=next_cursor)

        return await self._run(page)

    async def pending_task_ids(self) -> list[str]:
        """The task ids the watcher should poll: submitted and not terminal, oldest first.

        Raises:
            LedgerClosedError: The ledger is closed.
        """

        def pending(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                "SELECT task_id FROM tasks WHERE state = 'submitted' AND status NOT IN ('SUCCESS', 'FAILURE') "
                "AND task_id IS NOT NULL ORDER BY created_at, seq"
            ).fetchall()
            return [str(row["task_id"]) for row in rows]

        return await self._run(pending)

    async def add_local_file(self, file: LocalFile) -> None:
        """Record a saved file; a file saved again at the same path replaces the earlier record.

        Raises:
            LedgerClosedError: The ledger is closed.
        """

        def add(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.execute(
                    f"INSERT INTO local_files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (path) DO UPDATE SET clip_id = excluded.clip_id, task_id = excluded.task_id, "
                    "kind = excluded.kind, size = excluded.size, content_type = excluded.content_type, "
                    "created_at = excluded.created_at",
                    (file.clip_id, file.task_id, file.kind, file.path, file.size, file.content_type, file.created_at),
                )

        await self._run(add)

    async def search_ids(self, prefix: str, *, kind: Literal["task", "clip"], limit: int = 20) -> list[str]:
        """Task or clip ids starting with `prefix` (ignoring ASCII case), newest first (for completions).

        Raises:
            ValueError: `limit` is less than 1.
            LedgerClosedError: The ledger is closed.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
        if kind == "task":
            query = (
                "SELECT task_id AS id FROM tasks WHERE task_id LIKE ? ESCAPE '\\' "
                "ORDER BY created_at DESC, seq DESC LIMIT ?"
            )
        else:
            query = (
                "SELECT clip_id AS id FROM clips WHERE clip_id LIKE ? ESCAPE '\\' "
                "ORDER BY seen_at DESC, rowid DESC LIMIT ?"
            )

        def search(connection: sqlite3.Connection) -> list[str]:
            return [str(row["id"]) for row in connection.execute(query, (pattern, limit)).fetchall()]

        return await self._run(search)

    async def count_tasks(self) -> int:
        """How many submissions the ledger holds.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda connection: int(connection.execute("SELECT count(*) FROM tasks").fetchone()[0]))

    # -- spend --------------------------------------------------------------------------------------------

    async def committed_quota(self, since: Sequence[float]) -> list[int]:
        """For each time in `since`, the quota committed by submissions made since: what settled tasks were
        charged, and what calls in flight reported or reserved (see `Charge.counted_quota`).

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        starts = list(since)

        def read(connection: sqlite3.Connection) -> list[int]:
            with _transaction(connection, write=False):
                return [spend_sql.committed(connection, start) for start in starts]

        return await self._run(read)

    async def recent_quotas(self, *, last: int, tool: str | None = None) -> dict[str, list[int]]:
        """The quota CCAPI reported on each tool's `last` newest tasks that report one, newest first.

        Raises:
            ValueError: `last` is less than 1.
            LedgerClosedError: The ledger is closed.
        """
        if last < 1:
            raise ValueError(f"last must be at least 1, not {last}")
        return await self._run(lambda connection: spend_sql.recent_quotas(connection, last, tool))

    async def charges(self, *, since: float) -> list[Charge]:
        """Every submission made since `since` that may have been billed (not rejected), oldest first.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(lambda connection: spend_sql.charge_rows(connection, since))

    async def charge_totals(self) -> list[ChargeTotal]:
        """What each tool was charged over the whole ledger, by tool name.

        Raises:
            LedgerClosedError: The ledger is closed.
        """
        return await self._run(spend_sql.charge_totals)

    # -- plumbing -------------------------------------------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        # Not abandoned on cancellation: a write that started (say, a task id) finishes before we unwind.
        return await anyio.to_thread.run_sync(self._in_thread, work, limiter=self._limiter)

    def _in_thread(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise LedgerClosedError(f"the ledger at {self._path} is closed")
        if self._unusable is not None:
            raise self._unusable
        try:
            if self._connection is None:
                self._connection = _connect(self._path)
            return work(self._connection)
        except LedgerUnusableError as error:
            raise self._refuse(error) from None
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode not in _DAMAGED:
                raise
            raise self._refuse(
                LedgerUnusableError(self._path, f"it is damaged or not a SQLite database ({error})")
            ) from error

    def _refuse(self, error: LedgerUnusableError) -> LedgerUnusableError:
        """From now on every call raises `error`; said once in the log (the server keeps serving)."""
        self._unusable = error
        logger.error("%s", error)
        return error

    def _close(self) -> None:
        self._closed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# -- connection and schema ------------------------------------------------------------------------------


def _connect(path: str) -> sqlite3.Connection:
    """A connection to the ledger file, migrated to the current schema.

    The file is read (its schema version) before anything is written to it, so a damaged file or one of a
    newer version is refused untouched.

    Raises:
        LedgerUnusableError: the file cannot be opened, is not a database or is damaged, or is of a newer schema.
    """
    try:
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE for writes) by _transaction.
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as error:
        raise LedgerUnusableError(path, f"it cannot be opened ({error})") from error
    try:
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        try:
            version = _user_version(connection)
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode not in _DAMAGED:
                raise
            raise LedgerUnusableError(path, f"it is damaged or not a SQLite database ({error})") from error
        _refuse_newer(version, path)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        _migrate(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _user_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(version: int, path: str) -> None:
    latest = len(_MIGRATIONS)
    if version > latest:
        raise SchemaVersionError(
            path,
            f"it was written by a newer ccapi-suno-mcp (schema version {version}; this one knows versions up to "
            f"{latest})",
            remedy="To keep using it, upgrade ccapi-suno-mcp (or point CCAPI_SUNO_HOME at another folder); or: ",
        )


def _migrate(connection: sqlite3.Connection, path: str) -> None:
    latest = len(_MIGRATIONS)
    version = _user_version(connection)
    _refuse_newer(version, path)
    for target in range(version + 1, latest + 1):
        with _transaction(connection):
            # Another process may have migrated since we looked.
            if _user_version(connection) >= target:
                continue
            for statement in _MIGRATIONS[target - 1]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")


@contextmanager
def _transaction(connection: sqlite3.Connection, *, write: bool = True, durable: bool = False) -> Generator[None]:
    """One transaction: all of it is committed or none of it. `durable` syncs the commit to disk."""
    if durable:
        connection.execute("PRAGMA synchronous = FULL")
    try:
        # IMMEDIATE takes the write lock up front, so a second process waits (busy timeout) instead of
        # failing when a read inside the transaction turns into a write.
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        if durable:
            connection.execute("PRAGMA synchronous = NORMAL")


# -- submissions in flight ----------------------------------------------------------------------------------


def _orphaned(owner: str | None, created_at: float, now: float) -> bool:
    """Whether a submission still `submitting` has lost its sender: it died, or the send is far older than any
    request may take (whoever owns it)."""
    return owner_alive(owner) is False or created_at < now - INTERRUPTED_AFTER


def _owner_of(connection: sqlite3.Connection, submission_id: str) -> str | None:
    row = connection.execute("SELECT owner FROM tasks WHERE submission_id = ?", (submission_id,)).fetchone()
    return None if row is None else row["owner"]


def _settle_orphan(connection: sqlite3.Connection, submission_id: str, owner: str | None, now: float) -> None:
    """Mark a submission whose sender is gone as outcome unknown: it may have reached CCAPI and been billed."""
    pid = (owner or "").split(":")[1:2]
    if owner_alive(owner) is False and pid:
        reason = f"the server process that was sending it (pid {pid[0]}) stopped before CCAPI's answer was recorded"
    else:
        reason = "the server stopped while sending this request"
    connection.execute(
        "UPDATE tasks SET state = 'outcome_unknown', error = ?, updated_at = ? "
        "WHERE submission_id = ? AND state = 'submitting' AND task_id IS NULL",
        (reason, now, submission_id),
    )


# -- rows to records ----------------------------------------------------------------------------------------


def _newest_duplicate(connection: sqlite3.Connection, fingerprint: str, since: float) -> TaskRecord | None:
    """The newest submission with this fingerprint since `since` that may have been billed."""
    rows = connection.execute(
        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE fingerprint = ? AND created_at >= ? "
        "AND state != 'rejected' AND status != 'FAILURE' ORDER BY created_at DESC, seq DESC LIMIT 1",
        (fingerprint, since),
    ).fetchall()
    tasks = _assemble(connection, rows, history=False)
    return tasks[0] if tasks else None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _submission_row(connection: sqlite3.Connection, submission_id: str) -> sqlite3.Row:
    row = connection.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE submission_id = ?", (submission_id,)).fetchone()
    if row is None:
        raise UnknownSubmissionError(submission_id)
    return row


def _read_tasks(connection: sqlite3.Connection, wanted: list[str]) -> list[TaskRecord]:
    """The known tasks among `wanted` (distinct ids), in that order, with clips and local files."""
    with _transaction(connection, write=False):
        rows = connection.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        ).fetchall()
        tasks = _assemble(connection, rows, history=False)
    by_id = {task.task_id: task for task in tasks}
    return [by_id[task_id] for task_id in wanted if task_id in by_id]


def _find_task(connection: sqlite3.Connection, where: str, value: str) -> TaskRecord | None:
    with _transaction(connection, write=False):
        rows = connection.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE {where}", (value,)).fetchall()
        tasks = _assemble(connection, rows, history=True)
    return tasks[0] if tasks else None


def _one_task(connection: sqlite3.Connection, where: str, value: str, *, history: bool) -> TaskRecord:
    rows = connection.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE {where}", (value,)).fetchall()
    return _assemble(connection, rows, history=history)[0]


def _assemble(connection: sqlite3.Connection, rows: list[sqlite3.Row], *, history: bool) -> list[TaskRecord]:
    """Task records for `rows`, with their clips and files (and history) fetched in one query each."""
    if not rows:
        return []
    task_ids = json.dumps([row["task_id"] for row in rows if row["task_id"] is not None])
    lineage = {row["task_id"]: (row["parent_task_id"], row["parent_clip_id"]) for row in rows}
    file_rows = connection.execute(
        f"SELECT {_FILE_COLUMNS} FROM local_files WHERE task_id IN (SELECT value FROM json_each(?1)) "
        "OR clip_id IN (SELECT clip_id FROM clips WHERE task_id IN (SELECT value FROM json_each(?1))) "
        "ORDER BY created_at, id",
        (task_ids,),
    ).fetchall()
    files = [_local_file(row) for row in file_rows]
    files_by_clip: dict[str, list[LocalFile]] = {}
    for file in files:
        if file.clip_id is not None:
            files_by_clip.setdefault(file.clip_id, []).append(file)
    clips_by_task: dict[str, list[ClipRecord]] = {}
    for row in connection.execute(
        f"SELECT {_CLIP_COLUMNS} FROM clips WHERE task_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY task_id, position",
        (task_ids,),
    ):
        parent_task_id, parent_clip_id = lineage[row["task_id"]]
        clip = _clip_record(row, parent_task_id, parent_clip_id, files_by_clip.get(row["clip_id"], []))
        clips_by_task.setdefault(clip.task_id, []).append(clip)
    history_by_submission: dict[str, list[StatusChange]] = {}
    if history:
        for row in connection.execute(
            "SELECT submission_id, status, progress, at FROM status_history "
            "WHERE submission_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps([row["submission_id"] for row in rows]),),
        ):
            change = StatusChange(status=row["status"], progress=row["progress"], at=row["at"])
            history_by_submission.setdefault(row["submission_id"], []).append(change)
    records: list[TaskRecord] = []
    for row in rows:
        task_id: str | None = row["task_id"]
        clips = clips_by_task.get(task_id, []) if task_id is not None else []
        clip_ids = {clip.clip_id for clip in clips}
        task_files = [f for f in files if task_id is not None and (f.task_id == task_id or f.clip_id in clip_ids)]
        records.append(
            TaskRecord(
                submission_id=row["submission_id"],
                task_id=task_id,
                tool=row["tool"],
                action=row["action"],
                request=json.loads(row["request"]),
                fingerprint=row["fingerprint"],
                state=row["state"],
                status=row["status"],
                progress=row["progress"],
                fail_reason=row["fail_reason"],
                error=row["error"],
                title=row["title"],
                result_url=row["result_url"],
                result=_loads(row["result"]),
                parent_task_id=row["parent_task_id"],
                parent_clip_id=row["parent_clip_id"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                finished_at=row["finished_at"],
                quota=row["quota"],
                reserved_quota=row["reserved_quota"],
                charged_quota=row["charged_quota"],
                refunded_quota=row["refunded_quota"],
                clips=clips,
                local_files=task_files,
                history=history_by_submission.get(row["submission_id"], []),
            )
        )
    return records


def _clip_record(
    row: sqlite3.Row, parent_task_id: str | None, parent_clip_id: str | None, files: list[LocalFile]
) -> ClipRecord:
    return ClipRecord(
        clip_id=row["clip_id"],
        task_id=row["task_id"],
        title=row["title"],
        tags=row["tags"],
        lyrics=row["lyrics"],
        audio_url=row["audio_url"],
        video_url=row["video_url"],
        image_url=row["image_url"],
        state=row["state"],
        duration=row["duration"],
        created_at=row["created_at"],
        raw=json.loads(row["raw"]),
        local_files=files,
        parent_task_id=parent_task_id,
        parent_clip_id=parent_clip_id,
    )


def _local_file(row: sqlite3.Row) -> LocalFile:
    return LocalFile(
        clip_id=row["clip_id"],
        task_id=row["task_id"],
        kind=row["kind"],
        path=row["path"],
        size=row["size"],
        content_type=row["content_type"],
        created_at=row["created_at"],
    )


# -- writes -------------------------------------------------------------------------------------------------


def _clips_with_raw(task: SunoTask) -> list[tuple[Clip, dict[str, Any]]]:
    """The task's clips beside the JSON CCAPI sent for each (the same entries as `SunoTask.clips`)."""
    data = json_object(task.data) or {}
    pairs: list[tuple[Clip, dict[str, Any]]] = []
    for item in json_list(data.get("clips")) or []:
        fields = json_object(item)
        if fields is not None and isinstance(fields.get("clip_id"), str):
            pairs.append((lenient(Clip, fields), fields))
    return pairs


def _upsert_clips(
    connection: sqlite3.Connection, task_id: str, clips: list[tuple[Clip, dict[str, Any]]], now: float
) -> bool:
    """Store the clips under `task_id` in result order; True if any was new or different."""
    if not clips:
        return False
    stored = {
        row["clip_id"]: (row["task_id"], row["position"], json.loads(row["raw"]))
        for row in connection.execute(
            "SELECT clip_id, task_id, position, raw FROM clips WHERE clip_id IN (SELECT value FROM json_each(?))",
            (json.dumps([clip.clip_id for clip, _ in clips]),),
        )
    }
    changed = False
    for position, (clip, raw) in enumerate(clips):
        if stored.get(clip.clip_id) == (task_id, position, raw):
            continue
        changed = True
        connection.execute(
            "INSERT INTO clips (clip_id, task_id, position, title, tags, lyrics, audio_url, video_url, image_url, "
            "state, duration, created_at, raw, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (clip_id) DO UPDATE SET task_id = excluded.task_id, position = excluded.position, "
            "title = excluded.title, tags = excluded.tags, lyrics = excluded.lyrics, audio_url = excluded.audio_url, "
            "video_url = excluded.video_url, image_url = excluded.image_url, state = excluded.state, "
            "duration = excluded.duration, created_at = excluded.created_at, raw = excluded.raw",
            (
                clip.clip_id,
                task_id,
                position,
                clip.title,
                clip.tags,
                clip.lyrics,
                clip.audio_url,
                clip.video_url,
                clip.image_url,
                clip.state,
                clip.duration,
                clip.created_at,
                json.dumps(raw, ensure_ascii=False),
                now,
            ),
        )
    return changed


def _clip_titles(connection: sqlite3.Connection, task_id: str) -> list[str]:
    rows = connection.execute(
        "SELECT title FROM clips WHERE task_id = ? AND title IS NOT NULL ORDER BY position", (task_id,)
    ).fetchall()
    return [str(row["title"]) for row in rows]


def _search_text(
    title: str | None, tool: str, action: str, task_id: str | None, request_json: str, clip_titles: list[str]
) -> str:
    """What `list_tasks(text=...)` searches, case-folded once on write so that a search needs no function calls."""
    return "\n".join([title or "", tool, action, task_id or "", request_json, *clip_titles]).casefold()


def _request_title(request: Mapping[str, Any]) -> str | None:
    """A readable name from the request: its title, else the start of its prompt, description or tags."""
    title = request.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    for field in _TITLE_FIELDS[1:]:
        value = request.get(field)
        if isinstance(value, str) and (text := " ".join(_SECTION_TAG.sub(" ", value).split())):
            return text if len(text) <= _TITLE_MAX else text[: _TITLE_MAX - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
    return None


# -- cursors ------------------------------------------------------------------------------------------------


def _encode_cursor(row: sqlite3.Row) -> str:
    return base64.urlsafe_b64encode(canonical_json([row["created_at"], row["seq"]]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursorError(f"not a list_tasks cursor: {cursor!r}") from error
    fields = json_list(value)
    if (
        fields is None
        or len(fields) != 2
        or not isinstance(fields[0], int | float)
        or not isinstance(fields[1], int)
        or isinstance(fields[1], bool)
    ):
        raise InvalidCursorError(f"not a list_tasks cursor: {cursor!r}")
    return float(fields[0]), fields[1]
