"""Status tools: read one task or many, from the ledger when it is final, else from CCAPI."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from ccapi_suno_mcp.ccapi import CCAPIError, NotFoundError, SunoTask, within_deadline
from ccapi_suno_mcp.ccapi.requests import TASK_ID_PATTERN
from ccapi_suno_mcp.ledger import LedgerError
from ccapi_suno_mcp.spend._money import dollars, to_usd
from ccapi_suno_mcp.state import AppState, app_state
from ccapi_suno_mcp.views import TasksView, TaskView, render_task, render_tasks
from ccapi_suno_mcp.watcher import POLL_DEADLINE, is_refusal

__all__ = [
    "TaskId",
    "refresh_tasks",
    "tool_result",
    "wait_result",
]

logger = logging.getLogger(__name__)

PROGRESS_GAP_SECONDS = 0.2
"""The least time between the wait's last progress notification and its result: sent back to back, Claude Code
sometimes takes the notification for one of an unknown call and drops the connection."""

NONE_KNOWN = (
    "CCAPI knows none of these task ids for this key: check them (suno_list_tasks lists the tasks this server "
    "submitted)."
)
_LAST_KNOWN = "; this is the ledger's last known state"

TaskId = Annotated[
    str,
    Field(pattern=TASK_ID_PATTERN, description="A task_id."),
]


def tool_result(view: BaseModel, text: str) -> CallToolResult:
    """A result with the view as structured content and a short readable text."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=view.model_dump(mode="json")
    )


async def refresh_tasks(
    state: AppState, task_ids: list[str], *, deadline: float | None = None
) -> tuple[list[TaskView], list[str]]:
    """Views of the tasks, fetching from CCAPI (one batch request per 100) only those not final in the ledger.

    Returns the views in the order asked and the ids that neither the ledger nor CCAPI know (with principals
    kept apart, the ids not among the principal's tasks, CCAPI unasked). A task the
    ledger knows is always shown from the ledger, refreshed by what CCAPI answered. Changes found here are
    notified like the watcher's. CCAPI gets until `deadline` (`anyio.current_time()` units; default: the
    call deadline from now). When CCAPI cannot be read in time, tasks the ledger knows are shown as it last
    saw them, marked `not_refreshed` with the reason.

    Raises:
        CCAPIError: when CCAPI refuses the key or the balance (whatever the ledger knows), or cannot be read
            (or not before the deadline) and a task is unknown to the ledger.
    """
    if deadline is None:
        deadline = anyio.current_time() + state.settings.call_deadline
    known = {record.task_id: record for record in await state.ledger.get_tasks(task_ids) if record.task_id}
    # Kept apart, a principal sees its own tasks only: CCAPI (one key for all) is not asked about any other id,
    # so another principal's task answers exactly as an id nobody submitted.
    unknown_asked = not state.settings.isolated
    stale = [
        task_id
        for task_id in task_ids
        if (task_id not in known and unknown_asked) or (task_id in known and not known[task_id].is_terminal)
    ]
    remote: dict[str, SunoTask] = {}
    not_refreshed: str | None = None
    if stale:
        seconds = max(0.0, deadline - anyio.current_time())
        try:
            with within_deadline(seconds):
                remote = {task.task_id: task for task in await state.client.fetch_tasks(stale)}
        except CCAPIError as exc:
            if is_refusal(exc) or any(task_id not in known for task_id in stale):
                raise
            logger.warning("CCAPI could not be read (%s); showing the ledger's last view", exc)
            not_refreshed = f"not refreshed: {exc}{_LAST_KNOWN}"
        else:
            if state.watcher.last_error is not None:
                state.watcher.note_success()
    news = [
        task for task in remote.values() if task.task_id not in known or not known[task.task_id].already_shows(task)
    ]
    if news:  # applied, then re-read in the same trip: the watcher may have applied the same update first
        changed, records = await state.ledger.apply_updates(news, then_read=task_ids)
        known = {record.task_id: record for record in records if record.task_id}
        if changed:
            settled = any(remote[task_id].is_terminal for task_id in changed)  # a charge was recorded
            await state.notifier.tasks_changed(
                changed, list_changed=True, spend=settled, principal=state.ledger.principal
            )
    views: list[TaskView] = []
    missing: list[str] = []
    for task_id in task_ids:
        if task_id in known:
            view = render_task(known[task_id])
            if not_refreshed is not None and task_id in stale:
                view.not_refreshed = not_refreshed
            views.append(view)
        elif task_id in remote:
            views.append(render_task(remote[task_id]))
        else:
            missing.append(task_id)
    return views, missing


async def suno_get_task(task_id: TaskId, ctx: Context[AppState, Any]) -> Annotated[CallToolResult, TaskView]:
    """One task's status, progress and, when done, its clips (title, duration, links) or result.
    Free, instant. To wait, use suno_wait_for_tasks."""
    state = app_state(ctx)
    try:
        views, missing = await refresh_tasks(state, [task_id])
    except CCAPIError as exc:
        raise state.error(exc, f"for {task_id}") from exc
    if missing:
        raise state.error(NotFoundError(task_id, status_code=400, code="task_not_exist"), f"({task_id})")
    return tool_result(views[0], render_tasks(views))


