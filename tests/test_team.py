"""A team's deployment, in one process: principals kept apart over HTTP, replicas on one PostgreSQL ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.types import ResourceTemplateReference, TextResourceContents

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.http import build_http_app
from ccapi_suno_mcp.ledger import PostgresLedger
from ccapi_suno_mcp.notifications import Notifier
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_asgi, serve_sandbox
from ccapi_suno_mcp.settings import Settings, SettingsError
from ccapi_suno_mcp.watcher import Watcher
from harness import KEY, MODES, Mode, call, text_of
from polling import eventually
from test_watcher import TASK, FlakyCCAPI

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
PRINCIPALS = {ALICE: "alice", BOB: "bob"}
NEVER_SUBMITTED = "task_" + "0" * 32


@asynccontextmanager
async def team_server(home: Path, **options: Any) -> AsyncGenerator[tuple[str, Sandbox, ManualClock]]:
    """The MCP server over HTTP with two principals' tokens, wired to a sandbox; yields its /mcp URL."""
    clock = ManualClock()
    sandbox = Sandbox(clock=clock)
    async with serve_sandbox(sandbox) as origin:
        settings = Settings(api_key=KEY, base_url=origin, home=home, principals=PRINCIPALS, **options)
        server = create_server(settings, poll_interval=0.02)
        app = build_http_app(server, host="127.0.0.1", port=0, token=settings.http_tokens)
        async with serve_asgi(app, lifespan="on") as mcp_origin:
            yield f"{mcp_origin}/mcp", sandbox, clock


@asynccontextmanager
async def as_principal(url: str, token: str, mode: Mode) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


