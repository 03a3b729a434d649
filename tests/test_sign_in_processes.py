"""Sign-in from outside: a real authorization server (npm oidc-provider on a loopback port), the server as its
own process, and the Python SDK client running the whole discovery (401, metadata, registration, token, retry)
with client credentials and with the authorization code flow and PKCE as alice and bob."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

from harness import call, text_of
from oidc_provider import REDIRECT_URI, MemoryStorage, ScriptedLogin, identity_provider, sign_in
from processes import INITIALIZE, MCP_HEADERS, Replica, free_port, http_replica, sandbox_process


@dataclass
class Deployment:
    issuer: str
    resource: str
    replica: Replica


@asynccontextmanager
async def deployment(home: Path, env: dict[str, str] | None = None) -> AsyncGenerator[Deployment]:
    """The provider, the sandbox, and the server signing people in with the provider."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    async with identity_provider(resource) as issuer, sandbox_process("--speed", "20") as origin:
        settings = {"CCAPI_SUNO_OAUTH_ISSUER": issuer, "CCAPI_SUNO_OAUTH_RESOURCE": resource, **(env or {})}
        async with http_replica(home, origin, settings, port=port) as replica:
            yield Deployment(issuer, resource, replica)


def person(site: Deployment, login: str) -> OAuthClientProvider:
    """The SDK client of someone who signs in as `login`: it registers itself and runs code + PKCE."""
    handlers = ScriptedLogin(login)
    metadata = OAuthClientMetadata(
        client_name=f"{login}'s client",
        redirect_uris=[REDIRECT_URI],  # pyright: ignore[reportArgumentType] (pydantic parses the URL)
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(site.resource, metadata, MemoryStorage(), handlers.redirect, handlers.callback)


@asynccontextmanager
async def connected(site: Deployment, auth: httpx2.Auth) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        Client(streamable_http_client(site.resource, http_client=http)) as client,
    ):
        yield client


def service(site: Deployment, client_id: str = "service") -> ClientCredentialsOAuthProvider:
    return ClientCredentialsOAuthProvider(
        site.resource, MemoryStorage(), client_id, f"{client_id}-secret", issuer=site.issuer, scope="suno:use"
    )


