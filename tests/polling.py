"""Waiting for state another process or server owns, where there is no event to wait on: poll with a deadline."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import anyio

_T = TypeVar("_T")

INTERVAL = 0.02
"""Seconds between looks: short beside any deadline, long enough not to load the machine."""


@overload
async def eventually(check: Callable[[], Awaitable[_T]], *, within: float = 20) -> _T: ...
@overload
async def eventually(check: Callable[[], _T], *, within: float = 20) -> _T: ...
async def eventually(check: Callable[[], Any], *, within: float = 20) -> Any:
    """`check()` (sync or async) asked again until its answer is true; that answer. Fails (TimeoutError) after
    `within` seconds: what it waits for is another process's doing (a server ending a session, a replica's
    watcher, a sandbox holding a submit), which tells no one when it is done."""
    with anyio.fail_after(within):
        while True:
            answer = check()
            if inspect.isawaitable(answer):
                answer = await answer
            if answer:
                return answer
            await anyio.sleep(INTERVAL)
