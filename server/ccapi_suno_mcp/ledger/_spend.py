"""The ledger's queries about money (see `_charges.py`), written once for both backends like `_queries`.

Spend is read for one principal (what a user sees of their own) or for everyone (a budget of the whole
server, which is one CCAPI account); a price is learned from everyone's tasks, since it is the same for all.
"""

from __future__ import annotations

from ccapi_suno_mcp.ledger._charges import Charge, ChargeTotal, SpendGate
from ccapi_suno_mcp.ledger._dialect import Session
from ccapi_suno_mcp.ledger._protocol import OverBudgetError

__all__ = ["COUNTED_QUOTA", "charge_rows", "charge_totals", "check_gate", "committed", "recent_quotas"]

COUNTED_QUOTA = (
    "CASE WHEN state = 'rejected' OR status = 'FAILURE' THEN 0 "
    "WHEN charged_quota IS NOT NULL THEN charged_quota "
    "ELSE COALESCE(quota, reserved_quota, 0) END"
)
"""What a submission counts toward spend and budgets (`Charge.counted_quota`), as one SQL expression."""

_NOT_SETTLED = "status NOT IN ('SUCCESS', 'FAILURE')"


def committed(session: Session, since: float, principal: str | None) -> int:
    """The quota committed by submissions made since `since`: the principal's, or (None) everyone's."""
    whose, params = ("", (since,)) if principal is None else (" AND principal = ?", (since, principal))
    rows = session.execute(
        f"SELECT COALESCE(SUM({COUNTED_QUOTA}), 0) AS total FROM tasks WHERE created_at >= ?{whose}", params
    )
    return int(rows[0]["total"])


def check_gate(session: Session, gate: SpendGate) -> None:
    """Refuse a submission that does not fit one of the gate's limits (inside the caller's claim transaction).

    Raises:
        OverBudgetError: for the first limit it does not fit, unless the gate is approved.
    """
    if gate.approved:
        return
    for limit in gate.limits:
        spent = committed(session, limit.since, limit.principal)
        if gate.exceeds(limit, spent):
            raise OverBudgetError(limit, spent, gate.price_quota)


def recent_quotas(session: Session, last: int, tool: str | None) -> dict[str, list[int]]:
    """Each tool's `last` newest reported quotas, newest first (every principal's tasks)."""
    where, params = ("AND tool = ?", (tool, last)) if tool is not None else ("", (last,))
    rows = session.execute(
        "SELECT tool, quota FROM ("
        "SELECT tool, quota, created_at, seq, "
        "ROW_NUMBER() OVER (PARTITION BY tool ORDER BY created_at DESC, seq DESC) AS position "
        f"FROM tasks WHERE quota IS NOT NULL AND state != 'rejected' {where}"
        ") AS recent WHERE position <= ? ORDER BY tool, created_at DESC, seq DESC",
        params,
    )
    quotas: dict[str, list[int]] = {}
    for row in rows:
        quotas.setdefault(str(row["tool"]), []).append(int(row["quota"]))
    return quotas


def charge_rows(session: Session, since: float, principal: str) -> list[Charge]:
    """Every submission of the principal since `since` that may have been billed, oldest first."""
    rows = session.execute(
        "SELECT task_id, tool, action, created_at, state, status, quota, reserved_quota, charged_quota, "
        f"refunded_quota, {COUNTED_QUOTA} AS counted FROM tasks WHERE created_at >= ? AND principal = ? "
        "AND state != 'rejected' ORDER BY created_at, seq",
        (since, principal),
    )
    return [
        Charge(
            task_id=row["task_id"],
            tool=row["tool"],
            action=row["action"],
            created_at=row["created_at"],
            state=row["state"],
            status=row["status"],
            quota=row["quota"],
            reserved_quota=row["reserved_quota"],
            charged_quota=row["charged_quota"],
            refunded_quota=row["refunded_quota"],
            counted_quota=int(row["counted"]),
        )
        for row in rows
    ]


def charge_totals(session: Session, principal: str) -> list[ChargeTotal]:
    """Per tool, over the principal's whole ledger, by tool name."""
    rows = session.execute(
        "SELECT tool, MAX(action) AS action, COUNT(*) AS tasks, "
        "SUM(CASE WHEN status = 'FAILURE' THEN 1 ELSE 0 END) AS failed, "
        "SUM(CASE WHEN status = 'FAILURE' AND refunded_quota > 0 THEN 1 ELSE 0 END) AS refunded, "
        f"SUM(CASE WHEN {_NOT_SETTLED} THEN 1 ELSE 0 END) AS in_flight, "
        f"SUM({COUNTED_QUOTA}) AS counted "
        "FROM tasks WHERE state != 'rejected' AND principal = ? GROUP BY tool ORDER BY tool",
        (principal,),
    )
    return [
        ChargeTotal(
            tool=row["tool"],
            action=row["action"],
            tasks=int(row["tasks"]),
            failed=int(row["failed"]),
            refunded=int(row["refunded"]),
            in_flight=int(row["in_flight"]),
            counted_quota=int(row["counted"]),
        )
        for row in rows
    ]
