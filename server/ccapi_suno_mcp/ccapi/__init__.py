"""A typed async client of CCAPI's Suno API. It knows nothing of MCP."""

from typing import TYPE_CHECKING

from ccapi_suno_mcp._lazy import lazy_exports

if TYPE_CHECKING:
    from ccapi_suno_mcp.ccapi._client import (
        BATCH_SIZE,
        DEFAULT_MAX_RETRIES,
        INITIAL_RETRY_DELAY,
        MAX_RETRY_DELAY,
        RETRYABLE_STATUS_CODES,
        SunoClient,
    )
    from ccapi_suno_mcp.ccapi._constants import DEFAULT_BASE_URL
    from ccapi_suno_mcp.ccapi._errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        CCAPIError,
        ForbiddenAddressError,
        InsufficientBalanceError,
        MissingAPIKeyError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitedError,
        ServerError,
        UnexpectedResponseError,
        error_from_response,
        redact,
    )
    from ccapi_suno_mcp.ccapi._models import Balance, Clip, SunoTask, TaskStatus, clip_state_is_final, lenient

__all__ = [
    "BATCH_SIZE",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "RETRYABLE_STATUS_CODES",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "CCAPIError",
    "Clip",
    "ForbiddenAddressError",
    "InsufficientBalanceError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "SunoClient",
    "SunoTask",
    "TaskStatus",
    "UnexpectedResponseError",
    "clip_state_is_final",
    "error_from_response",
    "lenient",
    "redact",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "BATCH_SIZE": "_client",
        "DEFAULT_BASE_URL": "_constants",
        "DEFAULT_MAX_RETRIES": "_client",
        "INITIAL_RETRY_DELAY": "_client",
        "MAX_RETRY_DELAY": "_client",
        "RETRYABLE_STATUS_CODES": "_client",
        "SunoClient": "_client",
        "APIConnectionError": "_errors",
        "APIStatusError": "_errors",
        "APITimeoutError": "_errors",
        "AuthenticationError": "_errors",
        "BadRequestError": "_errors",
        "CCAPIError": "_errors",
        "ForbiddenAddressError": "_errors",
        "InsufficientBalanceError": "_errors",
        "MissingAPIKeyError": "_errors",
        "NotFoundError": "_errors",
        "PermissionDeniedError": "_errors",
        "RateLimitedError": "_errors",
        "ServerError": "_errors",
        "UnexpectedResponseError": "_errors",
        "error_from_response": "_errors",
        "redact": "_errors",
        "Balance": "_models",
        "Clip": "_models",
        "SunoTask": "_models",
        "TaskStatus": "_models",
        "clip_state_is_final": "_models",
        "lenient": "_models",
    },
)
