"""Which process owns a submission in flight, and whether that process still lives.

A submission is recorded before its request is sent. If its process dies in that window (the "money window"),
the row stays `submitting` and nobody will ever record its answer. The row names its owner as
`host:pid:start`, where `start` tells this process apart from a later one that reuses its pid (on Linux, the
process's start time in clock ticks since boot and the boot id). Another process on the same host can then
tell at once that the owner is gone and settle the row as outcome unknown; for an owner on another host (a
ledger on a shared disk) it cannot tell, and the age rule applies.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

__all__ = ["current_owner", "owner_alive"]

_PROC = Path("/proc")


def _start_marker(pid: int) -> str | None:
    """When process `pid` started (with this boot's id), or None if that cannot be read."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: the fields after it are plain.
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}/{fields[19]}" if len(fields) > 19 else None


@functools.cache
def current_owner() -> str:
    """This process as the owner of the submissions it sends: `host:pid:start`."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_marker(pid) or ''}"


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process named by `owner` still runs: True, False, or None when this host cannot tell.

    An owner recorded before owners were recorded (None), or on another host, cannot be checked here.
    """
    if not owner:
        return None
    host, _, rest = owner.partition(":")
    pid_text, _, marker = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if marker:
        now = _start_marker(pid)
        if now is not None or _PROC.is_dir():
            return now == marker  # gone, or its pid now belongs to a younger process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
