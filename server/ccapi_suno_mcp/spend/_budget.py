"""Budgets: what a billable call is likely to cost, whether it fits, and what the user is asked or told.

Only the user lifts a budget: by approving the one call when asked (elicitation), or by raising the budget in
the server's environment. `force`, the model's switch for duplicates, has no say here.

The server's budgets count every principal's calls (one CCAPI account); a principal of the HTTP transport may
also have budgets of its own in the tokens file, which count only its calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, Field

from ccapi_suno_mcp.ledger import OverBudgetError, SpendGate, SpendLimit, TaskLedger
from ccapi_suno_mcp.principals import is_oauth_principal
from ccapi_suno_mcp.settings import ConfirmMode, Settings
from ccapi_suno_mcp.spend._calendar import Calendar, Periods
from ccapi_suno_mcp.spend._money import PRICE_SAMPLES, dollars, learned_price, to_quota, to_usd

__all__ = ["Approval", "Budgets", "Quote", "counted_against", "over_budget_message", "quote", "spent_so_far"]

_VARIABLES = {"daily": "CCAPI_SUNO_DAILY_BUDGET_USD", "monthly": "CCAPI_SUNO_MONTHLY_BUDGET_USD"}
_SPENT = {"daily": "today", "monthly": "this month"}


class Approval(BaseModel):
    """The one-field form of the question: submitting is what accepting means."""

    approve: bool = Field(default=True, title="Submit this paid call", description="Leave on to submit it.")


@dataclass(frozen=True, slots=True)
class Budgets:
    """The user's limits and confirmation mode, from the settings (and the caller's own, from the tokens file)."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    confirm: ConfirmMode = "over_budget"
    quota_per_usd: int = 500_000
    principal: str | None = None
    """The caller, when it has budgets of its own."""
    own_daily_usd: float | None = None
    own_monthly_usd: float | None = None

    @classmethod
    def of(cls, settings: Settings, principal: str | None = None) -> Budgets:
        """The server's budgets, and those of `principal` (tokens file, people file) if it has any."""
        own = settings.own_budgets(principal) if principal is not None else None
        return cls(
            settings.daily_budget_usd, settings.monthly_budget_usd, settings.confirm, settings.quota_per_usd,
            principal if own else None, *(own or (None, None)),
        )  # fmt: skip

    def limits(self, periods: Periods) -> tuple[SpendLimit, ...]:
        """The budgets in force at `periods`, in quota units: the server's, then the caller's own."""
        limits: list[SpendLimit] = []
        for daily, monthly, principal in (
            (self.daily_usd, self.monthly_usd, None),
            (self.own_daily_usd, self.own_monthly_usd, self.principal),
        ):
            if daily is not None:
                limits.append(SpendLimit("daily", periods.day, to_quota(daily, self.quota_per_usd), principal))
            if monthly is not None:
                limits.append(SpendLimit("monthly", periods.month, to_quota(monthly, self.quota_per_usd), principal))
        return tuple(limits)

    def limit_usd(self, limit: SpendLimit) -> float:
        """The dollars of a limit these budgets made."""
        if limit.principal is None:
            usd = self.daily_usd if limit.name == "daily" else self.monthly_usd
        else:
            usd = self.own_daily_usd if limit.name == "daily" else self.own_monthly_usd
        return usd or 0.0

    def how_to_raise(self, limit: SpendLimit) -> str:
        """How the user raises a limit: where it is set, and the restart that reads it."""
        if limit.principal is None:
            return f"raising {_VARIABLES[limit.name]} in the server's environment and restarting it"
        if is_oauth_principal(limit.principal):
            return (
                f'raising your {limit.name}_budget_usd (or the default one, under "*") in the people file '
                "(CCAPI_SUNO_OAUTH_PEOPLE_FILE) and restarting the server"
            )
        return (
            f"raising {limit.principal}'s {limit.name}_budget_usd in the tokens file (CCAPI_SUNO_HTTP_TOKENS_FILE) "
            "and restarting the server"
        )

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
    """Everyone's spend (what the server's budgets count)."""
    budgets: Budgets
    limits: tuple[SpendLimit, ...]
    breach: SpendLimit | None
    """The first budget the call would take spend past."""
    own_today_quota: int = 0
    own_month_quota: int = 0
    """The caller's own spend (what its own budgets count), when it has budgets of its own."""

    def spent_for(self, limit: SpendLimit) -> int:
        """What counts against `limit` so far."""
        everyone = (self.spent_today_quota, self.spent_month_quota)
        return counted_against(limit, everyone, (self.own_today_quota, self.own_month_quota))

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
        for limit in self.limits:
            spent, usd = self.budgets.usd(self.spent_for(limit)), dollars(self.budgets.limit_usd(limit))
            if limit.principal is None:
                parts.append(f"spent {_SPENT[limit.name]} {spent} of the {usd} {limit.name} budget")
            else:
                parts.append(f"you spent {_SPENT[limit.name]} {spent} of your own {usd} {limit.name} budget")
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
    whose = "the" if limit.principal is None else "your own"
    head = (
        f"Over budget: {quote.call} would take spend {_SPENT[limit.name]} past {whose} "
        f"{dollars(quote.budgets.limit_usd(limit))} {limit.name} budget ({quote.spent()}, calls in flight "
        "included). Nothing was submitted."
    )
    if can_ask:
        return f"{head} Call it again to ask the user to approve it; force does not lift a budget."
    return (
        f"{head} This client cannot ask the user to approve it (no elicitation), and force does not lift a budget: "
        f"only the user can, by {quote.budgets.how_to_raise(limit)}."
    )


