"""The real command over stdio, as an MCP client launches it."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import TextResourceContents

from ccapi_suno_mcp.catalogue import ACTIONS
from ccapi_suno_mcp.ledger import SQLiteLedger


def _server(home: Path, *arguments: str, key: str | None = None) -> StdioServerParameters:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env["CCAPI_SUNO_HOME"] = str(home)
    if key is not None:
        env["CCAPI_API_KEY"] = key
    return StdioServerParameters(command=sys.executable, args=["-m", "ccapi_suno_mcp", *arguments], env=env)


@pytest.mark.anyio
async def test_sandbox_mode_generates_waits_and_downloads_over_stdio(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with Client(_server(tmp_path, "--sandbox")) as client:
            submitted = await client.call_tool("suno_generate_music", {"description": "a calm piano piece"})
            assert submitted.structured_content is not None, submitted
            task_id = submitted.structured_content["task_id"]
            waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 40})
            assert waited.structured_content is not None, waited
            assert waited.structured_content["all_done"], waited.structured_content
            clip_id = waited.structured_content["tasks"][0]["clips"][0]["clip_id"]
            saved = await client.call_tool("suno_download", {"clip_id": clip_id})
            assert saved.structured_content is not None, saved
    path = Path(saved.structured_content["path"])
    assert path.is_relative_to(tmp_path / "downloads")
    assert path.read_bytes()[:3] == b"ID3"  # the sandbox's MP3, tagged


@pytest.mark.anyio
async def test_two_sandbox_servers_on_one_home_keep_each_others_songs_across_a_restart(tmp_path: Path) -> None:
    """Two MCP clients, each starting its own `--sandbox` server on the same default home."""
    with anyio.fail_after(90):
        async with Client(_server(tmp_path, "--sandbox")) as first, Client(_server(tmp_path, "--sandbox")) as second:
            made = [
                (await client.call_tool("suno_generate_music", {"description": f"a song through door {door}"}))
                for door, client in (("one", first), ("two", second))
            ]
            task_ids = [result.structured_content["task_id"] for result in made if result.structured_content]
            for client in (first, second):  # each answers for both: the other's tasks too
                waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": task_ids, "timeout_seconds": 40})
                assert waited.structured_content is not None and waited.structured_content["all_done"], waited
            clip_ids = [task["clips"][0]["clip_id"] for task in waited.structured_content["tasks"]]
        async with Client(_server(tmp_path, "--sandbox")) as restarted:  # its emulator knows both songs' clips
            extended = [
                await restarted.call_tool("suno_extend_music", {"clip_id": clip_id, "continue_at": 30})
                for clip_id in clip_ids
            ]
    assert [result.is_error for result in extended] == [False, False], [str(result.content) for result in extended]


async def _finished(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    submitted = await client.call_tool(tool, arguments)
    assert submitted.structured_content is not None, submitted
    task_ids = [submitted.structured_content["task_id"]]
    waited = await client.call_tool("suno_wait_for_tasks", {"task_ids": task_ids, "timeout_seconds": 40})
    assert waited.structured_content is not None and waited.structured_content["all_done"], waited
    return cast(dict[str, Any], waited.structured_content["tasks"][0])


@pytest.mark.anyio
async def test_a_clip_an_older_build_let_its_music_video_take_is_given_back_on_upgrade(tmp_path: Path) -> None:
    """A sandbox ledger as builds before schema step 6 left it after a music video (the clip under the video's
    task): the upgraded server gives the clip back to its song, so its stems name the song, and the video stays."""
    with anyio.fail_after(120):
        async with Client(_server(tmp_path, "--sandbox")) as client:
            song = await _finished(client, "suno_generate_music", {"description": "a song that gets a video"})
            clip_id = song["clips"][0]["clip_id"]
            video = await _finished(client, "suno_generate_music_video", {"clip_id": clip_id})
        with sqlite3.connect(tmp_path / "sandbox-ledger.sqlite3") as connection:
            connection.execute(
                "UPDATE clips SET task_id = ?, position = 0 WHERE clip_id = ?", (video["task_id"], clip_id)
            )
            connection.execute(f"PRAGMA user_version = {SQLiteLedger.SCHEMA_VERSION - 1}")
        connection.close()
        async with Client(_server(tmp_path, "--sandbox")) as upgraded:
            stems = await _finished(upgraded, "suno_extract_stems", {"clip_id": clip_id})
            clip = await upgraded.read_resource(f"suno://clips/{clip_id}")
    assert (stems["status"], stems["parent_task_id"], stems["parent_clip_id"]) == ("SUCCESS", song["task_id"], clip_id)
    shown = json.loads(cast(TextResourceContents, clip.contents[0]).text)
    assert shown["task_id"] == song["task_id"] and shown["video_url"]


@pytest.mark.anyio
async def test_without_a_key_the_server_starts_lists_tools_and_explains(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with Client(_server(tmp_path)) as client:
            tools = (await client.list_tools()).tools
            answer = await client.call_tool("suno_get_balance", {})
    assert len(tools) == len([spec for spec in ACTIONS if spec.enabled]) + 7
    assert answer.is_error
    assert "CCAPI_API_KEY" in str(answer.content)
