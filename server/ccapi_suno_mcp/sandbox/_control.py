"""The sandbox's control routes (`/_sandbox/...`, no auth, for tests and demos): counters, faults, clock, held submits.

`SandboxControls` is a base of `Sandbox`: these routes read and set the switches the API routes obey, and need
nothing of the emulated API but those switches.
"""

from __future__ import annotations

from dataclasses import asdict

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._actions import RequestRejected
from ._clock import Clock, ManualClock
from ._faults import Faults, SandboxStats, update_faults
from ._http import json_object

__all__ = ["SandboxControls"]


class SandboxControls:
    """The control routes and the methods behind them, over the switches `Sandbox` sets up."""

    clock: Clock
    faults: Faults
    stats: SandboxStats
    held: int
    _release: anyio.Event

    def reset_stats(self) -> None:
        """Zero every counter (in place, so references to `stats` stay valid)."""
        vars(self.stats).update(vars(SandboxStats()))

    # --- control (no auth, for tests and demos) ---

    async def _control_stats(self, request: Request) -> Response:
        return JSONResponse(asdict(self.stats))

    async def _control_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                update_faults(self.faults, await json_object(request))
            except (RequestRejected, ValueError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(asdict(self.faults))

    async def _control_advance(self, request: Request) -> Response:
        if not isinstance(self.clock, ManualClock):
            return JSONResponse({"error": "the sandbox runs on the system clock; only a ManualClock can advance"}, 409)
        try:
            seconds = (await json_object(request)).get("seconds")
        except RequestRejected as rejected:
            return JSONResponse({"error": rejected.message}, status_code=400)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return JSONResponse({"error": "seconds: must be a number >= 0"}, status_code=400)
        self.clock.advance(seconds)
        return JSONResponse({"now": self.clock.now()})

    async def _control_held(self, request: Request) -> Response:
        return JSONResponse({"held": self.held})

    def release_held_submits(self) -> None:
        """Answer every submit held back by `Faults.held_submits`."""
        self._release.set()
        self._release = anyio.Event()

    async def _control_release(self, request: Request) -> Response:
        held = self.held
        self.release_held_submits()
        return JSONResponse({"released": held})

    async def _control_reset(self, request: Request) -> Response:
        self.reset_stats()
        return JSONResponse(asdict(self.stats))