async def refusal(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result
    return text_of(result)


async def unreadable(client: Client, uri: str) -> str:
    with pytest.raises(MCPError) as raised:
        await client.read_resource(uri)
    return str(raised.value)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_two_principals_over_http_each_see_only_their_own_tasks(tmp_path: Path, mode: Mode) -> None:
    async with (
        team_server(tmp_path) as (url, sandbox, clock),
        as_principal(url, ALICE, mode) as alice,
        as_principal(url, BOB, mode) as bob,
    ):
        hers = (await call(alice, "suno_generate_music", {"description": "rain on the roof"}))["task_id"]
        his = await call(bob, "suno_generate_music", {"description": "rain on the roof"})
        clock.advance(60)
        waited = await call(alice, "suno_wait_for_tasks", {"task_ids": [hers], "timeout_seconds": 20})
        her_clip = waited["tasks"][0]["clips"][0]["clip_id"]
        listed = {
            name: [task["task_id"] for task in (await call(client, "suno_list_tasks", {}))["tasks"]]
            for name, client in (("alice", alice), ("bob", bob))
        }
        foreign = await refusal(bob, "suno_get_task", {"task_id": hers})
        unknown = await refusal(bob, "suno_get_task", {"task_id": NEVER_SUBMITTED})
        foreign_batch = await refusal(bob, "suno_wait_for_tasks", {"task_ids": [hers], "timeout_seconds": 1})
        unknown_batch = await refusal(bob, "suno_wait_for_tasks", {"task_ids": [NEVER_SUBMITTED], "timeout_seconds": 1})
        foreign_resource = await unreadable(bob, f"suno://tasks/{hers}")
        unknown_resource = await unreadable(bob, f"suno://tasks/{NEVER_SUBMITTED}")
        foreign_clip = await unreadable(bob, f"suno://clips/{her_clip}")
        submits_before = sandbox.stats.accepted_submits
        extend = await refusal(bob, "suno_extend_music", {"clip_id": her_clip, "task_id": hers, "continue_at": 30})
        download = await refusal(bob, "suno_download", {"clip_id": her_clip})
        submits_after = sandbox.stats.accepted_submits
        completed = await bob.complete(
            ResourceTemplateReference(type="ref/resource", uri="suno://tasks/{task_id}"),
            {"name": "task_id", "value": "task_"},
        )
        bob_resources = {str(resource.uri) for resource in (await bob.list_resources()).resources}
        [recent] = (await bob.read_resource("suno://tasks/recent")).contents
        saved = await call(alice, "suno_download", {"clip_id": her_clip})

    # the same request from two people is two tasks (each their own), never one shown to both
    assert his["reused_existing"] is False and his["task_id"] != hers
    assert listed == {"alice": [hers], "bob": [his["task_id"]]}
    # another principal's task answers exactly as an id nobody ever submitted
    assert foreign.replace(hers, "<id>") == unknown.replace(NEVER_SUBMITTED, "<id>")
    assert foreign_batch.replace(hers, "<id>") == unknown_batch.replace(NEVER_SUBMITTED, "<id>")
    assert foreign_resource.replace(hers, "<id>") == unknown_resource.replace(NEVER_SUBMITTED, "<id>")
    assert foreign_clip == f"no clip {her_clip} in the ledger"
    assert f"Unknown clip {her_clip}" in extend and "Nothing was submitted" in extend
    assert f"Unknown clip {her_clip}" in download
    assert submits_after == submits_before
    assert completed.completion.values == [his["task_id"]]
    assert f"suno://tasks/{hers}" not in bob_resources and f"suno://tasks/{his['task_id']}" in bob_resources
    assert isinstance(recent, TextResourceContents)
    assert [task["task_id"] for task in json.loads(recent.text)] == [his["task_id"]]
    # each principal's files go to a folder of its own
    assert Path(saved["path"]).parent == tmp_path / "downloads" / "alice"


@pytest.mark.anyio
async def test_a_principals_own_budget_counts_its_own_calls_only_and_names_where_to_raise_it(tmp_path: Path) -> None:
    async with (
        team_server(tmp_path, principal_budgets={"bob": (0.01, None)}) as (url, sandbox, clock),
        as_principal(url, ALICE, "auto") as alice,
        as_principal(url, BOB, "auto") as bob,
    ):
        first = (await call(bob, "suno_generate_music", {"description": "bob's first song"}))["task_id"]
        clock.advance(60)
        await call(bob, "suno_wait_for_tasks", {"task_ids": [first], "timeout_seconds": 20})  # settled: charged
        refused = await refusal(bob, "suno_generate_music", {"description": "bob's second song"})
        hers = await call(alice, "suno_generate_music", {"description": "alice has no budget of her own"})
        submits = sandbox.stats.accepted_submits

    assert "Over budget: suno_generate_music (MUSIC, learned price $0.08)" in refused
    assert "past your own $0.01 daily budget (you spent today $0.08 of your own $0.01 daily budget" in refused
    assert "Nothing was submitted" in refused
    assert "raising bob's daily_budget_usd in the tokens file (CCAPI_SUNO_HTTP_TOKENS_FILE)" in refused
    assert hers["task_id"].startswith("task_")
    assert submits == 2  # bob's first and alice's: bob's second was never sent


@pytest.mark.anyio
async def test_usage_shows_each_budget_against_what_it_counts_the_servers_everyones_ones_own_the_callers(
    tmp_path: Path,
) -> None:
    async with (
        team_server(tmp_path, daily_budget_usd=1.0, principal_budgets={"bob": (0.5, None)}) as (url, _, clock),
        as_principal(url, ALICE, "auto") as alice,
        as_principal(url, BOB, "auto") as bob,
    ):
        songs = [
            (await call(alice, "suno_generate_music", {"description": "alice's song"}))["task_id"],
            (await call(alice, "suno_generate_music", {"description": "alice's other song"}))["task_id"],
        ]
        mine = (await call(bob, "suno_generate_music", {"description": "bob's song"}))["task_id"]
        clock.advance(60)
        await call(alice, "suno_wait_for_tasks", {"task_ids": songs, "timeout_seconds": 20})
        await call(bob, "suno_wait_for_tasks", {"task_ids": [mine], "timeout_seconds": 20})
        bobs = await bob.call_tool("suno_get_usage", {})
        alices = await call(alice, "suno_get_usage", {})

    assert bobs.structured_content is not None
    assert bobs.structured_content["today"]["usd"] == pytest.approx(0.08)  # his spend is his own
    assert bobs.structured_content["budgets"] == [
        {"name": "daily", "whose": "server", "limit_usd": 1.0, "spent_usd": 0.24, "left_usd": 0.76},  # everyone's
        {"name": "daily", "whose": "own", "limit_usd": 0.5, "spent_usd": 0.08, "left_usd": 0.42},
    ]
    assert "Budgets: daily $1.00 ($0.76 left); your own daily $0.50 ($0.42 left)." in text_of(bobs)
    assert alices["budgets"] == [
        {"name": "daily", "whose": "server", "limit_usd": 1.0, "spent_usd": 0.24, "left_usd": 0.76}
    ]


@pytest.mark.anyio
async def test_a_token_not_in_the_tokens_file_is_refused(tmp_path: Path) -> None:
    async with team_server(tmp_path) as (url, sandbox, _), httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"authorization": f"Bearer {ALICE}x", "accept": "application/json, text/event-stream"},
        )
        requests = sandbox.stats.requests
    assert (response.status_code, requests) == (401, 0)
    assert response.json()["error_description"] == (
        "wrong bearer token: send Authorization: Bearer <your token from the server's tokens file>"
    )


