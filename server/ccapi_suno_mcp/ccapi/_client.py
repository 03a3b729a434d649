"""The typed async client of CCAPI's Suno API. The only module of the product that imports httpx2.

Retry policy (constants below): polls and other free reads retry on 408, 429, 5xx and on any
transport failure, with capped exponential backoff, full jitter and `Retry-After`. A submit costs
money, so it is retried only when the connection never opened (connect error or timeout, pool
timeout): after that the request may have reached CCAPI and a retry could bill twice.

Every answer is streamed and read to at most `MAX_RESPONSE_BYTES`; a larger one is refused, unread, and
not retried.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import anyio
import httpx2
from pydantic import ValidationError

from ccapi_suno_mcp._json import json_list, json_object
from ccapi_suno_mcp.ccapi._constants import DEFAULT_BASE_URL
from ccapi_suno_mcp.ccapi._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CCAPIError,
    MalformedAPIKeyError,
    MissingAPIKeyError,
    RateLimitedError,
    ResponseTooLargeError,
    UnexpectedResponseError,
    error_from_response,
    redact,
)
from ccapi_suno_mcp.ccapi._keys import key_problem
from ccapi_suno_mcp.ccapi._models import Balance, SunoTask, lenient

if TYPE_CHECKING:
    from ccapi_suno_mcp.ccapi._addresses import Resolver

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "INITIAL_RETRY_DELAY",
    "MAX_MEDIA_REDIRECTS",
    "MAX_RESPONSE_BYTES",
    "MAX_RETRY_DELAY",
    "RETRYABLE_STATUS_CODES",
    "Download",
    "SunoClient",
    "failures_seen",
    "within_deadline",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
DEFAULT_MAX_RETRIES = 4
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
MAX_MEDIA_REDIRECTS = 5
BATCH_SIZE = 100
"""Ids per batch fetch: CCAPI documents no limit, so stay well inside any SQL `IN` or body cap."""

MAX_RESPONSE_BYTES = 8 * 2**20
"""The most of one CCAPI answer that is read (after decompression): a batch of 100 tasks with full lyrics is well
under 2 MB, so anything larger is refused, never kept."""
_GLIMPSE = 80
"""Characters of an unreadable answer quoted in the error."""

_NEVER_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_FAILURES: ContextVar[list[CCAPIError] | None] = ContextVar("ccapi_failures", default=None)


@contextmanager
def failures_seen() -> Generator[list[CCAPIError]]:
    """Collect every failed attempt of the CCAPI calls made inside this block (in this task), retried or not.

    When a deadline cuts retries short, the last one says what CCAPI actually did.
    """
    seen: list[CCAPIError] = []
    token = _FAILURES.set(seen)
    try:
        yield seen
    finally:
        _FAILURES.reset(token)


@contextmanager
def within_deadline(seconds: float) -> Generator[None]:
    """Bound the CCAPI calls inside this block by `seconds`, retries included.

    Raises:
        CCAPIError: past the deadline, the last failed attempt's error (what CCAPI actually did, e.g. answered
            an HTML page), or `APITimeoutError` when no attempt had failed yet.
    """
    with failures_seen() as failures:
        try:
            with anyio.fail_after(seconds):
                yield
        except TimeoutError:
            if failures:
                raise failures[-1] from None
            message = f"CCAPI did not answer within {round(seconds, 1):g} s"
            raise APITimeoutError(message, request_may_have_been_sent=True) from None


Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Download:
    """What `SunoClient.download` streamed: its declared type and the byte count written."""

    content_type: str
    size: int


class SunoClient:
    """CCAPI's Suno routes: submit an action, fetch one or many tasks, read the balance.

    Args:
        api_key: the CCAPI key (`sk-...`). Without one, every call raises `MissingAPIKeyError`.
        base_url: CCAPI's origin.
        http_client: an `httpx2.AsyncClient` to use (tests pass one with a `MockTransport`);
            the caller then owns it. Otherwise the client makes and closes its own.
        max_retries: retries of a retryable request after the first attempt.
        sleep: awaited between retries; tests pass a recorder so that nothing waits.
        resolve: resolves a media host's name to its addresses (default: the system resolver); tests
            pass their own so that a mock CDN's name needs no DNS.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        http_client: httpx2.AsyncClient | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
        sleep: Sleep = anyio.sleep,
        jitter: Callable[[], float] = random.random,
        resolve: Resolver | None = None,
    ) -> None:
        self._api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self._owns_client = http_client is None
        self._client = http_client  # our own is made on first use: building its TLS context costs ~25 ms
        self._timeout = timeout
        self.max_retries = max_retries
        self._sleep = sleep
        self._jitter = jitter
        self._resolve: Resolver = resolve or _system_resolve

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    @property
    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the Suno routes ---------------------------------------------------------------------

    async def submit(self, action: str, body: dict[str, Any]) -> str:
        """Submit one action (`POST /suno/submit/{action}`) and return CCAPI's task id.

        Billable. Retried only when the connection never opened.

        Raises:
            CCAPIError: a subclass telling what went wrong; `APIConnectionError` carries
                `request_may_have_been_sent`.
        """
        envelope = await self._request("POST", f"/suno/submit/{action.upper()}", json_body=body, idempotent=False)
        task_id = envelope.get("data")
        if not isinstance(task_id, str) or not task_id:
            raise UnexpectedResponseError("CCAPI accepted the submit but sent no task id", status_code=200)
        return task_id

    async def fetch_task(self, task_id: str) -> SunoTask:
        """Fetch one task (`GET /suno/fetch/{task_id}`). Free.

        Raises:
            NotFoundError: the task does not exist or belongs to another key.
            CCAPIError: any other failure, after retries.
        """
        envelope = await self._request("GET", f"/suno/fetch/{task_id}", idempotent=True)
        return self._parse_task(envelope.get("data"))

    async def fetch_tasks(self, task_ids: Sequence[str]) -> list[SunoTask]:
        """Fetch many tasks (`POST /suno/fetch`), `BATCH_SIZE` ids per request. Free.

        Unknown ids and other keys' tasks are simply absent from the answer.

        Raises:
            CCAPIError: after retries.
        """
        unique = list(dict.fromkeys(task_ids))
        tasks: list[SunoTask] = []
        for start in range(0, len(unique), BATCH_SIZE):
            chunk = unique[start : start + BATCH_SIZE]
            envelope = await self._request("POST", "/suno/fetch", json_body={"ids": chunk}, idempotent=True)
            records = envelope.get("data")
            if records is None:
                continue
            record_list = json_list(records)
            if record_list is None:
                raise UnexpectedResponseError("CCAPI's batch fetch answered without a task list", status_code=200)
            tasks.extend(self._parse_task(record) for record in record_list)
        return tasks

    async def check_access(self) -> None:
        """Prove the key works with a free call: a batch fetch of no ids (`POST /suno/fetch`).

        Raises:
            AuthenticationError: the key is rejected.
            CCAPIError: CCAPI cannot be reached or answers oddly.
        """
        await self._request("POST", "/suno/fetch", json_body={"ids": []}, idempotent=True)

    async def get_balance(self) -> Balance:
        """The account balance from new-api's OpenAI-style billing routes (inferred at CCAPI). Free.

        Raises:
            CCAPIError: after retries.
        """
        subscription = await self._request("GET", "/v1/dashboard/billing/subscription", idempotent=True, envelope=False)
        usage = await self._request("GET", "/v1/dashboard/billing/usage", idempotent=True, envelope=False)
        total = _number(subscription.get("hard_limit_usd"))
        used_cents = _number(usage.get("total_usage"))
        if total is None:
            raise UnexpectedResponseError("CCAPI's billing answer has no hard_limit_usd", status_code=200)
        if total >= 100_000_000:  # new-api reports an unlimited key this way
            return Balance(remaining_usd=None, used_usd=_cents(used_cents), total_usd=None, unlimited=True)
        used = _cents(used_cents) or 0.0
        return Balance(remaining_usd=round(total - used, 4), used_usd=used, total_usd=total)

    async def list_models(self) -> list[str]:
        """Model names the key may use (`GET /v1/models`): `suno_<action>` names reveal action tokens.

        Raises:
            CCAPIError: after retries.
        """
        answer = await self._request("GET", "/v1/models", idempotent=True, envelope=False)
        names: list[str] = []
        for item in json_list(answer.get("data")) or []:
            entry = json_object(item)
            if entry is not None and isinstance(entry.get("id"), str):
                names.append(entry["id"])
        return names

    @asynccontextmanager
    async def open_download(self, url: str) -> AsyncGenerator[tuple[str, AsyncIterator[bytes]]]:
        """Stream a result file (audio, image, video, WAV, MIDI) from its CDN link.

        The CCAPI key is never sent to a media host. Only public hosts are reached (CCAPI's own origin
        aside): each hop's host is resolved and checked first, and the request goes to the checked address.
        Up to `MAX_MEDIA_REDIRECTS` redirects are followed, each to an https link. Yields the content type
        and the chunks.

        Raises:
            ForbiddenAddressError: a link or redirect points at a non-public address (nothing connected to).
            APIConnectionError: the file could not be read.
            APIStatusError: the host answered with an error status.
            UnexpectedResponseError: too many redirects, or one to a link that is not https.
        """
        try:
            for _ in range(MAX_MEDIA_REDIRECTS + 1):
                request = await self._media_request(url)
                response = await self._http.send(request, stream=True)
                try:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        url = str(httpx2.URL(url).join(location))
                        if not (url.startswith("https://") or self._own_origin(url)):
                            raise UnexpectedResponseError(
                                f"the file host redirected to a link that is not https ({url.split(':', 1)[0]})",
                                status_code=response.status_code,
                            )
                        continue
                    if response.status_code >= 300:
                        raise APIStatusError(
                            f"the file host answered HTTP {response.status_code}", status_code=response.status_code
                        )
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    yield content_type, response.aiter_bytes()
                    return
                finally:
                    await response.aclose()
            raise UnexpectedResponseError(f"the file host redirected more than {MAX_MEDIA_REDIRECTS} times")
        except httpx2.TimeoutException as exc:
            raise APITimeoutError("timed out reading the file", request_may_have_been_sent=True) from exc
        except httpx2.RequestError as exc:
            message = f"could not read the file: {type(exc).__name__}"
            raise APIConnectionError(message, request_may_have_been_sent=True) from exc

    def _own_origin(self, url: str) -> bool:
        """Whether `url` is on CCAPI's own origin (the base URL), which needs no address check."""
        return url == self.base_url or url.startswith(self.base_url + "/")

    async def _media_request(self, url: str) -> httpx2.Request:
        """The GET of one media hop, sent to the checked address of its host (Host and TLS name unchanged)."""
        if self._own_origin(url):
            return self._http.build_request("GET", url)
        from ccapi_suno_mcp.ccapi._addresses import checked_address

        target = httpx2.URL(url)
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await checked_address(target.host, port, self._resolve)
        return self._http.build_request(
            "GET",
            target.copy_with(host=address),
            headers={"Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host},
        )

    # -- the machinery -----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self._api_key is None:
            raise MissingAPIKeyError("no CCAPI key is configured (set CCAPI_API_KEY)")
        if (problem := key_problem(self._api_key)) is not None:  # httpx2 would fail mid-send on it
            raise MalformedAPIKeyError(problem)
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        envelope: bool = True,
    ) -> dict[str, Any]:
        headers = self._headers()
        attempt = 0
        while True:
            try:
                return await self._send_once(method, path, headers=headers, json_body=json_body, envelope=envelope)
            except CCAPIError as exc:
                if (seen := _FAILURES.get()) is not None:
                    seen.append(exc)
                delay = self._retry_delay(exc, attempt, idempotent=idempotent)
                if delay is None:
                    raise
                logger.warning("CCAPI %s %s failed (%s); retry %d in %.1fs", method, path, exc, attempt + 1, delay)
            attempt += 1
            await self._sleep(delay)

    async def _send_once(
        self, method: str, path: str, *, headers: dict[str, str], json_body: Any, envelope: bool
    ) -> dict[str, Any]:
        try:
            async with self._http.stream(method, self.base_url + path, headers=headers, json=json_body) as response:
                body = await _read_capped(response)
            return self._read(response, body, envelope=envelope)
        except _NEVER_SENT as exc:
            timeout = isinstance(exc, httpx2.TimeoutException)
            error_type = APITimeoutError if timeout else APIConnectionError
            raise error_type(
                f"could not connect to CCAPI at {self.base_url} ({type(exc).__name__})",
                request_may_have_been_sent=False,
            ) from exc
        except httpx2.TimeoutException as exc:
            raise APITimeoutError(
                f"CCAPI did not answer in time ({type(exc).__name__})", request_may_have_been_sent=True
            ) from exc
        except httpx2.RequestError as exc:  # a broken connection, or an answer that cannot be decoded
            raise APIConnectionError(
                f"the connection to CCAPI broke ({type(exc).__name__})", request_may_have_been_sent=True
            ) from exc

    def _read(self, response: httpx2.Response, body: bytes, *, envelope: bool) -> dict[str, Any]:
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 300:
            raise error_from_response(
                response.status_code,
                redact(_text(body), self._api_key),
                content_type=content_type,
                retry_after=response.headers.get("retry-after"),
            )
        try:
            fields = json_object(json.loads(body))
        except (ValueError, RecursionError):
            fields = None
        if fields is None:
            raise UnexpectedResponseError(
                f"CCAPI answered HTTP {response.status_code} with a body that is not a JSON object "
                f"({redact(_glimpse(body, content_type), self._api_key)})",
                status_code=response.status_code,
            )
        if envelope and fields.get("code") != "success":
            if "code" not in fields:
                raise UnexpectedResponseError("CCAPI answered without its {code, message, data} envelope")
            raise error_from_response(
                response.status_code, redact(_text(body), self._api_key), content_type=content_type
            )
        return fields

    def _retry_delay(self, error: CCAPIError, attempt: int, *, idempotent: bool) -> float | None:
        """Seconds to wait before retrying `error`, or None when it must not be retried."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, APIConnectionError):
            retryable = idempotent or not error.request_may_have_been_sent
        elif isinstance(error, APIStatusError):
            retryable = idempotent and error.status_code in RETRYABLE_STATUS_CODES
        else:  # an answer too large to read would be as large again
            retryable = idempotent and isinstance(error, UnexpectedResponseError)
            retryable = retryable and not isinstance(error, ResponseTooLargeError)
        if not retryable:
            return None
        backoff = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2**attempt)
        delay = backoff * (0.5 + 0.5 * self._jitter())
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
        return delay

    @staticmethod
    def _parse_task(record: Any) -> SunoTask:
        fields = json_object(record)
        if fields is None or not isinstance(fields.get("task_id"), str):
            raise UnexpectedResponseError("CCAPI sent a task record without a task_id", status_code=200)
        try:
            return lenient(SunoTask, fields)
        except ValidationError as exc:
            raise UnexpectedResponseError(f"CCAPI sent a task record this client cannot read: {exc}") from None


async def _read_capped(response: httpx2.Response) -> bytes:
    """The body of `response`, read to at most `MAX_RESPONSE_BYTES`.

    Raises:
        ResponseTooLargeError: the answer declares or brings more; what was read is dropped.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large(response, int(declared))
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _too_large(response, None)
    return bytes(body)


