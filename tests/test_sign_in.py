"""Sign-in with the team's identity provider, in one process: the resource server's metadata, its refusals
(each with its status and challenge), the key cache, and people as principals of their own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.auth import KeysUnavailable, SigningKeys, TokenVerifier, provider_jwks
from ccapi_suno_mcp.http import build_http_app
from ccapi_suno_mcp.principals import oauth_principal
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_asgi, serve_sandbox
from ccapi_suno_mcp.settings import OAuthSettings, Settings, SettingsError
from harness import KEY, call, text_of
from processes import INITIALIZE, MCP_HEADERS
from signin import ISSUER, METADATA_URL, OAUTH, RESOURCE, LocalProvider

CHALLENGE = f'Bearer resource_metadata="{METADATA_URL}", scope="suno:use"'
SERVICE_TOKEN = "service-token-0123456789abcdef"


class KeyClock:
    """The key cache's clock: `later()` moves it past the interval between two fetches of the keys."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def later(self) -> None:
        self.now += 3600


class Deployment:
    def __init__(self, url: str, sandbox: Sandbox, clock: ManualClock, key_clock: KeyClock) -> None:
        self.url = url
        self.sandbox = sandbox
        self.clock = clock
        self.key_clock = key_clock


@asynccontextmanager
async def signed_in_server(
    home: Path, provider: LocalProvider, *, oauth: OAuthSettings = OAUTH, **options: Any
) -> AsyncGenerator[Deployment]:
    """The MCP server over HTTP as a resource server of `provider`, wired to a sandbox."""
    clock = ManualClock()
    sandbox = Sandbox(api_key=KEY, clock=clock)  # accepts only the server's own key
    key_clock = KeyClock()
    keys = SigningKeys(provider.jwks, clock=key_clock)
    async with serve_sandbox(sandbox) as origin:
        settings = Settings(api_key=KEY, base_url=origin, home=home, oauth=oauth, **options)
        server = create_server(settings, poll_interval=0.02)
        tokens, verifier = settings.http_tokens, TokenVerifier(oauth, keys)
        app = build_http_app(server, host="127.0.0.1", port=0, token=tokens, oauth=oauth, verifier=verifier)
        async with serve_asgi(app, lifespan="on") as mcp_origin:
            yield Deployment(f"{mcp_origin}/mcp", sandbox, clock, key_clock)


