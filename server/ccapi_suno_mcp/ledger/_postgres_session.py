"""PostgreSQL as the shared statements (`_queries`) meet it: its dialect, a session on one connection, its locks.

The session translates the `?` placeholders, runs each transaction at the isolation level the ledger needs, and
takes the advisory locks every replica agrees on by name (claims, the watcher, migrations, each process's presence).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, LiteralString, cast

from ccapi_suno_mcp.ledger._dialect import ConflictError, Dialect, Row, Session

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATE_KEY", "POSTGRES", "WATCHER_KEY", "PostgresSession", "lock_key"]


def lock_key(name: str) -> int:
    """A 64-bit advisory lock key for `name`, in a namespace of this program's own."""
    return int.from_bytes(hashlib.sha256(f"ccapi-suno-mcp:{name}".encode()).digest()[:8], "big", signed=True)


_CLAIMS_KEY = lock_key("claims")
WATCHER_KEY = lock_key("watcher")
MIGRATE_KEY = lock_key("migrate")

POSTGRES = Dialect(
    name="postgresql",
    in_list="{column} = ANY(?)",
    list_param=list,
    contains="strpos({column}, ?) > 0",
    like="ILIKE",
    clip_order="seq",
    for_update=" FOR UPDATE",
)


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> LiteralString:
    """The shared SQL's `?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return cast(LiteralString, sql.replace("%", "%%").replace("?", "%s"))


def _clean(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; SQLite keeps it. CCAPI never sends one on purpose.
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


class PostgresSession(Session):
    """A pooled connection in autocommit mode: `transaction` opens each transaction explicitly."""

    dialect = POSTGRES

    def __init__(self, connection: psycopg.Connection[Row], errors: Any) -> None:
        self.connection = connection
        self._errors = errors

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(_translate(sql), [_clean(value) for value in params])
                return cursor.fetchall() if cursor.description is not None else []
        except self._errors.UniqueViolation as error:
            raise ConflictError(str(error)) from error

    @contextmanager
    def transaction(self, *, write: bool = True, durable: bool = False) -> Generator[None]:
        """A read sees one snapshot throughout (REPEATABLE READ); a write locks the rows it reads to change.

        A write is READ COMMITTED whatever the database's default: each statement sees what was committed before
        it began, so a claim's reads after it waited for the claims lock see the claim that held it (at REPEATABLE
        READ its snapshot would be older than the lock, and two replicas could both begin one call).

        Every commit is durable (PostgreSQL's synchronous commit), so `durable` asks for nothing more.
        """
        self.connection.execute(
            "BEGIN ISOLATION LEVEL READ COMMITTED" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )
        try:
            yield
        except BaseException:
            if not self.connection.broken:
                self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def lock_claims(self) -> None:
        """Wait for the claims lock, held by this transaction until it ends (on every replica the same lock)."""
        self.connection.execute("SELECT pg_advisory_xact_lock(%s)", (_CLAIMS_KEY,))

    def owner_alive(self, owner: str | None) -> bool | None:
        """Whether a process of any replica holds the presence lock named after `owner`."""
        if not owner:
            return None
        key = lock_key(f"owner:{owner}")
        row = self.connection.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
        return bool(row and row["n"])
