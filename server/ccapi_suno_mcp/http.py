"""The streamable HTTP transport: the MCP app behind bearer tokens (each naming a principal), DNS-rebinding
protection on."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from ccapi_suno_mcp.principals import SCOPE_KEY
from ccapi_suno_mcp.settings import DEFAULT_PRINCIPAL, LOOPBACK_HOSTS

if TYPE_CHECKING:
    from ccapi_suno_mcp.auth import TokenVerifier
    from ccapi_suno_mcp.settings import OAuthSettings

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

    def principal_for(self, credentials: bytes) -> str | None:
        """The principal a token names, or None for a token not accepted."""
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
            principal = self.principal_for(credentials.strip()) if scheme.lower() == b"bearer" else None
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


def build_http_app(
    server: MCPServer[Any],
    *,
    host: str,
    port: int,
    token: str | Mapping[str, str],
    oauth: OAuthSettings | None = None,
    verifier: TokenVerifier | None = None,
) -> ASGIApp:
    """The server's streamable HTTP app at `/mcp`, wrapped in the bearer check (`token`: one, or each accepted
    token with the principal it names).

    With `oauth` it is an OAuth 2.1 resource server of the team's identity provider (`verifier` checks the
    tokens; default: one built from `oauth`); tokens in `token`, if any, are accepted beside people's.

    On loopback the SDK's own Host/Origin allowlist applies; on a named address only that address is
    allowed. A wildcard bind (0.0.0.0, ::) cannot know the names clients use, so Host checks are off there
    and the bearer token, which a rebinding web page cannot send, is the guard. With `oauth`, the public
    URL's host (a TLS proxy's) is allowed too.
    """
    security = None
    public = urlsplit(oauth.resource) if oauth is not None else None
    if host in ("0.0.0.0", "::", ""):
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    elif host not in LOOPBACK_HOSTS:
        named = f"[{host}]" if ":" in host else host
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"{named}:{port}", named],
            allowed_origins=[f"http://{named}:{port}", f"https://{named}:{port}"],
        )
    elif public is not None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    if public is not None and security is not None and security.enable_dns_rebinding_protection:
        security.allowed_hosts.append(public.netloc)
        security.allowed_origins.append(f"{public.scheme}://{public.netloc}")
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=security, host=host)
    if oauth is None:
        return BearerTokenMiddleware(app, token)
    from ccapi_suno_mcp.auth import OAuthMiddleware, build_verifier

    static = BearerTokenMiddleware(app, token).principal_for if token else None
    return OAuthMiddleware(
        app, verifier or build_verifier(oauth), oauth, local_path=MCP_PATH, static=static, title=server.name
    )


async def serve_http(
    server: MCPServer[Any],
    *,
    host: str,
    port: int,
    token: str | Mapping[str, str],
    oauth: OAuthSettings | None = None,
) -> None:
    """Serve until cancelled."""
    import uvicorn

    app = build_http_app(server, host=host, port=port, token=token, oauth=oauth)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    if oauth is not None:
        logger.info(
            "people sign in with %s; clients connect to %s (scope %s)", oauth.issuer, oauth.resource, oauth.scope
        )
    logger.info("serving MCP over streamable HTTP at http://%s:%d%s", host, port, MCP_PATH)
    await uvicorn.Server(config).serve()
