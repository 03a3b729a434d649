"""Usage: what was spent today, this week, this month and in total, by action and by day, and learned prices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel

from ccapi_suno_mcp.ledger import Charge, ChargeTotal, TaskLedger
from ccapi_suno_mcp.settings import ConfirmMode
from ccapi_suno_mcp.spend._budget import Budgets, counted_against, spent_so_far
from ccapi_suno_mcp.spend._calendar import Calendar
from ccapi_suno_mcp.spend._money import PRICE_SAMPLES, dollars, learned_price, to_usd

__all__ = ["DAYS_SHOWN", "BudgetLeft", "Spend", "UsageView", "render_usage", "usage"]

DAYS_SHOWN = 31
"""How many days back `by_day` goes (today included); only days with tasks are listed."""


class Spend(BaseModel):
    """Money of a period, action or day. `quota` and `usd` count what settled tasks were charged and what calls
    in flight were pre-charged (or reserved); a failed task is refunded and counts nothing."""

    quota: int
    usd: float
    tasks: int
    failed: int
    refunded: int
    in_flight: int


class BudgetLeft(BaseModel):
    """A budget in force, what counts against it (calls in flight included) and what is left."""

    name: str
    whose: str
    """`server` (everyone's calls count) or `own` (the caller's, from the tokens file)."""
    limit_usd: float
    spent_usd: float
    left_usd: float


class UsageView(BaseModel):
    """What `suno_get_usage` and the `suno://usage` resource show."""

    today: Spend
    week: Spend
    month: Spend
    total: Spend
    by_action: dict[str, Spend]
    """By tool, over the whole ledger."""
    by_day: dict[str, Spend]
    """By local date (`YYYY-MM-DD`), newest first, for the last `DAYS_SHOWN` days that had tasks."""
    prices_usd: dict[str, float | None]
    """Each action's learned price (the median of its last charges); None: not known yet."""
    daily_budget_usd: float | None
    monthly_budget_usd: float | None
    budgets: list[BudgetLeft]
    confirm: ConfirmMode
    quota_per_usd: int
    note: str


@dataclass(slots=True)
class _Sum:
    quota: int = 0
    tasks: int = 0
    failed: int = 0
    refunded: int = 0
    in_flight: int = 0

    def add(self, charge: Charge) -> None:
        self.quota += charge.counted_quota
        self.tasks += 1
        self.failed += charge.failed
        self.refunded += charge.refunded
        self.in_flight += not charge.settled

    def merge(self, total: ChargeTotal) -> _Sum:
        self.quota += total.counted_quota
        self.tasks += total.tasks
        self.failed += total.failed
        self.refunded += total.refunded
        self.in_flight += total.in_flight
        return self

    def spend(self, quota_per_usd: int) -> Spend:
        return Spend(
            quota=self.quota, usd=to_usd(self.quota, quota_per_usd), tasks=self.tasks, failed=self.failed,
            refunded=self.refunded, in_flight=self.in_flight,
        )  # fmt: skip


