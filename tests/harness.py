"""A running server wired to the sandbox over real HTTP, for tests that act as an MCP client would."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcp import Client
from mcp.types import CallToolResult, TextContent

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import Settings

KEY = "sk-test-harness-key-0001"
PUBLIC_ADDRESS = "93.184.215.14"


async def resolve_public(host: str, port: int) -> list[str]:
    """A resolver for a mock CDN: every name is one public address (nothing connects: the transport is a mock)."""
    return [PUBLIC_ADDRESS]


Mode = Literal["auto", "legacy"]
MODES: tuple[Mode, ...] = ("auto", "legacy")


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The tool's structured result; a failing call fails the test with the tool's own words."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


@dataclass
class Harness:
    sandbox: Sandbox
    clock: ManualClock
    client: Client
    home: Path

    async def call(self, tool: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Call a tool that must succeed; return its structured content."""
        result = await self.client.call_tool(tool, arguments or {}, **kwargs)
        assert not result.is_error, text_of(result)
        assert result.structured_content is not None
        return result.structured_content

    async def fail(self, tool: str, arguments: dict[str, Any] | None = None) -> str:
        """Call a tool that must fail with a tool error; return its text."""
        result = await self.client.call_tool(tool, arguments or {})
        assert result.is_error, result
        return text_of(result)

    async def finished(self, task_ids: list[str]) -> dict[str, Any]:
        """Move the sandbox's clock past every task's run time and wait for the tasks."""
        self.clock.advance(60)
        waited = await self.call("suno_wait_for_tasks", {"task_ids": task_ids, "timeout_seconds": 20})
        assert waited["all_done"], waited
        return waited


@asynccontextmanager
async def running(
    home: Path,
    *,
    mode: Mode = "auto",
    api_key: str | None = KEY,
    sandbox_key: str | None = None,
    toolsets: frozenset[Any] | None = None,
    poll_interval: float = 0.02,
    settings_options: dict[str, Any] | None = None,
    server_options: dict[str, Any] | None = None,
    **client_options: Any,
) -> AsyncGenerator[Harness]:
    clock = ManualClock()
    sandbox = Sandbox(clock=clock, api_key=sandbox_key)
    async with serve_sandbox(sandbox) as origin:
        options = dict(settings_options or {})
        if toolsets is not None:
            options["toolsets"] = toolsets
        settings = Settings(api_key=api_key, base_url=origin, home=home, **options)
        server = create_server(settings, poll_interval=poll_interval, **(server_options or {}))
        async with Client(server, mode=mode, **client_options) as client:
            yield Harness(sandbox=sandbox, clock=clock, client=client, home=home)
