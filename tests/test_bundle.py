"""The Claude Desktop bundle from scripts/build-bundle: self-contained, valid for the pinned mcpb CLI, and, once
unpacked and started the way its manifest says, an MCP server that lists every tool without a key."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from builds import ROOT, run
from ccapi_suno_mcp.app import SERVER_NAME, create_server
from ccapi_suno_mcp.settings import Settings
from harness import text_of

BUILD = ROOT / "scripts" / "build-bundle"
SCRIPT: dict[str, Any] = runpy.run_path(str(BUILD), run_name="build_bundle")  # its constants and helpers
VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
SOURCE_MANIFEST = ROOT / "manifests" / "mcpb" / "manifest.json"
NEEDS = ("node",)  # mcpb runs through npx (tests/machine.py installs Node.js where it can)


def _tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@dataclass(frozen=True)
class Built:
    bundle: Path
    manifests_before: dict[str, bytes]
    manifests_after: dict[str, bytes]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """scripts/build-bundle run once per test session, into a temporary folder."""
    out = tmp_path_factory.mktemp("bundle")
    before = _tree(ROOT / "manifests")
    printed = run([str(BUILD), "--out", str(out)])
    return Built(Path(printed.strip()), before, _tree(ROOT / "manifests"))


def _unpack(bundle: Path, folder: Path) -> Path:
    """Unpack as Claude Desktop does, into a folder of its own; return the folder."""
    folder.mkdir()
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    return folder


def _substitute(value: str, dirname: Path, user_config: dict[str, str]) -> str:
    value = value.replace("${__dirname}", str(dirname))
    return re.sub(r"\$\{user_config\.(\w+)\}", lambda match: user_config.get(match.group(1), match.group(0)), value)


def _desktop_user_config(manifest: dict[str, Any], saved: dict[str, str]) -> dict[str, str]:
    """What Claude Desktop puts in for each option: the user's saved value, else the option's default."""
    values: dict[str, str] = {}
    for name, option in manifest["user_config"].items():
        if name in saved:
            values[name] = saved[name]
        elif "default" in option:
            default = option["default"]
            values[name] = str(default).lower() if isinstance(default, bool) else str(default)
    return values


def _desktop_environment(folder: Path, manifest_env: dict[str, str]) -> dict[str, str]:
    """The short environment Claude Desktop gives a server (PATH and HOME), plus the manifest's variables.

    This machine's network settings (CA certificates, proxies, uv's own settings) pass too: on a user's computer
    uv finds them in the system. The platform's user data folder is pointed into the test's folder.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "HOME") or name.startswith(("SSL_", "UV_")) or name.lower().endswith("_proxy")
    }
    env = {name: value for name, value in env.items() if not name.startswith("UV_PROJECT")}
    return env | {"XDG_DATA_HOME": str(folder / "user-data")} | manifest_env


# --- what is in it -----------------------------------------------------------------------------------------


def test_the_bundle_is_named_for_the_version_and_written_outside_manifests(built: Built) -> None:
    assert built.bundle.name == f"ccapi-suno-mcp-{VERSION}.mcpb"
    assert built.bundle.is_file()
    assert built.manifests_after == built.manifests_before
    assert not list(ROOT.glob("*.mcpb")) and not list((ROOT / "manifests").rglob("*.mcpb"))


