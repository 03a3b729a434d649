"""Spend: the settings of budgets and prices, days in local time, learned prices, usage and its text."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import TextResourceContents

from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.settings import Settings, SettingsError
from ccapi_suno_mcp.spend import Calendar, dollars, learned_price
from harness import MODES, Mode, running, text_of
from test_server import SONG, generate

USAGE = "suno://usage"


def test_budgets_default_to_no_limit_with_new_apis_quota_unit_and_asking_only_over_budget() -> None:
    settings = Settings.from_env({})
    assert (settings.daily_budget_usd, settings.monthly_budget_usd) == (None, None)
    assert (settings.quota_per_usd, settings.confirm) == (500_000, "over_budget")


def test_budget_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CCAPI_SUNO_DAILY_BUDGET_USD": "0.10",
            "CCAPI_SUNO_MONTHLY_BUDGET_USD": " 5 ",
            "CCAPI_QUOTA_PER_USD": "1000000.0",
            "CCAPI_SUNO_CONFIRM": "Always",
        }
    )
    assert (settings.daily_budget_usd, settings.monthly_budget_usd) == (0.10, 5.0)
    assert (settings.quota_per_usd, settings.confirm) == (1_000_000, "always")
    assert Settings.from_env({"CCAPI_SUNO_DAILY_BUDGET_USD": "0"}).daily_budget_usd == 0.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CCAPI_SUNO_DAILY_BUDGET_USD", "ten dollars"),
        ("CCAPI_SUNO_DAILY_BUDGET_USD", "-1"),
        ("CCAPI_SUNO_MONTHLY_BUDGET_USD", "nan"),
        ("CCAPI_SUNO_MONTHLY_BUDGET_USD", "inf"),
        ("CCAPI_QUOTA_PER_USD", "0"),
        ("CCAPI_QUOTA_PER_USD", "2.5"),
        ("CCAPI_QUOTA_PER_USD", "many"),
        ("CCAPI_SUNO_CONFIRM", "sometimes"),
    ],
)
def test_an_unusable_budget_setting_is_refused_at_start_up_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


# --- days in local time, prices, money ----------------------------------------------------------------------

PLUS_13 = timezone(timedelta(hours=13))


def test_days_weeks_and_months_begin_at_local_midnight_in_the_calendars_zone() -> None:
    at = datetime(2026, 3, 15, 0, 30, tzinfo=PLUS_13)  # a Sunday, half an hour into the day (still the 14th in UTC)
    periods = Calendar(zone=PLUS_13).periods(at.timestamp())
    assert periods.today == "2026-03-15"
    assert periods.day == datetime(2026, 3, 15, tzinfo=PLUS_13).timestamp()
    assert periods.week == datetime(2026, 3, 9, tzinfo=PLUS_13).timestamp()  # the Monday before
    assert periods.month == datetime(2026, 3, 1, tzinfo=PLUS_13).timestamp()


def test_the_machines_local_zone_is_the_default_with_its_daylight_saving_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # Central Europe, as a POSIX rule (no tz database needed)
    time.tzset()
    try:
        noon = datetime(2026, 3, 29, 10, 0, tzinfo=UTC).timestamp()  # the day clocks go forward: 12:00 CEST
        periods = Calendar().periods(noon)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert periods.today == "2026-03-29"
    assert periods.day == datetime(2026, 3, 28, 23, 0, tzinfo=UTC).timestamp()  # midnight was still CET (+1)
    assert periods.month == datetime(2026, 2, 28, 23, 0, tzinfo=UTC).timestamp()


def test_the_calendar_reads_its_injected_clock() -> None:
    now = datetime(2026, 12, 31, 23, 59, tzinfo=PLUS_13).timestamp()
    assert Calendar(now=lambda: now, zone=PLUS_13).periods().today == "2026-12-31"
    assert Calendar(now=lambda: now + 120, zone=PLUS_13).periods().today == "2027-01-01"


def test_the_learned_price_is_the_median_of_the_last_charges_and_unknown_before_the_first() -> None:
    assert learned_price([]) is None
    assert learned_price([40000]) == 40000
    assert learned_price([40000, 10000, 45000]) == 40000
    assert learned_price([30000, 50000]) == 40000


def test_dollars_are_shown_in_cents_and_in_fractions_of_a_cent_when_there_are_any() -> None:
    assert [dollars(amount) for amount in (0, 0.08, 0.1, 12.5, 0.005, 0.0125, 0.085, 1 / 3)] == [
        "$0.00", "$0.08", "$0.10", "$12.50", "$0.005", "$0.0125", "$0.085", "$0.3333",
    ]  # fmt: skip


# --- the usage tool and resource --------------------------------------------------------------------------


def assert_spend(spend: dict[str, Any], *, quota: int, tasks: int, failed: int = 0, in_flight: int = 0) -> None:
    assert spend == {
        "quota": quota, "usd": quota / 500_000, "tasks": tasks, "failed": failed, "refunded": failed,
        "in_flight": in_flight,
    }  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_usage_shows_what_finished_failed_and_refunded_tasks_cost(tmp_path: Path, mode: Mode) -> None:
    async with running(tmp_path, mode=mode) as harness:
        song = await generate(harness)
        failing = await generate(harness, description="a song that will sandbox:fail")
        lyrics = (await harness.call("suno_generate_lyrics", {"prompt": "rain on the roof"}))["task_id"]
        await harness.finished([song, failing, lyrics])
        used = await harness.call("suno_get_usage")
        text = text_of(await harness.client.call_tool("suno_get_usage", {}))
        resource = await harness.client.read_resource("suno://usage")
    for period in ("today", "week", "month", "total"):
        assert_spend(used[period], quota=40000 + 2500, tasks=3, failed=1)
    assert set(used["by_action"]) == {"suno_generate_music", "suno_generate_lyrics"}
    assert_spend(used["by_action"]["suno_generate_music"], quota=40000, tasks=2, failed=1)
    assert_spend(used["by_action"]["suno_generate_lyrics"], quota=2500, tasks=1)
    [(day, spend)] = used["by_day"].items()
    assert day == date.today().isoformat() and spend == used["today"]
    prices = used["prices_usd"]
    assert (prices["suno_generate_music"], prices["suno_generate_lyrics"]) == (0.08, 0.005)
    assert set(prices) == {spec.tool for spec in ACTIONS if spec.enabled and spec.billable}
    assert [tool for tool, price in prices.items() if price is None] == sorted(
        set(prices) - {"suno_generate_music", "suno_generate_lyrics"}, key=list(prices).index
    )
    assert (used["daily_budget_usd"], used["monthly_budget_usd"], used["confirm"]) == (None, None, "over_budget")
    assert used["quota_per_usd"] == 500_000
    assert "Spent today $0.085 (3 tasks, 1 failed (1 refunded))" in text
    assert "not known yet for 20 other action(s)" in text
    [content] = resource.contents
    assert isinstance(content, TextResourceContents)
    assert json.loads(content.text) == used


@pytest.mark.anyio
async def test_usage_counts_a_call_in_flight_at_what_ccapi_pre_charged(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness)
        await harness.call("suno_get_task", {"task_id": task_id})  # CCAPI's record now reports its quota
        used = await harness.call("suno_get_usage")
    assert_spend(used["today"], quota=40000, tasks=1, in_flight=1)


@pytest.mark.anyio
async def test_usage_needs_no_key_and_no_ccapi(tmp_path: Path) -> None:
    async with running(tmp_path, api_key=None) as harness:
        used = await harness.call("suno_get_usage")
        requests = harness.sandbox.stats.requests
    assert requests == 0
    assert_spend(used["total"], quota=0, tasks=0)
    assert used["by_action"] == {} and used["by_day"] == {}


@pytest.mark.anyio
async def test_every_submitted_result_states_the_learned_price_or_that_it_is_not_known_yet(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        first = await harness.call("suno_generate_music", SONG)
        await harness.finished([first["task_id"]])
        second = await harness.call("suno_generate_music", {**SONG, "title": "Two"})
        again = await harness.call("suno_generate_music", {**SONG, "title": "Two"})
    assert "Price not known yet" in first["note"]
    assert "Learned price $0.08" in second["note"]
    assert again["reused_existing"] and "Learned price $0.08." in again["note"]


@pytest.mark.anyio
async def test_the_balance_shows_todays_spend_beside_it(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        before = await harness.call("suno_get_balance")
        await harness.finished([await generate(harness)])
        after = await harness.call("suno_get_balance")
    assert before["spent_today_usd"] == 0.0
    assert after["spent_today_usd"] == 0.08
    assert after["note"] == "$9.92 left ($0.08 used); $0.08 spent today through this server."


@pytest.mark.anyio
async def test_a_2025_era_subscriber_hears_the_usage_change_when_a_task_is_submitted_and_settles(
    tmp_path: Path,
) -> None:
    heard: list[str] = []
    settled = anyio.Event()

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated" and str(root.params.uri) == USAGE:
            heard.append(USAGE)
            if len(heard) >= 2:
                settled.set()

    async with running(tmp_path, mode="legacy", message_handler=on_message) as harness:
        with pytest.warns(MCPDeprecationWarning):  # the 2025-era way, which this client still speaks
            await harness.client.subscribe_resource(USAGE)  # pyright: ignore[reportDeprecated] - testing the 2025 way
        await generate(harness)
        assert heard == [USAGE]  # the call in flight, before its answer reached the client
        harness.clock.advance(60)
        with anyio.fail_after(10):
            await settled.wait()


@pytest.mark.anyio
async def test_a_2026_listener_hears_the_usage_change_when_a_task_settles(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        task_id = await generate(harness)
        async with harness.client.listen(resource_subscriptions=[USAGE]) as stream:
            harness.clock.advance(60)
            with anyio.fail_after(10):
                async for event in stream:
                    if str(getattr(event, "uri", "")) == USAGE:
                        break
        used = await harness.call("suno_get_usage")
    assert used["today"]["in_flight"] == 0, task_id
