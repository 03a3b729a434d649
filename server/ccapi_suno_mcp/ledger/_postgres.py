"""The shared ledger: one PostgreSQL database that several server processes (replicas) use at once.

The statements are the same as SQLite's (`_queries`); they run on pooled connections (psycopg 3 with
psycopg_pool) in worker threads, so the event loop never waits on the network. What only a shared database
needs is here too:

- Claims are serialized across replicas by a transaction-level advisory lock, taken in the same transaction as
  the duplicate check and the insert: two replicas given the same call at once begin one submission.
- Each process holds a session-level advisory lock named after it (its presence) on a connection of its own,
  for as long as it lives. PostgreSQL drops the lock when that connection ends, which is at once when the
  process dies, so a live replica knows a dead one's submissions in flight are orphans whatever host it was on.
- The watcher of one replica at a time polls CCAPI: the one holding the watcher lock on its presence
  connection. When that replica dies its lock goes with it and the next replica to ask takes over.
- Replicas tell each other of changes with NOTIFY on one channel, heard by a LISTEN connection of each.

psycopg is imported only when a PostgreSQL ledger is made (`CCAPI_SUNO_LEDGER_URL`): the SQLite default never
loads it. Without the `postgres` extra installed, making one raises `LedgerUnavailableError` saying so.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, LiteralString, Self, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread

from ccapi_suno_mcp._disk import is_disk_full
from ccapi_suno_mcp.ledger._base import SQLLedger
from ccapi_suno_mcp.ledger._dialect import ConflictError, Dialect, Row, Session
from ccapi_suno_mcp.ledger._protocol import (
    ChangeListener,
    LedgerClosedError,
    LedgerError,
    LedgerFullError,
    LedgerUnavailableError,
    LedgerUnusableError,
    SchemaVersionError,
)
from ccapi_suno_mcp.ledger._schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["CHANNEL", "POSTGRES", "PostgresLedger", "display_url"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

CHANNEL = "ccapi_suno_ledger"
"""The NOTIFY channel on which replicas announce changes."""
POOL_SIZE = 8
"""Connections (and worker threads) one process uses for the ledger's statements at most."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a connection before a call fails with `LedgerUnavailableError`."""
_PAYLOAD_IDS = 100
"""Task ids per NOTIFY (a payload holds at most 8,000 bytes)."""
_RECONNECT_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
CLOCK_WARNING_SECONDS = 5.0
"""A host clock this far off the database's is said in the log (the ledger keeps the database's time anyway)."""
_DATABASE_TIME = "SELECT extract(epoch FROM clock_timestamp())::float8 AS now"
IDLE_IN_TRANSACTION_MS = 60_000
"""A ledger transaction left open this long is ended by the server (ours take milliseconds): one stuck mid-claim
would otherwise hold the claims lock, and so every replica's paid calls, until TCP noticed its host was gone."""
_KEEPALIVE = {"idle": 10, "interval": 5, "count": 3}
"""TCP keepalives on both ends of every connection: a host gone without closing its connections (power, network)
is noticed in about 25 s, by the server (its locks are freed) and by us (a silently dropped LISTEN is redone)."""


def _connection_options(url: str) -> dict[str, Any]:
    """libpq's own settings for every connection of the ledger: a connect time-out and this end's TCP keepalives
    (those the URL gives are the operator's and kept). Nothing here is sent to the server, so a pooler in front
    of it (PgBouncer) sees a plain start-up."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(url)
    ours: dict[str, Any] = {
        "connect_timeout": int(CONNECT_TIMEOUT),
        "keepalives": 1,
        **{f"keepalives_{name}": value for name, value in _KEEPALIVE.items()},
    }
    return {name: value for name, value in ours.items() if name not in given}


def _session_settings(url: str) -> list[str]:
    """The server's side, set on each new connection: its TCP keepalives and the idle-transaction limit, each
    unless the operator sets it (`options` in the URL, or PGOPTIONS)."""
    from psycopg.conninfo import conninfo_to_dict

    given = f"{conninfo_to_dict(url).get('options', '')} {os.environ.get('PGOPTIONS', '')}"
    ours = {
        **{f"tcp_keepalives_{name}": value for name, value in _KEEPALIVE.items()},
        "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_MS,
    }
    return [f"SET {name} = {value}" for name, value in ours.items() if name not in given]


def _apply(settings: Sequence[str], connection: psycopg.Connection[Any]) -> None:
    """Set the session settings on a new pool connection (autocommit: they hold for the whole session)."""
    for statement in settings:
        connection.execute(cast(LiteralString, statement))


def _lock_key(name: str) -> int:
    """A 64-bit advisory lock key for `name`, in a namespace of this program's own."""
    return int.from_bytes(hashlib.sha256(f"ccapi-suno-mcp:{name}".encode()).digest()[:8], "big", signed=True)


