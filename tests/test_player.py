"""The song player (MCP Apps): tool links, the `ui://` resource and its CSP, graceful degradation, the build.

What the player does in a browser is tested in `test_player_browser.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult, TextResourceContents

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.player import PLAYER_URI, SUNO_MEDIA_ORIGINS
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings
from harness import KEY, MODES, Mode
from player_build import REPO, SHIPPED_PLAYER, build_player

APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
LINKED = {spec.tool for spec in ACTIONS if spec.enabled} | {"suno_get_task", "suno_get_tasks", "suno_wait_for_tasks"}
SONG = {"description": "a short indie-pop song about rain", "tags": "indie pop"}


@asynccontextmanager
async def two_clients(home: Path, mode: Mode, api_key: str = KEY) -> AsyncGenerator[tuple[Client, Client, ManualClock]]:
    """One server on a sandbox, with a client that does not negotiate MCP Apps and one that does."""
    clock = ManualClock()
    async with serve_sandbox(Sandbox(clock=clock)) as origin:
        server = create_server(Settings(api_key=api_key, base_url=origin, home=home), poll_interval=0.02)
        async with Client(server, mode=mode) as plain, Client(server, mode=mode, extensions=[APPS]) as apps:
            yield plain, apps, clock


async def read_player(client: Client) -> TextResourceContents:
    [content] = (await client.read_resource(PLAYER_URI)).contents
    assert isinstance(content, TextResourceContents)
    return content


def comparable(result: CallToolResult) -> dict[str, Any]:
    """The whole result, less how long a wait happened to take."""
    dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped.get("structuredContent", {}).pop("waited_seconds", None)
    return dumped


class _Outside(HTMLParser):
    """Collects what in a page would load something from elsewhere: tags with src or href, and links."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.loads.extend(f"<{tag} {name}>" for name, _ in attrs if name in ("src", "href", "srcset"))
        if tag in ("link", "iframe", "object", "embed", "base"):
            self.loads.append(f"<{tag}>")


@pytest.mark.anyio
async def test_the_action_and_status_tools_link_to_the_player_with_one_short_meta_key(tmp_path: Path) -> None:
    async with two_clients(tmp_path, "auto") as (plain, _apps, _clock):
        tools = (await plain.list_tools()).tools
    linked = {tool.name: tool.meta for tool in tools if tool.meta is not None}
    assert set(linked) == LINKED
    assert all(meta == {"ui": {"resourceUri": PLAYER_URI}} for meta in linked.values())


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_the_server_advertises_mcp_apps_and_serves_the_shipped_player(tmp_path: Path, mode: Mode) -> None:
    async with two_clients(tmp_path, mode) as (_plain, apps, _clock):
        capabilities = apps.server_capabilities
        listed = await apps.list_resources()
        content = await read_player(apps)
    # Server capabilities carry extensions from 2026-07-28 on; the SDK sieves them out of a 2025-era handshake,
    # where hosts go by the tools' `_meta.ui` alone (the client side of the negotiation works in both eras).
    assert (EXTENSION_ID in (capabilities.extensions or {})) == (mode == "auto")
    [entry] = [resource for resource in listed.resources if resource.uri == PLAYER_URI]
    assert entry.mime_type == APP_MIME_TYPE
    assert content.mime_type == APP_MIME_TYPE
    assert content.text == SHIPPED_PLAYER.read_text(encoding="utf-8")
    assert content.meta == {"ui": {"csp": {"resourceDomains": list(SUNO_MEDIA_ORIGINS)}, "prefersBorder": False}}


