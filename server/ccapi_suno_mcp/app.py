"""The application factory: `create_server(settings)` builds the MCP server and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from mcp.server import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from ccapi_suno_mcp import __version__
from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.ledger import LedgerUnusableError, SQLiteLedger, TaskLedger
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.player import player_extension
from ccapi_suno_mcp.prompts import register_prompts
from ccapi_suno_mcp.resources import register_resources
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.spend._calendar import Calendar
from ccapi_suno_mcp.state import AppState
from ccapi_suno_mcp.tools import listed_tools
from ccapi_suno_mcp.watcher import DEFAULT_INTERVAL, Watcher

if TYPE_CHECKING:
    import httpx2

__all__ = ["SANDBOX_API_KEY", "SERVER_NAME", "create_server"]

logger = logging.getLogger(__name__)

SERVER_NAME = "ccapi-suno"
SANDBOX_API_KEY = "sk-sandbox"
SANDBOX_POLL_INTERVAL = 1.0

INSTRUCTIONS = """\
Make music with Suno through CCAPI. Generation tools (suno_generate_music and the other suno_* actions) \
submit a task, cost money, and return at once with a task_id; they never wait. Then call \
suno_wait_for_tasks with the task ids (it waits up to timeout_seconds, default 50; call it again if the \
task is still running) and answer with the titles, durations and audio links. Follow-up tools (extend, \
cover, stems, WAV, MIDI, video...) take a clip_id from a finished task. suno_list_tasks and the \
suno://tasks/recent resource list everything this server has submitted, even from earlier conversations. \
Never submit the same request twice to 'retry' a slow task: wait for it instead."""


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
    ledger: TaskLedger | None = None,
    poll_interval: float | None = None,
    calendar: Calendar | None = None,
) -> MCPServer[AppState]:
    """Build the `ccapi-suno` MCP server.

    Args:
        settings: the configuration, read once by the caller.
        http_client: an httpx2 client for CCAPI calls (tests pass one with a mock transport).
        ledger: a task ledger to use instead of the SQLite file under `settings.home`; the caller owns it.
        poll_interval: seconds between the watcher's polls of pending tasks (default 5; 1 in sandbox mode).
        calendar: the clock and time zone of spend and budgets (default: now, in the machine's local time).

    Raises:
        SettingsError: if the action overrides in `settings` do not fit the catalogue.
    """
    catalogue = settings.catalogue()
    bus = InMemorySubscriptionBus()
    running: list[AppState] = []
    interval = poll_interval or (SANDBOX_POLL_INTERVAL if settings.sandbox else DEFAULT_INTERVAL)

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
            client = SunoClient(api_key=api_key, base_url=base_url, http_client=http_client)
            stack.push_async_callback(client.aclose)
            task_ledger, usable = ledger, True
            if task_ledger is None:
                path = settings.home / "sandbox-ledger.sqlite3" if settings.sandbox else settings.ledger_path
                opened = SQLiteLedger(path)
                stack.push_async_callback(opened.aclose)
                try:
                    await opened.settle_interrupted()  # opens and migrates the file
                except LedgerUnusableError as exc:
                    # Serve anyway: tools list, and each call that needs the ledger says what is wrong.
                    logger.error("%s", exc)
                    usable = False
                task_ledger = opened
            notifier = Notifier(bus)
            watcher = Watcher(client, task_ledger, notifier, interval=interval)
            state = AppState(
                settings=settings, catalogue=catalogue, client=client, ledger=task_ledger, notifier=notifier,
                watcher=watcher, sandbox_url=sandbox_url, calendar=calendar or Calendar(),
            )  # fmt: skip
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)  # runs first on exit: stop the watcher, then close
            if client.has_api_key and usable:
                tasks.start_soon(watcher.run)  # resumes the ledger's pending tasks after a restart
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
        extensions=[player_extension(current_state)],
    )
    register_resources(server, current_state)
    register_prompts(server)
    return server
