"""Spend: what each task cost (from CCAPI's `quota`), each action's learned price, and budgets.

CCAPI charges a task the `quota` its record reports (new-api pre-charges at submit and refunds a task that
fails); `CCAPI_QUOTA_PER_USD` quota units make a dollar. The ledger records the charges; this layer turns them
into dollars by local day, week and month, learns each action's price as the median of its last charges, and
decides when a billable call needs the user's approval (past a budget, or always) and what the user is asked.
"""

from typing import TYPE_CHECKING

from ccapi_suno_mcp._lazy import lazy_exports

if TYPE_CHECKING:
    from ccapi_suno_mcp.spend._budget import Approval, Budgets, Quote, over_budget_message, quote
    from ccapi_suno_mcp.spend._calendar import Calendar, Periods
    from ccapi_suno_mcp.spend._money import PRICE_SAMPLES, dollars, learned_price, to_quota, to_usd
    from ccapi_suno_mcp.spend._usage import DAYS_SHOWN, Spend, UsageView, render_usage, usage

__all__ = [
    "DAYS_SHOWN",
    "PRICE_SAMPLES",
    "Approval",
    "Budgets",
    "Calendar",
    "Periods",
    "Quote",
    "Spend",
    "UsageView",
    "dollars",
    "learned_price",
    "over_budget_message",
    "quote",
    "render_usage",
    "to_quota",
    "to_usd",
    "usage",
]

__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["Approval", "Budgets", "Quote", "over_budget_message", "quote"], "_budget"),
        **dict.fromkeys(["Calendar", "Periods"], "_calendar"),
        **dict.fromkeys(["PRICE_SAMPLES", "dollars", "learned_price", "to_quota", "to_usd"], "_money"),
        **dict.fromkeys(["DAYS_SHOWN", "Spend", "UsageView", "render_usage", "usage"], "_usage"),
    },
)
