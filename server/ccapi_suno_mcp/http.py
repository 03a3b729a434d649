"""The streamable HTTP transport: the MCP app behind a bearer token, DNS-rebinding protection on."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_HOSTS", "MCP_PATH", "BearerTokenMiddleware", "build_http_app", "serve_http"]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MCP_PATH = "/mcp"


class BearerTokenMiddleware:
    """Answers 401 to any HTTP request without `Authorization: Bearer <token>`; compares in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
            given = next((value for name, value in headers if name.lower() == b"authorization"), b"")
            if not hmac.compare_digest(given, self._expected):
                await _unauthorized(send, missing=not given)
                return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, *, missing: bool) -> None:
    reason = "missing bearer token" if missing else "wrong bearer token"
    body = json.dumps(
        {"error": "invalid_token", "error_description": f"{reason}: send Authorization: Bearer <CCAPI_SUNO_HTTP_TOKEN>"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="ccapi-suno", error="invalid_token"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_http_app(server: MCPServer[Any], *, host: str, port: int, token: str) -> ASGIApp:
    """The server's streamable HTTP app at `/mcp`, wrapped in the bearer check.

    On loopback the SDK's own Host/Origin allowlist applies; elsewhere only `host:port` is allowed.
    """
    security = None
    if host not in LOOPBACK_HOSTS:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"{host}:{port}"],
            allowed_origins=[f"http://{host}:{port}", f"https://{host}:{port}"],
        )
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=security, host=host)
    return BearerTokenMiddleware(app, token)


async def serve_http(server: MCPServer[Any], *, host: str, port: int, token: str) -> None:
    """Serve until cancelled."""
    import uvicorn

    app = build_http_app(server, host=host, port=port, token=token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    logger.info("serving MCP over streamable HTTP at http://%s:%d%s", host, port, MCP_PATH)
    await uvicorn.Server(config).serve()
