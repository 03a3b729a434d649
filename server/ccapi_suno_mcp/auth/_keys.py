"""The identity provider's signing keys: fetched once, cached, refreshed when a token names a key not seen yet."""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError

__all__ = ["FETCH_TIMEOUT", "KeysUnavailable", "SigningKeys", "fetch_json", "provider_jwks"]

logger = logging.getLogger(__name__)

FETCH_TIMEOUT = 10.0
"""Seconds a request to the identity provider may take."""
REFRESH_INTERVAL = 60.0
"""Seconds between two fetches of the keys: an unknown key id refreshes them at most this often."""

JwksFetch = Callable[[], Mapping[str, Any]]
"""Returns the provider's JWKS document; synchronous (it runs in a worker thread). Raises `KeysUnavailable`."""


class KeysUnavailable(Exception):
    """The identity provider's keys (or metadata) could not be fetched; the message says why."""


def fetch_json(url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
    """GET (or, with `data`, POST) `url` and parse its JSON: blocking, for a worker thread.

    Raises:
        KeysUnavailable: when the provider cannot be reached or answers something other than JSON.
    """
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
            return json.loads(response.read(1_000_000))
    except urllib.error.HTTPError as exc:
        raise KeysUnavailable(f"{url} answered HTTP {exc.code}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise KeysUnavailable(f"{url} could not be reached ({exc})") from None
    except ValueError:
        raise KeysUnavailable(f"{url} did not answer JSON") from None


def _metadata_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be: OpenID discovery, then RFC 8414 (path inserted after the host)."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    return [
        f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        f"{origin}/.well-known/oauth-authorization-server{path}",
    ]


def provider_jwks(issuer: str, jwks_url: str | None) -> JwksFetch:
    """A `JwksFetch` of the provider's keys: at `jwks_url`, or at the `jwks_uri` of the issuer's metadata (whose
    `issuer` must equal `issuer` exactly)."""
    found: list[str] = [jwks_url] if jwks_url else []

    def fetch() -> Mapping[str, Any]:
        if not found:
            reasons: list[str] = []
            for url in _metadata_urls(issuer):
                try:
                    metadata = fetch_json(url)
                except KeysUnavailable as exc:
                    reasons.append(str(exc))
                    continue
                document = cast(dict[str, Any], metadata) if isinstance(metadata, dict) else {}
                if document.get("issuer") != issuer:
                    raise KeysUnavailable(
                        f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r}: set "
                        "CCAPI_SUNO_OAUTH_ISSUER to the provider's issuer exactly"
                    )
                if not isinstance(document.get("jwks_uri"), str):
                    raise KeysUnavailable(f"{url} has no jwks_uri: set CCAPI_SUNO_OAUTH_JWKS_URL")
                found.append(document["jwks_uri"])
                break
            else:
                raise KeysUnavailable("; ".join(reasons))
        document = fetch_json(found[0])
        if not isinstance(document, dict):
            raise KeysUnavailable(f"{found[0]} is not a JWKS document")
        return cast(dict[str, Any], document)

    return fetch


class SigningKeys:
    """The provider's public signing keys by key id, cached; fetched off the event loop.

    A token naming a key id not in the cache refreshes the cache once (at most every `REFRESH_INTERVAL`
    seconds, so tokens with made-up key ids cannot make the server hammer the provider). When the provider
    cannot be reached the cached keys keep working; that is logged once, until a fetch succeeds again.
    """

    def __init__(self, fetch: JwksFetch, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str | None, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = anyio.Lock()
        self._failing = False
        self.fetches = 0
        """How many times the keys were fetched (or tried)."""

    async def get(self, kid: str | None) -> PyJWK | None:
        """The key `kid` names (with no `kid`: the provider's only key), or None when the provider lists none such.

        Raises:
            KeysUnavailable: when the key is not cached and the provider cannot be reached.
        """
        key = self._find(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._find(kid)  # another request may have refreshed meanwhile
            if key is not None:
                return key
            now = self._clock()
            if self._fetched_at is not None and now - self._fetched_at < REFRESH_INTERVAL:
                if self._failing:
                    raise KeysUnavailable("the identity provider could not be reached")
                return None
            self._fetched_at = now
            self.fetches += 1
            try:
                document = await anyio.to_thread.run_sync(self._fetch)
                keys = PyJWKSet.from_dict(
                    {"keys": [each for each in document.get("keys", []) if each.get("use", "sig") == "sig"]}
                ).keys
            except (KeysUnavailable, PyJWKSetError) as exc:
                if not self._failing:
                    logger.error(
                        "cannot fetch the identity provider's signing keys (%s): tokens signed with keys already "
                        "known still work, others are refused until it answers",
                        exc,
                    )
                self._failing = True
                raise KeysUnavailable(str(exc)) from None
            if self._failing:
                logger.warning("the identity provider's signing keys could be fetched again")
            self._failing = False
            self._keys = {key.key_id: key for key in keys}
            if len(keys) == 1:
                self._keys.setdefault(None, keys[0])
        return self._find(kid)

    def _find(self, kid: str | None) -> PyJWK | None:
        return self._keys.get(kid)
