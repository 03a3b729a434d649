"""A team's deployment tried from outside: two HTTP replicas (real processes, separate homes) on one PostgreSQL
ledger, one sandbox process, two users with their own tokens, as the README's "Running it for a team" runs it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from harness import call, text_of
from polling import eventually
from processes import Replica, control, http_replica, sandbox_process

ALICE = "alice-process-token-0123456789"
BOB = "bob-process-token-0123456789ab"
NEVER_SUBMITTED = "task_" + "0" * 32


@asynccontextmanager
async def team(tmp_path: Path, postgres_url: str, *, speed: str = "20") -> AsyncGenerator[tuple[str, Replica, Replica]]:
    """The sandbox and two replicas on one database; the first replica's watcher leads (it starts first)."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"alice": {"token": ALICE}, "bob": {"token": BOB}}), encoding="utf-8")
    env = {"CCAPI_SUNO_LEDGER_URL": postgres_url, "CCAPI_SUNO_HTTP_TOKENS_FILE": str(tokens)}
    async with sandbox_process("--speed", speed) as origin, http_replica(tmp_path / "a", origin, env) as first:
        await eventually(lambda: "watcher now polls CCAPI" in first.log, within=30)
        async with http_replica(tmp_path / "b", origin, env) as second:
            yield origin, first, second


@asynccontextmanager
async def connect(replica: Replica, token: str) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(replica.url, http_client=http)) as client,
    ):
        yield client


async def listed(client: Client) -> list[dict[str, Any]]:
    return (await call(client, "suno_list_tasks", {"limit": 100}))["tasks"]


@pytest.mark.anyio
async def test_two_replicas_bill_an_identical_call_once_and_both_list_every_task(
    tmp_path: Path, postgres_url: str
) -> None:
    with anyio.fail_after(120):
        async with team(tmp_path, postgres_url) as (origin, first, second), AsyncExitStack() as stack:
            alice_on = [await stack.enter_async_context(connect(replica, ALICE)) for replica in (first, second)]
            bob = await stack.enter_async_context(connect(second, BOB))
            same: list[str] = []

            async def identical(client: Client) -> None:
                same.append(
                    (await call(client, "suno_generate_music", {"description": "one song, two doors"}))["task_id"]
                )

            async with anyio.create_task_group() as tasks:
                for client in alice_on:
                    tasks.start_soon(identical, client)
            billed_for_identical = (await control(origin, "stats"))["accepted_submits"]

            distinct: list[str] = []

            async def generate(number: int) -> None:
                song = {"description": f"song number {number} of twenty"}
                distinct.append((await call(alice_on[number % 2], "suno_generate_music", song))["task_id"])

            async with anyio.create_task_group() as tasks:
                for number in range(20):
                    tasks.start_soon(generate, number)
            seen = [{task["task_id"] for task in await listed(client)} for client in alice_on]
            bobs = await listed(bob)
            foreign = await bob.call_tool("suno_get_task", {"task_id": same[0]})
            unknown = await bob.call_tool("suno_get_task", {"task_id": NEVER_SUBMITTED})
            stats = await control(origin, "stats")

    assert len(same) == 2 and same[0] == same[1]
    assert billed_for_identical == 1
    assert len(set(distinct)) == 20
    assert seen[0] == seen[1] == {*distinct, same[0]}
    assert stats["accepted_submits"] == 21
    assert bobs == []
    assert foreign.is_error and unknown.is_error
    assert text_of(foreign).replace(same[0], "<id>") == text_of(unknown).replace(NEVER_SUBMITTED, "<id>")


@pytest.mark.anyio
async def test_a_replica_killed_while_its_task_is_pending_leaves_the_other_to_finish_it(
    tmp_path: Path, postgres_url: str
) -> None:
    with anyio.fail_after(120):
        async with team(tmp_path, postgres_url, speed="0.4") as (_, first, second):
            async with connect(first, ALICE) as alice_on_first:
                task_id = (await call(alice_on_first, "suno_generate_music", {"description": "outlives its server"}))[
                    "task_id"
                ]
            first.kill()
            await first.process.wait()
            async with connect(second, ALICE) as alice, connect(second, BOB) as bob:
                pending = await listed(alice)
                with anyio.fail_after(60):
                    while (await listed(alice))[0]["status"] != "SUCCESS":  # noqa: ASYNC110 - the ledger, polled
                        await anyio.sleep(0.5)
                finished = await listed(alice)
                bobs = await listed(bob)

    assert [(task["task_id"], task["done"]) for task in pending] == [(task_id, False)]
    assert "watcher now polls CCAPI" in second.log  # the survivor took the watcher lock (whenever its first cycle ran)
    assert [task["task_id"] for task in finished] == [task_id] and finished[0]["clips"]
    assert bobs == []


@pytest.mark.anyio
async def test_a_replica_killed_mid_submit_is_known_dead_at_once_by_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    song = {"description": "caught in the money window on replica a"}
    with anyio.fail_after(120):
        async with team(tmp_path, postgres_url) as (origin, first, second):
            await control(origin, "faults", {"held_submits": 1})
            async with anyio.create_task_group() as tasks:

                async def submit() -> None:
                    with contextlib.suppress(Exception):  # the replica is killed under this call and its session
                        async with connect(first, ALICE) as alice_on_first:
                            await alice_on_first.call_tool("suno_generate_music", song)

                tasks.start_soon(submit)

                async def held() -> bool:
                    return (await control(origin, "held"))["held"] >= 1

                await eventually(held)
                first.kill()
                tasks.cancel_scope.cancel()
            started = anyio.current_time()
            async with connect(second, ALICE) as alice:
                again = await alice.call_tool("suno_generate_music", song)
                answered_after = anyio.current_time() - started
                unknown = await call(alice, "suno_list_tasks", {"status": "outcome_unknown"})
            stats = await control(origin, "stats")
            await control(origin, "release", {})

    assert again.is_error and "may have been billed" in text_of(again)
    assert answered_after < 10  # the other replica's death is known from the database, not from a 2-minute age
    [task] = unknown["tasks"]
    assert "stopped before CCAPI's answer was recorded" in task["fail_reason"]
    assert stats["accepted_submits"] == 1
