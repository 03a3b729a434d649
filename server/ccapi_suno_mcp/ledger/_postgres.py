"""The shared ledger: one PostgreSQL database that several server processes (replicas) use at once.

The statements are the same as SQLite's (`_queries`); they run on pooled connections (psycopg 3 with
psycopg_pool) in worker threads, so the event loop never waits on the network. How each connection is set up
is `_postgres_connection`'s; the dialect, the session on a connection and the lock keys are `_postgres_session`'s.
What only a shared database needs is here:

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
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

import anyio
import anyio.to_thread

from ccapi_suno_mcp._disk import is_disk_full
from ccapi_suno_mcp.ledger._base import SQLLedger
from ccapi_suno_mcp.ledger._dialect import Row, Session
from ccapi_suno_mcp.ledger._postgres_connection import (
    CONNECT_TIMEOUT,
    apply_settings,
    connection_options,
    display_url,
    session_settings,
)
from ccapi_suno_mcp.ledger._postgres_session import MIGRATE_KEY, WATCHER_KEY, PostgresSession, lock_key
from ccapi_suno_mcp.ledger._protocol import (
    ChangeListener,
    LedgerClosedError,
    LedgerError,
    LedgerFullError,
    LedgerUnavailableError,
    LedgerUnusableError,
    SchemaVersionError,
)
from ccapi_suno_mcp.ledger._schema import POSTGRES_MIGRATIONS, SCHEMA_VERSION, run_step

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["CHANNEL", "PostgresLedger"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

CHANNEL = "ccapi_suno_ledger"
"""The NOTIFY channel on which replicas announce changes."""
POOL_SIZE = 8
"""Connections (and worker threads) one process uses for the ledger's statements at most."""
_PAYLOAD_IDS = 100
"""Task ids per NOTIFY (a payload holds at most 8,000 bytes)."""
_RECONNECT_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
CLOCK_WARNING_SECONDS = 5.0
"""A host clock this far off the database's is said in the log (the ledger keeps the database's time anyway)."""
_DATABASE_TIME = "SELECT extract(epoch FROM clock_timestamp())::float8 AS now"


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
                return work(PostgresSession(connection, psycopg.errors))
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
            options: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, **connection_options(self._url)}
            try:
                # One connection of our own first: a server that refuses is known at once (a pool would retry
                # until its timeout), and the schema is migrated before anything else uses it.
                with psycopg.connect(self._url, **options) as connection:
                    settings = session_settings(self._url)
                    for statement in settings:
                        connection.execute(statement)
                    self._migrate(PostgresSession(connection, psycopg.errors))
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
                configure=functools.partial(apply_settings, settings),
                open=False,
                name="ccapi-suno-ledger",
            )
            pool.open(wait=False)
            self._s.pool = pool
            return pool

    def _migrate(self, session: PostgresSession) -> None:
        """Run the steps the database lacks, each in its own transaction, one replica at a time."""
        while True:
            with session.transaction():
                session.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATE_KEY,))
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
                for step in POSTGRES_MIGRATIONS[version]:
                    run_step(session, step)
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
                self._url, autocommit=True, **connection_options(self._url)
            )
            for statement in session_settings(self._url):
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
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(f"owner:{self.owner}"),))
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
                row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (WATCHER_KEY,))).fetchone()
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
                    self._url, autocommit=True, **connection_options(self._url)
                )
                async with connection:
                    for statement in session_settings(self._url):
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
