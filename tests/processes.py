"""Real processes for tests from outside: the sandbox on its own port, the server over stdio with its pid known."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
import httpx2
from anyio.streams.text import TextReceiveStream
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}  # fmt: skip
"""A 2025-era client's first request, as one raw streamable HTTP POST sends it."""
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
"""The headers every streamable HTTP POST carries."""

# Runs `python -m ccapi_suno_mcp` after writing its own pid to the file named by the first argument.
PID_WRAPPER = (
    "import os, runpy, sys; "
    "open(sys.argv[1], 'w').write(str(os.getpid())); "
    "sys.argv = ['ccapi-suno-mcp']; "
    "runpy.run_module('ccapi_suno_mcp', run_name='__main__', alter_sys=True)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def sandbox_process(*arguments: str) -> AsyncGenerator[str]:
    """`ccapi-suno-mcp sandbox --port P ...` as its own process; yields its origin once it listens."""
    port = free_port()
    command = [sys.executable, "-m", "ccapi_suno_mcp", "sandbox", "--port", str(port), *arguments]
    listening = anyio.Event()
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    async with process, anyio.create_task_group() as tasks:

        async def read_log() -> None:  # reads stderr to its end, so the pipe never fills
            assert process.stderr is not None
            seen = ""
            async for text in TextReceiveStream(process.stderr):
                seen = (seen + text)[-4096:]
                if "listening on" in seen:
                    listening.set()

        tasks.start_soon(read_log)
        try:
            with anyio.fail_after(20):
                await listening.wait()
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()


def stdio_server(
    home: Path, origin: str, pid_file: Path, *, key: str = "sk-x", env: dict[str, str] | None = None
) -> StdioServerParameters:
    """The server as a client launches it, against the sandbox at `origin`, writing its pid to `pid_file`."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    environment |= {"CCAPI_BASE_URL": origin, "CCAPI_API_KEY": key, "CCAPI_SUNO_HOME": str(home), **(env or {})}
    return StdioServerParameters(command=sys.executable, args=["-c", PID_WRAPPER, str(pid_file)], env=environment)


async def control(origin: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A call to the sandbox's control routes (`/_sandbox/...`): GET without a body, POST with one."""
    async with httpx2.AsyncClient(base_url=origin) as http:
        if body is None:
            response = await http.get(f"/_sandbox/{path}")
        else:
            response = await http.post(f"/_sandbox/{path}", content=json.dumps(body))
    response.raise_for_status()
    return cast(dict[str, Any], response.json())


class Replica:
    """A server process serving MCP over HTTP, as a team runs several: its URL, its log so far, its process."""

    def __init__(self, url: str, process: anyio.abc.Process) -> None:
        self.url = url
        self.process = process
        self.log = ""

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as when a machine or container dies."""
        self.process.kill()


@asynccontextmanager
async def http_replica(
    home: Path, origin: str, env: dict[str, str], *, port: int | None = None
) -> AsyncGenerator[Replica]:
    """`ccapi-suno-mcp --transport http --port P` against the sandbox at `origin` (P: `port`, else a free one);
    yields once it listens."""
    port = port or free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    environment |= {"CCAPI_BASE_URL": origin, "CCAPI_API_KEY": "sk-x", "CCAPI_SUNO_HOME": str(home), **env}
    command = [sys.executable, "-m", "ccapi_suno_mcp", "--transport", "http", "--port", str(port)]
    listening = anyio.Event()
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=environment)
    replica = Replica(f"http://127.0.0.1:{port}/mcp", process)
    async with process, anyio.create_task_group() as tasks:

        async def read_log() -> None:  # reads stderr to its end, so the pipe never fills
            assert process.stderr is not None
            async for text in TextReceiveStream(process.stderr):
                replica.log += text
                if "serving MCP over streamable HTTP" in replica.log:
                    listening.set()

        tasks.start_soon(read_log)
        try:
            with anyio.fail_after(30):
                await listening.wait()
                async with httpx2.AsyncClient() as http:
                    while True:  # the line comes just before uvicorn binds: knock until it answers (401)
                        try:
                            await http.get(replica.url)
                            break
                        except httpx2.TransportError:
                            await anyio.sleep(0.05)
            yield replica
        finally:
            if process.returncode is None:
                process.terminate()


HTTP_TOKEN = "the-http-token-0123456789"


@asynccontextmanager
async def server_client(
    transport: str, home: Path, origin: str, pid_file: Path, env: dict[str, str] | None = None
) -> AsyncGenerator[Client]:
    """An MCP client of a real server process against the CCAPI at `origin`, over `transport` ("stdio" or "http")."""
    if transport == "stdio":
        async with Client(stdio_server(home, origin, pid_file, env=env)) as client:
            yield client
        return
    async with (
        http_replica(home, origin, {"CCAPI_SUNO_HTTP_TOKEN": HTTP_TOKEN, **(env or {})}) as replica,
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, timeout=60) as http,
        Client(streamable_http_client(replica.url, http_client=http)) as client,
    ):
        yield client
