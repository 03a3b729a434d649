"""Serving the sandbox over real HTTP with uvicorn: embedded in an anyio task group, or standalone."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncGenerator, Generator
from typing import Literal

import anyio
import uvicorn
from starlette.types import ASGIApp

from ._app import Sandbox

__all__ = ["run_sandbox", "serve_asgi", "serve_sandbox"]

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 10.0
_GRACEFUL_SHUTDOWN_SECONDS = 2
_POLL_SECONDS = 0.005


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that lives inside someone else's event loop.

    It leaves signal handling to the host application and stops as soon as `request_exit` is called
    (uvicorn's own main loop only notices `should_exit` on its next 0.1 s tick).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        while not await self.on_tick(0):  # tick 0 refreshes the Date header
            with anyio.move_on_after(1.0):
                await self._exit_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown without its fixed 0.1 s pause (which would dominate a test suite).

        Stop listening, close idle connections, give in-flight requests up to the graceful timeout, then
        cancel whatever is left.
        """
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        with anyio.move_on_after(self.config.timeout_graceful_shutdown or _GRACEFUL_SHUTDOWN_SECONDS):
            # uvicorn offers no event for "all connections and request tasks are gone", so poll briefly.
            while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110
                await anyio.sleep(_POLL_SECONDS)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()


def _config(app: ASGIApp, lifespan: Literal["on", "off"] = "off") -> uvicorn.Config:
    # log_config=None: uvicorn's loggers propagate to the host's logging (stderr); stdout stays untouched.
    # A bounded graceful shutdown: a request held by a fault (a hang, a held submit) must not keep it alive.
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan=lifespan, log_config=None,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )  # fmt: skip


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def _origin(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve_asgi(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, lifespan: Literal["on", "off"] = "off"
) -> AsyncGenerator[str, None]:
    """Serve any ASGI app over HTTP inside the current event loop for the duration of the block; yields its origin.

    Binds the socket itself (port 0 picks a free port) and returns only once the server accepts connections.
    Runs on asyncio (uvicorn's requirement).

    Raises:
        OSError: if the address cannot be bound.
        TimeoutError: if the server does not start within `STARTUP_TIMEOUT_SECONDS`.
        RuntimeError: if the server stops before it starts.
    """
    sock = _bind(host, port)
    origin = _origin(host, sock.getsockname()[1])
    server = _EmbeddedServer(_config(app, lifespan))
    stopped = anyio.Event()

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            stopped.set()

    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(run)
            try:
                with anyio.fail_after(STARTUP_TIMEOUT_SECONDS):
                    while not server.started:
                        if stopped.is_set():
                            raise RuntimeError("the server stopped before it started")
                        await anyio.sleep(_POLL_SECONDS)
                logger.debug("serving at %s", origin)
                yield origin
            finally:
                server.request_exit()
    finally:
        sock.close()


@contextlib.asynccontextmanager
async def serve_sandbox(sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> AsyncGenerator[str, None]:
    """Serve `sandbox` over HTTP for the duration of the block; yields its origin, e.g. `http://127.0.0.1:43117`.

    Sets `sandbox.base_url` so media links point here.

    Raises:
        OSError: if the address cannot be bound.
        TimeoutError: if the server does not start within `STARTUP_TIMEOUT_SECONDS`.
        RuntimeError: if the server stops before it starts.
    """
    async with serve_asgi(sandbox.app, host=host, port=port) as origin:
        sandbox.base_url = origin
        yield origin


def run_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int,
    api_key: str | None = None,
    speed: float = 1.0,
    state_path: str | os.PathLike[str] | None = None,
) -> None:
    """Serve a sandbox until interrupted (Ctrl+C or SIGTERM). Logs go to stderr.

    With `state_path`, the state is loaded from that JSON file (if it exists) and saved to it after every change,
    so tasks, clips and balances survive a restart; without it the sandbox starts fresh and forgets on exit.

    Raises:
        OSError: if the address cannot be bound.
        ValueError: for a non-positive `speed` or an empty `api_key`.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sandbox = Sandbox(api_key=api_key, speed=speed, state_path=state_path)
    sock = _bind(host, port)
    sandbox.base_url = _origin(host, sock.getsockname()[1])
    keys = "only the configured key" if api_key is not None else "any non-empty key"
    logger.info("CCAPI Suno sandbox listening on %s (accepting %s, speed x%g)", sandbox.base_url, keys, speed)
    if sandbox.state_path is not None:
        logger.info("sandbox state is kept in %s", sandbox.state_path)
    try:
        uvicorn.Server(_config(sandbox.app)).run(sockets=[sock])
    finally:
        sock.close()
