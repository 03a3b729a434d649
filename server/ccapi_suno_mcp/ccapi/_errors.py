"""The error tree of the CCAPI client.

Every failure of a CCAPI call is raised as one of these, translated in exactly one place
(`error_from_response` for answers, `_client` for transport failures)::

    CCAPIError
    ├── MissingAPIKeyError          no key: nothing was sent
    │   └── MalformedAPIKeyError    a key no HTTP header can carry: nothing was sent
    ├── APIConnectionError          the request did not complete (connect, read, write, protocol)
    │   └── APITimeoutError         a timeout expired
    ├── UnexpectedResponseError     an answer we cannot read (not JSON, wrong envelope, HTML error page)
    │   └── ResponseTooLargeError   an answer past the client's size cap: refused unread, never retried
    ├── ForbiddenAddressError       a media link to a non-public address: refused before connecting
    └── APIStatusError              CCAPI answered with an error (keeps status, code and message)
        ├── AuthenticationError         401: the key is missing or rejected
        ├── InsufficientBalanceError    402, or 403 about quota/balance
        ├── PermissionDeniedError       other 403s
        ├── NotFoundError               `task_not_exist`, 404
        ├── BadRequestError             other 4xx: `invalid_action`, validation, ...
        ├── RateLimitedError            429 (with `retry_after` seconds when given)
        └── ServerError                 5xx

`APIConnectionError.request_may_have_been_sent` tells a caller whether a submit could have
reached CCAPI (and so may have been billed): only a failure to open the connection is safe.
"""

from __future__ import annotations

import json
from typing import Any

from ccapi_suno_mcp._json import json_object

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CCAPIError",
    "ForbiddenAddressError",
    "InsufficientBalanceError",
    "MalformedAPIKeyError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseTooLargeError",
    "ServerError",
    "UnexpectedResponseError",
    "error_from_response",
    "redact",
]

_MAX_MESSAGE = 300
_BALANCE_WORDS = ("quota", "balance", "insufficient", "credit", "余额", "额度")


class CCAPIError(Exception):
    """Base class of every error raised by the CCAPI client."""


class MissingAPIKeyError(CCAPIError):
    """No CCAPI key is configured, so nothing that needs one can be called."""


class MalformedAPIKeyError(MissingAPIKeyError):
    """The key holds a character no HTTP header may carry (e.g. a zero-width space): it is never sent."""


class APIConnectionError(CCAPIError):
    """The request did not complete: no answer was read."""

    def __init__(self, message: str, *, request_may_have_been_sent: bool) -> None:
        super().__init__(message)
        self.request_may_have_been_sent = request_may_have_been_sent


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout expired."""


class ForbiddenAddressError(CCAPIError):
    """A media link (or a redirect) points at a loopback, private, link-local or other non-public address;
    nothing was connected to."""


class UnexpectedResponseError(CCAPIError):
    """CCAPI (or something in front of it) answered with a body we cannot read."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ResponseTooLargeError(UnexpectedResponseError):
    """The answer is larger than the client reads (`MAX_RESPONSE_BYTES`): it was not read, nor kept."""


class APIStatusError(CCAPIError):
    """CCAPI answered with an error status or an error envelope."""

    def __init__(self, message: str, *, status_code: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed or rejected."""


class InsufficientBalanceError(APIStatusError):
    """The account's balance or quota is too low for the request."""


class PermissionDeniedError(APIStatusError):
    """403 for a reason other than balance (banned key, group or IP)."""


class NotFoundError(APIStatusError):
    """The task does not exist or belongs to another key (`task_not_exist`)."""


class BadRequestError(APIStatusError):
    """CCAPI refused the request as invalid (`invalid_action`, validation, ...)."""


class RateLimitedError(APIStatusError):
    """429: too many requests or the upstream is saturated."""

    def __init__(self, message: str, *, status_code: int, code: str | None = None, retry_after: float | None) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: CCAPI or its upstream failed."""


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` (and its part after `sk-`) masked."""
    if not secret:
        return text
    for part in sorted({secret, secret.removeprefix("sk-")}, key=len, reverse=True):  # the whole key first
        if len(part) >= 4:
            text = text.replace(part, "[redacted]")
    return text


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare, and the backoff policy copes without it
    return max(0.0, seconds)


def _code_and_message(body: Any) -> tuple[str | None, str | None]:
    """Read `{"code","message","data"}` (task routes) or `{"error":{...}}` (auth, OpenAI style)."""
    fields = json_object(body)
    if fields is None:
        return None, None
    inner = json_object(fields.get("error"))
    if inner is not None:
        code, message = inner.get("code"), inner.get("message")
    else:
        code, message = fields.get("code"), fields.get("message")
    code_text = str(code) if code not in (None, "") else None
    message_text = str(message) if message not in (None, "") else None
    return code_text, message_text


def error_from_response(
    status_code: int, body_text: str, *, content_type: str = "", retry_after: str | None = None
) -> CCAPIError:
    """Build the error for an answer that is not a success, from its status and body.

    The one place where HTTP statuses and CCAPI error codes become exception types.
    """
    body: Any = None
    if body_text:
        try:
            body = json.loads(body_text)
        except ValueError:
            body = None
    code, message = _code_and_message(body)
    if body is None and status_code >= 500:
        kind = "an HTML error page" if "html" in content_type.lower() else "an unreadable body"
        return ServerError(f"CCAPI answered HTTP {status_code} with {kind}", status_code=status_code)
    if body is None and status_code < 400:
        return UnexpectedResponseError(
            f"CCAPI answered HTTP {status_code} with a body that is not JSON", status_code=status_code
        )
    text = _short(message or code or f"HTTP {status_code}")
    lowered = f"{code or ''} {message or ''}".lower()
    if status_code == 401:
        return AuthenticationError(text, status_code=status_code, code=code)
    if status_code == 402 or (status_code == 403 and any(word in lowered for word in _BALANCE_WORDS)):
        return InsufficientBalanceError(text, status_code=status_code, code=code)
    if status_code == 403:
        return PermissionDeniedError(text, status_code=status_code, code=code)
    if status_code == 429:
        return RateLimitedError(text, status_code=status_code, code=code, retry_after=_parse_retry_after(retry_after))
    if status_code >= 500:
        return ServerError(text, status_code=status_code, code=code)
    if code == "task_not_exist" or status_code == 404:
        return NotFoundError(text, status_code=status_code, code=code)
    if status_code >= 400:
        return BadRequestError(text, status_code=status_code, code=code)
    # HTTP 2xx with an envelope whose code is not "success" (new-api turns upstream errors into these).
    if any(word in lowered for word in _BALANCE_WORDS):
        return InsufficientBalanceError(text, status_code=status_code, code=code)
    if code == "task_not_exist":
        return NotFoundError(text, status_code=status_code, code=code)
    return BadRequestError(text, status_code=status_code, code=code)
