"""What the server says at start-up, as a client's log shows it: a tokens file other users can read, and a home
folder it cannot write (real server processes, over stdio and HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from processes import http_replica

ALICE = "alice-token-0123456789abcdef"
NOWHERE = "http://127.0.0.1:1"  # no CCAPI: start-up must not need one


def _tokens_file(folder: Path, mode: int) -> Path:
    path = folder / "tokens.json"
    path.write_text(json.dumps({"alice": {"token": ALICE}}), encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.anyio
async def test_a_tokens_file_other_users_can_read_is_warned_of_at_start_naming_the_fix(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, 0o644)
    async with http_replica(tmp_path / "home", NOWHERE, {"CCAPI_SUNO_HTTP_TOKENS_FILE": str(path)}) as replica:
        log = replica.log
    [warning] = [line for line in log.splitlines() if "other users can read it" in line]
    assert f"{path} holds bearer tokens but other users can read it (mode 0644)" in warning
    assert warning.endswith(f"Run: chmod 600 {path}")
    assert ALICE not in log


@pytest.mark.anyio
async def test_a_private_tokens_file_starts_without_a_warning(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, 0o600)
    async with http_replica(tmp_path / "home", NOWHERE, {"CCAPI_SUNO_HTTP_TOKENS_FILE": str(path)}) as replica:
        log = replica.log
    assert "other users can read" not in log
    assert "serving MCP over streamable HTTP" in log
