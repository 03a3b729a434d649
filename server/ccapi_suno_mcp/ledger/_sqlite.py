"""The embedded ledger: one SQLite file in WAL mode, written from a worker thread.

One connection serves the process. Its blocking calls run in a worker thread, one at a time
(`anyio.CapacityLimiter(1)`), so the event loop never waits on the disk. The exception is a small read (a few
tasks by id, as a status call makes): a second, read-only connection answers it on the event loop in tens of
microseconds, where the hop to a thread and back costs hundreds; it never waits for a lock (busy timeout 0: a
read that would wait goes to the thread instead). Every write is one
`BEGIN IMMEDIATE` transaction, so a crash never leaves half a write and a second process on the
same file waits (busy timeout) instead of failing. Nothing is cached between calls: another process
may have written in the meantime.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import anyio
import anyio.to_thread

from ccapi_suno_mcp._disk import disk_full_message, is_disk_full, unwritable_message, unwritable_reason
from ccapi_suno_mcp.ledger._base import SQLLedger
from ccapi_suno_mcp.ledger._dialect import ConflictError, Dialect, Row, Session
from ccapi_suno_mcp.ledger._owner import owner_alive
from ccapi_suno_mcp.ledger._protocol import (
    ChangeListener,
    LedgerClosedError,
    LedgerFullError,
    LedgerUnavailableError,
    LedgerUnusableError,
    SchemaVersionError,
)
from ccapi_suno_mcp.ledger._queries import INTERRUPTED_AFTER
from ccapi_suno_mcp.ledger._schema import SCHEMA_VERSION, SQLITE_MIGRATIONS, run_step

__all__ = ["BUSY_TIMEOUT", "INTERRUPTED_AFTER", "SQLITE", "SQLiteLedger"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT = 10.0
"""Seconds a write waits for another process holding the file before it fails."""

_T = TypeVar("_T")

_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
"""SQLite's answers for a file that is not a database or is damaged: the ledger is then unusable, untouched."""
_NOT_WRITABLE = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN})
"""SQLite's answers when it may be the folder that cannot be written (then said as such)."""

SQLITE = Dialect(
    name="sqlite",
    in_list="{column} IN (SELECT value FROM json_each(?))",
    list_param=lambda values: json.dumps(list(values)),
    contains="instr({column}, ?) > 0",
    like="LIKE",
    clip_order="rowid",
    for_update="",  # BEGIN IMMEDIATE already holds the only write lock
)


