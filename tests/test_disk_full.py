"""A full disk, met by a real server process on small filesystems that fill up: the answer says the disk is
full, where, and that nothing was billed or saved; once there is room again, the same server carries on."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from ccapi_suno_mcp._disk import is_disk_full
from disks import fill, small_filesystem
from harness import text_of
from processes import control, sandbox_process, server_client, stdio_server


def _structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error and result.structured_content is not None, text_of(result)
    return result.structured_content


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_full_ledger_disk_bills_nothing_says_so_and_recovers_when_there_is_room(
    tmp_path: Path, transport: str
) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(90), small_filesystem(home, 4096):
        async with sandbox_process("--speed", "20") as origin:
            async with server_client(transport, home, origin, tmp_path / "server.pid") as client:
                first = await client.call_tool("suno_generate_music", {"description": "a song before the disk fills"})
                _structured(first)
                filler = fill(home)
                refused = await client.call_tool("suno_generate_music", {"description": "a song on a full disk"})
                while_full = await control(origin, "stats")
                filler.unlink()
                again = await client.call_tool("suno_generate_music", {"description": "a song on a full disk"})
            stats = await control(origin, "stats")
    message = text_of(refused)
    assert refused.is_error
    assert f"The disk holding {home} is full" in message
    assert "Nothing was sent to CCAPI, so nothing was billed." in message
    assert "CCAPI_SUNO_HOME" in message and "Traceback" not in message
    assert while_full["accepted_submits"] == 1  # only the first song reached CCAPI
    assert _structured(again)["task_id"] != _structured(first)["task_id"]
    assert stats["accepted_submits"] == 2


@pytest.mark.anyio
async def test_a_full_download_disk_saves_nothing_says_so_and_recovers_when_there_is_room(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    env = {"CCAPI_SUNO_DOWNLOAD_DIR": str(downloads)}
    with anyio.fail_after(90), small_filesystem(downloads, 512):
        async with (
            sandbox_process("--speed", "20") as origin,
            Client(stdio_server(tmp_path / "home", origin, tmp_path / "server.pid", env=env)) as client,
        ):
            task_id = _structured(await client.call_tool("suno_generate_music", {"description": "a calm piano piece"}))[
                "task_id"
            ]
            waited = _structured(
                await client.call_tool("suno_wait_for_tasks", {"task_ids": [task_id], "timeout_seconds": 40})
            )
            clip_id = waited["tasks"][0]["clips"][0]["clip_id"]
            filler = fill(downloads)
            refused = await client.call_tool("suno_download", {"clip_id": clip_id})
            left_while_full = sorted(path.name for path in downloads.iterdir())
            filler.unlink()
            saved = _structured(await client.call_tool("suno_download", {"clip_id": clip_id}))
    message = text_of(refused)
    assert refused.is_error
    assert f"The disk holding {downloads} is full: the file was not saved (no partial file is left)" in message
    assert "CCAPI_SUNO_DOWNLOAD_DIR" in message
    assert left_while_full == ["filler"]
    assert Path(saved["path"]).parent == downloads and saved["size"] > 0


def _sqlite_full_error() -> sqlite3.Error:
    """SQLite's own SQLITE_FULL, from a database capped at a few pages."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("PRAGMA max_page_count = 2")
        connection.execute("CREATE TABLE t (x BLOB)")
        connection.execute("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlite3.Error as error:
        return error
    finally:
        connection.close()
    raise AssertionError("the capped database took the row")


def test_every_way_a_disk_says_it_is_full_is_recognised_and_nothing_else_is() -> None:
    from psycopg import errors as postgres

    full = [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        _sqlite_full_error(),
        postgres.DiskFull("could not extend file"),
    ]
    other = [
        OSError(errno.EROFS, "Read-only file system"),
        sqlite3.OperationalError("database is locked"),
        ValueError(),
    ]
    assert [is_disk_full(error) for error in full] == [True] * len(full)
    assert [is_disk_full(error) for error in other] == [False] * len(other)
