"""Principal isolation tried from outside, as a curious second user would: bob, holding alice's task and clip ids,
against a real server process over streamable HTTP with a tokens file, on the PostgreSQL ledger a team runs and on
the SQLite ledger a tokens file may also be used with.

Every answer bob gets about one of alice's ids must be byte for byte the answer about an id nobody ever submitted,
and must never send anything to CCAPI (the sandbox counts every submit it receives)."""

from __future__ import annotations

import base64
import itertools
import json
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPDeprecationWarning, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import PromptReference, ResourceTemplateReference, TextResourceContents

from harness import call, text_of
from polling import eventually
from postgres import PostgresCluster
from processes import Replica, control, free_port, http_replica, sandbox_process

ALICE = "alice-isolation-token-0123456789"
BOB = "bob-isolation-token-0123456789ab"
# Listeners who never submitted anything before they listen: whatever they hear first, someone else caused.
LISTENERS = {
    "2025": ("carol", "carol-isolation-token-0123456789"),
    "2026": ("dave", "dave-isolation-token-0123456789a"),
}
NEVER_TASK = "task_" + "Z" * 32
NEVER_CLIP = "00000000-0000-4000-8000-000000000000"
CALLS = itertools.count()


@dataclass
class Deployment:
    """One server process with two principals, and what each of them made before bob starts prying."""

    origin: str
    replica: Replica
    home: Path
    tokens: Path
    her_task: str
    her_clip: str
    her_export: str
    her_file: Path
    his_task: str
    his_clip: str


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(url: str, token: str, **options: Any) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), **options) as client,
    ):
        yield client


async def finished_song(client: Client, description: str) -> tuple[str, str]:
    task_id = (await call(client, "suno_generate_music", {"description": description}))["task_id"]
    return task_id, (await finished(client, task_id))["clips"][0]["clip_id"]


