"""The ledger's schema on each engine, as numbered migration steps.

A database records how many steps it has run (SQLite: `PRAGMA user_version`; PostgreSQL: the one row of
`ledger_schema`). Both engines have the same steps, so step N means the same tables and columns on either:
only the types are spelled differently. Never edit a released step: append a new one, to both lists.
"""

from __future__ import annotations

from collections.abc import Callable

from ccapi_suno_mcp.ledger._dialect import Session
from ccapi_suno_mcp.ledger._queries import restore_repeated_clips

__all__ = ["POSTGRES_MIGRATIONS", "SCHEMA_VERSION", "SQLITE_MIGRATIONS", "Step", "run_step"]

Step = str | Callable[[Session], object]
"""A statement, or a repair of the data written in shared SQL (`_queries`), run in the step's transaction."""


def run_step(session: Session, step: Step) -> None:
    """Run one part of a migration step in the session's open transaction."""
    if callable(step):
        step(session)
    else:
        session.execute(step)


# Each step runs in its own transaction and sets PRAGMA user_version to its position (1-based).
SQLITE_MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        """
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY,
            submission_id TEXT NOT NULL UNIQUE,
            task_id TEXT UNIQUE,
            tool TEXT NOT NULL,
            action TEXT NOT NULL,
            request TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('submitting', 'submitted', 'outcome_unknown', 'rejected')),
            status TEXT NOT NULL,
            progress TEXT,
            fail_reason TEXT,
            error TEXT,
            title TEXT,
            result_url TEXT,
            result TEXT,
            parent_task_id TEXT,
            parent_clip_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            search_text TEXT NOT NULL
        )
        """,
        "CREATE INDEX tasks_by_created ON tasks (created_at)",
        "CREATE INDEX tasks_by_fingerprint ON tasks (fingerprint, created_at)",
        "CREATE INDEX tasks_by_status ON tasks (status, created_at)",
        """
        CREATE INDEX tasks_pending ON tasks (created_at)
        WHERE state = 'submitted' AND status NOT IN ('SUCCESS', 'FAILURE')
        """,
        """
        CREATE TABLE clips (
            clip_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks (task_id),
            position INTEGER NOT NULL,
            title TEXT,
            tags TEXT,
            lyrics TEXT,
            audio_url TEXT,
            video_url TEXT,
            image_url TEXT,
            state TEXT,
            duration REAL,
            created_at TEXT,
            raw TEXT NOT NULL,
            seen_at REAL NOT NULL
        )
        """,
        "CREATE INDEX clips_by_task ON clips (task_id, position)",
        "CREATE INDEX clips_by_seen ON clips (seen_at)",
        """
        CREATE TABLE status_history (
            id INTEGER PRIMARY KEY,
            submission_id TEXT NOT NULL REFERENCES tasks (submission_id),
            status TEXT NOT NULL,
            progress TEXT,
            at REAL NOT NULL
        )
        """,
        "CREATE INDEX status_history_by_submission ON status_history (submission_id, id)",
        """
        CREATE TABLE local_files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            clip_id TEXT,
            task_id TEXT,
            kind TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
        "CREATE INDEX local_files_by_clip ON local_files (clip_id)",
        "CREATE INDEX local_files_by_task ON local_files (task_id)",
    ),
    (
        # The process sending a submission (`_owner.current_owner()`), so a dead owner's row is settled at once.
        "ALTER TABLE tasks ADD COLUMN owner TEXT",
        "CREATE INDEX tasks_in_flight ON tasks (created_at) WHERE state = 'submitting'",
    ),
    (
        # Money (see _charges.py): CCAPI's reported quota, the price reserved at submit, the charge once settled.
        "ALTER TABLE tasks ADD COLUMN quota INTEGER",
        "ALTER TABLE tasks ADD COLUMN reserved_quota INTEGER",
        "ALTER TABLE tasks ADD COLUMN charged_quota INTEGER",
        "ALTER TABLE tasks ADD COLUMN refunded_quota INTEGER",
        "CREATE INDEX tasks_priced ON tasks (tool, created_at) WHERE quota IS NOT NULL",
    ),
    (
        # Whose the task is (the HTTP transport's principal); a ledger made before belongs to the default one.
        "ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT 'default'",
        "CREATE INDEX tasks_by_principal ON tasks (principal, created_at)",
    ),
    (
        # MCP tasks (the `io.modelcontextprotocol/tasks` extension): a tool call answered in the background follows
        # these CCAPI tasks; its state is read from them, so any process on the ledger answers `tasks/get`.
        """
        CREATE TABLE mcp_tasks (
            mcp_task_id TEXT PRIMARY KEY,
            principal TEXT NOT NULL,
            tool TEXT NOT NULL,
            task_ids TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            wait_until REAL,
            cancelled_at REAL
        )
        """,
        "CREATE INDEX mcp_tasks_by_expiry ON mcp_tasks (expires_at)",
    ),
    (
        # Clips a music video's result took from their song before the ledger stopped letting repeats take clips.
        restore_repeated_clips,
    ),
)

# The same steps on PostgreSQL: identity columns for SQLite's integer primary keys, double precision for REAL, a
# `seq` on clips for the order SQLite keeps as its rowid. Each step runs in its own transaction and sets
# `ledger_schema.version` to its position.
POSTGRES_MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        """
        CREATE TABLE tasks (
            seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            submission_id TEXT NOT NULL UNIQUE,
            task_id TEXT UNIQUE,
            tool TEXT NOT NULL,
            action TEXT NOT NULL,
            request TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('submitting', 'submitted', 'outcome_unknown', 'rejected')),
            status TEXT NOT NULL,
            progress TEXT,
            fail_reason TEXT,
            error TEXT,
            title TEXT,
            result_url TEXT,
            result TEXT,
            parent_task_id TEXT,
            parent_clip_id TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION,
            search_text TEXT NOT NULL
        )
        """,
        "CREATE INDEX tasks_by_created ON tasks (created_at)",
        "CREATE INDEX tasks_by_fingerprint ON tasks (fingerprint, created_at)",
        "CREATE INDEX tasks_by_status ON tasks (status, created_at)",
        """
        CREATE INDEX tasks_pending ON tasks (created_at)
        WHERE state = 'submitted' AND status NOT IN ('SUCCESS', 'FAILURE')
        """,
        """
        CREATE TABLE clips (
            clip_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks (task_id),
            position INTEGER NOT NULL,
            title TEXT,
            tags TEXT,
            lyrics TEXT,
            audio_url TEXT,
            video_url TEXT,
            image_url TEXT,
            state TEXT,
            duration DOUBLE PRECISION,
            created_at TEXT,
            raw TEXT NOT NULL,
            seen_at DOUBLE PRECISION NOT NULL,
            seq BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE
        )
        """,
        "CREATE INDEX clips_by_task ON clips (task_id, position)",
        "CREATE INDEX clips_by_seen ON clips (seen_at)",
        """
        CREATE TABLE status_history (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            submission_id TEXT NOT NULL REFERENCES tasks (submission_id),
            status TEXT NOT NULL,
            progress TEXT,
            at DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX status_history_by_submission ON status_history (submission_id, id)",
        """
        CREATE TABLE local_files (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            clip_id TEXT,
            task_id TEXT,
            kind TEXT NOT NULL,
            size BIGINT NOT NULL,
            content_type TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX local_files_by_clip ON local_files (clip_id)",
        "CREATE INDEX local_files_by_task ON local_files (task_id)",
    ),
    (
        "ALTER TABLE tasks ADD COLUMN owner TEXT",
        "CREATE INDEX tasks_in_flight ON tasks (created_at) WHERE state = 'submitting'",
    ),
    (
        "ALTER TABLE tasks ADD COLUMN quota BIGINT",
        "ALTER TABLE tasks ADD COLUMN reserved_quota BIGINT",
        "ALTER TABLE tasks ADD COLUMN charged_quota BIGINT",
        "ALTER TABLE tasks ADD COLUMN refunded_quota BIGINT",
        "CREATE INDEX tasks_priced ON tasks (tool, created_at) WHERE quota IS NOT NULL",
    ),
    (
        "ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT 'default'",
        "CREATE INDEX tasks_by_principal ON tasks (principal, created_at, seq)",
    ),
    (
        """
        CREATE TABLE mcp_tasks (
            mcp_task_id TEXT PRIMARY KEY,
            principal TEXT NOT NULL,
            tool TEXT NOT NULL,
            task_ids TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            wait_until DOUBLE PRECISION,
            cancelled_at DOUBLE PRECISION
        )
        """,
        "CREATE INDEX mcp_tasks_by_expiry ON mcp_tasks (expires_at)",
    ),
    (restore_repeated_clips,),
)

SCHEMA_VERSION = len(SQLITE_MIGRATIONS)
"""The number of steps this version of the program knows (the same on both engines)."""
