"""MCP tasks as rows of the ledger, on both backends: durable, owned, cancelled once, purged long after expiry."""

from __future__ import annotations

import pytest

from ccapi_suno_mcp.ledger._mcp_tasks import PURGE_AFTER
from stores import START, FakeClock, Store


@pytest.mark.anyio
async def test_a_task_made_by_one_process_is_read_by_another_on_the_same_ledger(store: Store) -> None:
    clock = FakeClock()
    async with await store.open(clock) as first:
        made = await first.create_mcp_task(
            tool="suno_wait_for_tasks", task_ids=["task_a", "task_b"], ttl_seconds=3600, wait_seconds=50
        )
    async with await store.open(clock) as second:
        read = await second.get_mcp_task(made.mcp_task_id)
    assert read == made
    assert made.task_ids == ("task_a", "task_b") and made.principal == "default"
    assert made.created_at == START and made.expires_at == START + 3600 and made.wait_until == START + 50
    assert made.cancelled_at is None and len(made.mcp_task_id) >= 40


@pytest.mark.anyio
async def test_another_principals_task_is_unknown_and_cannot_be_cancelled(store: Store) -> None:
    async with await store.open() as ledger:
        alice, bob = ledger.for_principal("alice"), ledger.for_principal("bob")
        made = await alice.create_mcp_task(tool="suno_generate_music", task_ids=["task_a"], ttl_seconds=3600)
        seen_by_bob = await bob.get_mcp_task(made.mcp_task_id)
        cancelled_by_bob = await bob.cancel_mcp_task(made.mcp_task_id)
        still = await alice.get_mcp_task(made.mcp_task_id)
    assert seen_by_bob is None and cancelled_by_bob is None
    assert still == made


@pytest.mark.anyio
async def test_cancel_keeps_the_first_cancels_time(store: Store) -> None:
    clock = FakeClock()
    async with await store.open(clock) as ledger:
        made = await ledger.create_mcp_task(tool="suno_generate_music", task_ids=["task_a"], ttl_seconds=3600)
        clock.now += 10
        first = await ledger.cancel_mcp_task(made.mcp_task_id)
        clock.now += 10
        again = await ledger.cancel_mcp_task(made.mcp_task_id)
        unknown = await ledger.cancel_mcp_task("never-made")
    assert first is not None and first.cancelled_at == START + 10
    assert again == first
    assert unknown is None


@pytest.mark.anyio
async def test_tasks_long_past_their_expiry_are_purged_when_a_new_one_is_made(store: Store) -> None:
    clock = FakeClock()
    async with await store.open(clock) as ledger:
        old = await ledger.create_mcp_task(tool="suno_generate_music", task_ids=["task_a"], ttl_seconds=60)
        clock.now += 60 + PURGE_AFTER - 1
        await ledger.create_mcp_task(tool="suno_generate_music", task_ids=["task_b"], ttl_seconds=60)
        kept = await ledger.get_mcp_task(old.mcp_task_id)
        clock.now += 2
        await ledger.create_mcp_task(tool="suno_generate_music", task_ids=["task_c"], ttl_seconds=60)
        purged = await ledger.get_mcp_task(old.mcp_task_id)
    assert kept == old
    assert purged is None
