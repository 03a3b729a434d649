"""A throwaway PostgreSQL cluster for tests: Debian's `initdb` and `pg_ctl` in a temporary folder, on a free port.

These machines run as root, and PostgreSQL refuses to run as root, so there the binaries run as the `postgres`
system user (`runuser -u postgres --`); as any other user they run as that user. The cluster trusts loopback
connections (it is reachable only from this machine, for the length of a test session), keeps its socket in its
own folder, and is stopped and deleted when the session ends. Each test asks for a fresh database of its own.

`pg_ctl` detaches the server from us, so nothing would stop it if the process that started it died without its
`finally` (killed, a timeout's SIGKILL, an interrupted run). So each cluster has a watchdog: a small process in a
session of its own, holding the read end of a pipe whose write end only the owner holds. When the owner goes, by
`stop()` or by dying in any way, the pipe closes, and the watchdog stops the server and deletes the folder.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from processes import free_port

__all__ = ["PostgresCluster", "find_binary", "survivors"]

_SERVICE_USER = "postgres"
_START_TIMEOUT = 60
NEEDS = ("postgresql",)  # what tests using this module need installed (tests/machine.py)


_STOP_TIMEOUT = 60

# argv: the pipe's read end, then a JSON list of the stop command, the data folder and the cluster's folder.
_WATCHDOG = """
import json, os, shutil, subprocess, sys
fd = int(sys.argv[1])
stop, data, folder = json.loads(sys.argv[2])
while os.read(fd, 4096):
    pass
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run(stop, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
shutil.rmtree(folder, ignore_errors=True)
"""

_started: list[Path] = []
"""The data folders of every cluster this process started, for `survivors`."""


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def survivors() -> list[str]:
    """The data folders of clusters this process started whose server is still running."""
    return [str(data) for data in _started if (pid := _postmaster_pid(data)) is not None and _alive(pid)]


def find_binary(name: str) -> str:
    """The path of a PostgreSQL server program: on PATH, else in Debian's versioned folder (newest first).

    Raises:
        RuntimeError: PostgreSQL's server programs are not installed (the message says how to install them).
    """
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_of, reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(
        f"PostgreSQL's {name} is not installed: the PostgreSQL ledger tests need a real server "
        "(apt-get install postgresql; `uv run pytest` installs it as root)"
    )


def _version_of(path: str) -> float:
    try:
        return float(Path(path).parts[4])
    except (IndexError, ValueError):
        return 0.0


class PostgresCluster:
    """One PostgreSQL server in a temporary folder. `start()`, then `create_database()` per test, then `stop()`."""

    def __init__(self, *, durable: bool = False) -> None:
        self._durable = durable
        self._folder = Path(tempfile.mkdtemp(prefix="ccapi-suno-pg-"))
        self._data = self._folder / "data"
        self._prefix: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            account = pwd.getpwnam(_SERVICE_USER)  # KeyError: no postgres user, i.e. the package is missing
            self._prefix = ["runuser", "-u", _SERVICE_USER, "--"]
            self._owner = (account.pw_uid, account.pw_gid)
            os.chown(self._folder, *self._owner)
        self.port = free_port()
        self._names = itertools.count(1)
        self._lifeline: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def postmaster_pid(self) -> int | None:
        """The server's process id while it runs."""
        return _postmaster_pid(self._data)

    def _start_watchdog(self) -> None:
        read_end, self._lifeline = os.pipe()  # both ends non-inheritable: no other child keeps the pipe open
        stop = [*self._prefix, find_binary("pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop"]
        try:
            self._watchdog = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _WATCHDOG,
                    str(read_end),
                    json.dumps([stop, str(self._data), str(self._folder)]),
                ],
                pass_fds=(read_end,),
                start_new_session=True,  # a Ctrl-C to the test run's process group does not reach it
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(read_end)

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._prefix, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed ({result.returncode}): {result.stderr[-2000:]}")

    def start(self) -> None:
        """Make the cluster and start its server.

        Raises:
            RuntimeError: `initdb` or `pg_ctl` failed (with their output).
        """
        self._start_watchdog()
        _started.append(self._data)
        self._run(
            find_binary("initdb"), "-D", str(self._data), "--auth=trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        # Tests need no crash safety from the cluster itself (the ledger's transactions are what they test);
        # the benchmark asks for a durable one.
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self._folder}",
            "-c max_connections=200",
        ]
        if not self._durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            find_binary("pg_ctl"), "-D", str(self._data), "-l", str(self._folder / "server.log"), "-w",
            "-t", str(_START_TIMEOUT), "-o", " ".join(options), "start",
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg
        from psycopg import sql

        name = f"ledger_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and delete the folder (the watchdog does both if this raises)."""
        try:
            if (self._data / "postmaster.pid").exists():
                self._run(find_binary("pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop")
            shutil.rmtree(self._folder, ignore_errors=True)
        finally:
            if self._lifeline is not None:
                os.close(self._lifeline)
                self._lifeline = None
            if self._watchdog is not None:
                self._watchdog.wait(timeout=_STOP_TIMEOUT)