@pytest.mark.anyio
async def test_in_sandbox_mode_the_players_csp_adds_only_the_sandboxs_own_origin(tmp_path: Path) -> None:
    server = create_server(Settings(api_key=None, home=tmp_path, sandbox=True))
    async with Client(server, extensions=[APPS]) as client:
        content = await read_player(client)
    port = (tmp_path / "sandbox-port").read_text(encoding="utf-8")
    assert content.meta is not None
    assert content.meta["ui"]["csp"] == {"resourceDomains": [*SUNO_MEDIA_ORIGINS, f"http://127.0.0.1:{port}"]}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_mcp_apps_gets_the_same_results_and_no_ui_resource(tmp_path: Path, mode: Mode) -> None:
    async with two_clients(tmp_path, mode) as (plain, apps, clock):
        submitted = {
            name: await client.call_tool("suno_generate_music", {**SONG, "title": name})
            for name, client in (("plain", plain), ("apps", apps))
        }
        task_ids = [result.structured_content["task_id"] for result in submitted.values() if result.structured_content]
        clock.advance(60)
        finished = await plain.call_tool("suno_wait_for_tasks", {"task_ids": task_ids, "timeout_seconds": 20})
        calls: list[tuple[str, dict[str, Any]]] = [
            ("suno_wait_for_tasks", {"task_ids": task_ids, "timeout_seconds": 20}),
            ("suno_get_task", {"task_id": task_ids[0]}),
            ("suno_get_tasks", {"task_ids": task_ids}),
        ]
        answers = [(await plain.call_tool(name, args), await apps.call_tool(name, args)) for name, args in calls]
        plain_listed = await plain.list_resources()
        apps_listed = await apps.list_resources()
    for name, result in submitted.items():
        assert not result.is_error, result
        assert result.structured_content is not None and result.structured_content["title"] == name
    plain_submit, apps_submit = submitted["plain"], submitted["apps"]
    assert plain_submit.meta == apps_submit.meta  # nothing for the player rides along in the result
    assert set(plain_submit.structured_content or {}) == set(apps_submit.structured_content or {})
    for plain_answer, apps_answer in answers:
        assert not plain_answer.is_error, plain_answer
        assert comparable(plain_answer) == comparable(apps_answer)
    assert finished.structured_content is not None and finished.structured_content["all_done"], finished
    plain_uris = [resource.uri for resource in plain_listed.resources]
    apps_uris = [resource.uri for resource in apps_listed.resources]
    assert PLAYER_URI not in plain_uris
    assert apps_uris == [PLAYER_URI, *plain_uris]


@pytest.mark.anyio
async def test_the_player_resource_never_carries_the_ccapi_key(tmp_path: Path) -> None:
    canary = "sk-player-canary-0123456789abcdef"
    async with two_clients(tmp_path, "auto", api_key=canary) as (_plain, apps, _clock):
        content = await read_player(apps)
        listed = await apps.list_resources()
    assert canary.removeprefix("sk-") not in content.model_dump_json()
    assert canary.removeprefix("sk-") not in listed.model_dump_json()


def test_the_shipped_player_is_what_the_build_makes_from_source(tmp_path: Path) -> None:
    built = tmp_path / "player.html"
    build_player(built)
    assert built.read_bytes() == SHIPPED_PLAYER.read_bytes(), (
        "server/ccapi_suno_mcp/player/player.html is not what player/ builds: run `npm run build` in player/"
    )


def test_the_shipped_player_is_one_self_contained_file() -> None:
    html = SHIPPED_PLAYER.read_text(encoding="utf-8")
    page = _Outside()
    page.feed(html)
    style = html[html.index("<style>") : html.index("</style>")]
    assert page.loads == []
    assert page.tags.count("script") == 1 and page.tags.count("style") == 1
    assert not [word for word in ("@import", "url(", "@font-face") if word in style]


def test_the_wheel_ships_the_player_and_nothing_of_its_npm_source(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in UV
    assert uv is not None, "uv is needed to build the wheel (pip install uv)"
    command = [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(REPO)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        shipped = archive.read("ccapi_suno_mcp/player/player.html")
    assert shipped == SHIPPED_PLAYER.read_bytes()
    assert not [name for name in names if "node_modules" in name or name.endswith((".ts", ".mjs"))]
