"""Long calls as MCP tasks: the `io.modelcontextprotocol/tasks` extension (SEP-2663, protocol 2026-07-28).

Where a request declares the extension in its client capabilities (the interactive Claude Code CLI does), a
billable action tool and `suno_wait_for_tasks` answer with a task instead of their result. The client moves
the call to the background and polls `tasks/get`; when the task ends it hands the result to the model on its own.

Everything that decides whether money is spent stays synchronous: an action tool runs exactly as without tasks
(validation, duplicate guard, budget question, ledger claim, CCAPI submit), and only its successful answer, a
task id, becomes an MCP task that follows that CCAPI task. A refusal is the same error result as ever.

A task is a row of the ledger (`TaskLedger.create_mcp_task`) naming the CCAPI tasks it follows; `tasks/get`
reads their rows, which the watcher keeps fresh, and never asks CCAPI itself. So a restarted server, or another
replica, answers for it, and with principals kept apart another person's task id is unknown. Requests without
the declaration, and the 2025-11-25 era, get every tool's usual result (`reference/mcp-tasks.md`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, CallToolRequestParams, CallToolResult, RequestParams
from pydantic import Field

from ccapi_suno_mcp.catalogue import Catalogue
from ccapi_suno_mcp.ccapi._constants import TASK_ID_PATTERN
from ccapi_suno_mcp.state import AppState

if TYPE_CHECKING:
    from ccapi_suno_mcp.ledger import McpTaskRecord, TaskRecord
    from ccapi_suno_mcp.views import TaskView

__all__ = [
    "MODERN_PROTOCOL",
    "TASKS_EXTENSION",
    "TASK_TTL_SECONDS",
    "TasksExtension",
    "declares_tasks",
]

logger = logging.getLogger(__name__)

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
MODERN_PROTOCOL = "2026-07-28"
TASK_TTL_SECONDS = 3600.0
"""How long a task answers `tasks/get` after it was made; later it answers as expired (its songs stay in the
ledger). Songs take 1 to 3 minutes: an hour covers a slow queue and a client that was closed for a while."""
WAIT_TOOL = "suno_wait_for_tasks"
_WAIT_DEFAULT_SECONDS = 50
_TASK_ID = re.compile(TASK_ID_PATTERN)
_FAILED = INTERNAL_ERROR
"""The JSON-RPC code of a failed task's `error` (the call could not produce its result)."""


def declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client declared the tasks extension, in the 2026-07-28 era (never before it)."""
    if ctx.protocol_version < MODERN_PROTOCOL:
        return False
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return bool(extensions) and TASKS_EXTENSION in (extensions or {})


class TaskParams(RequestParams):
    """The params of `tasks/get`, `tasks/update` and `tasks/cancel`."""

    task_id: str = Field(min_length=1, max_length=1024)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _status_line(view: TaskView) -> str:
    """Where one song is, for the person watching: queued, generating 40 %, first clip streaming..."""
    name = f'"{view.title}"' if view.title else view.action
    if view.done:
        return f"{name} {'finished' if view.status == 'SUCCESS' else 'failed'}"
    if view.status in ("NOT_START", "SUBMITTED", "QUEUED"):
        return f"{name} queued at Suno"
    if any(not clip.final and clip.audio_url for clip in view.clips):
        percent = f", {view.progress_percent} %" if view.progress_percent is not None else ""
        return f"{name}: first clip streaming (preview{percent})"
    if view.progress_percent is not None:
        return f"{name} generating {view.progress_percent} %"
    return f"{name} generating"


def status_message(views: Sequence[TaskView]) -> str:
    """One line on every task a call follows."""
    if len(views) == 1:
        return _status_line(views[0])
    done = sum(view.done for view in views)
    running = [_status_line(view) for view in views if not view.done]
    return "; ".join([f"{done}/{len(views)} done", *running[:3]])


def _refund_text(record: TaskRecord) -> str:
    if record.refunded_quota:
        return f"CCAPI refunded its charge ({record.refunded_quota} quota): nothing was billed."
    if record.charged_quota == 0:
        return "CCAPI refunds failed tasks: nothing was billed."
    return "CCAPI refunds failed tasks; suno_get_balance shows the balance."


def failure_message(record: TaskRecord) -> str:
    """What the model reads when a song failed: CCAPI's reason, the refund, and what to do."""
    reason = record.fail_reason or record.error or "no reason given"
    return (
        f"Suno could not make {record.task_id} ({record.tool}): {reason}. {_refund_text(record)} Change the request "
        "as the reason suggests and submit it again; suno_get_task shows the task."
    )