@asynccontextmanager
async def replica(url: str, origin: str, home: Path) -> AsyncGenerator[Client]:
    """One replica of a team's deployment: a server of its own on the shared PostgreSQL ledger."""
    settings = Settings(api_key=KEY, base_url=origin, home=home, ledger_url=url)
    async with Client(create_server(settings, poll_interval=0.05)) as client:
        yield client


@pytest.mark.anyio
async def test_a_client_of_one_replica_hears_of_and_waits_for_a_task_submitted_through_another(
    tmp_path: Path, postgres_url: str
) -> None:
    clock = ManualClock()
    async with (
        serve_sandbox(Sandbox(clock=clock)) as origin,
        replica(postgres_url, origin, tmp_path / "a") as first,
        replica(postgres_url, origin, tmp_path / "b") as second,
    ):
        async with second.listen(resources_list_changed=True) as stream:
            submitted = await call(first, "suno_generate_music", {"description": "across replicas"})
            with anyio.fail_after(10):
                async for event in stream:
                    if type(event).__name__ == "ResourcesListChanged":
                        break
        listed = await call(second, "suno_list_tasks", {})
        clock.advance(60)
        waited = await call(second, "suno_wait_for_tasks", {"task_ids": [submitted["task_id"]], "timeout_seconds": 20})
        again = await call(second, "suno_generate_music", {"description": "across replicas"})

    assert [task["task_id"] for task in listed["tasks"]] == [submitted["task_id"]]
    assert waited["all_done"] is True
    assert (again["task_id"], again["reused_existing"]) == (submitted["task_id"], True)


@pytest.mark.anyio
async def test_only_the_leading_replicas_watcher_polls_and_the_next_takes_over(postgres_url: str) -> None:
    ccapi = FlakyCCAPI()
    ccapi.failing = False
    first = await PostgresLedger.open(postgres_url, owner="replica-a:1:x")
    async with (
        await PostgresLedger.open(postgres_url, owner="replica-b:1:x") as second,
        httpx2.AsyncClient(transport=httpx2.MockTransport(ccapi)) as http,
    ):
        client = SunoClient(api_key="sk-x", base_url="https://ccapi.test", http_client=http)
        record = await first.begin_submission(tool="suno_generate_music", action="MUSIC", body={"prompt": "a"})
        await first.record_task_id(record.submission_id, TASK)
        watchers = [
            Watcher(client, ledger, Notifier(InMemorySubscriptionBus()), interval=1.0) for ledger in (first, second)
        ]

        polled = [await watchers[0].poll_once(), await watchers[1].poll_once()]
        requests_while_first_leads = ccapi.requests
        await first.aclose()  # the leading replica goes

        async def second_leads() -> bool:
            await watchers[1].poll_once()
            return watchers[1].leading

        await eventually(second_leads, within=10)  # takes over once the server has ended the leader's session

    assert polled == [1.0, 1.0]
    assert (requests_while_first_leads, [watcher.leading for watcher in watchers]) == (1, [True, True])
    assert ccapi.requests == 2