async def suno_get_tasks(
    task_ids: Annotated[
        list[TaskId],
        Field(min_length=1, max_length=100, description="1-100 task_ids."),
    ],
    ctx: Context[AppState, Any],
) -> Annotated[CallToolResult, TasksView]:
    """Up to 100 tasks in one request, and the ids CCAPI does not know. Free, instant."""
    state = app_state(ctx)
    unique = list(dict.fromkeys(task_ids))
    try:
        views, missing = await refresh_tasks(state, unique)
    except CCAPIError as exc:
        raise state.error(exc) from exc
    if not views and missing:
        raise ToolError(NONE_KNOWN)
    view = TasksView(tasks=views, missing=missing)
    return tool_result(view, render_tasks(views, missing))


class WaitResult(BaseModel):
    tasks: list[TaskView]
    all_done: bool = Field(description="True when every task reached SUCCESS or FAILURE.")
    timed_out: bool = Field(description="True when the wait ended before every task finished.")
    waited_seconds: float
    missing: list[str] = Field(default_factory=lambda: list[str](), description="Ids CCAPI does not know.")
    next_step: str


class TaskList(BaseModel):
    tasks: list[TaskView]
    next_cursor: str | None = Field(description="Pass as cursor to get the next page; None on the last page.")


class BalanceView(BaseModel):
    remaining_usd: float | None = Field(description="Balance left in US dollars; None when unlimited.")
    used_usd: float | None = None
    total_usd: float | None = None
    unlimited: bool = False
    spent_today_usd: float | None = Field(description="This server's spend today (suno_get_usage has more).")
    note: str


def _overall_progress(views: list[TaskView]) -> float:
    if not views:
        return 0.0
    return sum(100.0 if view.done else float(view.progress_percent or 0) for view in views) / len(views)


def _progress_text(views: list[TaskView]) -> str:
    done = sum(view.done for view in views)
    parts = [f"{done}/{len(views)} done"]
    parts.extend(
        f"{view.task_id} {view.status}{f' {view.progress_percent}%' if view.progress_percent is not None else ''}"
        for view in views
        if not view.done
    )
    return "; ".join(parts[:6])


async def suno_wait_for_tasks(
    task_ids: Annotated[list[TaskId], Field(min_length=1, max_length=100, description="Task ids to wait for.")],
    ctx: Context[AppState, Any],
    timeout_seconds: Annotated[
        int,
        Field(
            ge=1,
            le=600,
            description="Longest wait, s; keep under your client's tool time limit.",
        ),
    ] = 50,
) -> Annotated[CallToolResult, WaitResult]:
    """Wait up to timeout_seconds for tasks to finish, with progress. Free. Returns every task's state; if
    time runs out, call again (never resubmit). Previews never count as finished."""
    state = app_state(ctx)
    unique = list(dict.fromkeys(task_ids))
    start = anyio.current_time()
    deadline = start + timeout_seconds

    def ccapi_deadline() -> float:  # each read of its own gets the poll deadline, within the wait's own
        return min(deadline, anyio.current_time() + min(state.settings.call_deadline, POLL_DEADLINE))

    try:
        views, missing = await refresh_tasks(state, unique, deadline=ccapi_deadline())
    except CCAPIError as exc:
        raise state.error(exc) from exc
    if not views:
        raise ToolError(NONE_KNOWN)
    all_in_ledger = all(view.tool is not None for view in views)
    state.watcher.wake()  # once: the watcher polls on its own schedule (and backs off) from here
    reported: float | None = None
    reported_at: float | None = None
    while True:
        progress = _overall_progress(views)
        if reported is None or progress > reported:
            await ctx.report_progress(progress, 100.0, _progress_text(views))
            reported, reported_at = progress, anyio.current_time()
        remaining = deadline - anyio.current_time()
        if all(view.done for view in views) or remaining <= 0:
            break
        polled = await state.watcher.wait_for_cycle(min(remaining, max(1.0, state.watcher.interval * 3)))
        if (refusal := state.watcher.refusal) is not None:  # waiting longer cannot help: say what to fix
            raise state.error(refusal)
        # The watcher keeps the ledger fresh: no CCAPI call of our own, unless it missed a whole window (its poll
        # is stuck, or it backs off) or its last poll failed.
        overdue = not polled and anyio.current_time() < deadline
        if all_in_ledger and not overdue and state.watcher.last_error is None:
            records = {r.task_id: r for r in await state.ledger.get_tasks(unique) if r.task_id}
            views = [render_task(records[view.task_id]) for view in views if view.task_id in records]
            continue
        try:
            views, missing = await refresh_tasks(state, unique, deadline=ccapi_deadline())
        except CCAPIError as exc:
            if is_refusal(exc):
                raise state.error(exc) from exc
            logger.warning("while waiting: %s", exc)
    if reported_at is not None:  # a result right behind a progress notification can lose the client's token
        await anyio.sleep(max(0.0, reported_at + PROGRESS_GAP_SECONDS - anyio.current_time()))
    return wait_result(state, views, missing, round(anyio.current_time() - start, 1))


