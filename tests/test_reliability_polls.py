"""Polls survive what CCAPI and the proxies in front of it do, and the watcher backs off instead of hammering."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from mcp.server.subscriptions import InMemorySubscriptionBus

from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.ccapi import _client as client_module
from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.watcher import MAX_BACKOFF, Watcher
from harness import KEY, running

if TYPE_CHECKING:
    from conftest import Figures

FETCH_FAULTS = ["rate_limited", "server_errors", "html_errors", "malformed", "dropped"]


class Sleeps:
    """Stands in for `anyio.sleep` in the client: records each delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def full_jitter() -> float:
    return 1.0  # the top of the jitter range: delays are exactly the backoff


@pytest.mark.anyio
@pytest.mark.parametrize("fault", FETCH_FAULTS)
async def test_a_batch_poll_retries_through_a_burst_of_failures_with_exponential_backoff(
    fault: str, figures: Figures
) -> None:
    sandbox = Sandbox(clock=ManualClock())
    sleeps = Sleeps()
    async with (
        serve_sandbox(sandbox) as origin,
        SunoClient(api_key=KEY, base_url=origin, sleep=sleeps, jitter=full_jitter) as client,
    ):
        task_id = await client.submit("LYRICS", {"prompt": "rain on a tin roof"})
        sandbox.faults.scope = "fetch"
        sandbox.faults.retry_after_seconds = 0
        setattr(sandbox.faults, fault, client.max_retries)
        [task] = await client.fetch_tasks([task_id])
    figures.add_sandbox(sandbox.stats)
    assert task.task_id == task_id
    assert sandbox.stats.faults_injected == client.max_retries == 4
    assert sandbox.stats.fetch_batch == 5
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.anyio
async def test_a_rate_limited_poll_waits_as_long_as_retry_after_says(figures: Figures) -> None:
    sandbox = Sandbox(clock=ManualClock())
    sleeps = Sleeps()
    async with (
        serve_sandbox(sandbox) as origin,
        SunoClient(api_key=KEY, base_url=origin, sleep=sleeps, jitter=full_jitter) as client,
    ):
        task_id = await client.submit("LYRICS", {"prompt": "rain on a tin roof"})
        sandbox.faults.scope = "fetch"
        sandbox.faults.rate_limited = 2
        sandbox.faults.retry_after_seconds = 7
        task = await client.fetch_task(task_id)
    figures.add_sandbox(sandbox.stats)
    assert task.task_id == task_id
    assert sandbox.stats.fetch_one == 3
    assert sleeps.delays == [7.0, 7.0]


@pytest.mark.anyio
async def test_a_wait_through_every_kind_of_poll_failure_still_ends_with_the_final_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    monkeypatch.setattr(client_module, "INITIAL_RETRY_DELAY", 0.001)  # the client's own backoff, shortened
    async with running(tmp_path) as harness:
        submitted = await harness.call("suno_generate_music", {"description": "a song through a storm"})
        faults = harness.sandbox.faults
        faults.scope = "fetch"
        faults.retry_after_seconds = 0
        # More failures in a row than one poll's retries absorb: the first fetch of the wait fails outright.
        faults.rate_limited, faults.server_errors, faults.dropped, faults.html_errors, faults.malformed = 2, 3, 2, 2, 2
        with anyio.fail_after(20):
            waited = await harness.finished([submitted["task_id"]])
        stats = harness.sandbox.stats
    figures.add_sandbox(stats)
    assert stats.faults_injected == 11
    [task] = waited["tasks"]
    assert task["status"] == "SUCCESS" and len(task["clips"]) == 2
    assert all(clip["final"] for clip in task["clips"])


@pytest.mark.anyio
async def test_the_watcher_backs_off_exponentially_up_to_a_cap_while_every_poll_fails(figures: Figures) -> None:
    sandbox = Sandbox(clock=ManualClock())
    sleeps = Sleeps()
    async with (
        serve_sandbox(sandbox) as origin,
        SunoClient(api_key=KEY, base_url=origin, sleep=sleeps, jitter=full_jitter) as client,
        SQLiteLedger(":memory:") as ledger,
    ):
        body = {"prompt": "rain on a tin roof"}
        record = await ledger.begin_submission(tool="suno_generate_lyrics", action="LYRICS", body=body)
        await ledger.record_task_id(record.submission_id, await client.submit("LYRICS", body))
        watcher = Watcher(client, ledger, Notifier(InMemorySubscriptionBus()), interval=5.0)
        sandbox.faults.scope = "fetch"
        sandbox.faults.server_errors = 1_000_000
        delays: list[float | None] = []
        requests: list[int] = []
        for _ in range(7):
            before = sandbox.stats.fetch_batch
            delays.append(await watcher.poll_once())
            requests.append(sandbox.stats.fetch_batch - before)
        failures = watcher.consecutive_failures
        sandbox.faults.server_errors = 0
        recovered = await watcher.poll_once()
    figures.add_sandbox(sandbox.stats)
    assert delays == [10.0, 20.0, 40.0, 80.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert requests == [client.max_retries + 1] * 7  # one poll and its retries per cycle, never more
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0] * 7
    assert failures == 7
    assert (recovered, watcher.consecutive_failures) == (5.0, 0)


