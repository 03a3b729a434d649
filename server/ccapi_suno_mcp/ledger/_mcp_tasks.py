"""MCP tasks in the ledger: tool calls answered in the background (the `io.modelcontextprotocol/tasks` extension).

A row says which CCAPI tasks the call follows, whose it is, until when it is kept, and whether it was cancelled;
everything else (status, clips, the result) is read from those tasks' own rows, which the watcher keeps fresh.
So every process on the ledger, and a process started after a crash, answers `tasks/get` the same way.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from ccapi_suno_mcp.ledger._dialect import Row, Session

__all__ = ["PURGE_AFTER", "McpTaskRecord", "cancel", "create", "find"]

PURGE_AFTER = 7 * 86400.0
"""Seconds past its expiry after which a task's row is deleted (until then it answers as expired)."""

_COLUMNS = "mcp_task_id, principal, tool, task_ids, created_at, expires_at, wait_until, cancelled_at"


@dataclass(frozen=True, slots=True)
class McpTaskRecord:
    """One MCP task: a tool call whose result the client polls for with `tasks/get`."""

    mcp_task_id: str
    """Unguessable (256 random bits, URL-safe): possession of it is what a client proves."""
    principal: str
    tool: str
    task_ids: tuple[str, ...]
    """The CCAPI tasks it follows: one for an action tool, the wait's ids for `suno_wait_for_tasks`."""
    created_at: float
    expires_at: float
    wait_until: float | None
    """For a wait: when it ends with the state of that moment (None: when its tasks end)."""
    cancelled_at: float | None

    @property
    def ttl_seconds(self) -> float:
        """How long after its creation the task is kept."""
        return self.expires_at - self.created_at


def _record(row: Row) -> McpTaskRecord:
    return McpTaskRecord(
        mcp_task_id=row["mcp_task_id"],
        principal=row["principal"],
        tool=row["tool"],
        task_ids=tuple(json.loads(row["task_ids"])),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        wait_until=None if row["wait_until"] is None else float(row["wait_until"]),
        cancelled_at=None if row["cancelled_at"] is None else float(row["cancelled_at"]),
    )


def create(
    session: Session,
    principal: str,
    *,
    tool: str,
    task_ids: list[str],
    ttl_seconds: float,
    wait_seconds: float | None,
    now: float,
) -> McpTaskRecord:
    """Record a new task, durably (a `tasks/get` must find it as soon as it is returned), and purge long-expired
    ones."""
    record = McpTaskRecord(
        mcp_task_id=secrets.token_urlsafe(32),
        principal=principal,
        tool=tool,
        task_ids=tuple(task_ids),
        created_at=now,
        expires_at=now + ttl_seconds,
        wait_until=None if wait_seconds is None else now + wait_seconds,
        cancelled_at=None,
    )
    with session.transaction(durable=True):
        session.execute("DELETE FROM mcp_tasks WHERE expires_at < ?", (now - PURGE_AFTER,))
        session.execute(
            f"INSERT INTO mcp_tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.mcp_task_id, principal, tool, json.dumps(task_ids), now, record.expires_at,
                record.wait_until, None,
            ),
        )  # fmt: skip
    return record


def find(session: Session, principal: str, mcp_task_id: str) -> McpTaskRecord | None:
    """The principal's task with this id (another principal's is as unknown as one never made)."""
    with session.transaction(write=False):
        rows = session.execute(
            f"SELECT {_COLUMNS} FROM mcp_tasks WHERE mcp_task_id = ? AND principal = ?", (mcp_task_id, principal)
        )
    return _record(rows[0]) if rows else None


def cancel(session: Session, principal: str, mcp_task_id: str, now: float) -> McpTaskRecord | None:
    """Mark the principal's task cancelled (the first cancel's time is kept); None for an unknown one."""
    with session.transaction(durable=True):
        session.execute(
            "UPDATE mcp_tasks SET cancelled_at = ? WHERE mcp_task_id = ? AND principal = ? AND cancelled_at IS NULL",
            (now, mcp_task_id, principal),
        )
        rows = session.execute(
            f"SELECT {_COLUMNS} FROM mcp_tasks WHERE mcp_task_id = ? AND principal = ?", (mcp_task_id, principal)
        )
    return _record(rows[0]) if rows else None
