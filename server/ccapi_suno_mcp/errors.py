"""Turning failures into tool errors: one actionable sentence each, never the key."""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError

from ccapi_suno_mcp import ccapi
from ccapi_suno_mcp.ccapi import redact

__all__ = ["NO_KEY_MESSAGE", "no_key_message", "redact", "tool_error"]

NO_KEY_MESSAGE = (
    "No CCAPI key is configured: set CCAPI_API_KEY in this server's environment and restart it "
    "(Claude Code: claude mcp add ccapi-suno -e CCAPI_API_KEY=sk-... -- uvx ccapi-suno-mcp), "
    "or start it with --sandbox to try it offline."
)


def no_key_message(placeholder: str | None = None, problem: str | None = None) -> str:
    """Why no key is configured: unset, `placeholder` (an unexpanded variable) where the key should be, or a key
    with a `problem` (a character no key has, see `ccapi.key_problem`)."""
    if problem is not None:
        return problem
    if placeholder is None:
        return NO_KEY_MESSAGE
    return (
        f"CCAPI_API_KEY holds {placeholder!r}, a placeholder, not a key: the MCP client did not expand the "
        "variable (or the snippet was pasted unedited), so nothing was sent to CCAPI; put your real key in the "
        "server's environment (Claude Code: ${CCAPI_API_KEY:-} in .mcp.json with CCAPI_API_KEY exported, or "
        "claude mcp add ... -e CCAPI_API_KEY=<your key>) and restart the server."
    )


def tool_error(
    error: ccapi.CCAPIError,
    *,
    base_url: str,
    api_key: str | None,
    subject: str = "",
    no_key: str = NO_KEY_MESSAGE,
) -> ToolError:
    """The `ToolError` for a CCAPI failure: what happened and what to do, in one sentence.

    `no_key` is the message for a missing key (see `no_key_message`).
    """
    about = f" {subject}" if subject else ""
    match error:
        case ccapi.MalformedAPIKeyError():
            message = str(error)
        case ccapi.MissingAPIKeyError():
            message = no_key
        case ccapi.AuthenticationError():
            message = (
                "CCAPI rejected the API key (HTTP 401): check CCAPI_API_KEY (a CCAPI key, sk-...) "
                "and restart the server."
            )
        case ccapi.InsufficientBalanceError():
            message = (
                f"Your CCAPI balance is too low{about} ({error.message}): top up your CCAPI account, then retry; "
                "suno_get_balance shows what is left."
            )
        case ccapi.RateLimitedError(retry_after=retry_after):
            wait = f"{retry_after:.0f} seconds" if retry_after else "a minute"
            message = f"CCAPI is rate limiting requests{about}: retry in {wait}."
        case ccapi.NotFoundError():
            message = (
                f"CCAPI has no such task{about} for this key: check the id (suno_list_tasks lists the tasks "
                "this server submitted)."
            )
        case ccapi.BadRequestError(code="invalid_action"):
            message = (
                f"CCAPI does not know this action{about} ({error.message}): the action token is inferred, "
                "so set the right one with CCAPI_SUNO_ACTIONS (see docs/ccapi.md) or run ccapi-suno-mcp doctor."
            )
        case ccapi.BadRequestError():
            code = f", code {error.code}" if error.code and error.code != error.message else ""
            message = f"CCAPI refused the request{about}: {error.message} (HTTP {error.status_code}{code}); fix it "
            message += "and retry."
        case ccapi.PermissionDeniedError():
            message = f"CCAPI denied the request{about}: {error.message}; check your key's permissions."
        case ccapi.ServerError():
            message = f"CCAPI failed{about} (HTTP {error.status_code}: {error.message}); try again in a minute."
        case ccapi.APITimeoutError():
            message = f"CCAPI at {base_url} did not answer in time{about}; try again shortly."
        case ccapi.APIConnectionError():
            message = f"Could not reach CCAPI at {base_url}{about} ({error}); check the network and CCAPI_BASE_URL."
        case _:
            message = f"CCAPI sent an answer this server cannot read{about} ({error}); try again shortly."
    return ToolError(redact(message, api_key))
