"""Budgets: a billable call past a budget is sent only if the user agrees; only the user lifts a budget.

In memory in both protocol eras (the question is an elicitation: a live request on 2025-era connections, an
input-required round trip on 2026-07-28), against the sandbox over real HTTP. `test_budgets_stdio.py` tries the
issue's "done when" over stdio.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp.client.context import ClientRequestContext
from mcp.client.session import ElicitationFnT
from mcp.types import ElicitRequestParams, ElicitResult

from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.spend import Calendar
from harness import MODES, Harness, Mode, running, text_of
from test_server import SONG, generate

Answer = Literal["accept", "decline", "cancel"]
DAILY = {"daily_budget_usd": 0.10}


class User:
    """The person behind an elicitation-capable client: answers each question as told, and remembers it."""

    def __init__(self, answer: Answer = "accept") -> None:
        self.answer: Answer = answer
        self.questions: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params.message)
        if self.answer == "accept":
            return ElicitResult(action="accept", content={"approve": True})
        return ElicitResult(action=self.answer)


@asynccontextmanager
async def one_song_spent(
    tmp_path: Path, mode: Mode, user: ElicitationFnT | None, settings: dict[str, Any] | None = None
) -> AsyncGenerator[Harness]:
    """A server with a budget (default: $0.10 a day) on which one song ($0.08, so its price is learned) is done."""
    options: dict[str, Any] = {"elicitation_callback": user} if user is not None else {}
    async with running(tmp_path, mode=mode, settings_options=settings or DAILY, **options) as harness:
        await harness.finished([await generate(harness)])
        yield harness


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_over_budget_a_client_without_elicitation_is_refused_with_the_facts_and_how_to_raise_it(
    tmp_path: Path, mode: Mode
) -> None:
    async with one_song_spent(tmp_path, mode, None) as harness:
        message = await harness.fail("suno_generate_music", {**SONG, "title": "Two"})
        submits = harness.sandbox.stats.submits
        listed = await harness.call("suno_list_tasks")
    assert submits == 1
    assert len(listed["tasks"]) == 1
    for fact in ("suno_generate_music", "learned price $0.08", "spent today $0.08", "$0.10 daily budget"):
        assert fact in message
    assert "Nothing was submitted" in message
    assert "CCAPI_SUNO_DAILY_BUDGET_USD" in message and "force does not lift a budget" in message


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_over_budget_the_user_is_asked_one_question_and_an_accepted_call_is_submitted(
    tmp_path: Path, mode: Mode
) -> None:
    user = User("accept")
    async with one_song_spent(tmp_path, mode, user) as harness:
        submitted = await harness.call("suno_generate_music", {**SONG, "title": "Two"})
        submits = harness.sandbox.stats.accepted_submits
        used = await harness.call("suno_get_usage")
    [question] = user.questions
    for fact in ("suno_generate_music", "learned price $0.08", "spent today $0.08", "$0.10 daily budget"):
        assert fact in question
    assert submitted["task_id"].startswith("task_") and "Learned price $0.08" in submitted["note"]
    assert submits == 2
    assert used["today"]["quota"] == 80000  # the approved call counts at its learned price while in flight


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", ["decline", "cancel"])
async def test_over_budget_a_declined_or_cancelled_question_sends_nothing_and_the_result_says_so(
    tmp_path: Path, mode: Mode, answer: Answer
) -> None:
    user = User(answer)
    async with one_song_spent(tmp_path, mode, user) as harness:
        message = await harness.fail("suno_generate_music", {**SONG, "title": "Two"})
        submits = harness.sandbox.stats.submits
        listed = await harness.call("suno_list_tasks")
    assert len(user.questions) == 1
    assert submits == 1 and len(listed["tasks"]) == 1
    assert ("declined" if answer == "decline" else "dismissed") in message
    assert "Nothing was sent or billed" in message and "learned price $0.08" in message


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_force_never_lifts_a_budget(tmp_path: Path, mode: Mode) -> None:
    async with one_song_spent(tmp_path / "without", mode, None) as harness:
        refused = await harness.fail("suno_generate_music", {**SONG, "title": "Two", "force": True})
        refused_submits = harness.sandbox.stats.submits
    user = User("decline")
    async with one_song_spent(tmp_path / "with", mode, user) as harness:
        declined = await harness.fail("suno_generate_music", {**SONG, "title": "Two", "force": True})
        declined_submits = harness.sandbox.stats.submits
    assert refused_submits == declined_submits == 1
    assert "Over budget" in refused and "force does not lift a budget" in refused
    assert len(user.questions) == 1 and "declined" in declined


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_duplicate_over_budget_returns_the_first_task_without_asking(tmp_path: Path, mode: Mode) -> None:
    user = User("decline")
    async with running(tmp_path, mode=mode, settings_options=DAILY, elicitation_callback=user) as harness:
        first = await harness.call("suno_generate_music", SONG)
        await harness.finished([first["task_id"]])
        again = await harness.call("suno_generate_music", SONG)  # identical: nothing to pay
    assert user.questions == []
    assert again["reused_existing"] and again["task_id"] == first["task_id"]


@pytest.mark.anyio
async def test_a_monthly_budget_is_named_with_its_variable(tmp_path: Path) -> None:
    async with one_song_spent(tmp_path, "auto", None, {"monthly_budget_usd": 0.12}) as harness:
        message = await harness.fail("suno_generate_music", {**SONG, "title": "Two"})
    assert "spent this month $0.08 of the $0.12 monthly budget" in message
    assert "CCAPI_SUNO_MONTHLY_BUDGET_USD" in message


@pytest.mark.anyio
async def test_a_budget_of_zero_asks_before_the_first_call_even_at_an_unknown_price(tmp_path: Path) -> None:
    user = User("decline")
    async with running(tmp_path, settings_options={"daily_budget_usd": 0.0}, elicitation_callback=user) as harness:
        message = await harness.fail("suno_generate_music", SONG)
        submits = harness.sandbox.stats.submits
    assert submits == 0
    assert "price not known yet" in user.questions[0] and "declined" in message


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_confirm_always_asks_before_every_billable_call(tmp_path: Path, mode: Mode) -> None:
    user = User("decline")
    async with running(
        tmp_path, mode=mode, settings_options={"confirm": "always"}, elicitation_callback=user
    ) as harness:
        declined = await harness.fail("suno_generate_music", SONG)
        user.answer = "accept"
        first = await harness.call("suno_generate_music", SONG)
        reused = await harness.call("suno_generate_music", SONG)  # a duplicate bills nothing: no question
        await harness.finished([first["task_id"]])
        second = await harness.call("suno_generate_lyrics", {"prompt": "rain"})
        free = await harness.call("suno_list_tasks")
        submits = harness.sandbox.stats.accepted_submits
    assert "declined" in declined
    assert len(user.questions) == 3  # the declined call, the first song, the lyrics; not the duplicate nor the list
    assert "price not known yet" in user.questions[0] and "CCAPI_SUNO_CONFIRM=always" in user.questions[0]
    assert reused["reused_existing"] and second["task_id"].startswith("task_")
    assert submits == 2 and len(free["tasks"]) == 2


@pytest.mark.anyio
async def test_confirm_always_refuses_a_client_that_cannot_ask(tmp_path: Path) -> None:
    async with running(tmp_path, settings_options={"confirm": "always"}) as harness:
        message = await harness.fail("suno_generate_music", SONG)
        submits = harness.sandbox.stats.submits
    assert submits == 0
    assert "CCAPI_SUNO_CONFIRM=over_budget" in message and "Nothing was sent" in message


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_concurrent_calls_cannot_both_slip_under_a_budget(tmp_path: Path, mode: Mode) -> None:
    messages: list[str] = []
    results: list[dict[str, Any]] = []
    # $0.08 spent and a $0.20 budget: room for exactly one more song at its learned price of $0.08.
    async with one_song_spent(tmp_path, mode, None, {"daily_budget_usd": 0.20}) as harness:

        async def call(index: int) -> None:
            result = await harness.client.call_tool("suno_generate_music", {**SONG, "title": f"Song {index}"})
            (messages.append(text_of(result)) if result.is_error else results.append(result.structured_content or {}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for index in range(6):
                    tasks.start_soon(call, index)
        submits = harness.sandbox.stats.accepted_submits
        used = await harness.call("suno_get_usage")
    assert submits == 2 and len(results) == 1 and len(messages) == 5
    assert all("Over budget" in message and "Nothing was submitted" in message for message in messages)
    assert used["today"]["quota"] == 80000


@pytest.mark.anyio
async def test_a_new_local_day_starts_a_new_daily_budget_but_not_a_new_month(tmp_path: Path) -> None:
    zone = timezone(timedelta(hours=13))  # far from UTC, so only local days explain what happens
    now = [datetime(2026, 3, 14, 23, 50, tzinfo=zone).timestamp()]
    clock = lambda: now[0]  # noqa: E731 - the one clock the ledger and the calendar share
    async with await SQLiteLedger.open(tmp_path / "ledger.sqlite3", clock=clock) as ledger:
        server = {"ledger": ledger, "calendar": Calendar(now=clock, zone=zone)}
        async with running(tmp_path, settings_options=DAILY, server_options=server) as harness:
            await harness.finished([await generate(harness)])
            late = await harness.fail("suno_generate_music", {**SONG, "title": "Two"})
            now[0] += 15 * 60  # 00:05 on the 15th, local time (still the 14th in UTC)
            submitted = await harness.call("suno_generate_music", {**SONG, "title": "Two"})
            used = await harness.call("suno_get_usage")
    assert "Over budget" in late
    assert submitted["task_id"].startswith("task_")
    assert list(used["by_day"]) == ["2026-03-15", "2026-03-14"]
    assert (used["today"]["quota"], used["week"]["quota"], used["month"]["quota"]) == (40000, 80000, 80000)


@pytest.mark.anyio
async def test_a_question_the_user_takes_long_to_answer_is_not_cut_off_by_the_call_deadline(tmp_path: Path) -> None:
    async def slow_user(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        # The user thinks longer than a whole call may take (the call deadline plus its grace: 2.5 s here). The
        # passing time is what is tested, so it is real time, not a wait for something.
        await anyio.sleep(3.0)
        return ElicitResult(action="accept", content={"approve": True})

    settings = {**DAILY, "call_deadline": 0.5}
    async with one_song_spent(tmp_path, "legacy", slow_user, settings) as harness:
        submitted = await harness.call("suno_generate_music", {**SONG, "title": "Two"})
    assert submitted["task_id"].startswith("task_")
