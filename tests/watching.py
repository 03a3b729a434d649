"""A watcher over a real SQLite ledger holding one pending task, polling a CCAPI stand-in (an httpx2 handler)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp.server.subscriptions import InMemorySubscriptionBus

from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.watcher import Watcher

Handler = (
    Callable[[httpx2.Request], httpx2.Response] | Callable[[httpx2.Request], Coroutine[None, None, httpx2.Response]]
)


async def no_sleep(_seconds: float) -> None:
    """The client's retry pause, skipped: tests count requests, not seconds."""


def mock_client(http: httpx2.AsyncClient) -> SunoClient:
    return SunoClient(api_key="sk-x", base_url="https://ccapi.test", http_client=http, sleep=no_sleep)


@asynccontextmanager
async def pending_watcher(
    folder: Path, ccapi: Handler, task_id: str, **options: Any
) -> AsyncGenerator[tuple[SQLiteLedger, Watcher]]:
    """The ledger (in `folder`), holding `task_id` submitted and pending, and a watcher of it made with `options`
    (interval 1 s unless given) whose CCAPI is `ccapi`."""
    async with (
        await SQLiteLedger.open(folder / "ledger.sqlite3") as ledger,
        httpx2.AsyncClient(transport=httpx2.MockTransport(ccapi)) as http,
    ):
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "a"})
        await ledger.record_task_id(record.submission_id, task_id)
        options.setdefault("interval", 1.0)
        yield ledger, Watcher(mock_client(http), ledger, Notifier(InMemorySubscriptionBus()), **options)
