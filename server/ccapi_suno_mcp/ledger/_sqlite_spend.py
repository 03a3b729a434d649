"""The SQLite ledger's queries about money (see `_charges.py`): plain SQL that PostgreSQL runs as written."""

from __future__ import annotations

import sqlite3

from ccapi_suno_mcp.ledger._charges import Charge, ChargeTotal, SpendGate
from ccapi_suno_mcp.ledger._protocol import OverBudgetError

__all__ = ["COUNTED_QUOTA", "charge_rows", "charge_totals", "check_gate", "committed", "recent_quotas"]

COUNTED_QUOTA = (
    "CASE WHEN state = 'rejected' OR status = 'FAILURE' THEN 0 "
    "WHEN charged_quota IS NOT NULL THEN charged_quota "
    "ELSE COALESCE(quota, reserved_quota, 0) END"
)
"""What a submission counts toward spend and budgets (`Charge.counted_quota`), as one SQL expression."""

_NOT_SETTLED = "status NOT IN ('SUCCESS', 'FAILURE')"


def committed(connection: sqlite3.Connection, since: float) -> int:
    """The quota committed by submissions made since `since`."""
    row = connection.execute(
        f"SELECT COALESCE(SUM({COUNTED_QUOTA}), 0) AS total FROM tasks WHERE created_at >= ?", (since,)
    ).fetchone()
    return int(row["total"])


def check_gate(connection: sqlite3.Connection, gate: SpendGate) -> None:
    """Refuse a submission that does not fit one of the gate's limits (inside the caller's write transaction).

    Raises:
        OverBudgetError: for the first limit it does not fit, unless the gate is approved.
    """
    if gate.approved:
        return
    for limit in gate.limits:
        spent = committed(connection, limit.since)
        if gate.exceeds(limit, spent):
            raise OverBudgetError(limit, spent, gate.price_quota)


def recent_quotas(connection: sqlite3.Connection, last: int, tool: str | None) -> dict[str, list[int]]:
    """Each tool's `last` newest reported quotas, newest first."""
    where, params = ("AND tool = ?", (tool, last)) if tool is not None else ("", (last,))
    rows = connection.execute(
        "SELECT tool, quota FROM ("
        "SELECT tool, quota, created_at, seq, "
        "ROW_NUMBER() OVER (PARTITION BY tool ORDER BY created_at DESC, seq DESC) AS position "
        f"FROM tasks WHERE quota IS NOT NULL AND state != 'rejected' {where}"
        ") AS recent WHERE position <= ? ORDER BY tool, created_at DESC, seq DESC",
        params,
    ).fetchall()
    quotas: dict[str, list[int]] = {}
    for row in rows:
        quotas.setdefault(str(row["tool"]), []).append(int(row["quota"]))
    return quotas


def charge_rows(connection: sqlite3.Connection, since: float) -> list[Charge]:
    """Every submission since `since` that may have been billed, oldest first."""
    rows = connection.execute(
        "SELECT task_id, tool, action, created_at, state, status, quota, reserved_quota, charged_quota, "
        f"refunded_quota, {COUNTED_QUOTA} AS counted FROM tasks WHERE created_at >= ? AND state != 'rejected' "
        "ORDER BY created_at, seq",
        (since,),
    ).fetchall()
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


def charge_totals(connection: sqlite3.Connection) -> list[ChargeTotal]:
    """Per tool, over the whole ledger, by tool name."""
    rows = connection.execute(
        "SELECT tool, MAX(action) AS action, COUNT(*) AS tasks, "
        "SUM(CASE WHEN status = 'FAILURE' THEN 1 ELSE 0 END) AS failed, "
        "SUM(CASE WHEN status = 'FAILURE' AND refunded_quota > 0 THEN 1 ELSE 0 END) AS refunded, "
        f"SUM(CASE WHEN {_NOT_SETTLED} THEN 1 ELSE 0 END) AS in_flight, "
        f"SUM({COUNTED_QUOTA}) AS counted "
        "FROM tasks WHERE state != 'rejected' GROUP BY tool ORDER BY tool"
    ).fetchall()
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
