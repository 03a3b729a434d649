"""A test identity provider in memory: its own RSA and EC keys, its JWKS, and access tokens minted to order."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ccapi_suno_mcp.settings import OAuthSettings

ISSUER = "https://idp.example.test/realms/team"
RESOURCE = "https://suno.example.test/mcp"
METADATA_URL = "https://suno.example.test/.well-known/oauth-protected-resource/mcp"
OAUTH = OAuthSettings(issuer=ISSUER, resource=RESOURCE)


class LocalProvider:
    """Keys by key id (`rsa-1` RS256, `ec-1` ES256); `jwks()` lists the public halves of those published."""

    def __init__(self) -> None:
        self.private: dict[str, Any] = {
            "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec-1": ec.generate_private_key(ec.SECP256R1()),
        }
        self.published = ["rsa-1", "ec-1"]
        self.reachable = True
        self.fetches = 0

    def add_key(self, kid: str) -> None:
        """A new RSA key, published from now on (a rotation)."""
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        from ccapi_suno_mcp.auth import KeysUnavailable

        self.fetches += 1
        if not self.reachable:
            raise KeysUnavailable("https://idp.example.test/jwks could not be reached (connection refused)")
        keys: list[dict[str, Any]] = []
        for kid in self.published:
            key = self.private[kid]
            if isinstance(key, rsa.RSAPrivateKey):
                public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                alg = "RS256"
            else:
                public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
                alg = "ES256"
            keys.append({**public, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def token(
        self,
        subject: str = "alice",
        *,
        kid: str = "rsa-1",
        headers: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """An access token of `subject` for our resource with the scope, signed by `kid`; `claims` override."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER, "aud": RESOURCE, "sub": subject, "iat": now, "exp": now + 300,
            "scope": "openid suno:use", "client_id": "some-client",
        }  # fmt: skip
        payload.update(claims)
        for name in drop:
            payload.pop(name)
        algorithm = "RS256" if kid.startswith("rsa") else "ES256"
        return jwt.encode(payload, self.private[kid], algorithm=algorithm, headers={"kid": kid, **(headers or {})})