async def initialize_with(site: Deployment, token: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
        return await http.post(site.resource, json=INITIALIZE, headers=headers)


@pytest.mark.anyio
async def test_a_service_with_client_credentials_discovers_the_provider_and_reaches_the_tools(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with deployment(tmp_path) as site, connected(site, service(site)) as client:
            tools = (await client.list_tools()).tools
            submitted = await call(client, "suno_generate_music", {"description": "a song for the service"})
    assert len(tools) == 29
    assert submitted["task_id"].startswith("task_")


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_alice_and_bob_sign_in_with_code_and_pkce_see_only_their_own_and_bobs_budget_stops_bob(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    people = tmp_path / "people.json"
    people.write_text(json.dumps({"bob": {"daily_budget_usd": 0.01}}), encoding="utf-8")
    env = {"CCAPI_SUNO_OAUTH_PEOPLE_FILE": str(people)}
    if backend == "postgresql":
        env["CCAPI_SUNO_LEDGER_URL"] = request.getfixturevalue("postgres_url")
    with anyio.fail_after(180):
        async with (
            deployment(tmp_path / "home", env) as site,
            connected(site, person(site, "alice")) as alice,
            connected(site, person(site, "bob")) as bob,
        ):
            hers = (await call(alice, "suno_generate_music", {"description": "alice's song"}))["task_id"]
            alices = [task["task_id"] for task in (await call(alice, "suno_list_tasks", {}))["tasks"]]
            bobs = (await call(bob, "suno_list_tasks", {}))["tasks"]
            bob_asks_for_hers = await bob.call_tool("suno_get_task", {"task_id": hers})
            refused = await bob.call_tool("suno_generate_music", {"description": "bob's song"})
            again = await call(alice, "suno_generate_music", {"description": "alice's second song"})
            log = site.replica.log
    assert alices == [hers]
    assert bobs == []
    assert bob_asks_for_hers.is_error
    assert refused.is_error and "past your own $0.01 daily budget" in text_of(refused)
    assert again["task_id"].startswith("task_")
    assert "signed in: alice (test)" in log and "signed in: bob (test)" in log


@pytest.mark.anyio
async def test_real_tokens_that_must_not_work_are_refused_with_the_right_challenge(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        async with deployment(tmp_path) as site:
            metadata_url = site.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
            async with httpx2.AsyncClient(timeout=30) as http:
                anonymous = await http.post(site.resource, json=INITIALIZE, headers=MCP_HEADERS)
                no_scope = await token_by_client_credentials(http, site, "no-scope", site.resource)
                id_token = await id_token_of(http, site, "alice")
            without_scope = await initialize_with(site, no_scope)
            with_id_token = await initialize_with(site, id_token)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata_url}", scope="suno:use"'
    assert without_scope.status_code == 403
    assert 'error="insufficient_scope"' in without_scope.headers["www-authenticate"]
    assert 'scope="suno:use"' in without_scope.headers["www-authenticate"]
    assert with_id_token.status_code == 401
    assert "not issued for this server" in with_id_token.json()["error_description"]  # its audience: the client
    assert 'error="invalid_token"' in with_id_token.headers["www-authenticate"]


@pytest.mark.anyio
async def test_an_opaque_token_is_checked_by_introspection(tmp_path: Path) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with anyio.fail_after(120):
        async with identity_provider(resource) as issuer, sandbox_process() as origin:
            env = {
                "CCAPI_SUNO_OAUTH_ISSUER": issuer,
                "CCAPI_SUNO_OAUTH_RESOURCE": resource,
                "CCAPI_SUNO_OAUTH_INTROSPECTION_URL": f"{issuer}/token/introspection",
                "CCAPI_SUNO_OAUTH_CLIENT_ID": "introspector",
                "CCAPI_SUNO_OAUTH_CLIENT_SECRET": "introspector-secret",
            }
            async with http_replica(tmp_path / "home", origin, env, port=port) as replica:
                site = Deployment(issuer, resource, replica)
                async with httpx2.AsyncClient(timeout=30) as http:
                    opaque = await token_by_client_credentials(http, site, "service", f"{resource}/opaque")
                accepted = await initialize_with(site, opaque)
                made_up = await initialize_with(site, "an-opaque-token-nobody-issued-0123456789")
    assert "." not in opaque
    assert accepted.status_code == 200
    assert made_up.status_code == 401
    assert "not active" in made_up.json()["error_description"]


async def token_by_client_credentials(http: httpx2.AsyncClient, site: Deployment, client_id: str, resource: str) -> str:
    form = {"grant_type": "client_credentials", "scope": "suno:use", "resource": resource}
    response = await http.post(f"{site.issuer}/token", data=form, auth=(client_id, f"{client_id}-secret"))
    response.raise_for_status()
    return str(response.json()["access_token"])


async def id_token_of(http: httpx2.AsyncClient, site: Deployment, login: str) -> str:
    """An ID token of `login` (the code flow with `openid`), which the provider marks apart from access tokens."""
    registered = await http.post(
        f"{site.issuer}/reg",
        json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "id-token"},
    )
    client_id = registered.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid suno:use",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", "resource": site.resource,
    }  # fmt: skip
    returned = await sign_in(f"{site.issuer}/auth?{urlencode(query)}", login)
    code = parse_qs(urlsplit(returned).query)["code"][0]
    form: dict[str, Any] = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": client_id, "code_verifier": verifier,
    }  # fmt: skip
    tokens = (await http.post(f"{site.issuer}/token", data=form)).json()
    return str(tokens["id_token"])
