"""Disk trouble said plainly: a full disk, and a folder that cannot be written, recognised in one place.

A full disk shows up as `OSError` ENOSPC or EDQUOT (a file we write), SQLite's SQLITE_FULL ("database or disk is
full"), or PostgreSQL's disk_full (53100, its server's disk). The ledger and the downloads turn these into one
sentence naming the folder and saying what was and was not done.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["disk_full_message", "is_disk_full", "saving_error", "unwritable_message", "unwritable_reason"]

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13
_POSTGRES_DISK_FULL = "53100"


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says a disk (or a quota on it) is full."""
    if isinstance(error, OSError):
        return error.errno in _FULL_ERRNOS
    code = getattr(error, "sqlite_errorcode", None)  # sqlite3.Error, without importing sqlite3 here
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_FULL
    return getattr(error, "sqlstate", None) == _POSTGRES_DISK_FULL


def unwritable_reason(folder: Path) -> str | None:
    """None if a file can be created in `folder` (made if missing), else why not ("Read-only file system")."""
    probe = folder / f".ccapi-suno-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def disk_full_message(folder: Path, outcome: str, variable: str) -> str:
    """The sentence for a full disk under `folder`: what happened (`outcome`), and what to do."""
    return (
        f"The disk holding {folder} is full: {outcome}. Free some space there, or set {variable} to a folder on "
        "a disk with room; the server carries on once there is room, no restart needed."
    )


def unwritable_message(folder: Path, reason: str, variable: str) -> str:
    """The sentence for a folder the server cannot write, naming the fix."""
    return (
        f"Cannot write to {folder} ({reason}): set {variable} to a folder this user can write, or make {folder} "
        "writable."
    )


def saving_error(error: OSError, folder: Path) -> Exception:
    """What to raise when saving a download into `folder` failed with `error` (the partial file is gone by then):
    a `ToolError` saying so for a full disk or a folder that cannot be written, else `error` itself."""
    from mcp.server.mcpserver.exceptions import ToolError

    if is_disk_full(error):
        return ToolError(
            disk_full_message(folder, "the file was not saved (no partial file is left)", "CCAPI_SUNO_DOWNLOAD_DIR")
            + " Then call suno_download again."
        )
    reason = unwritable_reason(folder)
    if reason is not None:
        return ToolError(unwritable_message(folder, reason, "CCAPI_SUNO_DOWNLOAD_DIR") + " Nothing was saved.")
    return error