_CLAIMS_KEY = _lock_key("claims")
_WATCHER_KEY = _lock_key("watcher")
_MIGRATE_KEY = _lock_key("migrate")

POSTGRES = Dialect(
    name="postgresql",
    in_list="{column} = ANY(?)",
    list_param=list,
    contains="strpos({column}, ?) > 0",
    like="ILIKE",
    clip_order="seq",
    for_update=" FOR UPDATE",
)


def display_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> LiteralString:
    """The shared SQL's `?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return cast(LiteralString, sql.replace("%", "%%").replace("?", "%s"))


def _clean(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; SQLite keeps it. CCAPI never sends one on purpose.
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def _import_psycopg() -> tuple[Any, Any]:
    """psycopg and psycopg_pool.

    Raises:
        LedgerUnavailableError: The `postgres` extra is not installed.
    """
    try:
        import psycopg
        import psycopg_pool
    except ImportError as error:
        raise LedgerUnavailableError(
            "CCAPI_SUNO_LEDGER_URL names a PostgreSQL ledger, but psycopg is not installed: install "
            "ccapi-suno-mcp[postgres] (for example uvx --from 'ccapi-suno-mcp[postgres]' ccapi-suno-mcp)"
        ) from error
    return psycopg, psycopg_pool


class _PostgresSession(Session):
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
        key = _lock_key(f"owner:{owner}")
        row = self.connection.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
        return bool(row and row["n"])


@dataclass(slots=True)
class _State:
    """What a ledger and its per-principal views share: the pool, this process's own connection, and how they are."""

    pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]] | None = None
    closed: bool = False
    unusable: LedgerUnusableError | None = None
    presence: psycopg.AsyncConnection[Any] | None = None
    present: bool = False
    """Whether the presence connection holds this process's presence lock (it may find it still held)."""
    leading: bool = False
    offset: float = 0.0
    """Seconds the database server's clock is ahead of this host's (see `PostgresLedger.__init__`)."""
    voice: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Whose announcements are whose: a ledger does not hear its own (two in one process hear each other)."""


class PostgresLedger(SQLLedger):
    """The task ledger in a PostgreSQL database, shared by every replica that names the same URL.

    Construct it with the URL (`postgresql://user:password@host:port/database`); the pool opens and the schema
    is migrated on the first call. Close it with `aclose()` or `async with`.
    """

    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        owner: str | None = None,
        pool_size: int = POOL_SIZE,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock`, when given (tests), is the ledger's time. Without it the ledger keeps the database server's
        time: this host's `wall_clock` corrected by its offset from the database's, measured on connecting and
        again on every presence check (each claim and watcher cycle), so replicas whose clocks disagree still
        agree on every submission's age (the duplicate window, the settling of a dead sender's)."""
        super().__init__(clock=clock or self._database_time, owner=owner)
        self._wall_clock = wall_clock
        self._follows_database = clock is None
        self._url = url
        self._pool_size = pool_size
        self._limiter = anyio.CapacityLimiter(pool_size)
        self._ready_lock = threading.Lock()
        self._presence_lock = anyio.Lock()
        self._s = _State()  # shared with the views `for_principal` makes

    @classmethod
    async def open(
        cls, url: str, *, clock: Callable[[], float] | None = None, owner: str | None = None, pool_size: int = POOL_SIZE
    ) -> Self:
        """Connect to the database at `url` and migrate it to the current schema.

        Raises:
            LedgerUnavailableError: The server cannot be reached, or psycopg is not installed.
            LedgerUnusableError: The database was written by a newer version of this program.
        """
        ledger = cls(url, clock=clock, owner=owner, pool_size=pool_size)
        await ledger.settle_interrupted()
        return ledger

    @property
    def url(self) -> str:
        """The database's URL, without its password."""
        return display_url(self._url)

    @property
    def shared(self) -> bool:
        """True: other replicas may use the same database."""
        return True

    # -- running statements -----------------------------------------------------------------------------

    async def _run(self, work: Callable[[Session], _T]) -> _T:
        # Not abandoned on cancellation: a write that started (say, a task id) finishes before we unwind.
        return await anyio.to_thread.run_sync(self._in_thread, work, limiter=self._limiter)

    def _in_thread(self, work: Callable[[Session], _T]) -> _T:
        psycopg, psycopg_pool = _import_psycopg()
        pool = self._ready()
        try:
            with pool.connection(timeout=CONNECT_TIMEOUT) as connection:
                return work(_PostgresSession(connection, psycopg.errors))
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
            raise self._unavailable(error) from error
        except psycopg.Error as error:  # the engine's own errors leave the ledger as the ledger's
            raise LedgerError(f"the task ledger database {self.url} refused a statement ({error})") from error

    def _unavailable(self, error: Exception) -> LedgerUnavailableError:
        if is_disk_full(error):
            return LedgerFullError(
                f"The disk of the task ledger database {self.url} is full: nothing of this was recorded. Free some "
                "space on the database server; the server carries on once there is room, no restart needed."
            )
        return LedgerUnavailableError(
            f"The task ledger database {self.url} cannot be reached ({str(error).strip() or type(error).__name__}); "
            "check that PostgreSQL is running and CCAPI_SUNO_LEDGER_URL is right, then try again"
        )

    def _ready(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Row]]:
        """The pool, opened and the schema migrated on first use (once, whichever thread comes first)."""
        if self._s.closed:
            raise LedgerClosedError(f"the ledger at {self.url} is closed")
        if self._s.unusable is not None:
            raise self._s.unusable
        if self._s.pool is not None:
            return self._s.pool
        psycopg, psycopg_pool = _import_psycopg()
        from psycopg.rows import dict_row

        with self._ready_lock:
            if self._s.pool is not None:
                return self._s.pool
            options: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, **_connection_options(self._url)}
            try:
                # One connection of our own first: a server that refuses is known at once (a pool would retry
                # until its timeout), and the schema is migrated before anything else uses it.
                with psycopg.connect(self._url, **options) as connection:
                    settings = _session_settings(self._url)
                    for statement in settings:
                        connection.execute(statement)
                    self._migrate(_PostgresSession(connection, psycopg.errors))
                    before = self._wall_clock()
                    row = connection.execute(_DATABASE_TIME).fetchone()
                    self._note_offset(float(row["now"]) if row else None, before)
            except LedgerUnusableError as error:
                self._s.unusable = error
                logger.error("%s", error)
                raise
            except psycopg.OperationalError as error:
                raise self._unavailable(error) from error
            pool = psycopg_pool.ConnectionPool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                kwargs=options,
                configure=functools.partial(_apply, settings),
                open=False,
                name="ccapi-suno-ledger",
            )
            pool.open(wait=False)
            self._s.pool = pool
            return pool

    def _migrate(self, session: _PostgresSession) -> None:
        """Run the steps the database lacks, each in its own transaction, one replica at a time."""
        while True:
            with session.transaction():
                session.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_KEY,))
                session.execute("CREATE TABLE IF NOT EXISTS ledger_schema (version INTEGER NOT NULL)")
                rows = session.execute("SELECT version FROM ledger_schema")
                if not rows:
                    session.execute("INSERT INTO ledger_schema (version) VALUES (0)")
                version = int(rows[0]["version"]) if rows else 0
                if version > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        self.url,
                        f"it was written by a newer ccapi-suno-mcp (schema version {version}; this one knows "
                        f"versions up to {SCHEMA_VERSION})",
                        instead="Upgrade ccapi-suno-mcp on this replica (every replica should run the same "
                        "version), or point CCAPI_SUNO_LEDGER_URL at another database.",
                    )
                if version == SCHEMA_VERSION:
                    return
                for statement in POSTGRES_MIGRATIONS[version]:
                    session.execute(statement)
                session.execute("UPDATE ledger_schema SET version = ?", (version + 1,))

    # -- presence, the watcher lock, and changes between replicas --------------------------------------

    async def _before_claim(self) -> None:
        """This process's presence lock is held before it begins a submission, so others can tell it lives."""
        async with self._presence_lock:
            await self._present()

    async def _present(self) -> psycopg.AsyncConnection[Any]:
        """The presence connection, (re)connected and holding this process's presence lock. Needs the lock.

        Raises:
            LedgerClosedError: The ledger is closed.
            LedgerUnavailableError: The server cannot be reached.
        """
        if self._s.closed:
            raise LedgerClosedError(f"the ledger at {self.url} is closed")
        psycopg, _ = _import_psycopg()
        connection = self._s.presence
        try:
            if connection is not None and not connection.closed:
                if self._s.present:  # a lost connection (and so lost locks) shows here
                    before = self._wall_clock()
                    row = await (await connection.execute(_DATABASE_TIME)).fetchone()
                    self._note_offset(float(row[0]) if row else None, before)
                else:  # the lock was still held when we asked (by our own old session, say): ask again
                    self._s.present = await self._take_presence(connection)
                return connection
        except psycopg.OperationalError:
            logger.warning("lost the ledger's presence connection to %s; reconnecting", self.url)
        self._s.presence, self._s.present, self._s.leading = None, False, False
        await self._run(lambda _session: None)  # the schema first (and a clear error if the server is away)
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, **_connection_options(self._url)
            )
            for statement in _session_settings(self._url):
                await connection.execute(statement)
            present = await self._take_presence(connection)
        except psycopg.OperationalError as error:
            raise self._unavailable(error) from error
        self._s.presence, self._s.present = connection, present
        return connection

    def _database_time(self) -> float:
        return self._wall_clock() + self._s.offset

    def _note_offset(self, now: float | None, before: float) -> None:
        """Take the database's time `now` (asked at `before`, this host's time) as the ledger's from now on."""
        if not self._follows_database or now is None:
            return
        offset = now - (before + self._wall_clock()) / 2
        if abs(offset) > CLOCK_WARNING_SECONDS >= abs(self._s.offset):
            logger.warning(
                "this host's clock is %.0f s off the ledger database's; the ledger keeps the database's time", -offset
            )
        self._s.offset = offset

    async def _take_presence(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        """Whether `connection` now holds this process's presence lock.

        Never waits: while another session holds it (this process's old one that the server has not ended yet,
        or another ledger in this same process), the owner it names is alive all the same. `_present` asks again
        on each later use (every claim, every watcher cycle) until it is ours: a claim never goes out under a
        lock nobody holds, which would leave this live process's submissions settled as a dead one's.
        """
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(f"owner:{self.owner}"),))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def lead_watcher(self) -> bool:
        """Whether this process holds the watcher lock (taking it if it is free).

        Raises:
            LedgerClosedError: The ledger is closed.
            LedgerUnavailableError: The server cannot be reached.
        """
        async with self._presence_lock:
            connection = await self._present()
            if not self._s.leading:
                row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (_WATCHER_KEY,))).fetchone()
                self._s.leading = bool(row and row[0])
                if self._s.leading:
                    logger.info("this replica's watcher now polls CCAPI for the shared ledger")
            return self._s.leading

    async def announce(self, task_ids: Sequence[str], *, list_changed: bool, spend: bool = False) -> None:
        """NOTIFY the other replicas (in payloads of at most 100 ids).

        Raises:
            LedgerClosedError: The ledger is closed.
            LedgerUnavailableError: The server cannot be reached.
        """
        ids = [task_id for task_id in task_ids if task_id]
        chunks = [ids[start : start + _PAYLOAD_IDS] for start in range(0, len(ids), _PAYLOAD_IDS)] or [[]]
        payloads = [
            json.dumps({"from": self._s.voice, "ids": chunk, "list": list_changed and index == 0, "spend": spend})
            for index, chunk in enumerate(chunks)
        ]

        def notify(session: Session) -> None:
            for payload in payloads:
                session.execute("SELECT pg_notify(?, ?)", (CHANNEL, payload))

        await self._run(notify)

    async def follow(self, listener: ChangeListener) -> None:
        """LISTEN for the other replicas' announcements and pass them on, reconnecting when the server goes.

        Raises:
            LedgerUnavailableError: psycopg is not installed.
        """
        psycopg, _ = _import_psycopg()
        failures = 0
        while not self._s.closed:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, **_connection_options(self._url)
                )
                async with connection:
                    for statement in _session_settings(self._url):
                        await connection.execute(statement)
                    await connection.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        logger.info("listening to the other replicas again")
                        await listener([], True, True)  # changes made while we were away were not heard
                    failures = 0
                    async for notice in connection.notifies():
                        heard = _parse(notice.payload)
                        if heard is not None and heard[0] != self._s.voice:
                            await listener(heard[1], heard[2], heard[3])
            except psycopg.OperationalError as error:
                delay = _RECONNECT_BACKOFF[min(failures, len(_RECONNECT_BACKOFF) - 1)]
                failures += 1
                logger.warning("not hearing the other replicas (%s); trying again in %.1f s", error, delay)
                await anyio.sleep(delay)

    async def aclose(self) -> None:
        """Close the pool and this process's own connections (releasing its locks); calling it again does nothing."""
        with anyio.CancelScope(shield=True):
            self._s.closed = True
            async with self._presence_lock:
                if self._s.presence is not None:
                    await self._s.presence.close()
                    self._s.presence, self._s.present, self._s.leading = None, False, False
            pool, self._s.pool = self._s.pool, None
            if pool is not None:
                await anyio.to_thread.run_sync(pool.close, limiter=self._limiter)


def _parse(payload: str) -> tuple[str, list[str], bool, bool] | None:
    """An announcement as (sender, task ids, list changed, spend changed), or None for a payload that is not one."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    fields = cast(dict[str, Any], value)
    sender, ids, changed, spend = fields.get("from"), fields.get("ids"), fields.get("list"), fields.get("spend")
    if not isinstance(sender, str) or not isinstance(ids, list) or not isinstance(changed, bool):
        return None
    return sender, [item for item in cast(list[Any], ids) if isinstance(item, str)], changed, spend is True
