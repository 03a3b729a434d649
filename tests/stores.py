"""One database of either ledger backend, for tests that run on both (the `store` fixture in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from ccapi_suno_mcp.ledger import PostgresLedger, SQLiteLedger

START = 1_773_385_996.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Store:
    """One database of one backend; every `open` is another ledger on it, as another process would open it."""

    def __init__(self, backend: str, location: str) -> None:
        self.backend = backend
        self.location = location

    async def open(
        self, clock: Callable[[], float] | None = None, *, owner: str | None = None
    ) -> SQLiteLedger | PostgresLedger:
        clock = clock or FakeClock()
        if self.backend == "sqlite":
            return await SQLiteLedger.open(self.location, clock=clock, owner=owner)
        return await PostgresLedger.open(self.location, clock=clock, owner=owner)