class _SQLiteSession(Session):
    """The process's one connection, in autocommit mode: `transaction` opens each transaction explicitly."""

    dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as error:
            if error.sqlite_errorcode in (sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY):
                raise ConflictError(str(error)) from error
            raise

    @contextmanager
    def transaction(self, *, write: bool = True, durable: bool = False) -> Generator[None]:
        """`durable` syncs the commit to disk (synchronous = FULL for this one transaction)."""
        connection = self.connection
        if durable:
            connection.execute("PRAGMA synchronous = FULL")
        try:
            # IMMEDIATE takes the write lock up front, so a second process waits (busy timeout) instead of
            # failing when a read inside the transaction turns into a write.
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            if durable:
                connection.execute("PRAGMA synchronous = NORMAL")

    def lock_claims(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE already keeps every other writer out until the transaction ends."""

    def owner_alive(self, owner: str | None) -> bool | None:
        """The process check of `_owner`: a sender on this host is known alive or dead, any other is unknown."""
        return owner_alive(owner)


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


@dataclass(slots=True)
class _State:
    """What a ledger and its per-principal views share: the connection, and how it is."""

    session: _SQLiteSession | None = None
    reader: _SQLiteSession | None = None
    no_reader: bool = False
    closed: bool = False
    unusable: LedgerUnusableError | None = None


class SQLiteLedger(SQLLedger):
    """The task ledger in one SQLite file, safe to share with other processes on the same machine.

    Construct it with `await SQLiteLedger.open(path)` (or construct it and let the first call open the
    file), and close it with `aclose()` or `async with`.
    """

    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time, owner: str | None = None
    ) -> None:
        super().__init__(clock=clock, owner=owner)
        self._path = os.fspath(path)
        self._limiter = anyio.CapacityLimiter(1)
        self._s = _State()  # shared with the views `for_principal` makes

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time, owner: str | None = None
    ) -> Self:
        """Open (creating folders, file and schema as needed) the ledger at `path`.

        Raises:
            LedgerUnusableError: The file is not a database, is damaged, cannot be opened, or was written by a
                newer version of this program (`SchemaVersionError`). It is left as it was.
        """
        ledger = cls(path, clock=clock, owner=owner)
        await ledger.settle_interrupted()
        return ledger

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def shared(self) -> bool:
        """False: processes sharing the file each poll and notify on their own."""
        return False

    async def lead_watcher(self) -> bool:
        """Always True: every process on the file keeps its own watcher (they agree through the file)."""
        return True

    async def announce(self, task_ids: Sequence[str], *, list_changed: bool, spend: bool = False) -> None:
        """Nothing to do: no other process listens."""

    async def follow(self, listener: ChangeListener) -> None:
        """Returns at once: no other process announces anything."""

    async def aclose(self) -> None:
        """Close the connections; calling it again does nothing."""
        with anyio.CancelScope(shield=True):
            self._s.closed = True  # on the event loop, where the reader is used: no read is under way
            if self._s.reader is not None:
                self._s.reader.connection.close()
                self._s.reader = None
            await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    async def _run(self, work: Callable[[Session], _T]) -> _T:
        # Not abandoned on cancellation: a write that started (say, a task id) finishes before we unwind.
        return await anyio.to_thread.run_sync(self._in_thread, work, limiter=self._limiter)

    async def _read(self, work: Callable[[Session], _T]) -> _T:
        """A small read on the event loop, on the read-only connection (opened in the thread, once the file is
        open and migrated); in the thread when that connection is not there or would have to wait."""
        reader = self._s.reader
        if reader is None or self._s.closed or self._s.unusable is not None:
            if self._path == ":memory:" or self._path.startswith("file:"):
                return await self._run(work)  # a second connection would be another database

            def opening_the_reader(session: Session) -> _T:
                self._open_reader()  # here, where the file is known to be open and migrated
                return work(session)

            return await self._run(opening_the_reader)
        try:
            return self._guarded(work, reader)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            return await self._run(work)  # a writer is recovering or checkpointing: wait for it off the loop

    def _open_reader(self) -> None:
        if self._s.reader is not None or self._s.closed or self._s.no_reader:
            return
        try:
            connection = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA query_only = ON")
        except sqlite3.Error as error:  # small reads keep going to the thread, as every other call does
            logger.debug("no read-only connection to %s (%s)", self._path, error)
            self._s.no_reader = True
            return
        connection.row_factory = _dict_row
        self._s.reader = _SQLiteSession(connection)

    def _in_thread(self, work: Callable[[Session], _T]) -> _T:
        if self._s.closed:
            raise LedgerClosedError(f"the ledger at {self._path} is closed")
        if self._s.unusable is not None:
            raise self._s.unusable
        if self._s.session is None:
            self._s.session = self._guarded(lambda _: _SQLiteSession(_connect(self._path)), None)
        return self._guarded(work, self._s.session)

    def _guarded(self, work: Callable[[Any], _T], session: _SQLiteSession | None) -> _T:
        """`work(session)`, a damaged or unusable file made the ledger's refusal from now on."""
        try:
            return work(session)
        except LedgerUnusableError as error:
            raise self._refuse(error) from None
        except (sqlite3.DatabaseError, OSError) as error:
            if is_disk_full(error):  # not a refusal: the next call works once there is room
                raise LedgerFullError(
                    disk_full_message(
                        Path(self._path).parent,
                        "the task ledger could not record this, and nothing of it was kept",
                        "CCAPI_SUNO_HOME",
                    )
                ) from error
            if not isinstance(error, sqlite3.DatabaseError):
                raise
            if error.sqlite_errorcode & 0xFF in _NOT_WRITABLE and (folder_error := _folder_error(self._path)):
                raise folder_error from error
            if error.sqlite_errorcode not in _DAMAGED:
                raise
            raise self._refuse(
                LedgerUnusableError(self._path, f"it is damaged or not a SQLite database ({error})")
            ) from error

    def _refuse(self, error: LedgerUnusableError) -> LedgerUnusableError:
        """From now on every call raises `error`; said once in the log (the server keeps serving)."""
        self._s.unusable = error
        logger.error("%s", error)
        return error

    def _close(self) -> None:
        self._s.closed = True
        if self._s.reader is not None:  # opened by a read in this thread while `aclose` began on the loop
            self._s.reader.connection.close()
            self._s.reader = None
        if self._s.session is not None:
            self._s.session.connection.close()
            self._s.session = None


# -- connection and schema ------------------------------------------------------------------------------


def _connect(path: str) -> sqlite3.Connection:
    """A connection to the ledger file, migrated to the current schema.

    The file is read (its schema version) before anything is written to it, so a damaged file or one of a
    newer version is refused untouched.

    Raises:
        LedgerUnusableError: the file cannot be opened, is not a database or is damaged, or is of a newer schema.
    """
    try:
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE for writes) by the session.
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as error:
        raise _folder_error(path) or LedgerUnusableError(path, f"it cannot be opened ({error})") from error
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        try:
            version = _user_version(connection)
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode not in _DAMAGED:
                raise
            raise LedgerUnusableError(path, f"it is damaged or not a SQLite database ({error})") from error
        _refuse_newer(version, path)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.row_factory = _dict_row
        _migrate(_SQLiteSession(connection), path)
    except BaseException:
        connection.close()
        raise
    return connection


def _folder_error(path: str) -> LedgerUnavailableError | None:
    """The error for a ledger whose folder cannot be written (read-only, no permission), or None if it can be."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    folder = Path(path).parent
    reason = unwritable_reason(folder)
    # The folder, not the file: nothing to move aside, and the next call works once the folder is writable.
    return None if reason is None else LedgerUnavailableError(unwritable_message(folder, reason, "CCAPI_SUNO_HOME"))


def _user_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            path,
            f"it was written by a newer ccapi-suno-mcp (schema version {version}; this one knows versions up to "
            f"{SCHEMA_VERSION})",
            remedy="To keep using it, upgrade ccapi-suno-mcp (or point CCAPI_SUNO_HOME at another folder); or: ",
        )


def _migrate(session: _SQLiteSession, path: str) -> None:
    version = int(session.execute("PRAGMA user_version")[0]["user_version"])
    _refuse_newer(version, path)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with session.transaction():
            # Another process may have migrated since we looked.
            if int(session.execute("PRAGMA user_version")[0]["user_version"]) >= target:
                continue
            for step in SQLITE_MIGRATIONS[target - 1]:
                run_step(session, step)
            session.execute(f"PRAGMA user_version = {target}")
