"""The HTTP transport as an OAuth 2.1 resource server: its metadata (RFC 9728) and the bearer check."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ccapi_suno_mcp.auth._verifier import Refusal, TokenVerifier
from ccapi_suno_mcp.principals import NAME_SCOPE_KEY, SCOPE_KEY
from ccapi_suno_mcp.settings import OAuthSettings

__all__ = ["METADATA_PREFIX", "OAuthMiddleware", "metadata_url"]

METADATA_PREFIX = "/.well-known/oauth-protected-resource"


def metadata_url(resource: str) -> str:
    """The Protected Resource Metadata URL of `resource`: the well-known path inserted after the host."""
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{METADATA_PREFIX}{parts.path.rstrip('/')}"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class OAuthMiddleware:
    """Serves the Protected Resource Metadata and lets through only requests with a valid access token.

    A request without a token gets 401 with `WWW-Authenticate: Bearer resource_metadata="...", scope="..."`,
    which starts a client's sign-in; a bad token 401 `invalid_token`; a token without the scope 403
    `insufficient_scope`; a token in the query string 400 `invalid_request`. `static`, if given, first
    matches a tokens-file token (services) to its principal. The person's principal goes into the request's
    scope for `principals.PrincipalScope`; the token itself goes no further than this check.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        oauth: OAuthSettings,
        *,
        local_path: str,
        static: Callable[[bytes], str | None] | None = None,
        title: str = "ccapi-suno",
    ) -> None:
        self.app = app
        self._verifier = verifier
        self._oauth = oauth
        self._static = static
        self._metadata_url = metadata_url(oauth.resource)
        public_path = urlsplit(oauth.resource).path.rstrip("/")
        self._metadata_paths = {METADATA_PREFIX + public_path, METADATA_PREFIX + local_path}
        self._metadata = json.dumps(
            {
                "resource": oauth.resource,
                "authorization_servers": [oauth.issuer],
                "scopes_supported": [oauth.scope],
                "bearer_methods_supported": ["header"],
                "resource_name": title,
            }
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # closing without accepting refuses a websocket
        if scope["path"] in self._metadata_paths:
            await self._serve_metadata(scope, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if any(name == "access_token" for name, _ in parse_qsl(query)):
            await self._refuse(send, 400, "invalid_request", "send the access token in the Authorization header only")
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        given = next((value for name, value in headers if name.lower() == b"authorization"), b"")
        scheme, _, credentials = given.partition(b" ")
        credentials = credentials.strip()
        if scheme.lower() != b"bearer" or not credentials:
            await self._refuse(send, 401, None, "sign in: send Authorization: Bearer <access token>")
            return
        principal = self._static(credentials) if self._static is not None else None
        if principal is None:
            try:
                person = await self._verifier.verify(credentials.decode("latin-1"))
            except Refusal as refusal:
                await self._refuse(send, refusal.status, refusal.error, refusal.description)
                return
            principal = person.principal
            scope[NAME_SCOPE_KEY] = person.name
        scope[SCOPE_KEY] = principal
        await self.app(scope, receive, send)

    async def _serve_metadata(self, scope: Scope, send: Send) -> None:
        cors = [(b"access-control-allow-origin", b"*"), (b"access-control-allow-methods", b"GET, OPTIONS")]
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, b"", [*cors, (b"access-control-allow-headers", b"*")])
        elif scope["method"] == "GET":
            await _respond(send, 200, self._metadata, [(b"content-type", b"application/json"), *cors])
        else:
            await _respond(send, 405, b"", [(b"allow", b"GET, OPTIONS")])

    async def _refuse(self, send: Send, status: int, error: str | None, description: str) -> None:
        parts = [f'resource_metadata="{self._metadata_url}"', f'scope="{_quoted(self._oauth.scope)}"']
        if error is not None:
            parts = [f'error="{error}"', f'error_description="{_quoted(description)}"', *parts]
        body: dict[str, Any] = {"error": error or "invalid_token", "error_description": description}
        headers = [
            (b"content-type", b"application/json"),
            (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode()),
        ]
        await _respond(send, status, json.dumps(body).encode(), headers)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
