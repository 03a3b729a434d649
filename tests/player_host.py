"""What the browser test runs: the real server in `--sandbox` mode over streamable HTTP, a small bridge that serves
the test host page (built from `player/host/`) and forwards its `/mcp` requests to that server, and Chromium.

The bridge exists because a web page may only talk to its own origin without CORS, which the server rightly does
not offer; it adds the server's bearer token, so the page never holds a secret either. It also serves the
sandbox proxy page with the CSP an MCP Apps host builds from the view's `_meta.ui.csp` (the spec's restrictive
default plus the declared origins), so the view runs under exactly what it asked for.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
from anyio.streams.text import TextReceiveStream
from playwright.async_api import BrowserContext, ConsoleMessage, Frame, Page, Request, async_playwright
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from ccapi_suno_mcp.sandbox import serve_asgi

TOKEN = "player-browser-test-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
NEEDS = ("node", "chromium")  # what tests using this module need installed (tests/machine.py)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # the test starts playback from a script, not a click
]
_REQUEST_HEADERS = ("accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id")
_RESPONSE_HEADERS = ("content-type", "mcp-session-id", "cache-control")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def sandbox_server(home: Path) -> AsyncGenerator[str]:
    """`ccapi-suno-mcp --sandbox --transport http` as its own process; yields its /mcp URL once it serves."""
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
    env |= {"CCAPI_SUNO_HOME": str(home), "CCAPI_SUNO_HTTP_TOKEN": TOKEN}
    command = [sys.executable, "-m", "ccapi_suno_mcp", "--sandbox", "--transport", "http", "--port", str(port)]
    serving = anyio.Event()
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    async with process, anyio.create_task_group() as tasks:

        async def read_log() -> None:  # reads stderr to its end, so the pipe never fills
            assert process.stderr is not None
            seen = ""
            async for text in TextReceiveStream(process.stderr):
                seen = (seen + text)[-4096:]
                if "serving MCP over streamable HTTP" in seen:
                    serving.set()

        tasks.start_soon(read_log)
        try:
            with anyio.fail_after(30):
                await serving.wait()
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()


def sandbox_csp(csp: dict[str, list[str]]) -> str:
    """The Content-Security-Policy an MCP Apps host puts on the sandbox for a view that declared `csp`."""

    def origins(key: str) -> str:
        return " ".join(item for item in csp.get(key, []) if not any(char in item for char in ";,'\" \r\n"))

    resources, connect = origins("resourceDomains"), origins("connectDomains") or "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: {resources}".strip(),
            f"media-src 'self' data: {resources}".strip(),
            f"font-src 'self' data: {resources}".strip(),
            f"connect-src {connect}",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ]
    )


def _bridge_app(host_dir: Path, mcp_url: str, http: httpx2.AsyncClient) -> Starlette:
    async def static(request: HTTPRequest) -> Response:
        name = request.path_params["name"]
        if name not in ("host.html", "host.js", "sandbox.js"):
            return Response(status_code=404)
        return FileResponse(host_dir / name)

    async def sandbox(request: HTTPRequest) -> Response:
        csp = json.loads(request.query_params.get("csp") or "{}")
        headers = {"content-security-policy": sandbox_csp(csp)}
        return FileResponse(host_dir / "sandbox.html", headers=headers)

    async def mcp(request: HTTPRequest) -> Response:
        headers = {name: value for name, value in request.headers.items() if name in _REQUEST_HEADERS}
        headers["authorization"] = f"Bearer {TOKEN}"
        upstream = await http.send(
            http.build_request(request.method, mcp_url, headers=headers, content=await request.body()), stream=True
        )
        back = {name: value for name, value in upstream.headers.items() if name.lower() in _RESPONSE_HEADERS}
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=back,
            background=BackgroundTask(upstream.aclose),
        )

    return Starlette(
        routes=[
            Route("/sandbox.html", sandbox),
            Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
            Route("/{name}", static),
        ]
    )


@asynccontextmanager
async def host_bridge(host_dir: Path, mcp_url: str) -> AsyncGenerator[str]:
    """Serve the test host and forward `/mcp` to the server; yields the host page's origin."""
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=None)) as http,
        serve_asgi(_bridge_app(host_dir, mcp_url, http)) as origin,
    ):
        yield origin


@dataclass
class BrowserLog:
    """What the pages did: every request's URL, console messages and uncaught errors, in any frame."""

    requests: list[str] = field(default_factory=lambda: list[str]())
    console: list[str] = field(default_factory=lambda: list[str]())
    errors: list[str] = field(default_factory=lambda: list[str]())

    def origins(self) -> set[str]:
        return {f"{parts.scheme}://{parts.netloc}" for parts in map(urlsplit, self.requests) if parts.netloc}


@asynccontextmanager
async def chromium(profile: Path) -> AsyncGenerator[tuple[Page, BrowserLog]]:
    """Debian's headless Chromium with a fresh profile, driven by Playwright; yields a page and its log."""
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
    log = BrowserLog()
    async with async_playwright() as playwright:
        context: BrowserContext = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 900, "height": 1400},
        )
        try:

            def on_request(request: Request) -> None:
                log.requests.append(request.url)

            def on_console(message: ConsoleMessage) -> None:
                log.console.append(f"{message.type}: {message.text}")

            context.on("request", on_request)
            context.on("console", on_console)
            page = await context.new_page()
            page.on("pageerror", lambda error: log.errors.append(str(error)))
            yield page, log
        finally:
            await context.close()


async def view_frame(page: Page, view_id: str) -> Frame:
    """The frame of the view itself: inside the sandbox proxy's iframe, inside the host's iframe `view_id`."""
    outer = await page.locator(f"#{view_id}").element_handle()
    proxy = await outer.content_frame()
    assert proxy is not None
    inner = await proxy.locator("iframe").element_handle()
    frame = await inner.content_frame()
    assert frame is not None
    return frame


async def until(condition: Callable[[], Awaitable[bool]], *, seconds: float, what: str) -> None:
    """Poll `condition` until it holds, failing after `seconds`."""
    try:
        with anyio.fail_after(seconds):
            while not await condition():  # noqa: ASYNC110 - the browser's state offers no event to await here
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds:g}s waiting for {what}") from None
