"""Who a bearer token names: an access token of the team's identity provider, checked in full, to a person."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlencode

import anyio.to_thread
import jwt

from ccapi_suno_mcp.auth._keys import KeysUnavailable, SigningKeys, fetch_json
from ccapi_suno_mcp.principals import oauth_principal
from ccapi_suno_mcp.settings import OAuthSettings

__all__ = ["ALGORITHMS", "LEEWAY", "Introspector", "Person", "Refusal", "TokenVerifier"]

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric signatures only: `none` and HMAC (whose key would be a secret we do not hold) are refused."""
LEEWAY = 30
"""Seconds of clock difference allowed with the provider."""
_REQUIRED = ["exp", "iat", "iss", "aud", "sub"]
_ACCESS_TOKEN_TYPES = {"jwt", "at+jwt", "application/at+jwt"}
_READABLE_CLAIMS = ("name", "preferred_username", "email", "upn")
_INTROSPECTION_CACHE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who signed in: their principal (from issuer and subject) and a readable name for usage and logs."""

    principal: str
    subject: str
    name: str
    scopes: frozenset[str]


class Refusal(Exception):
    """A request the resource server turns away: 401 `invalid_token` or 403 `insufficient_scope`."""

    def __init__(self, status: Literal[401, 403], error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _invalid(description: str) -> Refusal:
    return Refusal(401, "invalid_token", description)


class Introspector:
    """RFC 7662 introspection of opaque tokens with this server's own client credentials, cached briefly by a
    hash of the token (never the token itself)."""

    def __init__(self, url: str, client_id: str, client_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._url = url
        self._authorization = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        self._clock = clock
        self._cache: dict[bytes, tuple[float, dict[str, Any]]] = {}

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's claims if the provider says it is active.

        Raises:
            Refusal: when it is not active, or the provider cannot be asked.
        """
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        body = urlencode({"token": token, "token_type_hint": "access_token"}).encode()
        headers = {"Authorization": self._authorization, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            answer = await anyio.to_thread.run_sync(lambda: fetch_json(self._url, data=body, headers=headers))
        except KeysUnavailable as exc:
            logger.error("token introspection failed: %s", exc)
            raise _invalid("the identity provider could not be asked about this token; try again later") from None
        claims = cast(dict[str, Any], answer) if isinstance(answer, dict) else {}
        if claims.get("active") is not True:
            raise _invalid("the token is not active (expired, revoked, or unknown to the identity provider)")
        token_type = claims.get("token_type")
        if isinstance(token_type, str) and token_type.lower() not in ("bearer", "access_token", "dpop"):
            raise _invalid(f"a {token_type} is not an access token")
        expires = claims.get("exp")
        until = now + _INTROSPECTION_CACHE_SECONDS
        if isinstance(expires, int | float):
            until = min(until, float(expires))
        self._cache = {key: value for key, value in self._cache.items() if value[0] > now}
        self._cache[digest] = (until, claims)
        return claims


class TokenVerifier:
    """Checks an access token completely and says whose it is.

    A JWT: an allowed asymmetric algorithm, a key the provider lists, the signature, the exact issuer, one of
    our audiences, `exp`/`iat`/`iss`/`aud`/`sub` present and current (with `LEEWAY`); then the scope (from
    `scope` or `scp`) and, if configured, the group claim. An ID token (typed as one, or carrying `nonce`)
    is refused. Without a JWT's shape, the token is introspected when an introspection endpoint is set.
    """

    def __init__(
        self,
        oauth: OAuthSettings,
        keys: SigningKeys,
        introspector: Introspector | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._oauth = oauth
        self._keys = keys
        self._introspector = introspector
        self._clock = clock
        self._named: set[str] = set()

    async def verify(self, token: str) -> Person:
        """The person `token` names.

        Raises:
            Refusal: for any token that cannot be used here (401), or lacks the scope or group (403).
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            if self._introspector is None:
                raise _invalid("not a JWT access token of the configured identity provider") from None
            return self._person(self._checked_introspection(await self._introspector.claims(token)))
        return self._person(await self._checked_jwt(token, header))

    async def _checked_jwt(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]:
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise _invalid(f"tokens signed with {algorithm!r} are not accepted; allowed: {', '.join(ALGORITHMS)}")
        kind = header.get("typ")
        if isinstance(kind, str) and kind.lower() not in _ACCESS_TOKEN_TYPES:
            raise _invalid(f"a token of type {kind!r} is not an access token")
        kid = header.get("kid")
        try:
            key = await self._keys.get(kid if isinstance(kid, str) else None)
        except KeysUnavailable:
            raise _invalid(
                "the token is signed with a key not known yet, and the identity provider's keys cannot be fetched "
                "(the server's log says why)"
            ) from None
        if key is None:
            raise _invalid("the token is signed with a key the identity provider does not list")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=list(self._oauth.accepted_audiences),
                issuer=self._oauth.issuer,
                leeway=LEEWAY,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise self._wrong_audience() from None
        except jwt.InvalidIssuerError:
            raise _invalid(f"the token was not issued by {self._oauth.issuer}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise _invalid("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _invalid(f"the token is not valid ({exc})") from None
        if "nonce" in claims:
            raise _invalid("an ID token is not an access token: send the access token")
        return claims

    def _checked_introspection(self, claims: dict[str, Any]) -> dict[str, Any]:
        if claims.get("iss", self._oauth.issuer) != self._oauth.issuer:
            raise _invalid(f"the token was not issued by {self._oauth.issuer}")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else cast(list[Any], audience or [])
        if not set(audiences) & set(self._oauth.accepted_audiences):
            raise self._wrong_audience()
        expires = claims.get("exp")
        if isinstance(expires, int | float) and expires + LEEWAY < self._clock():
            raise _invalid("the token has expired")
        if not isinstance(claims.get("sub"), str):
            raise _invalid("the token lacks the 'sub' claim")
        return claims

    def _wrong_audience(self) -> Refusal:
        return _invalid(f"the token was not issued for this server (its audience must be {self._oauth.resource})")

    def _person(self, claims: Mapping[str, Any]) -> Person:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _invalid("the token lacks the 'sub' claim")
        scopes = _scopes(claims)
        # Entra ID: a client asks for api://<app>/suno.use and the token's scp holds suno.use.
        short = self._oauth.scope.rsplit("/", 1)[-1]
        if self._oauth.scope not in scopes and not ("/" in self._oauth.scope and short in scopes):
            raise Refusal(403, "insufficient_scope", f"the token lacks the scope {self._oauth.scope}")
        if self._oauth.group is not None:
            claim, value = self._oauth.group
            held = claims.get(claim)
            if not (held == value or (isinstance(held, list) and value in cast(list[Any], held))):
                raise Refusal(403, "insufficient_scope", f"your account's {claim} claim does not include {value}")
        name = next((claims[each] for each in _READABLE_CLAIMS if isinstance(claims.get(each), str)), subject)
        person = Person(oauth_principal(self._oauth.issuer, subject), subject, name, frozenset(scopes))
        if person.principal not in self._named:
            self._named.add(person.principal)
            logger.info("signed in: %s (subject %s) is principal %s", name, subject, person.principal)
        return person


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    """Scopes as a space-separated `scope` (RFC 9068, Okta, Auth0, Keycloak) or `scp` (Entra ID: a string; Okta:
    a list)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(each for each in cast(list[Any], value) if isinstance(each, str))
    return found