@asynccontextmanager
async def person(url: str, token: str) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def post_initialize(url: str, token: str | None, *, query: str = "") -> httpx2.Response:
    headers = dict(MCP_HEADERS) | ({"authorization": f"Bearer {token}"} if token is not None else {})
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(url + query, json=INITIALIZE, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_token(provider: LocalProvider) -> str:
    """HS256 over the provider's public key as the secret: the algorithm-confusion attack."""
    public = provider.private["rsa-1"].public_key()
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def unsigned_token(provider: LocalProvider) -> str:
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    return jwt.encode(claims, "", algorithm="none", headers={"kid": "rsa-1"})


def forged_token(provider: LocalProvider) -> str:
    """Signed by a key of our own under the provider's key id."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    return jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "rsa-1"})


REFUSED: dict[str, tuple[Callable[[LocalProvider], str], str]] = {
    "wrong audience": (lambda p: p.token(aud="https://other.example.test/mcp"), "not issued for this server"),
    "wrong issuer": (lambda p: p.token(iss="https://evil.example.test/"), "not issued by " + ISSUER),
    "issuer with a trailing slash": (lambda p: p.token(iss=ISSUER + "/"), "not issued by"),
    "expired": (lambda p: p.token(exp=int(time.time()) - 120), "the token has expired"),
    "bad signature": (forged_token, "signature does not verify"),
    "alg none": (unsigned_token, "tokens signed with 'none' are not accepted"),
    "HMAC": (hmac_token, "tokens signed with 'HS256' are not accepted"),
    "without exp": (lambda p: p.token(drop=("exp",)), "lacks the 'exp' claim"),
    "without sub": (lambda p: p.token(drop=("sub",)), "lacks the 'sub' claim"),
    "issued in the future": (lambda p: p.token(iat=int(time.time()) + 3600), "not valid"),
    "unknown key": (lambda p: p.token(kid="rsa-unlisted"), "a key the identity provider does not list"),
    "ID token typed as one": (lambda p: p.token(headers={"typ": "id_token+jwt"}), "not an access token"),
    "ID token with a nonce": (lambda p: p.token(nonce="n-0S6_WzA2Mj"), "an ID token is not an access token"),
    "not a JWT": (lambda p: "opaque-token-0123456789", "not a JWT access token"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_token_that_cannot_be_used_here_gets_401_invalid_token_with_the_challenge(
    tmp_path: Path, case: str
) -> None:
    provider = LocalProvider()
    provider.add_key("rsa-unlisted")
    provider.published.remove("rsa-unlisted")
    make, described = REFUSED[case]
    async with signed_in_server(tmp_path, provider) as deployment:
        response = await post_initialize(deployment.url, make(provider))
        requests = deployment.sandbox.stats.requests
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    assert challenge.endswith(f', resource_metadata="{METADATA_URL}", scope="suno:use"')
    assert described in response.json()["error_description"]
    assert requests == 0


@pytest.mark.anyio
async def test_a_request_without_a_token_gets_401_naming_the_metadata_and_the_scope(tmp_path: Path) -> None:
    async with signed_in_server(tmp_path, LocalProvider()) as deployment:
        response = await post_initialize(deployment.url, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.anyio
async def test_a_token_without_the_scope_gets_403_insufficient_scope_naming_it(tmp_path: Path) -> None:
    provider = LocalProvider()
    async with signed_in_server(tmp_path, provider) as deployment:
        response = await post_initialize(deployment.url, provider.token(scope="openid profile"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="the token lacks the scope suno:use", '
        f'resource_metadata="{METADATA_URL}", scope="suno:use"'
    )


@pytest.mark.anyio
async def test_a_token_in_the_query_string_is_refused_even_when_valid(tmp_path: Path) -> None:
    provider = LocalProvider()
    async with signed_in_server(tmp_path, provider) as deployment:
        response = await post_initialize(deployment.url, None, query=f"?access_token={provider.token()}")
    assert response.status_code == 400
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request"')
    assert response.json()["error_description"] == "send the access token in the Authorization header only"


@pytest.mark.anyio
async def test_the_protected_resource_metadata_names_the_public_url_the_issuer_and_the_scope(tmp_path: Path) -> None:
    async with signed_in_server(tmp_path, LocalProvider()) as deployment, httpx2.AsyncClient() as http:
        origin = deployment.url.removesuffix("/mcp")
        response = await http.get(f"{origin}/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["suno:use"],
        "bearer_methods_supported": ["header"],
        "resource_name": "ccapi-suno",
    }


@pytest.mark.anyio
async def test_a_person_with_a_valid_token_generates_and_the_token_never_reaches_ccapi(tmp_path: Path) -> None:
    provider = LocalProvider()
    token = provider.token(kid="ec-1")
    async with signed_in_server(tmp_path, provider) as deployment, person(deployment.url, token) as alice:
        submitted = await call(alice, "suno_generate_music", {"description": "a song after signing in"})
        accepted = deployment.sandbox.stats.accepted_submits
    assert submitted["task_id"].startswith("task_")
    assert accepted == 1  # the sandbox takes only the server's key: a person's token would have been refused


@pytest.mark.anyio
async def test_two_people_see_only_their_own_tasks_and_bobs_budget_stops_bob_not_alice(tmp_path: Path) -> None:
    provider = LocalProvider()
    bob = oauth_principal(ISSUER, "bob")
    async with (
        signed_in_server(tmp_path, provider, principal_budgets={bob: (0.01, None)}) as deployment,
        person(deployment.url, provider.token("alice")) as alice,
        person(deployment.url, provider.token("bob")) as bob_client,
    ):
        hers = (await call(alice, "suno_generate_music", {"description": "alice's song"}))["task_id"]
        alices_list = [task["task_id"] for task in (await call(alice, "suno_list_tasks", {}))["tasks"]]
        bobs_list = (await call(bob_client, "suno_list_tasks", {}))["tasks"]
        bobs_view_of_hers = await bob_client.call_tool("suno_get_task", {"task_id": hers})
        refused = await bob_client.call_tool("suno_generate_music", {"description": "bob's song"})
        second = await call(alice, "suno_generate_music", {"description": "alice's second song"})
        submits = deployment.sandbox.stats.accepted_submits
    assert alices_list == [hers]
    assert bobs_list == []
    assert bobs_view_of_hers.is_error and hers in text_of(bobs_view_of_hers)
    assert refused.is_error and "past your own $0.01 daily budget" in text_of(refused)
    assert "CCAPI_SUNO_OAUTH_PEOPLE_FILE" in text_of(refused)
    assert second["task_id"].startswith("task_")
    assert submits == 2  # alice's two: bob's was never sent


@pytest.mark.anyio
async def test_usage_names_the_person_by_a_readable_claim_and_the_log_maps_it_to_the_principal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = LocalProvider()
    token = provider.token("248289761001", email="alice@example.com")
    with caplog.at_level(logging.INFO, logger="ccapi_suno_mcp.auth"):
        async with signed_in_server(tmp_path, provider) as deployment, person(deployment.url, token) as alice:
            used = await call(alice, "suno_get_usage", {})
    principal = oauth_principal(ISSUER, "248289761001")
    assert used["note"].startswith("Usage of alice@example.com (signed in). ")
    signed_in = f"signed in: alice@example.com (subject 248289761001) is principal {principal}"
    assert [record.getMessage() for record in caplog.records].count(signed_in) == 1


@pytest.mark.anyio
async def test_a_subject_with_any_characters_is_a_principal_with_a_safe_stable_name(tmp_path: Path) -> None:
    provider = LocalProvider()
    subject = "google-oauth2|1234567890/ä"
    principal = oauth_principal(ISSUER, subject)
    async with (
        signed_in_server(tmp_path, provider) as deployment,
        person(deployment.url, provider.token(subject)) as someone,
    ):
        listed = await call(someone, "suno_list_tasks", {})
    assert listed["tasks"] == []
    assert principal == oauth_principal(ISSUER, subject)
    assert principal.startswith("oidc-") and principal[5:].isalnum() and len(principal) == 29
    assert principal != oauth_principal("https://other-idp.example.test/", subject)


@pytest.mark.anyio
async def test_entra_style_tokens_with_an_extra_audience_and_scp_are_accepted(tmp_path: Path) -> None:
    provider = LocalProvider()
    oauth = replace(OAUTH, audiences=("api://0a1b2c3d-app",))
    token = provider.token(aud="api://0a1b2c3d-app", scope=None, drop=("scope",), scp="suno:use User.Read")
    async with signed_in_server(tmp_path, provider, oauth=oauth) as deployment, person(deployment.url, token) as p:
        listed = await call(p, "suno_list_tasks", {})
    assert listed["tasks"] == []


@pytest.mark.anyio
async def test_an_entra_scope_uri_is_matched_by_its_last_segment_in_scp(tmp_path: Path) -> None:
    provider = LocalProvider()
    oauth = replace(OAUTH, scope="api://0a1b2c3d-app/suno.use")
    async with signed_in_server(tmp_path, provider, oauth=oauth) as deployment:
        short = await post_initialize(deployment.url, provider.token(drop=("scope",), scp="suno.use"))
        other = await post_initialize(deployment.url, provider.token(drop=("scope",), scp="suno.admin"))
    assert short.status_code == 200
    assert other.status_code == 403
    assert 'scope="api://0a1b2c3d-app/suno.use"' in other.headers["www-authenticate"]


@pytest.mark.anyio
async def test_the_group_claim_when_configured_keeps_out_people_not_in_the_group(tmp_path: Path) -> None:
    provider = LocalProvider()
    oauth = replace(OAUTH, group=("groups", "suno"))
    async with signed_in_server(tmp_path, provider, oauth=oauth) as deployment:
        outside = await post_initialize(deployment.url, provider.token(groups=["staff"]))
        inside = await post_initialize(deployment.url, provider.token(groups=["staff", "suno"]))
    assert outside.status_code == 403
    assert "your account's groups claim does not include suno" in outside.json()["error_description"]
    assert inside.status_code == 200


@pytest.mark.anyio
async def test_a_service_token_from_the_tokens_file_works_beside_people(tmp_path: Path) -> None:
    provider = LocalProvider()
    principals = {SERVICE_TOKEN: "ci-bot"}
    async with signed_in_server(tmp_path, provider, principals=principals) as deployment:
        service = await post_initialize(deployment.url, SERVICE_TOKEN)
        near_miss = await post_initialize(deployment.url, SERVICE_TOKEN[:-1] + "x")
    assert service.status_code == 200
    assert near_miss.status_code == 401


@pytest.mark.anyio
async def test_a_rotated_key_is_fetched_once_and_then_served_from_the_cache(tmp_path: Path) -> None:
    provider = LocalProvider()
    async with signed_in_server(tmp_path, provider) as deployment:
        first = await post_initialize(deployment.url, provider.token())
        provider.add_key("rsa-2")
        deployment.key_clock.later()
        rotated = [await post_initialize(deployment.url, provider.token(kid="rsa-2")) for _ in range(3)]
    assert first.status_code == 200
    assert [response.status_code for response in rotated] == [200, 200, 200]
    assert provider.fetches == 2


@pytest.mark.anyio
async def test_when_the_provider_is_unreachable_cached_keys_work_and_unknown_ones_get_a_clear_401_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = LocalProvider()
    provider.add_key("rsa-new")
    provider.published.remove("rsa-new")
    async with signed_in_server(tmp_path, provider) as deployment:
        known = await post_initialize(deployment.url, provider.token())
        provider.reachable = False
        deployment.key_clock.later()
        with caplog.at_level(logging.ERROR, logger="ccapi_suno_mcp.auth"):
            unknown = [await post_initialize(deployment.url, provider.token(kid="rsa-new")) for _ in range(3)]
            still = await post_initialize(deployment.url, provider.token(kid="ec-1"))
    assert known.status_code == 200
    assert [response.status_code for response in unknown] == [401, 401, 401]
    assert unknown[0].json()["error_description"] == (
        "the token is signed with a key not known yet, and the identity provider's keys cannot be fetched "
        "(the server's log says why)"
    )
    assert still.status_code == 200
    failing = "cannot fetch the identity provider's signing keys"
    assert len([record for record in caplog.records if failing in record.message]) == 1


def test_the_oauth_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    people = tmp_path / "people.json"
    people.write_text(json.dumps({"*": {"daily_budget_usd": 2}, "auth0|bob": {"monthly_budget_usd": 30}}))
    settings = Settings.from_env(
        {
            "CCAPI_SUNO_HOME": str(tmp_path),
            "CCAPI_SUNO_OAUTH_ISSUER": ISSUER,
            "CCAPI_SUNO_OAUTH_RESOURCE": RESOURCE,
            "CCAPI_SUNO_OAUTH_AUDIENCES": "api://guid-1, api://guid-2",
            "CCAPI_SUNO_OAUTH_GROUP": "roles=Suno.Use",
            "CCAPI_SUNO_OAUTH_PEOPLE_FILE": str(people),
        }
    )
    assert settings.oauth == OAuthSettings(
        issuer=ISSUER,
        resource=RESOURCE,
        audiences=("api://guid-1", "api://guid-2"),
        group=("roles", "Suno.Use"),
        default_budget=(2.0, None),
    )
    assert settings.isolated
    assert settings.own_budgets(oauth_principal(ISSUER, "auth0|bob")) == (None, 30.0)
    assert settings.own_budgets(oauth_principal(ISSUER, "carol")) == (2.0, None)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CCAPI_SUNO_OAUTH_ISSUER": ISSUER}, "CCAPI_SUNO_OAUTH_RESOURCE is not set"),
        ({"CCAPI_SUNO_OAUTH_RESOURCE": RESOURCE}, "CCAPI_SUNO_OAUTH_ISSUER is not set"),
        (
            {"CCAPI_SUNO_OAUTH_ISSUER": "http://idp.example.test/", "CCAPI_SUNO_OAUTH_RESOURCE": RESOURCE},
            "CCAPI_SUNO_OAUTH_ISSUER must be an https:// URL",
        ),
        (
            {"CCAPI_SUNO_OAUTH_ISSUER": ISSUER, "CCAPI_SUNO_OAUTH_RESOURCE": RESOURCE, "CCAPI_SUNO_OAUTH_GROUP": "x"},
            "CCAPI_SUNO_OAUTH_GROUP must be claim=value",
        ),
        (
            {
                "CCAPI_SUNO_OAUTH_ISSUER": ISSUER,
                "CCAPI_SUNO_OAUTH_RESOURCE": RESOURCE,
                "CCAPI_SUNO_OAUTH_INTROSPECTION_URL": "https://idp.example.test/introspect",
            },
            "needs this server's own CCAPI_SUNO_OAUTH_CLIENT_ID",
        ),
    ],
)
def test_incomplete_oauth_settings_are_refused_with_what_to_set(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"CCAPI_SUNO_HOME": str(tmp_path), **environment})


@pytest.mark.anyio
async def test_with_no_keys_cached_and_the_provider_down_every_token_gets_a_clear_401(tmp_path: Path) -> None:
    provider = LocalProvider()
    provider.reachable = False
    async with signed_in_server(tmp_path, provider) as deployment:
        response = await post_initialize(deployment.url, provider.token())
    assert response.status_code == 401
    assert "the identity provider's keys cannot be fetched" in response.json()["error_description"]


@asynccontextmanager
async def metadata_host(issuer_named: Callable[[str], str]) -> AsyncGenerator[tuple[str, list[str]]]:
    """An issuer on a loopback port serving OpenID metadata (whose `issuer` is `issuer_named(origin)`) and a JWKS;
    yields the issuer and the paths asked for."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    provider, asked, origin = LocalProvider(), list[str](), [""]

    async def metadata(request: Request) -> JSONResponse:
        asked.append(request.url.path)
        return JSONResponse({"issuer": issuer_named(origin[0]), "jwks_uri": f"{origin[0]}/realms/team/certs"})

    async def certs(request: Request) -> JSONResponse:
        asked.append(request.url.path)
        return JSONResponse(provider.jwks())

    routes = [
        Route("/realms/team/.well-known/openid-configuration", metadata),
        Route("/realms/team/certs", certs),
    ]
    async with serve_asgi(Starlette(routes=routes)) as served:
        origin[0] = served
        yield f"{served}/realms/team", asked


@pytest.mark.anyio
async def test_the_keys_are_found_through_the_issuers_metadata_off_the_event_loop() -> None:
    # The host runs on this event loop: a fetch that blocked the loop would never be answered.
    with anyio.fail_after(10):
        async with metadata_host(lambda origin: f"{origin}/realms/team") as (issuer, asked):
            keys = SigningKeys(provider_jwks(issuer, None))
            found = await keys.get("rsa-1")
            again = await keys.get("ec-1")
    assert found is not None and again is not None
    assert asked == ["/realms/team/.well-known/openid-configuration", "/realms/team/certs"]


@pytest.mark.anyio
async def test_metadata_naming_another_issuer_is_refused_and_says_to_copy_the_issuer_exactly() -> None:
    async with metadata_host(lambda origin: f"{origin}/realms/team/") as (issuer, _):
        keys = SigningKeys(provider_jwks(issuer, None))
        with pytest.raises(KeysUnavailable, match="set CCAPI_SUNO_OAUTH_ISSUER to the provider's issuer exactly"):
            await keys.get("rsa-1")