def over_budget_message(quote: Quote, error: OverBudgetError, *, can_ask: bool) -> str:
    """The answer when the ledger's own check refused a call (a call in flight took the room left)."""
    whose = "spent" if error.limit.principal is None else "own"
    period = "today" if error.limit.name == "daily" else "month"
    quote = replace(quote, **{f"{whose}_{period}_quota": error.committed_quota})
    return _over_budget(quote, error.limit, can_ask=can_ask)


Spent = tuple[int, int]
"""Quota committed today and this month."""


async def spent_so_far(ledger: TaskLedger, budgets: Budgets, periods: Periods) -> tuple[Spent, Spent]:
    """What the budgets count so far: everyone's (the server's budgets are one CCAPI account's: every
    principal's calls count against them) and the caller's own (its own budgets; zeros when it has none).

    Raises:
        LedgerError: the ledger cannot be read.
    """
    since = [periods.day, periods.month]
    everyone = await ledger.committed_quota(since, everyone=True)
    own = await ledger.committed_quota(since) if budgets.principal is not None else [0, 0]
    return (everyone[0], everyone[1]), (own[0], own[1])


def counted_against(limit: SpendLimit, everyone: Spent, own: Spent) -> int:
    """Of what `spent_so_far` found, what counts against `limit`."""
    today, month = own if limit.principal is not None else everyone
    return today if limit.name == "daily" else month


async def quote(ledger: TaskLedger, budgets: Budgets, calendar: Calendar, *, tool: str, action: str) -> Quote:
    """The quote of a billable call now: its learned price, the spend so far and the budget it would pass.

    Raises:
        LedgerError: the ledger cannot be read.
    """
    periods = calendar.periods()
    samples = (await ledger.recent_quotas(last=PRICE_SAMPLES, tool=tool)).get(tool, [])
    (today, month), (own_today, own_month) = await spent_so_far(ledger, budgets, periods)
    limits = budgets.limits(periods)
    price = learned_price(samples)
    gate = SpendGate(price_quota=price, limits=limits)
    draft = Quote(tool, action, price, today, month, budgets, limits, None, own_today, own_month)
    breach = next((limit for limit in limits if gate.exceeds(limit, draft.spent_for(limit))), None)
    return replace(draft, breach=breach)