class TasksExtension(Extension):
    """The tasks extension of this server; `create_server` passes it to `MCPServer(extensions=[...])`."""

    identifier = TASKS_EXTENSION

    def __init__(self, catalogue: Catalogue) -> None:
        self._billable = frozenset(spec.tool for spec in catalogue if spec.billable and spec.enabled)

    def methods(self) -> Sequence[MethodBinding]:
        modern = frozenset({MODERN_PROTOCOL})
        return (
            MethodBinding("tasks/get", TaskParams, self._get, protocol_versions=modern),
            MethodBinding("tasks/update", TaskParams, self._update, protocol_versions=modern),
            MethodBinding("tasks/cancel", TaskParams, self._cancel, protocol_versions=modern),
        )

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if not declares_tasks(ctx) or (params.name not in self._billable and params.name != WAIT_TOOL):
            return await call_next(ctx)
        state = _state(ctx)
        if params.name == WAIT_TOOL:
            task_ids, seconds = _wait_arguments(params.arguments or {})
            records = await state.ledger.get_tasks(task_ids) if task_ids else []
            if not task_ids or len(records) != len(task_ids) or all(record.is_terminal for record in records):
                # Invalid, or ids the ledger does not follow (only CCAPI knows them), or nothing left to wait for:
                # the usual synchronous answer.
                return await call_next(ctx)
            record = await state.ledger.create_mcp_task(
                tool=WAIT_TOOL, task_ids=task_ids, ttl_seconds=TASK_TTL_SECONDS, wait_seconds=seconds
            )
            state.watcher.wake()
            logger.info("%s answered as MCP task for %s", WAIT_TOOL, ", ".join(task_ids))
            return await self._snapshot(state, record, result_type="task")
        result = await call_next(ctx)
        task_id = _submitted_task_id(result)
        if task_id is None:  # an error result, or a question for the user first: as without tasks
            return result
        record = await state.ledger.create_mcp_task(tool=params.name, task_ids=[task_id], ttl_seconds=TASK_TTL_SECONDS)
        logger.info("%s answered as MCP task for %s", params.name, task_id)
        return await self._snapshot(state, record, result_type="task")

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        state, record = await self._known(ctx, params)
        return await self._snapshot(state, record, result_type=None)

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        await self._known(ctx, params)  # no task of ours ever asks for input: nothing to take
        return {}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        state, record = await self._known(ctx, params)
        cancelled = await state.ledger.cancel_mcp_task(record.mcp_task_id)
        if cancelled is None:  # pragma: no cover - found a moment ago; rows are only purged long after expiry
            raise _not_found()
        logger.info("MCP task for %s cancelled: no longer followed", ", ".join(record.task_ids))
        return {}

    async def _known(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> tuple[AppState, McpTaskRecord]:
        """The state and the caller's task, or the protocol error the spec names.

        Raises:
            MCPError: -32021 for a client that did not declare the extension; -32602 for an unknown task
                (another principal's included) or an expired one.
        """
        require_client_extension(ctx, TASKS_EXTENSION)
        state = _state(ctx)
        record = await state.ledger.get_mcp_task(params.task_id)
        if record is None:
            raise _not_found()
        if state.ledger.now() >= record.expires_at:
            ids = ", ".join(record.task_ids)
            raise MCPError(
                code=INVALID_PARAMS,
                message=(
                    f"Failed to retrieve task: Task has expired (tasks are kept {record.ttl_seconds / 60:.0f} "
                    f"minutes). The songs are still in this server's ledger: suno_get_task or suno_get_tasks with "
                    f"{ids}."
                ),
            )
        return state, record

    async def _snapshot(self, state: AppState, record: McpTaskRecord, *, result_type: str | None) -> dict[str, Any]:
        """The task as the client sees it now, read from the ledger (CCAPI is not asked)."""
        from ccapi_suno_mcp.tools._status import wait_result
        from ccapi_suno_mcp.views import render_task

        records = await state.ledger.get_tasks(record.task_ids)
        views = [render_task(each) for each in records]
        now = state.ledger.now()
        updated = max([record.created_at, record.cancelled_at or 0.0, *(each.updated_at for each in records)])
        task: dict[str, Any] = {
            "taskId": record.mcp_task_id,
            "status": "working",
            "statusMessage": status_message(views) if views else "submitted",
            "createdAt": _iso(record.created_at),
            "lastUpdatedAt": _iso(min(updated, now)),
            "ttlMs": round(record.ttl_seconds * 1000),
            "pollIntervalMs": round(max(1.0, state.watcher.interval) * 1000),
        }
        if result_type is not None:
            task = {"resultType": result_type, **task}
        if len(records) != len(record.task_ids):  # pragma: no cover - ledger rows are never deleted
            missing = sorted(set(record.task_ids) - {each.task_id for each in records if each.task_id})
            return task | _failed(f"The ledger no longer has {', '.join(missing)}; suno_list_tasks lists the rest.")
        if record.cancelled_at is not None:
            ids = ", ".join(record.task_ids)
            return task | {
                "status": "cancelled",
                "statusMessage": (
                    f"Cancelled: this server stopped following {ids}. CCAPI cannot stop a generation, so it may still "
                    "finish and be billed; it still lands in the ledger (suno_get_task)."
                ),
            }
        if record.tool != WAIT_TOOL:
            [one] = records
            if one.is_terminal and (one.status != "SUCCESS" or one.state == "rejected"):
                reason = one.fail_reason or one.error or "no reason given"
                return task | {"statusMessage": f"Failed: {reason}"} | _failed(failure_message(one))
        ended = all(view.done for view in views)
        if ended or (record.wait_until is not None and now >= record.wait_until):
            result = wait_result(state, views, [], round(now - record.created_at, 1))
            return task | {"status": "completed", "result": _call_result(result)}
        return task


def _failed(message: str) -> dict[str, Any]:
    return {"status": "failed", "error": {"code": _FAILED, "message": message}}


def _call_result(result: CallToolResult) -> dict[str, Any]:
    return result.model_copy(update={"result_type": "complete"}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


def _not_found() -> MCPError:
    return MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task not found")


def _state(ctx: ServerRequestContext[Any, Any]) -> AppState:
    state = ctx.lifespan_context
    if not isinstance(state, AppState):  # pragma: no cover - a server built without create_server
        raise TypeError("the server was not built by create_server")
    return state


def _submitted_task_id(result: HandlerResult) -> str | None:
    """The CCAPI task id an action tool answered with, or None for anything else (an error, a question)."""
    if not isinstance(result, CallToolResult) or result.is_error or result.structured_content is None:
        return None
    content: dict[str, object] = result.structured_content
    task_id = content.get("task_id")
    return task_id if isinstance(task_id, str) and task_id else None


def _wait_arguments(arguments: dict[str, Any]) -> tuple[list[str], int]:
    """The wait's distinct task ids and time limit; no ids when the arguments are not valid (the tool then says
    why, as always)."""
    task_ids: object = arguments.get("task_ids")
    seconds: object = arguments.get("timeout_seconds", _WAIT_DEFAULT_SECONDS)
    if set(arguments) - {"task_ids", "timeout_seconds"} or not isinstance(task_ids, list):
        return [], 0
    ids = [each for each in task_ids if isinstance(each, str) and _TASK_ID.fullmatch(each)]  # pyright: ignore[reportUnknownVariableType]
    if (
        len(ids) != len(task_ids)  # pyright: ignore[reportUnknownArgumentType]
        or not 1 <= len(ids) <= 100
        or isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not 1 <= seconds <= 600
    ):
        return [], 0
    return list(dict.fromkeys(ids)), seconds
