"""The watcher's bookkeeping between cycles: waiting for a cycle, and giving up on tasks CCAPI never returns."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.server.subscriptions import InMemorySubscriptionBus

from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.ledger._sqlite import INTERRUPTED_AFTER
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.watcher import GIVE_UP_AFTER_SECONDS, MAX_BACKOFF, Watcher
from watching import no_sleep, pending_watcher

TASK = "task_" + "b" * 32
BACK = "task_" + "c" * 32


class ForgetfulCCAPI:
    """Answers every batch fetch successfully, leaving out the ids not in `known`, as CCAPI does with ids it
    does not know; the ones it knows are running."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.known: set[str] = set()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        ids: list[str] = json.loads(request.content)["ids"]
        self.asked.append(ids)
        records = [{"task_id": i, "status": "IN_PROGRESS", "progress": "10%"} for i in ids if i in self.known]
        return httpx2.Response(200, json={"code": "success", "message": "", "data": records})


class RecordingNotifier(Notifier):
    """The real notifier, remembering what it was asked to announce."""

    def __init__(self) -> None:
        super().__init__(InMemorySubscriptionBus())
        self.announced: list[tuple[list[str], bool]] = []

    async def tasks_changed(
        self,
        task_ids: Iterable[str],
        *,
        list_changed: bool,
        spend: bool = False,
        relay: bool = True,
        principal: str | None = None,
    ) -> None:
        self.announced.append((list(task_ids), list_changed))
        await super().tasks_changed(task_ids, list_changed=list_changed, spend=spend, relay=relay, principal=principal)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_a_task_ccapi_leaves_out_for_ten_minutes_is_no_longer_polled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ccapi, clock = ForgetfulCCAPI(), Clock()
    async with pending_watcher(tmp_path, ccapi, TASK, interval=5.0, clock=clock) as (ledger, watcher):
        delays: list[float | None] = []
        for now in (1_000.0, 1_000.0 + GIVE_UP_AFTER_SECONDS - 1, 1_000.0 + GIVE_UP_AFTER_SECONDS, 5_000.0):
            clock.now = now
            with caplog.at_level(logging.WARNING, logger="ccapi_suno_mcp.watcher"):
                delays.append(await watcher.poll_once())
        still_pending = await ledger.pending_task_ids()
    assert ccapi.asked == [[TASK], [TASK]]  # first missing at 1,000 s; asked for until ten minutes later
    assert delays == [5.0, 5.0, None, None]  # then nothing is left to poll
    assert [record.message for record in caplog.records].count(
        f"CCAPI has not returned {TASK} for 10 minutes; not polling it until the server restarts"
    ) == 1
    assert still_pending == [TASK]  # the ledger still lists it: a restart asks again


@pytest.mark.anyio
async def test_wait_for_cycle_says_whether_a_cycle_completed_and_never_waits_past_its_time(tmp_path: Path) -> None:
    async with (
        await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger,
        httpx2.AsyncClient(transport=httpx2.MockTransport(ForgetfulCCAPI())) as http,
    ):
        client = SunoClient(api_key="sk-x", base_url="https://ccapi.test", http_client=http, sleep=no_sleep)
        watcher = Watcher(client, ledger, Notifier(InMemorySubscriptionBus()))
        with anyio.fail_after(0.9):  # well under a second: a short wait is never stretched
            timed_out = await watcher.wait_for_cycle(0.05)
            negative = await watcher.wait_for_cycle(-1)
        completed: list[bool] = []
        async with anyio.create_task_group() as tasks:

            async def wait() -> None:
                completed.append(await watcher.wait_for_cycle(10))

            tasks.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(5):
                assert await watcher.poll_once() is None  # nothing pending: a cycle all the same
    assert (timed_out, negative) == (False, False)
    assert completed == [True]


@asynccontextmanager
async def forgetful_client() -> AsyncGenerator[tuple[ForgetfulCCAPI, SunoClient]]:
    ccapi = ForgetfulCCAPI()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(ccapi)) as http:
        yield ccapi, SunoClient(api_key="sk-x", base_url="https://ccapi.test", http_client=http, sleep=no_sleep)


@pytest.mark.anyio
async def test_a_task_that_comes_back_starts_its_ten_minutes_again(tmp_path: Path) -> None:
    clock = Clock()
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger, forgetful_client() as (ccapi, client):
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "a"})
        await ledger.record_task_id(record.submission_id, BACK)
        watcher = Watcher(client, ledger, RecordingNotifier(), interval=5.0, clock=clock)
        for now, known in ((1_000.0, False), (1_300.0, True), (1_400.0, False), (1_800.0, False)):
            clock.now = now
            ccapi.known = {BACK} if known else set()
            await watcher.poll_once()
    assert ccapi.asked == [[BACK]] * 4  # missing since 1,400 s, not 1,000 s: still asked for at 1,800 s


@pytest.mark.anyio
async def test_a_change_the_watcher_finds_is_announced_with_the_task_list(tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3") as ledger, forgetful_client() as (ccapi, client):
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "a"})
        await ledger.record_task_id(record.submission_id, TASK)
        ccapi.known = {TASK}
        watcher = Watcher(client, ledger, notifier, interval=5.0)
        await watcher.poll_once()
        await watcher.poll_once()  # nothing new the second time
    assert notifier.announced == [([TASK], True)]
    assert (watcher.last_error, watcher.refusal) == (None, None)  # a poll that worked leaves no error behind


@pytest.mark.anyio
async def test_the_watcher_settles_interrupted_submits_at_once_and_then_every_minute(tmp_path: Path) -> None:
    ledger_now, watcher_clock = [0.0], Clock()
    async with (
        await SQLiteLedger.open(tmp_path / "ledger.sqlite3", clock=lambda: ledger_now[0]) as ledger,
        forgetful_client() as (_, client),
    ):
        old = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "a"})
        ledger_now[0] = INTERRUPTED_AFTER + 1  # a crash left it 'submitting' long ago
        watcher = Watcher(client, ledger, RecordingNotifier(), interval=5.0, clock=watcher_clock)
        await watcher.poll_once()
        first = await ledger.get_submission(old.submission_id)
        later = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "b"})
        ledger_now[0] += INTERRUPTED_AFTER + 1
        states: list[str] = []
        for elapsed in (59.0, 60.0):
            watcher_clock.now = 1_000.0 + elapsed
            await watcher.poll_once()
            found = await ledger.get_submission(later.submission_id)
            states.append(found.state if found else "missing")
    assert first is not None and first.state == "outcome_unknown"
    assert states == ["submitting", "outcome_unknown"]


@pytest.mark.anyio
async def test_the_watcher_loop_backs_off_when_its_own_ledger_fails(tmp_path: Path) -> None:
    ledger = await SQLiteLedger.open(tmp_path / "ledger.sqlite3")
    await ledger.aclose()  # every cycle now fails inside poll_once, not at CCAPI
    pauses: list[float | None] = []
    enough = anyio.Event()

    async def pause(wake: anyio.Event, seconds: float | None) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            enough.set()
            await anyio.sleep_forever()

    async with forgetful_client() as (ccapi, client):
        watcher = Watcher(client, ledger, RecordingNotifier(), interval=5.0, pause=pause)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watcher.run)
                await enough.wait()
                tasks.cancel_scope.cancel()
    assert pauses == [10.0, 20.0, 40.0, 80.0, MAX_BACKOFF, MAX_BACKOFF]
    assert (watcher.consecutive_failures, ccapi.asked) == (6, [])
