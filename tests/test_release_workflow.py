"""The release workflow (GitHub Actions) parses, builds with the same commands the tests use, publishes to PyPI by
trusted publishing, attaches the bundle to the release and publishes the registry entry after PyPI."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from builds import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def _workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded  # pyright: ignore[reportUnknownVariableType] - a YAML document is untyped


def _jobs() -> dict[str, dict[str, Any]]:
    return _workflow()["jobs"]


def _runs(job: str) -> list[str]:
    """Each `run:` of a job as one line."""
    return [" ".join(step["run"].split()) for step in _jobs()[job]["steps"] if "run" in step]


def _uses(job: str) -> list[str]:
    return [step["uses"] for step in _jobs()[job]["steps"] if "uses" in step]


def _needs(job: str) -> set[str]:
    needs = _jobs()[job].get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def test_the_workflow_runs_on_version_tags_with_read_only_defaults() -> None:
    workflow = _workflow()
    # YAML 1.1 reads a bare `on` key as True
    assert workflow.get("on", workflow.get(True)) == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}
    assert set(_jobs()) == {"build", "pypi", "github-release", "mcp-registry"}


def test_the_build_checks_the_tag_runs_ci_and_builds_with_the_scripts_the_tests_use() -> None:
    runs = _runs("build")
    assert runs[0] == 'scripts/bump-version --check "${GITHUB_REF_NAME#v}"'
    assert "bash .ci/run" in runs
    commands = [shlex.split(run) for run in runs]
    assert ["uv", "build", "--out-dir", "dist/python"] in commands
    assert ["scripts/build-bundle", "--out", "dist/bundle"] in commands
    # nothing packs the bundle another way
    assert not [run for job in _jobs() for run in _runs(job) if re.search(r"\bmcpb (pack|validate)\b", run)]
    uploads = [step["with"] for step in _jobs()["build"]["steps"] if "upload-artifact" in step.get("uses", "")]
    assert {upload["name"]: upload["path"] for upload in uploads} == {
        "python-dist": "dist/python/",
        "bundle": "dist/bundle/",
    }
    for script in ("bump-version", "build-bundle"):
        assert (ROOT / "scripts" / script).stat().st_mode & 0o111, f"scripts/{script} must be executable"


def test_pypi_gets_the_sdist_and_the_wheel_by_trusted_publishing() -> None:
    job = _jobs()["pypi"]
    assert _needs("pypi") == {"build"}
    assert job["permissions"] == {"id-token": "write"}
    assert job["environment"]["name"] == "pypi"
    [publish] = [step for step in job["steps"] if step.get("uses", "").startswith("pypa/gh-action-pypi-publish@")]
    assert publish["uses"] == "pypa/gh-action-pypi-publish@release/v1"
    assert "with" not in publish  # no password or token: PyPI trusts this workflow
    [download] = [step for step in job["steps"] if step.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"] == {"name": "python-dist", "path": "dist/"}  # not the bundle: PyPI would refuse it


def test_the_github_release_carries_the_bundle() -> None:
    job = _jobs()["github-release"]
    assert job["permissions"] == {"contents": "write"}
    [release] = [run for run in _runs("github-release") if run.startswith("gh release create")]
    assert {"dist/*.mcpb", "dist/*.whl", "dist/*.tar.gz", "--verify-tag"} <= set(shlex.split(release))
    downloaded = {step["with"]["name"] for step in job["steps"] if "download-artifact" in step.get("uses", "")}
    assert downloaded == {"python-dist", "bundle"}


def test_the_registry_entry_is_published_after_pypi_with_github_oidc() -> None:
    job = _jobs()["mcp-registry"]
    assert _needs("mcp-registry") == {"pypi"}  # the registry checks the package's PyPI description
    assert job["permissions"]["id-token"] == "write"
    assert "mcp-publisher login github-oidc" in _runs("mcp-registry")
    [publish] = [step for step in job["steps"] if step.get("run") == "mcp-publisher publish"]
    assert publish["working-directory"] == "manifests"  # mcp-publisher publishes ./server.json
    assert (ROOT / publish["working-directory"] / "server.json").is_file()


def test_every_action_is_pinned_to_a_release() -> None:
    used = [uses for job in _jobs() for uses in _uses(job)]
    assert used
    for uses in used:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+|release/v\d+)", uses), uses


def test_the_build_job_is_bounded_in_time() -> None:
    assert _jobs()["build"]["timeout-minutes"] <= 60  # CI itself is kept well under an hour
