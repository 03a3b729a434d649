"""Release-ready packaging: one version everywhere, a bump script that keeps it so, an sdist and a wheel with
complete metadata, and a wheel that installs and serves in a fresh environment."""

from __future__ import annotations

import email
import fnmatch
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from packaging.requirements import Requirement

import ccapi_suno_mcp
from builds import ROOT, outside_env, run, uv
from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.settings import Settings

PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT: dict[str, Any] = PYPROJECT["project"]
VERSION: str = PROJECT["version"]
BUMP = ROOT / "scripts" / "bump-version"
# Every file the version is written in, and how many times.
VERSION_PLACES = {
    "pyproject.toml": 1,
    "server/ccapi_suno_mcp/__init__.py": 1,
    "manifests/server.json": 2,
    "manifests/mcpb/manifest.json": 1,
    "uv.lock": 1,
}
PACKAGE_INIT = "server/ccapi_suno_mcp/__init__.py"
REPOSITORY = "https://github.com/ccapi-suno-mcp/ccapi-suno-mcp"


def _json(relative: str, root: Path = ROOT) -> Any:
    return json.loads((root / relative).read_text(encoding="utf-8"))


def _versions(root: Path) -> dict[str, list[str]]:
    """The version(s) each place holds, read as its own format's reader reads it."""
    lock = tomllib.loads((root / "uv.lock").read_text(encoding="utf-8"))
    registry = _json("manifests/server.json", root)
    package = re.findall(r'^__version__ = "([^"]+)"', (root / PACKAGE_INIT).read_text(encoding="utf-8"), re.MULTILINE)
    return {
        "pyproject.toml": [tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]],
        PACKAGE_INIT: package,
        "manifests/server.json": [registry["version"], *(entry["version"] for entry in registry["packages"])],
        "manifests/mcpb/manifest.json": [_json("manifests/mcpb/manifest.json", root)["version"]],
        "uv.lock": [entry["version"] for entry in lock["package"] if entry["name"] == PROJECT["name"]],
    }


def _copy_version_places(target: Path) -> None:
    for relative in VERSION_PLACES:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, target / relative)