async def usage(ledger: TaskLedger, budgets: Budgets, calendar: Calendar, *, tools: Sequence[str]) -> UsageView:
    """The usage now; `tools` are the billable tools whose learned price is shown (known or not).

    Raises:
        LedgerError: the ledger cannot be read.
    """
    periods = calendar.periods()
    today = calendar.date_of(calendar.now())
    first_day = calendar.start_of(today - timedelta(days=DAYS_SHOWN - 1))
    charges = await ledger.charges(since=min(first_day, periods.week, periods.month))
    totals = await ledger.charge_totals()
    quotas = await ledger.recent_quotas(last=PRICE_SAMPLES)
    sums = {name: _Sum() for name in ("today", "week", "month")}
    by_day: dict[str, _Sum] = {}
    for charge in charges:
        for name, start in (("today", periods.day), ("week", periods.week), ("month", periods.month)):
            if charge.created_at >= start:
                sums[name].add(charge)
        if charge.created_at >= first_day:
            by_day.setdefault(calendar.date_of(charge.created_at).isoformat(), _Sum()).add(charge)
    rate = budgets.quota_per_usd
    total = _Sum()
    by_action: dict[str, Spend] = {}
    for row in totals:
        by_action[row.tool] = _Sum().merge(row).spend(rate)
        total.merge(row)
    prices: dict[str, float | None] = {}
    for tool in [*tools, *(name for name in quotas if name not in tools)]:
        price = learned_price(quotas.get(tool, []))
        prices[tool] = None if price is None else to_usd(price, rate)
    budget_lines = await _budgets_left(ledger, budgets, calendar)
    view = UsageView(
        today=sums["today"].spend(rate),
        week=sums["week"].spend(rate),
        month=sums["month"].spend(rate),
        total=total.spend(rate),
        by_action=by_action,
        by_day={day: by_day[day].spend(rate) for day in sorted(by_day, reverse=True)},
        prices_usd=prices,
        daily_budget_usd=budgets.daily_usd,
        monthly_budget_usd=budgets.monthly_usd,
        budgets=budget_lines,
        confirm=budgets.confirm,
        quota_per_usd=rate,
        note="",
    )
    view.note = _summary(view)
    return view


async def _budgets_left(ledger: TaskLedger, budgets: Budgets, calendar: Calendar) -> list[BudgetLeft]:
    """The budgets in force, each against what the budget gate counts: the server's, every principal's calls;
    the caller's own, its calls only."""
    periods = calendar.periods()
    limits = budgets.limits(periods)
    if not limits:
        return []
    everyone, own = await spent_so_far(ledger, budgets, periods)
    lines: list[BudgetLeft] = []
    for limit in limits:
        spent = counted_against(limit, everyone, own)
        limit_usd, spent_usd = budgets.limit_usd(limit), to_usd(spent, budgets.quota_per_usd)
        lines.append(
            BudgetLeft(
                name=limit.name, whose="own" if limit.principal is not None else "server", limit_usd=limit_usd,
                spent_usd=spent_usd, left_usd=round(max(0.0, limit_usd - spent_usd), 4),
            )
        )  # fmt: skip
    return lines


def _counts(spend: Spend) -> str:
    parts = [f"{spend.tasks} task{'s' if spend.tasks != 1 else ''}"]
    if spend.failed:
        parts.append(f"{spend.failed} failed ({spend.refunded} refunded)")
    if spend.in_flight:
        parts.append(f"{spend.in_flight} in flight")
    return ", ".join(parts)


def _summary(view: UsageView) -> str:
    return (
        f"Spent today {dollars(view.today.usd)} ({_counts(view.today)}), this week {dollars(view.week.usd)}, this "
        f"month {dollars(view.month.usd)}, in total {dollars(view.total.usd)} ({_counts(view.total)})."
    )


def _budget(line: BudgetLeft) -> str:
    whose = "your own " if line.whose == "own" else ""
    return f"{whose}{line.name} {dollars(line.limit_usd)} ({dollars(line.left_usd)} left)"


def render_usage(view: UsageView) -> str:
    """The usage as a few readable lines."""
    known = {tool: price for tool, price in view.prices_usd.items() if price is not None}
    unknown = len(view.prices_usd) - len(known)
    prices = ", ".join(f"{tool} {dollars(price)}" for tool, price in known.items()) or "none yet"
    lines = [
        view.note,
        f"Budgets: {'; '.join(_budget(line) for line in view.budgets) or 'none'}. Asks the user before paid calls: "
        f"{'always' if view.confirm == 'always' else 'when over budget'}.",
        f"Learned prices: {prices}" + (f"; not known yet for {unknown} other action(s)." if unknown else "."),
    ]
    if view.by_action:
        lines.append(
            "By action: "
            + ", ".join(f"{tool} {dollars(spend.usd)} ({_counts(spend)})" for tool, spend in view.by_action.items())
        )
    if view.by_day:
        lines.append("By day: " + ", ".join(f"{day} {dollars(spend.usd)}" for day, spend in view.by_day.items()))
    return "\n".join(lines)
