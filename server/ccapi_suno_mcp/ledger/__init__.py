"""The task ledger: the server's memory of every submission, its CCAPI task, clips, lineage and local files.

CCAPI has no "list my tasks" endpoint, so the server records every submission before sending it and the
task id the moment it comes back. `TaskLedger` is the interface tools, watcher and resources use;
`SQLiteLedger` is the embedded implementation, `PostgresLedger` the one several replicas share.
"""

from typing import TYPE_CHECKING

from ccapi_suno_mcp._lazy import lazy_exports

if TYPE_CHECKING:
    from ccapi_suno_mcp.ledger._charges import Charge, ChargeTotal, SpendGate, SpendLimit
    from ccapi_suno_mcp.ledger._mcp_tasks import McpTaskRecord
    from ccapi_suno_mcp.ledger._models import (
        ClipRecord,
        LocalFile,
        StatusChange,
        SubmissionState,
        TaskPage,
        TaskRecord,
        body_fingerprint,
    )
    from ccapi_suno_mcp.ledger._postgres import PostgresLedger
    from ccapi_suno_mcp.ledger._protocol import (
        DEFAULT_DUPLICATE_WINDOW,
        DEFAULT_PRINCIPAL,
        ChangeListener,
        InvalidCursorError,
        LedgerClosedError,
        LedgerError,
        LedgerFullError,
        LedgerUnavailableError,
        LedgerUnusableError,
        OverBudgetError,
        SchemaVersionError,
        TaskLedger,
        UnknownSubmissionError,
    )
    from ccapi_suno_mcp.ledger._sqlite import SQLiteLedger

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_PRINCIPAL",
    "ChangeListener",
    "Charge",
    "ChargeTotal",
    "ClipRecord",
    "InvalidCursorError",
    "LedgerClosedError",
    "LedgerError",
    "LedgerFullError",
    "LedgerUnavailableError",
    "LedgerUnusableError",
    "LocalFile",
    "McpTaskRecord",
    "OverBudgetError",
    "PostgresLedger",
    "SQLiteLedger",
    "SchemaVersionError",
    "SpendGate",
    "SpendLimit",
    "StatusChange",
    "SubmissionState",
    "TaskLedger",
    "TaskPage",
    "TaskRecord",
    "UnknownSubmissionError",
    "body_fingerprint",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Charge": "_charges",
        "ChargeTotal": "_charges",
        "SpendGate": "_charges",
        "SpendLimit": "_charges",
        "McpTaskRecord": "_mcp_tasks",
        "ClipRecord": "_models",
        "LocalFile": "_models",
        "StatusChange": "_models",
        "SubmissionState": "_models",
        "TaskPage": "_models",
        "TaskRecord": "_models",
        "body_fingerprint": "_models",
        "DEFAULT_DUPLICATE_WINDOW": "_protocol",
        "DEFAULT_PRINCIPAL": "_protocol",
        "ChangeListener": "_protocol",
        "InvalidCursorError": "_protocol",
        "LedgerClosedError": "_protocol",
        "LedgerError": "_protocol",
        "LedgerFullError": "_protocol",
        "LedgerUnavailableError": "_protocol",
        "LedgerUnusableError": "_protocol",
        "OverBudgetError": "_protocol",
        "SchemaVersionError": "_protocol",
        "TaskLedger": "_protocol",
        "UnknownSubmissionError": "_protocol",
        "SQLiteLedger": "_sqlite",
        "PostgresLedger": "_postgres",
    },
)
