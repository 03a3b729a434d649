"""Small real filesystems for tests: a tmpfs of a given size that fills up, or that is made read-only.

Mounting needs root (these machines run tests as root). Every mount is undone when its block ends, even when
the test fails or is interrupted (a lazy unmount, so a process still holding a file there does not block it).
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fill", "read_only", "small_filesystem"]


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()} (these tests mount tmpfs as root)")


@contextmanager
def small_filesystem(folder: Path, size_kb: int) -> Generator[Path]:
    """A tmpfs of `size_kb` KiB mounted at `folder` (made if missing) for the length of the block."""
    folder.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(folder))
    try:
        yield folder
    finally:
        _run("umount", "--lazy", str(folder))


@contextmanager
def read_only(folder: Path) -> Generator[Path]:
    """`folder` on a tmpfs mounted read-only (root cannot write it either) for the length of the block."""
    with small_filesystem(folder, 1024):
        _run("mount", "-o", "remount,ro", str(folder))
        yield folder


def fill(folder: Path) -> Path:
    """Write a file in `folder` until its filesystem is full; returns the file (delete it to make room)."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as sink:
        try:
            while True:
                sink.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler
