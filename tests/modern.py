"""The 2026-07-28 protocol spoken raw, from outside: every request carries its own `_meta` envelope, and may declare
the MCP tasks extension, as the interactive Claude Code CLI does (`reference/mcp-tasks.md`)."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2

from rawstdio import RawServer, server_process

TASKS = "io.modelcontextprotocol/tasks"
MODERN = "2026-07-28"


def envelope(*, tasks: bool) -> dict[str, Any]:
    """A request's `_meta` as Claude Code sends it, with or without the tasks extension."""
    capabilities: dict[str, Any] = {"elicitation": {"form": {}}}
    if tasks:
        capabilities["extensions"] = {TASKS: {}}
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "0"},
        "progressToken": 7,
    }


class ModernStdio:
    """A server process spoken to in the 2026-07-28 era over its stdin and stdout."""

    def __init__(self, raw: RawServer) -> None:
        self.raw = raw
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int:
        return self.raw.process.pid

    async def request(self, method: str, params: Mapping[str, Any] | None = None, *, tasks: bool = True) -> Any:
        """The whole JSON-RPC answer (`result` or `error`) to one request."""
        request_id = next(self._ids)
        body = {**(params or {}), "_meta": envelope(tasks=tasks)}
        await self.raw.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": body})
        return await self.raw.answer(request_id)

    async def result(self, method: str, params: Mapping[str, Any] | None = None, *, tasks: bool = True) -> Any:
        """The `result` of one request (fails on a JSON-RPC error)."""
        answer = await self.request(method, params, tasks=tasks)
        assert "result" in answer, answer
        return answer["result"]

    async def call(self, tool: str, arguments: Mapping[str, Any], *, tasks: bool = True) -> dict[str, Any]:
        params = {"name": tool, "arguments": arguments}
        return cast(dict[str, Any], await self.result("tools/call", params, tasks=tasks))

    async def get(self, task_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self.result("tasks/get", {"taskId": task_id}))

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        os.kill(self.pid, signal.SIGKILL)


@asynccontextmanager
async def modern_server(
    home: Path, *arguments: str, env: Mapping[str, str] | None = None, stderr: Path | None = None
) -> AsyncGenerator[ModernStdio]:
    """The server process (`rawstdio.server_process`) spoken to in the 2026-07-28 era, which has no handshake."""
    async with server_process(home, *arguments, env=env, stderr=stderr) as raw:
        yield ModernStdio(raw)


async def until_done(server: ModernStdio, task_id: str, *, within: float = 30) -> dict[str, Any]:
    """`tasks/get` as a client polls it, at the interval the task asks for, until the task is no longer working."""
    with anyio.fail_after(within):
        while True:
            task = await server.get(task_id)
            if task["status"] != "working":
                return task
            await anyio.sleep(task["pollIntervalMs"] / 1000)


async def http_request(
    url: str, token: str, method: str, params: Mapping[str, Any], *, tasks: bool = True
) -> dict[str, Any]:
    """One 2026-07-28 request over streamable HTTP, with the routing headers a client sets; the JSON-RPC answer."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    name = params.get("taskId") or params.get("name")
    if isinstance(name, str):
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": envelope(tasks=tasks)}}
    async with httpx2.AsyncClient(timeout=60) as http:
        response = await http.post(url, content=json.dumps(body), headers=headers)
    assert response.headers.get("content-type", "").startswith(("application/json", "text/event-stream")), (
        response.status_code,
        response.text,
    )
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        answers = [json.loads(each) for each in data if each]
        return cast(dict[str, Any], next(each for each in answers if each.get("id") == 1))
    return cast(dict[str, Any], response.json())
