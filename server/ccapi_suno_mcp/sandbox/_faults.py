"""The switches tests flip (`Faults`) and what the sandbox counted (`SandboxStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, get_args

__all__ = ["GENERIC_FAULTS", "SHAPING_FAULTS", "FaultCounter", "FaultScope", "Faults", "SandboxStats", "update_faults"]

FaultScope = Literal["all", "submit", "fetch"]

FaultCounter = Literal[
    "rate_limited",
    "server_errors",
    "html_errors",
    "html_pages",
    "malformed",
    "oversized",
    "drip",
    "dropped",
    "lost_submit_responses",
    "insufficient_balance",
    "held_submits",
    "stuck",
    "failing",
]

# Generic faults, in the order they are tried; a request receives at most one of them.
GENERIC_FAULTS: tuple[FaultCounter, ...] = (
    "dropped",
    "rate_limited",
    "server_errors",
    "html_errors",
    "html_pages",
    "malformed",
)
SHAPING_FAULTS: tuple[FaultCounter, ...] = ("oversized", "drip")
"""Faults that change how a real answer is sent (after it is made), in the order they are tried."""


@dataclass
class Faults:
    """Failure switches. Each counter means "the next N matching requests".

    The generic switches (`latency_seconds`, `rate_limited`, `server_errors`, `html_errors`, `html_pages`,
    `malformed`, `dropped`) and the shaping ones (`oversized`, `drip`) apply to the API routes chosen by `scope`;
    the others concern submits only.
    """

    latency_seconds: float = 0.0
    """Real delay before answering every API request in scope."""
    rate_limited: int = 0
    """Answer 429 with a `Retry-After: retry_after_seconds` header."""
    retry_after_seconds: int = 2
    server_errors: int = 0
    """Answer 500 with a new-api task error body."""
    html_errors: int = 0
    """Answer 502 with an HTML page, like a proxy in front of the API."""
    html_pages: int = 0
    """Answer 200 with an HTML page, like a captive portal or a misrouted proxy's maintenance page."""
    malformed: int = 0
    """Answer 200 with a body that is not JSON."""
    oversized: int = 0
    """Send the real answer with an extra `padding` field of `oversized_bytes` characters (unknown fields are
    allowed in CCAPI's answers)."""
    oversized_bytes: int = 30_000_000
    drip: int = 0
    """Send the real answer one byte every `drip_seconds`, each byte in time to beat any per-read time-out."""
    drip_seconds: float = 1.0
    dropped: int = 0
    """Close the connection in the middle of the response."""
    lost_submit_responses: int = 0
    """Submit only: create (and bill) the task, then drop the connection."""
    insufficient_balance: int = 0
    """Submit only: answer 403 `quota_not_enough`, as new-api's task relay does for a low balance."""
    held_submits: int = 0
    """Submit only: create (and bill) the task, then hold the answer back until `POST /_sandbox/release` (or
    until the client gives up): a submit caught in the money window."""
    key_revoked: bool = False
    """While true, every API request is refused with 401 as if the key had just been revoked."""
    stuck: int = 0
    """Submit only: the next N created tasks never finish."""
    failing: int = 0
    """Submit only: the next N created tasks end in FAILURE."""
    scope: FaultScope = "all"
    """Which API routes the generic switches apply to."""


@dataclass
class SandboxStats:
    """Request counters. Only API routes (`/suno/*`, `/v1/*`, `/api/*`) count as `requests`."""

    requests: int = 0
    submits: int = 0
    """Every `POST /suno/submit/*`, whatever the answer (faulted and rejected ones too)."""
    accepted_submits: int = 0
    """Tasks created (and billed)."""
    fetch_one: int = 0
    fetch_batch: int = 0
    faults_injected: int = 0
    by_action: dict[str, int] = field(default_factory=dict[str, int])
    """Accepted submits per action token."""


def update_faults(faults: Faults, changes: dict[str, object]) -> None:
    """Apply a JSON object of `Faults` fields, all or nothing.

    Raises:
        ValueError: naming the first unknown field or invalid value.
    """
    known = {item.name for item in fields(Faults)}
    checked: dict[str, object] = {}
    for name, value in changes.items():
        if name not in known:
            raise ValueError(f"{name}: unknown fault (known: {', '.join(sorted(known))})")
        if name == "scope":
            if value not in get_args(FaultScope):
                raise ValueError(f"scope: must be one of {', '.join(get_args(FaultScope))}")
        elif name == "key_revoked":
            if not isinstance(value, bool):
                raise ValueError("key_revoked: must be true or false")
        elif name in ("latency_seconds", "drip_seconds"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name}: must be a number >= 0")
            value = float(value)
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: must be an integer >= 0")
        checked[name] = value
    for name, value in checked.items():
        setattr(faults, name, value)
