"""What the ledger's shared SQL needs from a database: a session to run it in, and the few words that differ.

The statements in `_queries` are written once, with `?` placeholders, and run unchanged on SQLite and on
PostgreSQL. A `Dialect` holds the fragments the two engines spell differently (a list parameter, a substring
test, case-insensitive LIKE, the order clips were first stored in, a row lock); a `Session` is one connection
of one backend, which runs a statement, opens a transaction, serializes submission claims, and says whether
the process that owns a submission in flight still lives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["ConflictError", "Dialect", "Row", "Session"]

Row = dict[str, Any]
"""One result row, by column name."""


class ConflictError(Exception):
    """A write broke a unique constraint (the session translates its engine's error to this)."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL fragments that differ between the engines; everything else in `_queries` is shared."""

    name: str
    in_list: str
    """`{column}` is one of the values of the single list parameter."""
    list_param: Callable[[Sequence[Any]], Any]
    """That parameter, from a list of values."""
    contains: str
    """`{column}` contains the text parameter (case-sensitive; the ledger compares case-folded text)."""
    like: str
    """The operator of an ASCII-case-insensitive LIKE."""
    clip_order: str
    """A column of `clips` that grows in the order clips were first stored."""
    for_update: str
    """Appended to a SELECT whose rows the transaction is about to change."""

    def member(self, column: str) -> str:
        return self.in_list.format(column=column)

    def substring(self, column: str) -> str:
        return self.contains.format(column=column)


class Session(Protocol):
    """One connection of a backend, used by one thread at a time."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; its rows (none for a write).

        Raises:
            ConflictError: the statement broke a unique constraint.
        """
        ...

    def transaction(self, *, write: bool = True, durable: bool = False) -> AbstractContextManager[None]:
        """One transaction: all of it is committed or none of it. `durable` makes the commit survive a crash."""
        ...

    def lock_claims(self) -> None:
        """Inside a write transaction: wait until no other process is claiming a submission, until it ends."""
        ...

    def owner_alive(self, owner: str | None) -> bool | None:
        """Whether the process that recorded itself as `owner` still runs: True, False, or None if unknown."""
        ...
