"""The application factory: `create_server(settings)` builds the MCP server and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from mcp.server import MCPServer
from mcp.server.caching import CacheableMethod, CacheHint

from ccapi_suno_mcp import __version__
from ccapi_suno_mcp.mcp_tasks import TasksExtension
from ccapi_suno_mcp.notifications import Notifier, PrincipalBus
from ccapi_suno_mcp.player import player_extension
from ccapi_suno_mcp.principals import PrincipalScope
from ccapi_suno_mcp.prompts import register_prompts
from ccapi_suno_mcp.resources import register_resources
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.state import AppState
from ccapi_suno_mcp.tools import listed_tools

if TYPE_CHECKING:
    import httpx2

    from ccapi_suno_mcp.ccapi._addresses import Resolver
    from ccapi_suno_mcp.ledger import TaskLedger
    from ccapi_suno_mcp.spend import Calendar

__all__ = ["SANDBOX_API_KEY", "SERVER_NAME", "create_server"]

logger = logging.getLogger(__name__)

SERVER_NAME = "ccapi-suno"
SANDBOX_API_KEY = "sk-sandbox"
SANDBOX_POLL_INTERVAL = 1.0
WATCHER_START_DELAY = 1.0
"""Seconds after start-up before the watcher resumes pending tasks (sooner if a call needs it; at most one interval),
so that its set-up does not hold up the client's handshake."""

INSTRUCTIONS = """\
Make music with Suno through CCAPI. The action tools (suno_generate_music and the other billable suno_* \
tools) submit a task, cost money, and return at once with a task_id; they never wait. An identical call \
within 10 minutes returns the first task instead of paying again, unless force is true. Then call \
suno_wait_for_tasks with the task ids (it waits up to timeout_seconds; call it again while tasks run) and \
answer with the titles, durations and audio links. Follow-up tools (extend, cover, stems, WAV, MIDI, \
video...) take a clip_id from a finished task's clips. suno_list_tasks and the suno://tasks/recent resource \
list everything this server has submitted, even in earlier conversations. Every tool refuses a parameter \
it does not list. Never submit a request again to 'retry' a slow task: wait for it."""


_FRESH = CacheHint(ttl_ms=0, scope="private")
LIST_CACHE_HINTS: dict[CacheableMethod, CacheHint] = {
    "tools/list": _FRESH, "prompts/list": _FRESH, "resources/list": _FRESH, "resources/templates/list": _FRESH,
}  # fmt: skip
"""2026-07-28 cache hints: lists change with the ledger (and list-changed notifications say so), and with principals
one person's list is not another's."""


def _read_port(path: Path) -> int:
    try:
        port = int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0
    return port if 1024 <= port <= 65535 else 0


def create_server(
    settings: Settings,
    *,
    http_client: httpx2.AsyncClient | None = None,
    resolve: Resolver | None = None,
    ledger: TaskLedger | None = None,
    poll_interval: float | None = None,
    calendar: Calendar | None = None,
) -> MCPServer[AppState]:
    """Build the `ccapi-suno` MCP server.

    Args:
        settings: the configuration, read once by the caller.
        http_client: an httpx2 client for CCAPI calls (tests pass one with a mock transport).
        resolve: resolves media hosts to addresses (default: the system's; tests with a mock CDN pass one).
        ledger: a task ledger to use instead of the SQLite file under `settings.home`; the caller owns it.
        poll_interval: seconds between the watcher's polls of pending tasks (default 5; 1 in sandbox mode).
        calendar: the clock and time zone of spend and budgets (default: now, in the machine's local time).

    Raises:
        SettingsError: if the action overrides in `settings` do not fit the catalogue.
    """
    catalogue = settings.catalogue()
    bus = PrincipalBus()
    running: list[AppState] = []
    interval = poll_interval or (SANDBOX_POLL_INTERVAL if settings.sandbox else None)  # None: the watcher's own

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncGenerator[AppState]:
        async with AsyncExitStack() as stack:
            base_url, api_key, sandbox_url = settings.base_url, settings.api_key, None
            if settings.sandbox:
                from ccapi_suno_mcp.sandbox import Sandbox, serve_sandbox

                # Its state persists beside the sandbox ledger, so tasks survive a restart of the server, and it
                # takes its previous port when free, so the links in the ledger keep working.
                sandbox = Sandbox(api_key=SANDBOX_API_KEY, state_path=settings.home / "sandbox-state.json")
                port_file = settings.home / "sandbox-port"
                try:
                    sandbox_url = await stack.enter_async_context(serve_sandbox(sandbox, port=_read_port(port_file)))
                except OSError:
                    sandbox_url = await stack.enter_async_context(serve_sandbox(sandbox))
                port_file.write_text(sandbox_url.rsplit(":", 1)[1], encoding="utf-8")
                base_url, api_key = sandbox_url, SANDBOX_API_KEY
                logger.info("sandbox mode: CCAPI is emulated at %s", sandbox_url)
            state = AppState(
                settings=settings, catalogue=catalogue, notifier=Notifier(bus), base_url=base_url, api_key=api_key,
                ledger_path=settings.home / "sandbox-ledger.sqlite3" if settings.sandbox else settings.ledger_path,
                ledger=ledger, http_client=http_client, resolve=resolve, interval=interval, sandbox_url=sandbox_url,
                calendar=calendar,
            )  # fmt: skip
            stack.push_async_callback(state.aclose)
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)  # runs first on exit: stop the watcher, then close
            if api_key is not None:
                # Resumes the ledger's pending tasks after a restart. An unusable ledger stops it at its first
                # poll, and each call that needs the ledger then says what is wrong.
                tasks.start_soon(state.run_watcher, min(WATCHER_START_DELAY, interval or WATCHER_START_DELAY))
            if settings.ledger_url is not None and not settings.sandbox:
                tasks.start_soon(state.follow_replicas)  # the other replicas' changes, for our clients and watcher
            running.append(state)
            stack.callback(running.remove, state)
            yield state

    def current_state() -> AppState:
        if not running:
            raise RuntimeError("the server is not running")
        return running[-1]

    server = MCPServer[AppState](
        SERVER_NAME,
        title="Suno music (CCAPI)",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        subscriptions=bus,
        tools=listed_tools(settings, catalogue),
        extensions=[player_extension(current_state), TasksExtension(catalogue)],
        cache_hints=LIST_CACHE_HINTS,
        middleware=[PrincipalScope()],
    )
    register_resources(server, current_state)
    register_prompts(server)
    return server