def _bump(root: Path, *arguments: str) -> tuple[int, str]:
    finished = subprocess.run(
        [sys.executable, str(BUMP), "--root", str(root), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return finished.returncode, finished.stdout + finished.stderr


# --- one version everywhere ---------------------------------------------------------------------------------


def test_every_place_holds_the_version_of_pyproject() -> None:
    found = _versions(ROOT)
    assert {path: len(held) for path, held in found.items()} == VERSION_PLACES
    assert {version for held in found.values() for version in held} == {VERSION}
    assert ccapi_suno_mcp.__version__ == importlib.metadata.version(PROJECT["name"]) == VERSION
    assert _bump(ROOT, "--check") == (0, f"{VERSION}\n")


def test_the_bump_script_writes_a_new_version_everywhere_and_changes_nothing_else(tmp_path: Path) -> None:
    _copy_version_places(tmp_path)
    status, output = _bump(tmp_path, "9.8.7rc1")
    assert status == 0, output
    assert _versions(tmp_path) == {path: ["9.8.7rc1"] * count for path, count in VERSION_PLACES.items()}
    for relative, count in VERSION_PLACES.items():
        before = (ROOT / relative).read_text(encoding="utf-8").splitlines()
        after = (tmp_path / relative).read_text(encoding="utf-8").splitlines()
        changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
        assert len(changed) == count, relative
        assert all(new == old.replace(VERSION, "9.8.7rc1") for old, new in changed), changed
    assert _bump(tmp_path, "--check", "9.8.7rc1") == (0, "9.8.7rc1\n")
    status, output = _bump(tmp_path, "--check", VERSION)
    assert status == 1 and output.count(f"(expected {VERSION})") == len(VERSION_PLACES), output


def test_the_bumped_lock_still_matches_the_bumped_pyproject(tmp_path: Path) -> None:
    _copy_version_places(tmp_path)
    assert _bump(tmp_path, "9.8.7")[0] == 0
    # offline: a lock that disagreed with pyproject would need a new resolution, which fails without an index
    run([uv(), "lock", "--check", "--offline"], cwd=tmp_path)


def test_the_check_fails_when_one_place_falls_behind(tmp_path: Path) -> None:
    _copy_version_places(tmp_path)
    manifest = tmp_path / "manifests/mcpb/manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(f'"{VERSION}"', '"0.0.1"'), encoding="utf-8")
    status, output = _bump(tmp_path, "--check")
    assert status == 1
    assert output == f"bump-version: manifests/mcpb/manifest.json: 0.0.1 (expected {VERSION})\n"


def test_the_bump_script_refuses_what_is_not_a_release_version(tmp_path: Path) -> None:
    _copy_version_places(tmp_path)
    for wrong in ("latest", "1.2", "v1.2.3", "1.2.3-beta"):
        status, output = _bump(tmp_path, wrong)
        assert status == 2 and "is not a release version" in output, (wrong, output)
    assert _versions(tmp_path) == _versions(ROOT)


# --- the sdist and the wheel --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="session")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """`uv build` of this checkout, once per test session."""
    out = tmp_path_factory.mktemp("dist")
    run([uv(), "build", "--out-dir", str(out)])
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return Distributions(sdist, wheel)


def _metadata(wheel: Path) -> Message[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return email.message_from_string(archive.read(f"ccapi_suno_mcp-{VERSION}.dist-info/METADATA").decode())


def test_the_build_makes_an_sdist_and_a_wheel_named_for_the_version(distributions: Distributions) -> None:
    assert distributions.sdist.name == f"ccapi_suno_mcp-{VERSION}.tar.gz"
    assert distributions.wheel.name == f"ccapi_suno_mcp-{VERSION}-py3-none-any.whl"


def test_the_wheel_metadata_is_complete(distributions: Distributions) -> None:
    metadata = _metadata(distributions.wheel)
    assert (metadata["Name"], metadata["Version"], metadata["Summary"]) == (
        PROJECT["name"],
        VERSION,
        PROJECT["description"],
    )
    assert (metadata["License-Expression"], metadata["License-File"]) == ("MIT", "LICENSE")
    assert metadata["Requires-Python"] == PROJECT["requires-python"]
    assert metadata.get_all("Classifier") == PROJECT["classifiers"]
    assert {"Development Status :: 3 - Alpha", "Programming Language :: Python :: 3.11"} <= set(PROJECT["classifiers"])
    extras = {
        f'{Requirement(dependency)}; extra == "{extra}"'
        for extra, dependencies in PROJECT["optional-dependencies"].items()
        for dependency in dependencies
    }
    assert {str(Requirement(line)) for line in metadata.get_all("Requires-Dist") or []} == {
        str(Requirement(dependency)) for dependency in PROJECT["dependencies"]
    } | extras
    assert metadata.get_all("Provides-Extra") == ["postgres"]
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Issues", "Documentation"} <= set(urls)
    assert all(url.startswith(REPOSITORY) for url in urls.values()), urls
    assert _json("manifests/server.json")["repository"]["url"] == REPOSITORY
    # the long description is the README, with the marker the MCP registry looks for on PyPI
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.strip() == (ROOT / "README.md").read_text(encoding="utf-8").strip()
    name = _json("manifests/server.json")["name"]
    assert re.search(rf"mcp-name: {re.escape(name)}(\s|-->)", description)


def test_the_wheel_carries_the_license_the_console_script_and_the_typed_package(distributions: Distributions) -> None:
    with zipfile.ZipFile(distributions.wheel) as archive:
        names = set(archive.namelist())
        info = f"ccapi_suno_mcp-{VERSION}.dist-info"
        assert archive.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert "[console_scripts]\nccapi-suno-mcp = ccapi_suno_mcp.cli:main" in entry_points
    package = {
        path.relative_to(ROOT / "server").as_posix()
        for path in (ROOT / "server" / "ccapi_suno_mcp").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert package <= names
    assert "ccapi_suno_mcp/py.typed" in names
    assert not {name for name in names if name.startswith(("tests/", "manifests/", "server/"))}


def test_the_sdist_holds_what_a_rebuild_needs(distributions: Distributions) -> None:
    with tarfile.open(distributions.sdist) as archive:
        top, names = f"ccapi_suno_mcp-{VERSION}/", set[str]()
        for name in archive.getnames():
            assert name.startswith(top) or name == top.rstrip("/"), name
            names.add(name.removeprefix(top))
    assert {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", "server/ccapi_suno_mcp/__init__.py"} <= names
    assert {"manifests/server.json", "manifests/mcpb/main.py", "scripts/build-bundle", "scripts/bump-version"} <= names


@pytest.mark.anyio
async def test_the_wheel_installed_into_a_fresh_environment_runs_and_lists_every_tool(
    distributions: Distributions, tmp_path: Path
) -> None:
    # the README's line: `uv tool install dist/<wheel>` makes a fresh environment and puts the command on PATH
    tools, bin_dir = tmp_path / "tools", tmp_path / "bin"
    env = outside_env(UV_TOOL_DIR=str(tools), UV_TOOL_BIN_DIR=str(bin_dir))
    run([uv(), "tool", "install", "--quiet", "--python", sys.executable, str(distributions.wheel)], env=env)
    command = bin_dir / "ccapi-suno-mcp"
    assert run([str(command), "--version"]) == f"ccapi-suno-mcp {VERSION}\n"
    [python] = (tools / PROJECT["name"] / "bin").glob("python")
    location = run([str(python), "-c", "import ccapi_suno_mcp; print(ccapi_suno_mcp.__file__)"], cwd=tmp_path)
    assert Path(location.strip()).is_relative_to(tools)  # the installed copy, not this checkout
    expected = {tool.name for tool in await create_server(Settings(home=tmp_path)).list_tools()}
    parameters = StdioServerParameters(
        command=str(command), env=outside_env(CCAPI_SUNO_HOME=str(tmp_path / "home")), cwd=str(tmp_path)
    )
    with anyio.fail_after(60):
        async with Client(parameters) as client:
            served = {tool.name for tool in (await client.list_tools()).tools}
    assert served == expected


def test_the_readme_installs_the_wheel_the_build_makes(distributions: Distributions) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [pattern] = re.findall(r"`uv tool install (dist/\S+\.whl)`", readme)
    assert fnmatch.fnmatch(f"dist/{distributions.wheel.name}", pattern), pattern
