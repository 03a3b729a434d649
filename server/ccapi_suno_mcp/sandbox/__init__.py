"""A faithful offline emulator of CCAPI's Suno API (a new-api fork), for tests, demos and `--sandbox` mode.

It serves the same routes, envelopes, statuses and error bodies as the real service, computes task
lifecycles from a clock (so tests drive time with `ManualClock`), serves real tiny media files, and has
switches (`Faults`) for the failures a client must survive. It imports nothing else from this package.
State lives in memory; with `Sandbox(state_path=...)` it is also kept in a JSON file and survives restarts
(links are rendered from the current origin, so they follow the sandbox to a new port).

    sandbox = Sandbox(clock=ManualClock())
    async with serve_sandbox(sandbox) as origin:
        ...  # point a client at origin; sandbox.clock.advance(5) to finish tasks
"""

from ._app import Sandbox
from ._clock import Clock, ManualClock, SystemClock
from ._faults import Faults, SandboxStats
from ._serve import run_sandbox, serve_asgi, serve_sandbox

__all__ = [
    "Clock",
    "Faults",
    "ManualClock",
    "Sandbox",
    "SandboxStats",
    "SystemClock",
    "run_sandbox",
    "serve_asgi",
    "serve_sandbox",
]