def test_a_tokens_file_names_each_principal_and_its_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    bob = {"token": BOB, "daily_budget_usd": 2, "monthly_budget_usd": 20.5}
    path.write_text(json.dumps({"alice": {"token": ALICE}, "bob": bob}), encoding="utf-8")

    settings = Settings.from_env(
        {
            "CCAPI_SUNO_HTTP_TOKENS_FILE": str(path),
            "CCAPI_SUNO_HTTP_TOKEN": "the-single-users-token-0123",
            "CCAPI_SUNO_LEDGER_URL": "postgresql://ccapi:s3cret-pw@db.internal:5432/ccapi_suno",
            "CCAPI_API_KEY": KEY,
        }
    )

    assert settings.http_tokens == {ALICE: "alice", BOB: "bob", "the-single-users-token-0123": "default"}
    assert settings.principal_budgets == {"bob": (2.0, 20.5)}
    assert settings.isolated
    assert set(settings.secrets) == {KEY, ALICE, BOB, "the-single-users-token-0123", "s3cret-pw"}
    assert "s3cret" not in repr(settings) and ALICE not in repr(settings)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[]", "must be a JSON object of principals"),
        ("{not json", "is not JSON"),
        ('{"alice": {"token": "short"}}', 'alice needs a "token" of at least 16 characters'),
        ('{"al ice": {"token": "0123456789abcdef"}}', "'al ice' is not a principal name"),
        ('{"alice": {"token": "0123456789abcdef", "budget": 5}}', "alice has unknown field(s) budget"),
        ('{"alice": {"token": "0123456789abcdef", "daily_budget_usd": -1}}', "alice's daily_budget_usd must be 0"),
        ('{"alice": {"token": "0123456789abcdef", "monthly_budget_usd": "5"}}', "monthly_budget_usd must be"),
        (
            '{"alice": {"token": "0123456789abcdef"}, "bob": {"token": "0123456789abcdef"}}',
            "bob has the same token as alice",
        ),
    ],
)
def test_a_tokens_file_that_cannot_be_used_is_refused_naming_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(SettingsError, match="CCAPI_SUNO_HTTP_TOKENS_FILE") as raised:
        Settings.from_env({"CCAPI_SUNO_HTTP_TOKENS_FILE": str(path)})
    assert problem in str(raised.value)


def test_a_ledger_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(SettingsError, match="CCAPI_SUNO_LEDGER_URL must be a PostgreSQL URL"):
        Settings.from_env({"CCAPI_SUNO_LEDGER_URL": "mysql://db/ledger"})


@pytest.mark.anyio
async def test_doctor_checks_a_postgresql_ledger_and_says_when_it_cannot_be_reached(postgres_url: str) -> None:
    import io

    from ccapi_suno_mcp.doctor import run_doctor
    from processes import free_port

    async def ledger_line(url: str) -> str:
        out = io.StringIO()
        await run_doctor({"CCAPI_SUNO_LEDGER_URL": url}, out=out)
        [line] = [line for line in out.getvalue().splitlines() if " ledger" in line[:12]]
        return line

    good = await ledger_line(postgres_url.replace("postgres@", "postgres:hunter2@"))
    away = await ledger_line(f"postgresql://ccapi:hunter2@127.0.0.1:{free_port()}/ccapi_suno")

    assert good.startswith("ok") and "PostgreSQL, shared by the replicas" in good
    assert away.startswith("FAIL") and "cannot be reached" in away
    assert "hunter2" not in good + away


@pytest.mark.anyio
async def test_a_tool_call_on_an_unreachable_postgresql_ledger_says_what_to_check(tmp_path: Path) -> None:
    from processes import free_port

    url = f"postgresql://ccapi:hunter2@127.0.0.1:{free_port()}/ccapi_suno"
    settings = Settings(api_key=KEY, home=tmp_path, ledger_url=url)
    async with Client(create_server(settings)) as client:
        listed = await client.call_tool("suno_list_tasks", {})

    assert listed.is_error
    assert "cannot be reached" in text_of(listed) and "CCAPI_SUNO_LEDGER_URL" in text_of(listed)
    assert "hunter2" not in text_of(listed)


@pytest.mark.anyio
async def test_without_the_postgres_extra_a_postgresql_ledger_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    from ccapi_suno_mcp.ledger import LedgerUnavailableError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets without the extra
    ledger = PostgresLedger(postgres_url)
    with pytest.raises(LedgerUnavailableError, match=r"install ccapi-suno-mcp\[postgres\]"):
        await ledger.count_tasks()
    await ledger.aclose()


def test_the_sqlite_default_never_imports_psycopg(tmp_path: Path) -> None:
    script = (
        "import pathlib, sys, anyio\n"
        "from mcp import Client\n"
        "from ccapi_suno_mcp.app import create_server\n"
        "from ccapi_suno_mcp.settings import Settings\n"
        "async def main():\n"
        "    async with Client(create_server(Settings(home=pathlib.Path(sys.argv[1])))) as client:\n"
        "        listed = await client.call_tool('suno_list_tasks', {})\n"
        "        assert not listed.is_error, listed\n"
        "anyio.run(main)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('psycopg', 'psycopg_pool')))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
