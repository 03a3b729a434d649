"""The streamable HTTP transport: the MCP app behind bearer tokens (each naming a principal), DNS-rebinding
protection on."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from ccapi_suno_mcp.principals import SCOPE_KEY
from ccapi_suno_mcp.settings import DEFAULT_PRINCIPAL, LOOPBACK_HOSTS

__all__ = ["MCP_PATH", "BearerTokenMiddleware", "build_http_app", "serve_http"]

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"


class BearerTokenMiddleware:
    """Answers 401 to any HTTP request without `Authorization: Bearer <token>` of a known token.

    `tokens` maps each accepted token to the principal it names (a plain token: the default principal); the
    principal goes into the request's scope for `principals.PrincipalScope`. Every token is compared, each in
    constant time, so the time taken tells nothing of which one nearly matched. Only HTTP requests and the
    lifespan reach the app: any other scope (a websocket) is refused.
    """

    def __init__(self, app: ASGIApp, tokens: str | Mapping[str, str]) -> None:
        self.app = app
        named = {tokens: DEFAULT_PRINCIPAL} if isinstance(tokens, str) else dict(tokens)
        self._expected = [(token.encode(), principal) for token, principal in named.items()]
        team = any(principal != DEFAULT_PRINCIPAL for principal in named.values())
        self._which = "your token from the server's tokens file" if team else "CCAPI_SUNO_HTTP_TOKEN"

    def _principal(self, credentials: bytes) -> str | None:
        found: str | None = None
        for token, principal in self._expected:
            if hmac.compare_digest(credentials, token):
                found = principal
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
            given = next((value for name, value in headers if name.lower() == b"authorization"), b"")
            scheme, _, credentials = given.partition(b" ")
            principal = self._principal(credentials.strip()) if scheme.lower() == b"bearer" else None
            if principal is None:
                await _unauthorized(send, missing=not given, which=self._which)
                return
            scope[SCOPE_KEY] = principal
        elif scope["type"] != "lifespan":
            return  # closing without accepting refuses a websocket
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, *, missing: bool, which: str) -> None:
    reason = "missing bearer token" if missing else "wrong bearer token"
    description = f"{reason}: send Authorization: Bearer <{which}>"
    body = json.dumps({"error": "invalid_token", "error_description": description}).encode()
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


def build_http_app(server: MCPServer[Any], *, host: str, port: int, token: str | Mapping[str, str]) -> ASGIApp:
    """The server's streamable HTTP app at `/mcp`, wrapped in the bearer check (`token`: one, or each accepted
    token with the principal it names).

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


async def serve_http(server: MCPServer[Any], *, host: str, port: int, token: str | Mapping[str, str]) -> None:
    """Serve until cancelled."""
    import uvicorn

    app = build_http_app(server, host=host, port=port, token=token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    logger.info("serving MCP over streamable HTTP at http://%s:%d%s", host, port, MCP_PATH)
    await uvicorn.Server(config).serve()