class VirtualTime:
    """The watcher's clock and pause: each pause is recorded and moves the clock instead of waiting.

    Once the clock reaches `horizon` the pause blocks for good and `reached` is set, so a test can stop the loop.
    """

    def __init__(self, horizon: float) -> None:
        self.now = 0.0
        self.horizon = horizon
        self.pauses: list[float | None] = []
        self.reached = anyio.Event()

    def clock(self) -> float:
        return self.now

    async def pause(self, wake: anyio.Event, seconds: float | None) -> None:
        self.pauses.append(seconds)
        if seconds is None:
            await wake.wait()
            return
        self.now += seconds
        if self.now >= self.horizon:
            self.reached.set()
            await anyio.sleep_forever()


async def run_watcher_until(watcher: Watcher, time: VirtualTime) -> None:
    """Run `Watcher.run()`, the real loop, until its virtual clock reaches the horizon."""
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watcher.run)
            await time.reached.wait()
            tasks.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_watcher_loop_polls_eight_times_in_ten_minutes_of_outage_not_every_interval(
    figures: Figures,
) -> None:
    sandbox = Sandbox(clock=ManualClock())
    time = VirtualTime(horizon=600.0)
    async with (
        serve_sandbox(sandbox) as origin,
        SunoClient(api_key=KEY, base_url=origin, sleep=Sleeps()) as client,  # real jitter: retries vary
        SQLiteLedger(":memory:") as ledger,
    ):
        body = {"prompt": "rain on a tin roof"}
        record = await ledger.begin_submission(tool="suno_generate_lyrics", action="LYRICS", body=body)
        await ledger.record_task_id(record.submission_id, await client.submit("LYRICS", body))
        watcher = Watcher(
            client, ledger, Notifier(InMemorySubscriptionBus()), interval=5.0, clock=time.clock, pause=time.pause
        )
        sandbox.faults.scope = "fetch"
        sandbox.faults.server_errors = 1_000_000
        await run_watcher_until(watcher, time)
        fetches = sandbox.stats.fetch_batch
    figures.add_sandbox(sandbox.stats)
    # Cycles at 0, 10, 30, 70, 150, 270, 390 and 510 s; polling every 5 s instead would make 120 cycles.
    assert time.pauses == [10.0, 20.0, 40.0, 80.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert fetches == 8 * (client.max_retries + 1)  # each cycle: one poll and the client's retries of it


@pytest.mark.anyio
async def test_the_watcher_loop_returns_to_its_interval_once_ccapi_answers_and_idles_once_nothing_is_pending(
    figures: Figures,
) -> None:
    sandbox_clock = ManualClock()
    sandbox = Sandbox(clock=sandbox_clock)
    pauses: list[float | None] = []
    idle, done = anyio.Event(), anyio.Event()
    fetches_when_idle = -1

    async def pause(wake: anyio.Event, seconds: float | None) -> None:
        pauses.append(seconds)
        if len(pauses) == 4:
            sandbox_clock.advance(60)  # the task finishes at CCAPI
        if seconds is None:
            if idle.is_set():
                done.set()
            idle.set()
            await wake.wait()

    async with (
        serve_sandbox(sandbox) as origin,
        SunoClient(api_key=KEY, base_url=origin, sleep=Sleeps()) as client,
        SQLiteLedger(":memory:") as ledger,
    ):
        body = {"prompt": "rain on a tin roof"}
        record = await ledger.begin_submission(tool="suno_generate_lyrics", action="LYRICS", body=body)
        await ledger.record_task_id(record.submission_id, await client.submit("LYRICS", body))
        watcher = Watcher(client, ledger, Notifier(InMemorySubscriptionBus()), interval=5.0, pause=pause)
        sandbox.faults.scope = "fetch"
        sandbox.faults.server_errors = 2 * (client.max_retries + 1)  # two failed cycles, then CCAPI answers
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watcher.run)
                await idle.wait()
                fetches_when_idle = sandbox.stats.fetch_batch
                watcher.wake()  # as a new submission would: the loop looks again, finds nothing, idles again
                await done.wait()
                tasks.cancel_scope.cancel()
        fetches = sandbox.stats.fetch_batch
        task = await ledger.get_submission(record.submission_id)
    figures.add_sandbox(sandbox.stats)
    assert pauses == [10.0, 20.0, 5.0, 5.0, 5.0, None, None]
    assert fetches_when_idle == fetches == 2 * (client.max_retries + 1) + 3
    assert task is not None and task.status == "SUCCESS"
