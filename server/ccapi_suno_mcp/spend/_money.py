"""Quota units, dollars and learned prices."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["PRICE_SAMPLES", "dollars", "learned_price", "to_quota", "to_usd"]

PRICE_SAMPLES = 5
"""How many of an action's newest charges its learned price is the median of."""


def learned_price(quotas: Sequence[int]) -> int | None:
    """The median of an action's recent charges in quota units; None before the first ("not known yet")."""
    if not quotas:
        return None
    return round(statistics.median(quotas))


def to_usd(quota: int, quota_per_usd: int) -> float:
    return round(quota / quota_per_usd, 6)


def to_quota(usd: float, quota_per_usd: int) -> int:
    return round(usd * quota_per_usd)


def dollars(usd: float) -> str:
    """A dollar amount for people: cents, and fractions of a cent when there are any (`$0.08`, `$0.085`)."""
    text = f"{usd:.4f}".rstrip("0")
    cents = len(text.partition(".")[2])
    return f"${usd:.{max(2, cents)}f}"
