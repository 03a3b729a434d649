"""Submits cost money: never repeated by accident, never lost, and consistent under load."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.server.subscriptions import InMemorySubscriptionBus

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.catalogue import Catalogue
from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.ccapi import _client as client_module
from ccapi_suno_mcp.ccapi.requests import GenerateMusicRequest
from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.watcher import Watcher
from harness import KEY, running, text_of

if TYPE_CHECKING:
    from conftest import Figures

SONG = {"description": "a short indie-pop song about rain", "tags": "indie pop"}


def expected_body(arguments: dict[str, Any]) -> dict[str, Any]:
    catalogue = Catalogue()
    return catalogue.build_body(catalogue.spec("suno_generate_music"), GenerateMusicRequest.model_validate(arguments))


class RefusedOnce(httpx2.AsyncBaseTransport):
    """A real transport whose first submit fails to connect, as when CCAPI's address refuses a connection."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not self.refused and request.url.path.startswith("/suno/submit/"):
            self.refused.append(str(request.url))
            raise httpx2.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def server_over(home: Path, http_client: httpx2.AsyncClient) -> AsyncGenerator[tuple[Sandbox, Client]]:
    sandbox = Sandbox(clock=ManualClock())
    async with serve_sandbox(sandbox) as origin:
        settings = Settings(api_key=KEY, base_url=origin, home=home)
        async with Client(create_server(settings, http_client=http_client, poll_interval=0.02)) as client:
            yield sandbox, client


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["server_errors", "dropped", "lost_submit_responses"])
async def test_a_submit_whose_answer_is_lost_is_sent_once_recorded_as_unknown_and_not_resent(
    tmp_path: Path, fault: str, figures: Figures
) -> None:
    async with running(tmp_path) as harness:
        harness.sandbox.faults.scope = "submit"
        setattr(harness.sandbox.faults, fault, 1)
        first = await harness.fail("suno_generate_music", SONG)
        again = await harness.fail("suno_generate_music", SONG)
        stats = harness.sandbox.stats
        async with SQLiteLedger(harness.home / "ledger.sqlite3") as ledger:
            unknown = (await ledger.list_tasks(status="outcome_unknown")).tasks
            total = await ledger.count_tasks()
    figures.add_sandbox(stats)
    assert stats.submits == 1
    assert stats.accepted_submits == (1 if fault == "lost_submit_responses" else 0)
    assert "may have reached CCAPI" in first
    assert "suno_list_tasks with status outcome_unknown" in first and "suno_get_balance" in first
    assert "outcome is unknown" in again and "force=true" in again
    [record] = unknown
    assert total == 1
    assert (record.state, record.task_id, record.tool) == ("outcome_unknown", None, "suno_generate_music")
    assert record.request == expected_body(SONG)
    assert record.error


@pytest.mark.anyio
async def test_a_submit_whose_connection_never_opened_is_retried_into_exactly_one_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    monkeypatch.setattr(client_module, "INITIAL_RETRY_DELAY", 0.001)  # the retry's backoff, shortened
    transport = RefusedOnce()
    async with httpx2.AsyncClient(transport=transport) as http, server_over(tmp_path, http) as (sandbox, client):
        result = await client.call_tool("suno_generate_music", SONG)
        listed = await client.call_tool("suno_list_tasks", {})
    figures.add_sandbox(sandbox.stats)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert len(transport.refused) == 1
    assert (sandbox.stats.submits, sandbox.stats.accepted_submits) == (1, 1)
    assert listed.structured_content is not None
    assert [task["task_id"] for task in listed.structured_content["tasks"]] == [result.structured_content["task_id"]]


# The same over the streamable HTTP transport (several clients, one server) is still to write: it waits for the
# HTTP transport's bearer-token auth to be part of the harness.
@pytest.mark.anyio
async def test_fifty_concurrent_generations_make_fifty_distinct_tasks_and_a_consistent_ledger(
    tmp_path: Path, figures: Figures
) -> None:
    task_ids: list[str] = []
    async with running(tmp_path) as harness:

        async def generate(number: int) -> None:
            submitted = await harness.call("suno_generate_music", {**SONG, "title": f"Rain {number}"})
            task_ids.append(submitted["task_id"])

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for number in range(50):
                    tasks.start_soon(generate, number)
        stats = harness.sandbox.stats
    figures.add_sandbox(stats)
    with closing(sqlite3.connect(tmp_path / "ledger.sqlite3")) as connection:
        rows, distinct_ids, distinct_titles, submitted = connection.execute(
            "SELECT count(*), count(DISTINCT task_id), count(DISTINCT title), sum(state = 'submitted') FROM tasks"
        ).fetchone()
    assert (stats.submits, stats.accepted_submits) == (50, 50)
    assert len(set(task_ids)) == 50
    assert (rows, distinct_ids, distinct_titles, submitted) == (50, 50, 50, 50)


@pytest.mark.anyio
async def test_a_thousand_tracked_tasks_are_polled_in_ten_batch_requests_per_cycle(figures: Figures) -> None:
    clock = ManualClock()
    sandbox = Sandbox(clock=clock)
    async with (
        serve_sandbox(sandbox) as origin,
        SunoClient(api_key=KEY, base_url=origin) as client,
        SQLiteLedger(":memory:") as ledger,
    ):
        limiter = anyio.CapacityLimiter(20)

        async def track(number: int) -> None:
            body = {"prompt": f"lyrics about rain, take {number}"}
            async with limiter:
                record = await ledger.begin_submission(tool="suno_generate_lyrics", action="LYRICS", body=body)
                await ledger.record_task_id(record.submission_id, await client.submit("LYRICS", body))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for number in range(1000):
                    tasks.start_soon(track, number)
        watcher = Watcher(client, ledger, Notifier(InMemorySubscriptionBus()), interval=5.0)
        clock.advance(60)  # every task has finished at CCAPI
        figures.add_sandbox(sandbox.stats)
        sandbox.reset_stats()
        delay = await watcher.poll_once()
        batches = sandbox.stats.fetch_batch
        single = sandbox.stats.fetch_one
        left = await ledger.pending_task_ids()
        done = (await ledger.list_tasks(status="SUCCESS", limit=1000)).tasks
    figures.add("tasks tracked in one watcher cycle", 1000)
    assert (batches, single) == (10, 0)  # counted by the sandbox, not computed by the watcher
    assert delay == 5.0
    assert left == [] and len(done) == 1000
