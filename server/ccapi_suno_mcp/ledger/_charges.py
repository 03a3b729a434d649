"""What the ledger knows of money: each task's charge, and the gate a billable submission passes.

CCAPI's task record carries `quota`, the units the task was charged (new-api pre-charges at submit and
refunds a task that fails). The ledger keeps the latest reported `quota`, the price reserved for the call when
it was submitted (`reserved_quota`: what it counts while its own charge is not known), and, once the task
settles, its charge (`charged_quota`: the quota on SUCCESS, 0 on FAILURE) and what was refunded
(`refunded_quota`). Amounts are quota units; the spend layer turns them into dollars.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccapi_suno_mcp.ledger._models import TERMINAL_STATUSES, SubmissionState

__all__ = ["Charge", "ChargeTotal", "SpendGate", "SpendLimit", "settled_charge"]


@dataclass(frozen=True, slots=True)
class SpendLimit:
    """A budget in quota units for everything submitted since `since` (Unix time)."""

    name: str
    """What the budget is called, e.g. `daily` or `monthly`."""
    since: float
    limit_quota: int
    principal: str | None = None
    """Whose submissions count against it: one principal's, or (None) everyone's on the ledger."""


@dataclass(frozen=True, slots=True)
class SpendGate:
    """What a billable submission reserves, and the budgets it must fit, checked with the duplicate check.

    `approved` means the user agreed to this call: it is reserved and submitted whatever the budgets say.
    """

    price_quota: int | None
    """The learned price of the call, reserved while it is in flight; None: not known yet (reserves nothing)."""
    limits: tuple[SpendLimit, ...] = ()
    approved: bool = False

    def exceeds(self, limit: SpendLimit, committed_quota: int) -> bool:
        """Whether this call would take `committed_quota` past `limit`.

        With no known price a call cannot be shown to pass the budget; it counts as passing it once the budget
        is used up.
        """
        if self.price_quota is None:
            return committed_quota >= limit.limit_quota
        return committed_quota + self.price_quota > limit.limit_quota


def settled_charge(status: str, quota: int | None, reserved_quota: int | None) -> tuple[int | None, int | None]:
    """`(charged_quota, refunded_quota)` of a task in `status`: both None until it settles.

    SUCCESS is charged the quota its record reports (the reserved learned price when it reports none);
    FAILURE is charged nothing and refunded what was reported.
    """
    if status == "SUCCESS":
        return (quota if quota is not None else reserved_quota or 0), None
    if status == "FAILURE":
        return 0, quota
    return None, None


@dataclass(frozen=True, slots=True)
class Charge:
    """One submission that may have been billed (CCAPI did not reject it), with its money."""

    task_id: str | None
    tool: str
    action: str
    created_at: float
    state: SubmissionState
    status: str
    quota: int | None
    reserved_quota: int | None
    charged_quota: int | None
    refunded_quota: int | None
    counted_quota: int
    """What it counts toward spend and budgets now: its charge once settled, else what CCAPI reported or the
    reserved price (new-api has already pre-charged a call in flight)."""

    @property
    def settled(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def failed(self) -> bool:
        return self.status == "FAILURE"

    @property
    def refunded(self) -> bool:
        return self.failed and (self.refunded_quota or 0) > 0


@dataclass(frozen=True, slots=True)
class ChargeTotal:
    """Everything one tool was charged, over the whole ledger."""

    tool: str
    action: str
    tasks: int
    failed: int
    refunded: int
    in_flight: int
    """Not settled yet (or of unknown outcome): counted at what CCAPI reported or the reserved price."""
    counted_quota: int
