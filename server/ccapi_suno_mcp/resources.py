"""Resources: the ledger as something a user can @-mention, list and subscribe to.

- `suno://tasks/recent`: the newest tasks as JSON (newest first).
- `suno://tasks/{task_id}`: one task with its clips, lineage, status history and local files.
- `suno://clips/{clip_id}`: one clip with its task, lineage and local files.
- `suno://usage`: the spend (what `suno_get_usage` returns), updated as tasks are submitted and settle.
`resources/list` also lists recent tasks one by one with readable names; completions offer task
and clip ids; 2025-era clients may `resources/subscribe` to any of these URIs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from mcp.server import MCPServer
from mcp.server.apps import client_supports_apps
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    EmptyResult,
    ListResourcesResult,
    PaginatedRequestParams,
    PromptReference,
    Resource,
    ResourceTemplateReference,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from ccapi_suno_mcp.ledger import LedgerUnavailableError, LedgerUnusableError
from ccapi_suno_mcp.notifications import RECENT_TASKS_URI, USAGE_URI, connection_of, task_uri
from ccapi_suno_mcp.state import AppState, app_state

__all__ = ["RECENT_LIMIT", "register_resources"]

RECENT_LIMIT = 50
LISTED_TASKS = 20
JSON = "application/json"
_Read = TypeVar("_Read", bound=Callable[..., Awaitable[str]])


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _state_of(ctx: ServerRequestContext[Any, Any]) -> AppState:
    state = ctx.lifespan_context
    if not isinstance(state, AppState):  # pragma: no cover - a server built without create_server
        raise TypeError("the server was not built by create_server")
    return state


def _ledger_errors(read: _Read) -> _Read:
    """A resource reader whose unusable ledger is reported as what it is, not as an internal error."""

    @functools.wraps(read)
    async def reader(*args: Any, **kwargs: Any) -> str:
        try:
            return await read(*args, **kwargs)
        except (LedgerUnusableError, LedgerUnavailableError) as exc:
            raise ResourceError(str(exc)) from None

    return cast(_Read, reader)


def register_resources(server: MCPServer[Any], current_state: Callable[[], AppState]) -> None:
    """Add the resources, the per-task listing, completions and the 2025-era subscribe handlers.

    `current_state` returns the running lifespan's state: static resources and completions get no
    request context in MCPServer, so they reach the ledger through it.
    """

    @server.resource(
        RECENT_TASKS_URI,
        name="recent_tasks",
        title="Recent Suno tasks",
        description=f"The {RECENT_LIMIT} newest tasks this server submitted, newest first, with status and clips.",
        mime_type=JSON,
    )
    @_ledger_errors
    async def recent_tasks() -> str:
        page = await current_state().ledger.list_tasks(limit=RECENT_LIMIT)
        from ccapi_suno_mcp.views import render_task

        return _dump([render_task(record).model_dump(mode="json") for record in page.tasks])

    @server.resource(
        USAGE_URI,
        name="usage",
        title="Suno spend",
        description="Spend today, this week, this month and in total, by action and by day; learned prices; budgets.",
        mime_type=JSON,
    )
    @_ledger_errors
    async def usage_resource() -> str:
        from ccapi_suno_mcp.tools._usage import current_usage

        return _dump((await current_usage(current_state())).model_dump(mode="json"))

    @server.resource(
        "suno://tasks/{task_id}",
        name="task",
        title="A Suno task",
        description="One task: status, progress, clips with links, lineage, status history and saved files.",
        mime_type=JSON,
    )
    @_ledger_errors
    async def task_resource(task_id: str, ctx: Context) -> str:
        record = await app_state(ctx).ledger.get_task(task_id)
        if record is None:
            raise ResourceNotFoundError(f"no task {task_id} in the ledger")
        from ccapi_suno_mcp.views import render_task

        view = render_task(record).model_dump(mode="json")
        view["history"] = [change.model_dump(mode="json") for change in record.history]
        view["request"] = record.request
        return _dump(view)

    @server.resource(
        "suno://clips/{clip_id}",
        name="clip",
        title="A Suno clip",
        description="One clip: title, links, lyrics, the task that made it, what it was derived from, saved files.",
        mime_type=JSON,
    )
    @_ledger_errors
    async def clip_resource(clip_id: str, ctx: Context) -> str:
        clip = await app_state(ctx).ledger.get_clip(clip_id)
        if clip is None:
            raise ResourceNotFoundError(f"no clip {clip_id} in the ledger")
        return _dump({**clip.model_dump(mode="json", exclude={"raw"}), "task_uri": task_uri(clip.task_id)})

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if argument.name not in ("task_id", "clip_id"):
            return None
        kind = "task" if argument.name == "task_id" else "clip"
        try:
            values = await current_state().ledger.search_ids(argument.value, kind=kind, limit=20)
        except (LedgerUnusableError, LedgerUnavailableError):
            return Completion(values=[])
        return Completion(values=values, has_more=len(values) == 20)

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        state = _state_of(ctx)
        state.notifier.remember(connection_of(ctx.session), ctx.protocol_version)
        try:
            page = await state.ledger.list_tasks(limit=LISTED_TASKS)
        except (
            LedgerUnusableError,
            LedgerUnavailableError,
        ):  # reading a resource says what is wrong; the list still shows what is static
            return ListResourcesResult(resources=await server.list_resources())
        listed = [
            Resource(
                uri=task_uri(record.task_id),
                name=record.task_id,
                title=f"{record.title or record.tool} · {record.action} · {record.status}",
                description=f"Suno task {record.task_id} ({record.tool}), {record.status}",
                mime_type=JSON,
            )
            for record in page.tasks
            if record.task_id
        ]
        # A `ui://` view is listed only to clients that can show it (MCP Apps); the others see what they always saw.
        shows_apps = client_supports_apps(ctx)
        static = [item for item in await server.list_resources() if shows_apps or not item.uri.startswith("ui://")]
        return ListResourcesResult(resources=[*static, *listed])

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        _state_of(ctx).notifier.subscribe(connection_of(ctx.session), str(params.uri))
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        _state_of(ctx).notifier.unsubscribe(connection_of(ctx.session), str(params.uri))
        return EmptyResult()

    # MCPServer has no public hooks for these yet; its migration guide names this as the way.
    lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    lowlevel.add_request_handler("resources/list", PaginatedRequestParams, list_resources)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    original = lowlevel.create_initialization_options

    def with_list_changed(
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> Any:
        # MCPServer.run* advertise listChanged=false to 2025-era clients; we do send list changes.
        options = notification_options or NotificationOptions(resources_changed=True)
        return original(options, experimental_capabilities, extensions)

    lowlevel.create_initialization_options = with_list_changed
