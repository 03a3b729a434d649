"""The real command over stdio, spoken to line by line as any client might, including lines no SDK would write."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream

HANDSHAKE = [
    {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"},
    }},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]  # fmt: skip


def server_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any CCAPI_ setting, with the given home and extras."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env["CCAPI_SUNO_HOME"] = str(home)
    env.update(extra or {})
    return env


@dataclass
class RawServer:
    process: anyio.abc.Process
    _buffer: str = ""
    _seen: dict[Any, dict[str, Any]] = field(default_factory=dict[Any, dict[str, Any]])

    async def send_line(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((line + "\n").encode())

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_line(json.dumps(message))

    async def answer(self, request_id: Any) -> dict[str, Any]:
        """The server's answer to `request_id` (other messages are kept for later)."""
        assert self.process.stdout is not None
        if request_id in self._seen:
            return self._seen.pop(request_id)
        async for chunk in TextReceiveStream(self.process.stdout):
            *lines, self._buffer = (self._buffer + chunk).split("\n")
            for line in lines:
                message = cast(dict[str, Any], json.loads(line))
                if "id" in message and "method" not in message:
                    self._seen[message["id"]] = message
            if request_id in self._seen:
                return self._seen.pop(request_id)
        raise AssertionError("the server closed stdout without answering")

    async def call_tool(self, request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        await self.send(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
        )
        return await self.answer(request_id)


@asynccontextmanager
async def server_process(
    home: Path, *arguments: str, env: Mapping[str, str] | None = None, stderr: Path | None = None
) -> AsyncGenerator[RawServer]:
    """`python -m ccapi_suno_mcp ARGUMENTS` on piped stdin and stdout (stderr goes to a file), with no handshake.

    At the end its input is closed, its cue to exit. One still running 10 s later is killed, and fails the test
    unless the test is failing already.
    """
    command = [sys.executable, "-m", "ccapi_suno_mcp", *arguments]
    with open(stderr or os.devnull, "wb") as errors:  # noqa: ASYNC230 - opened once, before the process starts
        async with await anyio.open_process(command, env=server_environment(home, env), stderr=errors) as process:
            lingered = False
            try:
                yield RawServer(process)
            finally:
                if process.returncode is None:
                    assert process.stdin is not None
                    await process.stdin.aclose()
                    with anyio.move_on_after(10):
                        await process.wait()
                    if process.returncode is None:
                        lingered = True
                        process.kill()
            assert not lingered, "the server was still running 10 s after the end of its input"


@asynccontextmanager
async def raw_server(
    home: Path, *arguments: str, env: Mapping[str, str] | None = None, stderr: Path | None = None
) -> AsyncGenerator[RawServer]:
    """The server process (`server_process`), initialized as a 2025-era client does it."""
    async with server_process(home, *arguments, env=env, stderr=stderr) as server:
        for message in HANDSHAKE:
            await server.send(message)
        initialized = await server.answer("init")
        assert "result" in initialized, initialized
        yield server
