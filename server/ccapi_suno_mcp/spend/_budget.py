"""Budgets: what a billable call is likely to cost, whether it fits, and what the user is asked or told.

Only the user lifts a budget: by approving the one call when asked (elicitation), or by raising the budget in
the server's environment. `force`, the model's switch for duplicates, has no say here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, Field

from ccapi_suno_mcp.ledger import OverBudgetError, SpendGate, SpendLimit, TaskLedger
from ccapi_suno_mcp.settings import ConfirmMode, Settings
from ccapi_suno_mcp.spend._calendar import Calendar, Periods
from ccapi_suno_mcp.spend._money import PRICE_SAMPLES, dollars, learned_price, to_quota, to_usd

__all__ = ["Approval", "Budgets", "Quote", "over_budget_message", "quote"]

_VARIABLES = {"daily": "CCAPI_SUNO_DAILY_BUDGET_USD", "monthly": "CCAPI_SUNO_MONTHLY_BUDGET_USD"}
_SPENT = {"daily": "today", "monthly": "this month"}


class Approval(BaseModel):
    """The one-field form of the question: submitting is what accepting means."""

    approve: bool = Field(default=True, title="Submit this paid call", description="Leave on to submit it.")


@dataclass(frozen=True, slots=True)
class Budgets:
    """The user's limits and confirmation mode, from the settings."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    confirm: ConfirmMode = "over_budget"
    quota_per_usd: int = 500_000

    @classmethod
    def of(cls, settings: Settings) -> Budgets:
        return cls(settings.daily_budget_usd, settings.monthly_budget_usd, settings.confirm, settings.quota_per_usd)

    def limits(self, periods: Periods) -> tuple[SpendLimit, ...]:
        """The budgets in force at `periods`, in quota units."""
        limits: list[SpendLimit] = []
        if self.daily_usd is not None:
            limits.append(SpendLimit("daily", periods.day, to_quota(self.daily_usd, self.quota_per_usd)))
        if self.monthly_usd is not None:
            limits.append(SpendLimit("monthly", periods.month, to_quota(self.monthly_usd, self.quota_per_usd)))
        return tuple(limits)

    def usd(self, quota: int) -> str:
        return dollars(to_usd(quota, self.quota_per_usd))


@dataclass(frozen=True, slots=True)
class Quote:
    """A billable call before it is sent: its learned price, the spend so far, and the budget it would pass."""

    tool: str
    action: str
    price_quota: int | None
    """The learned price (see `learned_price`); None: not known yet."""
    spent_today_quota: int
    spent_month_quota: int
    budgets: Budgets
    limits: tuple[SpendLimit, ...]
    breach: SpendLimit | None
    """The first budget the call would take spend past."""

    @property
    def needs_approval(self) -> bool:
        """Whether the user must approve the call before it is sent."""
        return self.budgets.confirm == "always" or self.breach is not None

    def gate(self, *, approved: bool) -> SpendGate:
        """What the ledger checks and reserves, in the duplicate check's transaction."""
        return SpendGate(price_quota=self.price_quota, limits=self.limits, approved=approved)

    @property
    def price(self) -> str:
        """The learned price, short: `learned price $0.08` or `price not known yet`."""
        if self.price_quota is None:
            return "price not known yet"
        return f"learned price {self.budgets.usd(self.price_quota)}"

    def spent(self) -> str:
        """The spend so far against each budget, e.g. `spent today $0.08 of the $0.10 daily budget`."""
        parts: list[str] = []
        for name, quota, limit_usd in (
            ("daily", self.spent_today_quota, self.budgets.daily_usd),
            ("monthly", self.spent_month_quota, self.budgets.monthly_usd),
        ):
            if limit_usd is not None:
                parts.append(
                    f"spent {_SPENT[name]} {self.budgets.usd(quota)} of the {dollars(limit_usd)} {name} budget"
                )
        return "; ".join(parts) or f"spent today {self.budgets.usd(self.spent_today_quota)} (no budget set)"

    @property
    def call(self) -> str:
        """The call, named with its learned price: `suno_generate_music (MUSIC, learned price $0.08)`."""
        return f"{self.tool} ({self.action}, {self.price})"

    def question(self) -> str:
        """The one question put to the user: the action, its learned price, the spend so far and the budget."""
        if self.breach is not None:
            reason = f"it would take spend past the {self.breach.name} budget"
        else:
            reason = "CCAPI_SUNO_CONFIRM=always asks before every paid call"
        return (
            f"Approve a paid Suno call? {self.call}: {self.spent()}; {reason}. Accept to submit it; decline and "
            "nothing is sent."
        )

    def refusal(self) -> str:
        """The answer to a client that cannot ask the user (no elicitation): the same facts, and what to change."""
        if self.breach is None:
            return (
                f"Not submitted: CCAPI_SUNO_CONFIRM=always needs the user's approval of every paid call, and this "
                f"client cannot ask for it (no elicitation). {self.call}; {self.spent()}. Nothing was sent. The "
                "user can set CCAPI_SUNO_CONFIRM=over_budget in the server's environment and restart it, or use a "
                "client that supports elicitation."
            )
        return _over_budget(self, self.breach, can_ask=False)

    def declined(self, action: Literal["decline", "cancel"]) -> str:
        """The answer when the user said no (or dismissed the question)."""
        what = "declined" if action == "decline" else "dismissed the approval of"
        return (
            f"The user {what} {self.call}; {self.spent()}. Nothing was sent or billed. Do not call it again "
            "unless the user asks for it."
        )


def _over_budget(quote: Quote, limit: SpendLimit, *, can_ask: bool) -> str:
    limit_usd = quote.budgets.daily_usd if limit.name == "daily" else quote.budgets.monthly_usd
    head = (
        f"Over budget: {quote.call} would take spend {_SPENT[limit.name]} past the "
        f"{dollars(limit_usd or 0)} {limit.name} budget ({quote.spent()}, calls in flight included). Nothing was "
        "submitted."
    )
    if can_ask:
        return f"{head} Call it again to ask the user to approve it; force does not lift a budget."
    return (
        f"{head} This client cannot ask the user to approve it (no elicitation), and force does not lift a budget: "
        f"only the user can, by raising {_VARIABLES[limit.name]} in the server's environment and restarting it."
    )


def over_budget_message(quote: Quote, error: OverBudgetError, *, can_ask: bool) -> str:
    """The answer when the ledger's own check refused a call (a call in flight took the room left)."""
    if error.limit.name == "daily":
        quote = replace(quote, spent_today_quota=error.committed_quota)
    else:
        quote = replace(quote, spent_month_quota=error.committed_quota)
    return _over_budget(quote, error.limit, can_ask=can_ask)


async def quote(ledger: TaskLedger, budgets: Budgets, calendar: Calendar, *, tool: str, action: str) -> Quote:
    """The quote of a billable call now: its learned price, the spend so far and the budget it would pass.

    Raises:
        LedgerError: the ledger cannot be read.
    """
    periods = calendar.periods()
    samples = (await ledger.recent_quotas(last=PRICE_SAMPLES, tool=tool)).get(tool, [])
    # The budgets are the server's (one CCAPI account): every principal's calls count against them.
    today, month = await ledger.committed_quota([periods.day, periods.month], everyone=True)
    limits = budgets.limits(periods)
    price = learned_price(samples)
    gate = SpendGate(price_quota=price, limits=limits)
    committed = {"daily": today, "monthly": month}
    breach = next((limit for limit in limits if gate.exceeds(limit, committed[limit.name])), None)
    return Quote(tool, action, price, today, month, budgets, limits, breach)
