"""The ledger's money: each task's charge from CCAPI's `quota`, refunds, reservations and the budget gate."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from ccapi_suno_mcp.ledger import OverBudgetError, SpendGate, SpendLimit, SQLiteLedger, TaskLedger
from ccapi_suno_mcp.ledger._schema import SQLITE_MIGRATIONS as _MIGRATIONS
from stores import Store
from test_ledger import BODY, START, FakeClock, ccapi_task, clip_json, submitted


def with_quota(task_id: str, status: str, quota: int | None, **options: Any) -> Any:
    task = ccapi_task(task_id, status, "100%" if status in ("SUCCESS", "FAILURE") else "40%", **options)
    return task.model_copy(update={"quota": quota})


async def begin(ledger: TaskLedger, title: str, gate: SpendGate | None) -> bool:
    """Claim a new (never duplicate) submission through the gate; False when the budget refused it."""
    try:
        await ledger.begin_unless_duplicate(
            tool="suno_generate_music", action="MUSIC", body={**BODY, "title": title}, budget=gate
        )
    except OverBudgetError:
        return False
    return True


@pytest.mark.anyio
async def test_a_finished_task_is_charged_its_quota_and_a_failed_one_is_refunded(store: Store) -> None:
    async with await store.open() as ledger:
        await submitted(ledger, "task_ok")
        await submitted(ledger, "task_bad")
        await ledger.apply_update(with_quota("task_ok", "IN_PROGRESS", 40000))
        before = await ledger.get_task("task_ok")
        await ledger.apply_update(with_quota("task_ok", "SUCCESS", 40000, clips=[clip_json("clip_1")]))
        await ledger.apply_update(with_quota("task_bad", "FAILURE", 40000, fail_reason="rejected upstream"))
        ok, bad = await ledger.get_task("task_ok"), await ledger.get_task("task_bad")
        charges = {charge.task_id: charge for charge in await ledger.charges(since=0)}
    assert before is not None and (before.quota, before.charged_quota) == (40000, None)
    assert ok is not None and (ok.quota, ok.charged_quota, ok.refunded_quota) == (40000, 40000, None)
    assert bad is not None and (bad.quota, bad.charged_quota, bad.refunded_quota) == (40000, 0, 40000)
    assert (charges["task_ok"].counted_quota, charges["task_bad"].counted_quota) == (40000, 0)
    assert charges["task_bad"].refunded and not charges["task_ok"].refunded


@pytest.mark.anyio
async def test_a_task_whose_record_reports_no_quota_is_charged_the_price_reserved_for_it(store: Store) -> None:
    async with await store.open() as ledger:
        record, _ = await ledger.begin_unless_duplicate(
            tool="suno_generate_music", action="MUSIC", body=BODY, budget=SpendGate(price_quota=30000)
        )
        await ledger.record_task_id(record.submission_id, "task_a")
        await ledger.apply_update(with_quota("task_a", "SUCCESS", None, clips=[clip_json("clip_1")]))
        task = await ledger.get_task("task_a")
    assert task is not None and (task.reserved_quota, task.quota, task.charged_quota) == (30000, None, 30000)


@pytest.mark.anyio
async def test_a_finished_task_with_neither_a_reported_quota_nor_a_reserved_price_is_charged_nothing(
    store: Store,
) -> None:
    async with await store.open() as ledger:
        await submitted(ledger, "task_a")  # submitted without a gate: nothing reserved
        await ledger.apply_update(with_quota("task_a", "SUCCESS", None, clips=[clip_json("clip_1")]))
        task = await ledger.get_task("task_a")
        [committed] = await ledger.committed_quota([0])
    assert task is not None and (task.reserved_quota, task.quota, task.charged_quota) == (None, None, 0)
    assert committed == 0


@pytest.mark.anyio
async def test_calls_in_flight_count_at_their_reported_quota_else_their_reserved_price(store: Store) -> None:
    clock = FakeClock()
    async with await store.open(clock) as ledger:
        assert await begin(ledger, "sending", SpendGate(price_quota=30000))  # still submitting: its reservation
        clock.now += 100
        assert await begin(ledger, "unpriced", SpendGate(price_quota=None))  # nothing known, nothing reserved
        reported, _ = await ledger.begin_unless_duplicate(
            tool="suno_generate_music", action="MUSIC", body={**BODY, "title": "r"}, budget=SpendGate(price_quota=1)
        )
        await ledger.record_task_id(reported.submission_id, "task_r")
        await ledger.apply_update(with_quota("task_r", "IN_PROGRESS", 45000))  # what CCAPI pre-charged wins
        rejected, _ = await ledger.begin_unless_duplicate(
            tool="suno_generate_music", action="MUSIC", body={**BODY, "title": "x"}, budget=SpendGate(price_quota=9)
        )
        await ledger.mark_rejected(rejected.submission_id, "insufficient balance")  # never billed: counts nothing
        committed = await ledger.committed_quota([START, START + 50])
        totals = await ledger.charge_totals()
    assert committed == [30000 + 45000, 45000]
    [total] = totals
    assert (total.tasks, total.in_flight, total.counted_quota) == (3, 3, 75000)


@pytest.mark.anyio
async def test_a_submission_that_would_pass_a_budget_is_refused_and_nothing_is_recorded(store: Store) -> None:
    daily = SpendLimit("daily", since=START, limit_quota=100000)
    async with await store.open(FakeClock()) as ledger:
        assert await begin(ledger, "one", SpendGate(price_quota=40000, limits=(daily,)))
        assert await begin(ledger, "two", SpendGate(price_quota=40000, limits=(daily,)))
        with pytest.raises(OverBudgetError) as refused:
            await ledger.begin_unless_duplicate(
                tool="suno_generate_music", action="MUSIC", body={**BODY, "title": "three"},
                budget=SpendGate(price_quota=40000, limits=(daily,)),
            )  # fmt: skip
        count = await ledger.count_tasks()
    assert (refused.value.limit, refused.value.committed_quota, refused.value.price_quota) == (daily, 80000, 40000)
    assert count == 2


@pytest.mark.anyio
async def test_an_approved_submission_is_recorded_past_its_budget(store: Store) -> None:
    spent = SpendLimit("daily", since=START, limit_quota=0)
    async with await store.open(FakeClock()) as ledger:
        assert not await begin(ledger, "one", SpendGate(price_quota=40000, limits=(spent,)))
        assert await begin(ledger, "one", SpendGate(price_quota=40000, limits=(spent,), approved=True))
        assert await ledger.committed_quota([START]) == [40000]


@pytest.mark.anyio
async def test_with_no_known_price_only_a_used_up_budget_refuses(store: Store) -> None:
    daily = SpendLimit("daily", since=START, limit_quota=50000)
    async with await store.open(FakeClock()) as ledger:
        assert await begin(ledger, "first", SpendGate(price_quota=None, limits=(daily,)))
        assert await begin(ledger, "priced", SpendGate(price_quota=50000, limits=(daily,)))  # exactly fits
        assert not await begin(ledger, "unpriced", SpendGate(price_quota=None, limits=(daily,)))


@pytest.mark.anyio
async def test_a_duplicate_is_returned_whatever_the_budget_says(store: Store) -> None:
    spent = SpendLimit("daily", since=START, limit_quota=40000)
    async with await store.open(FakeClock()) as ledger:
        first, _ = await ledger.begin_unless_duplicate(
            tool="suno_generate_music", action="MUSIC", body=BODY, budget=SpendGate(40000, (spent,))
        )
        again, is_new = await ledger.begin_unless_duplicate(
            tool="suno_generate_music", action="MUSIC", body=BODY, budget=SpendGate(40000, (spent,))
        )
    assert (again.submission_id, is_new) == (first.submission_id, False)


@pytest.mark.anyio
async def test_concurrent_submissions_from_two_processes_never_both_slip_under_a_budget(store: Store) -> None:
    gate = SpendGate(price_quota=40000, limits=(SpendLimit("daily", since=0, limit_quota=100000),))
    outcomes: list[bool] = []
    async with await store.open() as first, await store.open() as second:

        async def claim(ledger: TaskLedger, title: str) -> None:
            outcomes.append(await begin(ledger, title, gate))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                for index in range(10):
                    tasks.start_soon(claim, first if index % 2 else second, f"song {index}")
        committed = await first.committed_quota([0])
    assert sorted(outcomes) == [False] * 8 + [True] * 2
    assert committed == [80000]


@pytest.mark.anyio
async def test_recent_quotas_are_each_tools_newest_reported_charges(store: Store) -> None:
    clock = FakeClock()
    async with await store.open(clock) as ledger:
        for index, quota in enumerate([10000, 20000, 30000, 40000]):
            clock.now += 1
            await submitted(ledger, f"task_{index}")
            await ledger.apply_update(with_quota(f"task_{index}", "SUCCESS", quota))
        await submitted(ledger, "task_lyrics", {"prompt": "rain"}, tool="suno_generate_lyrics", action="LYRICS")
        await ledger.apply_update(with_quota("task_lyrics", "FAILURE", 2500))  # refunded, but it shows the price
        await submitted(ledger, "task_unpriced", {"prompt": "x"}, tool="suno_detect_bpm", action="BPM")
        everyone = await ledger.recent_quotas(last=3)
        one = await ledger.recent_quotas(last=2, tool="suno_generate_music")
    assert everyone == {"suno_generate_music": [40000, 30000, 20000], "suno_generate_lyrics": [2500]}
    assert one == {"suno_generate_music": [40000, 30000]}


@pytest.mark.anyio
async def test_charge_totals_count_tasks_failures_refunds_and_calls_in_flight(store: Store) -> None:
    async with await store.open() as ledger:
        for task_id, status in [("a", "SUCCESS"), ("b", "SUCCESS"), ("c", "FAILURE"), ("d", "IN_PROGRESS")]:
            await submitted(ledger, task_id)
            await ledger.apply_update(with_quota(task_id, status, 40000))
        await submitted(ledger, "e")
        await ledger.apply_update(with_quota("e", "FAILURE", None))  # failed, but no refund was reported
        [total] = await ledger.charge_totals()
    assert (total.tool, total.action, total.tasks, total.failed, total.refunded, total.in_flight) == (
        "suno_generate_music", "MUSIC", 5, 2, 1, 1,
    )  # fmt: skip
    assert total.counted_quota == 3 * 40000


@pytest.mark.anyio
async def test_a_ledger_of_the_previous_version_is_migrated_and_keeps_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as connection:
        for step in _MIGRATIONS[:2]:
            for statement in step:
                assert isinstance(statement, str)  # the early steps are all SQL
                connection.execute(statement)
        connection.execute(
            "INSERT INTO tasks (submission_id, task_id, tool, action, request, fingerprint, state, status, created_at, "
            "updated_at, search_text) VALUES ('s1', 'task_old', 'suno_generate_music', 'MUSIC', '{}', 'f', "
            "'submitted', 'SUCCESS', 1, 1, '')"
        )
        connection.execute("PRAGMA user_version = 2")
    connection.close()
    async with await SQLiteLedger.open(path) as ledger:
        old = await ledger.get_task("task_old")
        charges = await ledger.charges(since=0)
    assert old is not None and (old.status, old.quota, old.charged_quota) == ("SUCCESS", None, None)
    assert [charge.counted_quota for charge in charges] == [0]


@pytest.mark.anyio
async def test_a_fetch_whose_only_news_is_the_quota_is_not_taken_as_already_shown(store: Store) -> None:
    async with await store.open() as ledger:
        await submitted(ledger, "task_a")
        await ledger.apply_update(with_quota("task_a", "IN_PROGRESS", None))
        record = await ledger.get_task("task_a")
    assert record is not None
    assert record.already_shows(with_quota("task_a", "IN_PROGRESS", None))
    assert not record.already_shows(with_quota("task_a", "IN_PROGRESS", 40000))


@pytest.mark.anyio
async def test_a_principals_own_limit_counts_its_calls_and_the_servers_counts_everyones(store: Store) -> None:
    async with await store.open() as ledger:
        alice, bob = ledger.for_principal("alice"), ledger.for_principal("bob")
        assert await begin(alice, "alice's", SpendGate(price_quota=40000))
        bobs_own = SpendGate(price_quota=40000, limits=(SpendLimit("daily", 0, 50000, principal="bob"),))
        everyones = SpendGate(price_quota=40000, limits=(SpendLimit("daily", 0, 50000),))

        fits_bob = await begin(bob, "bob's first", bobs_own)  # alice's 40000 is not bob's
        over_bob = await begin(bob, "bob's second", bobs_own)  # bob's own 40000 + 40000 is past 50000
        over_all = await begin(alice, "alice's second", everyones)  # everyone's 80000 is past it already
        committed = (await bob.committed_quota([0]), await bob.committed_quota([0], everyone=True))

    assert (fits_bob, over_bob, over_all) == (True, False, False)
    assert committed == ([40000], [80000])