def _too_large(response: httpx2.Response, size: int | None) -> ResponseTooLargeError:
    limit = MAX_RESPONSE_BYTES // 2**20
    what = f"{size / 2**20:.0f} MB" if size is not None else f"more than {limit} MB"
    return ResponseTooLargeError(
        f"CCAPI answered HTTP {response.status_code} with {what}, more than the {limit} MB this server reads from "
        "one answer; it was not read",
        status_code=response.status_code,
    )


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _glimpse(body: bytes, content_type: str) -> str:
    """What an unreadable answer was, briefly: its type, size, and its title or first characters."""
    text = _text(body[:2048])
    kind = content_type.split(";")[0].strip() or "no content type"
    title = _TITLE.search(text)
    shown = " ".join((title.group(1) if title else text).split())
    shown = shown if len(shown) <= _GLIMPSE else shown[: _GLIMPSE - 1] + "…"
    about = f"titled {shown!r}" if title else f"starting {shown!r}" if shown else "empty"
    return f"{kind}, {len(body):,} bytes, {about}"


async def _system_resolve(host: str, port: int) -> list[str]:
    from ccapi_suno_mcp.ccapi._addresses import system_resolve  # imported on a media download only

    return await system_resolve(host, port)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _cents(value: float | None) -> float | None:
    return None if value is None else round(value / 100, 4)