async def finished(client: Client, task_id: str) -> dict[str, Any]:
    waited = await call(client, "suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 30})
    assert waited["all_done"], waited
    return waited["tasks"][0]


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncGenerator[Deployment]:
    folder = tmp_path_factory.mktemp(f"isolation-{request.param}")
    tokens = folder / "tokens.json"
    principals = {"alice": ALICE, "bob": BOB, **dict(LISTENERS.values())}
    tokens.write_text(json.dumps({name: {"token": token} for name, token in principals.items()}), encoding="utf-8")
    env = {"CCAPI_SUNO_HTTP_TOKENS_FILE": str(tokens)}
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        env["CCAPI_SUNO_LEDGER_URL"] = cluster.create_database()
    with anyio.fail_after(120):
        async with sandbox_process("--speed", "100") as origin, http_replica(folder / "home", origin, env) as replica:
            async with connect(replica.url, ALICE) as alice, connect(replica.url, BOB) as bob:
                her_task, her_clip = await finished_song(alice, "alice's private song")
                export = await call(alice, "suno_export_wav", {"clip_id": her_clip})
                await finished(alice, export["task_id"])
                saved = await call(alice, "suno_download", {"clip_id": her_clip})
                his_task, his_clip = await finished_song(bob, "bob's own song")
            yield Deployment(
                origin, replica, folder / "home", tokens, her_task, her_clip, export["task_id"], Path(saved["path"]),
                his_task, his_clip,
            )  # fmt: skip


# -- every surface that takes an id: alice's answers as one never submitted, and nothing reaches CCAPI ---------------

Probe = Callable[[Client, Deployment, str, str], Awaitable[object]]
"""Bob's try at one surface with a task id and a clip id (alice's, or never submitted); returns what he sees."""


def tool(name: str, arguments: Callable[[Deployment, str, str], dict[str, Any]]) -> Probe:
    async def probe(client: Client, deployment: Deployment, task_id: str, clip_id: str) -> object:
        result = await client.call_tool(name, arguments(deployment, task_id, clip_id))
        seen = dict(result.structured_content or {})
        seen.pop("waited_seconds", None)  # how long a wait took is not an answer about the id
        return {"error": result.is_error, "text": text_of(result), "structured": seen}

    return probe


def resource(uri: str) -> Probe:
    async def probe(client: Client, deployment: Deployment, task_id: str, clip_id: str) -> object:
        try:
            contents = (await client.read_resource(uri.format(task_id=task_id, clip_id=clip_id))).contents
        except MCPError as error:
            return {"error": str(error)}
        return [item.text for item in contents if isinstance(item, TextResourceContents)]

    return probe


def completion(ref: PromptReference | ResourceTemplateReference, argument: str) -> Probe:
    async def probe(client: Client, deployment: Deployment, task_id: str, clip_id: str) -> object:
        value = task_id if argument == "task_id" else clip_id
        return (await client.complete(ref, {"name": argument, "value": value})).completion.values

    return probe


TASK_TEMPLATE = ResourceTemplateReference(type="ref/resource", uri="suno://tasks/{task_id}")
CLIP_TEMPLATE = ResourceTemplateReference(type="ref/resource", uri="suno://clips/{clip_id}")

SURFACES: dict[str, Probe] = {
    "suno_get_task": tool("suno_get_task", lambda d, t, c: {"task_id": t}),
    "suno_get_tasks alone": tool("suno_get_tasks", lambda d, t, c: {"task_ids": [t]}),
    "suno_get_tasks mixed with his own": tool("suno_get_tasks", lambda d, t, c: {"task_ids": [d.his_task, t]}),
    "suno_wait_for_tasks alone": tool("suno_wait_for_tasks", lambda d, t, c: {"task_ids": [t], "timeout_seconds": 1}),
    "suno_wait_for_tasks mixed with his own": tool(
        "suno_wait_for_tasks", lambda d, t, c: {"task_ids": [t, d.his_task], "timeout_seconds": 1}
    ),
    "suno_list_tasks text=task": tool("suno_list_tasks", lambda d, t, c: {"text": t}),
    "suno_list_tasks text=clip": tool("suno_list_tasks", lambda d, t, c: {"text": c}),
    "suno_download clip": tool("suno_download", lambda d, t, c: {"clip_id": c}),
    "suno_download wav of clip": tool("suno_download", lambda d, t, c: {"clip_id": c, "kind": "wav"}),
    "suno_download task": tool("suno_download", lambda d, t, c: {"task_id": t, "kind": "wav"}),
    "suno_extend_music": tool("suno_extend_music", lambda d, t, c: {"clip_id": c, "continue_at": 5}),
    "suno_extend_music with task_id": tool(
        "suno_extend_music", lambda d, t, c: {"clip_id": c, "task_id": t, "continue_at": 5}
    ),
    "suno_extend_music his clip, her task_id": tool(
        "suno_extend_music", lambda d, t, c: {"clip_id": d.his_clip, "task_id": t, "continue_at": 5}
    ),
    "suno_create_cover": tool("suno_create_cover", lambda d, t, c: {"clip_id": c, "tags": "polka"}),
    "suno_extract_stems": tool("suno_extract_stems", lambda d, t, c: {"clip_id": c}),
    "suno_export_wav": tool("suno_export_wav", lambda d, t, c: {"clip_id": c}),
    "suno_mashup_music": tool(
        "suno_mashup_music", lambda d, t, c: {"clip_ids": [d.his_clip, c], "description": "both of ours"}
    ),
    "suno_concatenate_music": tool("suno_concatenate_music", lambda d, t, c: {"clip_id": c}),
    "suno_generate_music extra naming her clip": tool(
        "suno_generate_music",
        lambda d, t, c: {
            "description": "an extension, smuggled",
            "extra": {"task": "extend", "continue_clip_id": c, "task_id": t, "continue_at": 5},
        },
    ),
    "suno_export_wav his clip, extra naming hers": tool(
        "suno_export_wav", lambda d, t, c: {"clip_id": d.his_clip, "extra": {"continue_clip_id": c}}
    ),
    "resource suno://tasks": resource("suno://tasks/{task_id}"),
    "resource suno://clips": resource("suno://clips/{clip_id}"),
    "completion task template": completion(TASK_TEMPLATE, "task_id"),
    "completion clip template": completion(CLIP_TEMPLATE, "clip_id"),
    "completion prompt clip argument": completion(PromptReference(type="ref/prompt", name="lengthen_song"), "clip_id"),
}


def neutral(seen: object, task_id: str, clip_id: str) -> str:
    """What bob saw, with the id he asked about written as a placeholder."""
    return json.dumps(seen, sort_keys=True).replace(task_id, "<task>").replace(clip_id, "<clip>")


@pytest.mark.anyio
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_another_principals_id_answers_byte_for_byte_as_one_never_submitted_and_reaches_no_one(
    deployment: Deployment, surface: str
) -> None:
    probe = SURFACES[surface]
    # the download-by-task surface asks about her WAV export, the others about her song
    her_task = deployment.her_export if surface == "suno_download task" else deployment.her_task
    async with connect(deployment.replica.url, BOB) as bob:
        before = (await control(deployment.origin, "stats"))["submits"]
        hers = await probe(bob, deployment, her_task, deployment.her_clip)
        never = await probe(bob, deployment, NEVER_TASK, NEVER_CLIP)
        after = (await control(deployment.origin, "stats"))["submits"]

    assert neutral(hers, her_task, deployment.her_clip) == neutral(never, NEVER_TASK, NEVER_CLIP)
    assert after == before  # neither id was sent to CCAPI: nothing billed


@pytest.mark.anyio
async def test_bob_lists_only_his_own_tasks_resources_and_spend(deployment: Deployment) -> None:
    async with connect(deployment.replica.url, BOB) as bob, connect(deployment.replica.url, ALICE) as alice:
        listed = [task["task_id"] for task in (await call(bob, "suno_list_tasks", {"limit": 100}))["tasks"]]
        resources = {str(item.uri) for item in (await bob.list_resources()).resources}
        [recent] = (await bob.read_resource("suno://tasks/recent")).contents
        usage = await call(bob, "suno_get_usage", {})
        [usage_resource] = (await bob.read_resource("suno://usage")).contents
        balance = await call(bob, "suno_get_balance", {})
        hers = [task["task_id"] for task in (await call(alice, "suno_list_tasks", {"limit": 100}))["tasks"]]
        her_usage = await call(alice, "suno_get_usage", {})

    assert deployment.his_task in listed and not {deployment.her_task, deployment.her_export} & set(listed)
    assert {deployment.her_task, deployment.her_export} <= set(hers) and not set(hers) & set(listed)
    assert {uri for uri in resources if uri.startswith("suno://tasks/task_")} <= {f"suno://tasks/{t}" for t in listed}
    assert isinstance(recent, TextResourceContents)
    assert [task["task_id"] for task in json.loads(recent.text)] == listed
    # spend is each one's own: every task of bob's is a song, and his usage counts those and no more
    assert (usage["total"]["tasks"], list(usage["by_action"])) == (len(listed), ["suno_generate_music"])
    assert her_usage["total"]["tasks"] == len(hers) and "suno_export_wav" in her_usage["by_action"]
    assert isinstance(usage_resource, TextResourceContents)
    assert json.loads(usage_resource.text)["total"] == usage["total"]
    assert balance["spent_today_usd"] == usage["today"]["usd"]
    assert deployment.her_file.parent == deployment.home / "downloads" / "alice"


@pytest.mark.anyio
async def test_a_cursor_alice_was_given_shows_bob_only_his_own_tasks(deployment: Deployment) -> None:
    async with connect(deployment.replica.url, ALICE) as alice, connect(deployment.replica.url, BOB) as bob:
        cursor = (await call(alice, "suno_list_tasks", {"limit": 1}))["next_cursor"]
        assert cursor is not None
        replayed = await bob.call_tool("suno_list_tasks", {"limit": 100, "cursor": cursor})

    seen = json.dumps(replayed.structured_content)
    assert deployment.her_task not in seen and deployment.her_export not in seen and deployment.her_clip not in seen


@pytest.mark.anyio
async def test_bobs_cursors_tell_nothing_of_how_much_alice_submitted(deployment: Deployment) -> None:
    async def bobs_cursor(bob: Client) -> list[int]:
        await call(bob, "suno_generate_music", {"description": f"bob counts, call {next(CALLS)}"})
        cursor = (await call(bob, "suno_list_tasks", {"limit": 1}))["next_cursor"]
        assert cursor is not None
        fields: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return [value for value in fields[1:] if isinstance(value, int)]  # what orders rows of one time

    async with connect(deployment.replica.url, ALICE) as alice, connect(deployment.replica.url, BOB) as bob:
        first = await bobs_cursor(bob)
        for number in range(3):
            await call(alice, "suno_generate_music", {"description": f"alice's busy day, call {next(CALLS)} {number}"})
        second = await bobs_cursor(bob)
        third = await bobs_cursor(bob)

    # one submit of bob's moves his cursor the same whether alice submitted three tasks meanwhile or none
    assert [b - a for a, b in zip(first, second, strict=True)] == [b - a for a, b in zip(second, third, strict=True)]


# -- notifications: no one hears of alice's tasks, even subscribed to their URIs -------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["2025", "2026"])
async def test_another_principal_hears_nothing_of_alices_tasks_even_subscribed_to_them(
    deployment: Deployment, era: str
) -> None:
    heard: list[str] = []
    alice_heard = anyio.Event()
    url = deployment.replica.url
    _, token = LISTENERS[era]

    def note(event: Any) -> None:
        root = getattr(event, "root", event)
        method = str(getattr(root, "method", None) or type(root).__name__)
        uri = getattr(getattr(root, "params", None), "uri", None) or getattr(root, "uri", None)
        if "list_changed" in method or "ListChanged" in method or uri is not None:
            heard.append(f"{method} {uri or ''}".strip())

    async def theirs(message: Any) -> None:
        note(message)

    async def alices(message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated":
            alice_heard.set()

    async with (
        connect(url, ALICE, mode="legacy", message_handler=alices) as alice,
        connect(url, token, mode="legacy" if era == "2025" else "auto", message_handler=theirs) as other,
        anyio.create_task_group() as tasks,
    ):
        hers = (await call(alice, "suno_generate_music", {"description": f"alice, overheard? {era}"}))["task_id"]
        watched = [f"suno://tasks/{hers}", "suno://tasks/recent", "suno://usage"]
        with pytest.warns(MCPDeprecationWarning):
            await alice.subscribe_resource(f"suno://tasks/{hers}")  # pyright: ignore[reportDeprecated]
        with pytest.warns(MCPDeprecationWarning):
            await alice.subscribe_resource("suno://tasks/recent")  # pyright: ignore[reportDeprecated]
        listening = anyio.Event()
        if era == "2025":
            await other.list_resources()  # a 2025-era client that listed resources hears of list changes
            for uri in watched:
                with pytest.warns(MCPDeprecationWarning):
                    await other.subscribe_resource(uri)  # pyright: ignore[reportDeprecated]
            listening.set()
        else:

            async def listen() -> None:
                async with other.listen(resources_list_changed=True, resource_subscriptions=watched) as stream:
                    listening.set()
                    async for event in stream:
                        note(event)

            tasks.start_soon(listen)
        await listening.wait()
        # At the sandbox's speed her first song may have finished before everyone listened: a second one, submitted
        # now, changes her task list (and later finishes) while they all listen.
        again = (await call(alice, "suno_generate_music", {"description": f"alice, again {era}"}))["task_id"]
        await finished(alice, hers)
        await finished(alice, again)
        with anyio.fail_after(10):
            await alice_heard.wait()  # the server has told her: had it told the other too, they would hear it now
        await call(other, "suno_list_tasks", {"limit": 1})  # a round trip after she was told
        overheard = list(heard)
        # and what the other does themselves they do hear (the listening works)
        own = (await call(other, "suno_generate_music", {"description": f"my own, heard {era}"}))["task_id"]
        await eventually(lambda: len(heard) > len(overheard), within=10)
        tasks.cancel_scope.cancel()
        assert overheard == [], overheard
        assert own != hers


# -- the tokens file -----------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("authorization", [None, "Bearer not-anyones-token-0123456789", f"Basic {ALICE}", BOB])
async def test_a_missing_or_wrong_token_is_refused_with_401_naming_no_one(
    deployment: Deployment, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(deployment.replica.url, json=body, headers=headers)
    assert response.status_code == 401
    assert "alice" not in response.text and "bob" not in response.text and ALICE not in response.text


@pytest.mark.anyio
async def test_two_principals_with_one_token_stop_the_server_at_start_saying_so(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"alice": {"token": ALICE}, "bob": {"token": ALICE}}), encoding="utf-8")
    env = {"CCAPI_SUNO_HTTP_TOKENS_FILE": str(tokens), "CCAPI_API_KEY": "sk-x", "CCAPI_SUNO_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "ccapi_suno_mcp", "--transport", "http", "--port", str(free_port())]
    with anyio.fail_after(30):
        done = await anyio.run_process(command, env={**_clean_environment(), **env}, check=False)
    stderr = done.stderr.decode()
    assert done.returncode != 0
    assert "bob has the same token as alice" in stderr and ALICE not in stderr


def _clean_environment() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}


@pytest.mark.anyio
async def test_the_tokens_file_is_read_at_start_so_an_edit_takes_effect_on_restart(deployment: Deployment) -> None:
    original = deployment.tokens.read_text(encoding="utf-8")
    new_bob = "bob-after-the-edit-0123456789abcd"
    deployment.tokens.write_text(json.dumps({"alice": {"token": ALICE}, "bob": {"token": new_bob}}), encoding="utf-8")
    try:
        async with httpx2.AsyncClient(timeout=10) as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            old = await http.post(deployment.replica.url, json=body, headers={"Authorization": f"Bearer {BOB}"})
            new = await http.post(deployment.replica.url, json=body, headers={"Authorization": f"Bearer {new_bob}"})
    finally:
        deployment.tokens.write_text(original, encoding="utf-8")
    assert new.status_code == 401
    assert old.status_code != 401
