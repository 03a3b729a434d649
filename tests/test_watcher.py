"""The watcher's schedule: backoff, wake-ups, and recovery."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from ccapi_suno_mcp.ccapi import APITimeoutError, SunoClient, SunoTask
from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.watcher import REJECTED_INTERVAL, Watcher
from watching import no_sleep, pending_watcher

TASK = "task_" + "a" * 32


class FlakyCCAPI:
    """Answers batch fetches with 500 while `failing`, else with the task in IN_PROGRESS."""

    def __init__(self) -> None:
        self.failing = True
        self.requests = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        if self.failing:
            return httpx2.Response(500, json={"code": "do_request_failed", "message": "down", "data": None})
        ids: list[str] = json.loads(request.content)["ids"]
        records = [{"task_id": task_id, "status": "IN_PROGRESS", "progress": "10%"} for task_id in ids]
        return httpx2.Response(200, json={"code": "success", "message": "", "data": records})


@asynccontextmanager
async def watching(home: Path) -> AsyncGenerator[tuple[FlakyCCAPI, SQLiteLedger, Watcher]]:
    """A watcher over a real ledger holding one pending task, polling a CCAPI that fails until told not to."""
    ccapi = FlakyCCAPI()
    async with pending_watcher(home, ccapi, TASK) as (ledger, watcher):
        yield ccapi, ledger, watcher


@pytest.mark.anyio
async def test_a_watcher_that_backed_off_polls_again_once_woken_after_its_tasks_ended(tmp_path: Path) -> None:
    async with watching(tmp_path) as (_, ledger, watcher):
        assert await watcher.poll_once() == 2.0  # failed: backing off
        await ledger.apply_update(SunoTask(task_id=TASK, status="SUCCESS", progress="100%"))  # seen by get_task
        assert await watcher.poll_once() is None  # nothing pending any more
        assert watcher.consecutive_failures == 0
        watcher.wake()
        assert watcher._wake.is_set()  # pyright: ignore[reportPrivateUsage] - the wake-up must not be ignored


@pytest.mark.anyio
async def test_a_successful_submit_ends_the_backoff(tmp_path: Path) -> None:
    async with watching(tmp_path) as (ccapi, _, watcher):
        await watcher.poll_once()
        await watcher.poll_once()
        assert watcher.consecutive_failures == 2
        watcher.wake()
        assert not watcher._wake.is_set()  # pyright: ignore[reportPrivateUsage] - backing off ignores plain wakes
        watcher.wake(reset_backoff=True)
        assert watcher._wake.is_set()  # pyright: ignore[reportPrivateUsage]
        ccapi.failing = False
        assert await watcher.poll_once() == 1.0


class RevokedKey(FlakyCCAPI):
    """Refuses the key (401, new-api's OpenAI-style body) while `failing`."""

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if self.failing:
            self.requests += 1
            body = {"error": {"message": "invalid token (request id: x)", "type": "new_api_error", "code": ""}}
            return httpx2.Response(401, json=body)
        return super().__call__(request)


@pytest.mark.anyio
async def test_the_watcher_slows_to_a_long_interval_while_the_key_is_rejected_and_recovers_on_success(
    tmp_path: Path,
) -> None:
    async with watching(tmp_path) as (_, ledger, watcher):
        revoked = RevokedKey()
        watcher._client = SunoClient(  # pyright: ignore[reportPrivateUsage] - the same watcher, another CCAPI
            api_key="sk-x",
            base_url="https://ccapi.test",
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(revoked)),
            sleep=no_sleep,
        )
        assert await watcher.poll_once() == REJECTED_INTERVAL
        assert await watcher.poll_once() == REJECTED_INTERVAL  # no exponential climb: a fixed, long interval
        assert watcher.refusal is not None and revoked.requests == 2  # 401 is not retried
        watcher.wake()
        assert not watcher._wake.is_set()  # pyright: ignore[reportPrivateUsage] - a plain wake does not hurry it
        revoked.failing = False
        watcher.note_success()  # a tool's own call got through
        assert watcher.refusal is None
        assert await watcher.poll_once() == 1.0
        assert (await ledger.pending_task_ids()) == [TASK]


@pytest.mark.anyio
async def test_a_poll_whose_answer_never_finishes_is_cut_at_the_poll_deadline(tmp_path: Path) -> None:
    async def dripping(request: httpx2.Request) -> httpx2.Response:
        async def forever() -> AsyncIterator[bytes]:
            while True:
                yield b" "
                await anyio.sleep(0.01)  # every read is quick: only a deadline on the whole answer ends it

        return httpx2.Response(200, content=forever())

    async with pending_watcher(tmp_path, dripping, TASK, poll_deadline=0.5) as (_, watcher):
        with anyio.fail_after(5):
            delay = await watcher.poll_once()
    assert delay == 2.0  # a failed cycle: backing off, not stalled
    assert isinstance(watcher.last_error, APITimeoutError) and "within 0.5 s" in str(watcher.last_error)