def test_the_bundle_holds_the_manifest_the_entry_point_the_source_and_the_lock(built: Built) -> None:
    package = {
        path.relative_to(ROOT).as_posix(): path
        for path in (ROOT / "server" / "ccapi_suno_mcp").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    expected = {inside: ROOT / source for inside, source in SCRIPT["FILES"].items()} | package
    assert {"manifest.json", "main.py", "pyproject.toml", "uv.lock", "README.md", "LICENSE"} <= set(expected)
    with zipfile.ZipFile(built.bundle) as archive:
        assert sorted(archive.namelist()) == sorted(expected)
        for inside, source in expected.items():
            assert archive.read(inside) == source.read_bytes(), inside


def test_the_manifest_is_at_the_newest_version_the_pinned_mcpb_validates(tmp_path: Path) -> None:
    manifest = json.loads(SOURCE_MANIFEST.read_text(encoding="utf-8"))
    assert manifest["manifest_version"] == "0.4"
    verdicts: dict[str, int] = {}
    for version in ("0.4", "0.5"):
        candidate = tmp_path / version / "manifest.json"
        candidate.parent.mkdir()
        candidate.write_text(json.dumps(manifest | {"manifest_version": version}), encoding="utf-8")
        finished = subprocess.run(
            [*SCRIPT["mcpb_command"](), "validate", str(candidate)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
        verdicts[version] = finished.returncode
    assert verdicts == {"0.4": 0, "0.5": 1}
    assert SCRIPT["MCPB_VERSION"] == "2.1.2"


def test_the_manifest_runs_the_bundled_source_through_uv_from_its_lock() -> None:
    server = json.loads(SOURCE_MANIFEST.read_text(encoding="utf-8"))["server"]
    assert (server["type"], server["entry_point"]) == ("uv", "main.py")
    config = server["mcp_config"]
    assert config["command"] == "uv"
    assert config["args"] == ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", "ccapi-suno-mcp"]


def test_the_build_backend_the_first_start_uses_is_pinned_and_locked() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [pin] = pyproject["tool"]["uv"]["build-constraint-dependencies"]
    assert re.fullmatch(r"hatchling==1\.\d+\.\d+", pin)
    [floor] = pyproject["build-system"]["requires"]
    assert floor == "hatchling>=1.27" and int(pin.split(".")[1]) >= 27
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    assert lock["manifest"]["build-constraints"] == [{"name": "hatchling", "specifier": pin.removeprefix("hatchling")}]


# --- started as Claude Desktop starts it -------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["as the manifest says", "by its entry point, as a host that runs uv itself"])
async def test_the_unpacked_bundle_started_as_its_manifest_says_lists_every_tool_without_a_key(
    built: Built, tmp_path: Path, how: str
) -> None:
    folder = _unpack(built.bundle, tmp_path / "local.mcpb.ccapi-suno-mcp-developers.ccapi-suno-mcp")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))  # the bundle's own manifest
    config = manifest["server"]["mcp_config"]
    # no key saved: the secret option has no default, so it stays as written (an empty one is the mcpb
    # snippet's case in tests/test_manifests.py); either counts as no key
    user_config = _desktop_user_config(manifest, {})
    command = config["command"]
    args = [_substitute(arg, folder, user_config) for arg in config["args"]]
    if how.startswith("by its entry point"):
        args = [*args[:-1], manifest["server"]["entry_point"]]
    env = _desktop_environment(
        tmp_path, {name: _substitute(v, folder, user_config) for name, v in config["env"].items()}
    )
    assert "$" not in "".join(args)
    expected = {tool.name for tool in await create_server(Settings(home=tmp_path / "expected")).list_tools()}
    parameters = StdioServerParameters(command=command, args=args, env=env, cwd=str(tmp_path))
    with anyio.fail_after(120):  # the first start installs the locked dependencies (from uv's cache in CI)
        async with Client(parameters) as client:
            served = {tool.name for tool in (await client.list_tools()).tools}
            server_info = client.server_info
            answer = await client.call_tool("suno_get_balance", {})
            listed = await client.call_tool("suno_list_tasks", {})  # the ledger opens on first use
    assert served == expected and len(served) == len(manifest["tools"])
    assert server_info is not None and server_info.name == SERVER_NAME
    assert answer.is_error and "CCAPI_API_KEY" in text_of(answer)
    assert not listed.is_error, listed
    # an empty "data folder" option means the platform's user data folder, where the ledger now is
    assert (tmp_path / "user-data" / "ccapi-suno-mcp" / "ledger.sqlite3").is_file()
    assert (folder / ".venv").is_dir()  # uv made the environment inside the bundle's folder