def wait_result(state: AppState, views: list[TaskView], missing: list[str], waited: float) -> CallToolResult:
    """What `suno_wait_for_tasks` answers after `waited` seconds with these views: every task, and what next.

    The MCP task of a backgrounded call completes with the same result (`mcp_tasks`).
    """
    all_done = all(view.done for view in views)
    running = [view.task_id for view in views if not view.done]
    if all_done:
        next_step = "All finished. Share titles and audio links; suno_download saves files."
    elif (problem := _unreadable(state, views)) is not None:
        next_step = (
            f"Not finished as far as this server can tell, but CCAPI could not be read ({problem}), so this state "
            f"may be out of date. Check CCAPI_BASE_URL and CCAPI's status, then call suno_wait_for_tasks again with "
            f"{running}; do not submit the request again."
        )
    else:
        next_step = (
            f"Still running after {waited:.0f}s: this is normal (songs take 1 to 3 minutes). Call "
            f"suno_wait_for_tasks again with {running}; do not submit the request again."
        )
    result = WaitResult(
        tasks=views, all_done=all_done, timed_out=not all_done, waited_seconds=waited, missing=missing,
        next_step=next_step,
    )  # fmt: skip
    return tool_result(result, f"{render_tasks(views, missing)}\n{next_step}")


def _unreadable(state: AppState, views: list[TaskView]) -> str | None:
    """Why CCAPI's latest answers about these tasks could not be used, if they could not."""
    error = state.watcher.last_error
    if error is not None and not is_refusal(error):
        return str(error)
    stale = next((view.not_refreshed for view in views if view.not_refreshed and not view.done), None)
    return stale.removeprefix("not refreshed: ").removesuffix(_LAST_KNOWN) if stale else None


async def suno_list_tasks(
    ctx: Context[AppState, Any],
    status: Annotated[
        Literal["pending", "SUCCESS", "FAILURE", "outcome_unknown"] | None,
        Field(description="pending (running), SUCCESS, FAILURE or outcome_unknown (answer lost)."),
    ] = None,
    action: Annotated[
        str | None,
        Field(
            max_length=64,
            description="A tool name or CCAPI token.",
        ),
    ] = None,
    text: Annotated[str | None, Field(max_length=200, description="Text in title, prompt or ids.")] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Field(max_length=200, description="next_cursor of the last page.")] = None,
) -> Annotated[CallToolResult, TaskList]:
    """This server's tasks, newest first, from its ledger (all conversations): status, clips, links.
    Free, offline, instant. Finds task_ids and clip_ids."""
    state = app_state(ctx)
    await state.ledger.settle_interrupted()  # a submit whose server died shows as outcome_unknown at once
    try:
        page = await state.ledger.list_tasks(status=status, action=action, text=text, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ToolError(f"Invalid cursor: {exc}; start again without cursor.") from None
    views = [render_task(record) for record in page.tasks]
    for view in views:
        for clip in view.clips:
            clip.lyrics = None  # a list is for finding tasks; suno_get_task has the lyrics
    result = TaskList(tasks=views, next_cursor=page.next_cursor)
    more = f"\nMore: call again with cursor={page.next_cursor!r}." if page.next_cursor else ""
    return tool_result(result, (render_tasks(views) if views else "No matching tasks.") + more)


async def suno_get_balance(ctx: Context[AppState, Any]) -> Annotated[CallToolResult, BalanceView]:
    """Money left on the CCAPI account (USD). Free, instant. Check before big jobs."""
    state = app_state(ctx)
    try:
        balance = await state.client.get_balance()
    except CCAPIError as exc:
        raise state.error(exc, "reading the balance") from exc
    if balance.unlimited:
        note = "This key has no spending limit."
    else:
        note = f"${balance.remaining_usd:.2f} left" + (
            f" (${balance.used_usd:.2f} used)" if balance.used_usd is not None else ""
        )
    spent_today = await _spent_today(state)
    if spent_today is not None:
        note += f"; {dollars(spent_today)} spent today through this server."
    view = BalanceView(**balance.model_dump(), spent_today_usd=spent_today, note=note)
    return tool_result(view, note)


async def _spent_today(state: AppState) -> float | None:
    """Today's spend from the ledger; None when the ledger cannot be read (the balance still answers)."""
    try:
        [quota] = await state.ledger.committed_quota([state.calendar.periods().day])
    except LedgerError as exc:
        logger.warning("today's spend is not shown: %s", exc)
        return None
    return to_usd(quota, state.settings.quota_per_usd)
