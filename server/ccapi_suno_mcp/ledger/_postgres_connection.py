"""How the ledger connects to PostgreSQL: libpq's options and the server's session settings for every connection.

Each connection gets a connect time-out, TCP keepalives on both ends and a limit on idle transactions, each
unless the operator's URL (or PGOPTIONS) sets it already; `display_url` is the URL as messages show it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, LiteralString, cast
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CONNECT_TIMEOUT",
    "IDLE_IN_TRANSACTION_MS",
    "apply_settings",
    "connection_options",
    "display_url",
    "session_settings",
]

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a connection before a call fails with `LedgerUnavailableError`."""
IDLE_IN_TRANSACTION_MS = 60_000
"""A ledger transaction left open this long is ended by the server (ours take milliseconds): one stuck mid-claim
would otherwise hold the claims lock, and so every replica's paid calls, until TCP noticed its host was gone."""
_KEEPALIVE = {"idle": 10, "interval": 5, "count": 3}
"""TCP keepalives on both ends of every connection: a host gone without closing its connections (power, network)
is noticed in about 25 s, by the server (its locks are freed) and by us (a silently dropped LISTEN is redone)."""


def connection_options(url: str) -> dict[str, Any]:
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


def session_settings(url: str) -> list[str]:
    """The server's side, set on each new connection: its TCP keepalives and the idle-transaction limit, each
    unless the operator sets it (`options` in the URL, or PGOPTIONS)."""
    from psycopg.conninfo import conninfo_to_dict

    given = f"{conninfo_to_dict(url).get('options', '')} {os.environ.get('PGOPTIONS', '')}"
    ours = {
        **{f"tcp_keepalives_{name}": value for name, value in _KEEPALIVE.items()},
        "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_MS,
    }
    return [f"SET {name} = {value}" for name, value in ours.items() if name not in given]


def apply_settings(settings: Sequence[str], connection: psycopg.Connection[Any]) -> None:
    """Set the session settings on a new pool connection (autocommit: they hold for the whole session)."""
    for statement in settings:
        connection.execute(cast(LiteralString, statement))


def display_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))
