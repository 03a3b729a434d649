"""Who is calling: the principal (user) that the HTTP request's bearer token names.

The HTTP transport's bearer check (`http.BearerTokenMiddleware`) writes the principal into the request's ASGI
scope. `PrincipalScope`, a middleware of the MCP server, reads it from the request each message arrived with
and holds it in a context variable while the message is handled, so that tools, resources, completions and
the resource list reach the ledger as that principal (`AppState.ledger`). The principal travels with every
request, never with a session: a session id used with another token acts as that token's principal. On stdio,
and in memory, there is no request and the principal is the default one.
"""

from __future__ import annotations

import base64
import hashlib
from contextvars import ContextVar
from typing import Any, cast

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from ccapi_suno_mcp.ledger._protocol import DEFAULT_PRINCIPAL

__all__ = [
    "NAME_SCOPE_KEY",
    "OAUTH_PRINCIPAL_PREFIX",
    "SCOPE_KEY",
    "PrincipalScope",
    "current_principal",
    "current_principal_name",
    "is_oauth_principal",
    "oauth_principal",
    "principal_of",
]

SCOPE_KEY = "ccapi_suno.principal"
"""The ASGI scope key under which the bearer check leaves the principal its token names."""
NAME_SCOPE_KEY = "ccapi_suno.principal_name"
"""The ASGI scope key of a signed-in person's readable name (name, username or email claim)."""

OAUTH_PRINCIPAL_PREFIX = "oidc-"
"""How the principals of people who sign in begin (a tokens file may not use it)."""


def oauth_principal(issuer: str, subject: str) -> str:
    """The principal of the person `subject` at `issuer`: stable, and safe as a name and a folder.

    A subject may hold any character (Auth0: `google-oauth2|123`) and is unique only within its issuer, so
    the pair is hashed: 24 base32 letters (120 bits) after `oidc-`.
    """
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).digest()
    return OAUTH_PRINCIPAL_PREFIX + base64.b32encode(digest).decode("ascii")[:24].lower()


def is_oauth_principal(principal: str) -> bool:
    """Whether `principal` is a person who signed in (not a tokens-file name or the default principal)."""
    return principal.startswith(OAUTH_PRINCIPAL_PREFIX)


_current: ContextVar[str] = ContextVar("ccapi_suno_principal", default=DEFAULT_PRINCIPAL)
_current_name: ContextVar[str | None] = ContextVar("ccapi_suno_principal_name", default=None)


def current_principal() -> str:
    """The principal of the message being handled (the default one outside a request)."""
    return _current.get()


def current_principal_name() -> str | None:
    """The readable name of the person who signed in for the message being handled (None: not signed in)."""
    return _current_name.get()


def principal_of(request: Any) -> str:
    """The principal the bearer check found for an HTTP request (the default one for none, or no request)."""
    scope: object = getattr(request, "scope", None)
    value = cast(dict[str, object], scope).get(SCOPE_KEY) if isinstance(scope, dict) else None
    return value if isinstance(value, str) else DEFAULT_PRINCIPAL


def _name_of(request: Any) -> str | None:
    scope: object = getattr(request, "scope", None)
    value = cast(dict[str, object], scope).get(NAME_SCOPE_KEY) if isinstance(scope, dict) else None
    return value if isinstance(value, str) else None


class PrincipalScope:
    """Server middleware: every message is handled as the principal of the request it arrived with."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = _current.set(principal_of(ctx.request))
        name = _current_name.set(_name_of(ctx.request))
        try:
            return await call_next(ctx)
        finally:
            _current_name.reset(name)
            _current.reset(token)
