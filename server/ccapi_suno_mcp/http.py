"""The streamable HTTP transport: the MCP app behind a bearer token, DNS-rebinding protection on."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from ccapi_suno_mcp.settings import LOOPBACK_HOSTS

__all__ = ["MCP_PATH", "BearerTokenMiddleware", "build_http_app", "serve_http"]

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"


class BearerTokenMiddleware:
    """Answers 401 to any HTTP request without `Authorization: Bearer <token>`; compares in constant time.

    Only HTTP requests and the lifespan reach the app: any other scope (a websocket) is refused.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
            given = next((value for name, value in headers if name.lower() == b"authorization"), b"")
            scheme, _, credentials = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self._expected):
                await _unauthorized(send, missing=not given)
                return
        elif scope["type"] != "lifespan":
            return  # closing without accepting refuses a websocket
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

    On loopback the SDK's own Host/Origin allowlist applies; on a named address only that address is
    allowed. A wildcard bind (0.0.0.0, ::) cannot know the names clients use, so Host checks are off there
    and the bearer token, which a rebinding web page cannot send, is the guard.
    """
    security = None
    if host in ("0.0.0.0", "::", ""):
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    elif host not in LOOPBACK_HOSTS:
        named = f"[{host}]" if ":" in host else host
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"{named}:{port}", named],
            allowed_origins=[f"http://{named}:{port}", f"https://{named}:{port}"],
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
