"""Manifests that cannot drift: the registry entry, the bundle and every client snippet agree with the code,
and every snippet, pasted as is, starts the server."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator, ValidationError, validate
from mcp import Client, StdioServerParameters

import ccapi_suno_mcp
from ccapi_suno_mcp.app import SERVER_NAME, create_server
from ccapi_suno_mcp.sandbox import ManualClock, Sandbox, serve_sandbox
from ccapi_suno_mcp.settings import ENVIRONMENT, HTTP_ONLY_VARIABLES, Settings
from harness import text_of

ROOT = Path(__file__).parent.parent
MANIFESTS = ROOT / "manifests"
SCHEMAS = Path(__file__).parent / "data"
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DISTRIBUTION: str = PROJECT["name"]
VERSION: str = PROJECT["version"]
DUMMY_KEY = "sk-manifest-test"
HTTP_ONLY = HTTP_ONLY_VARIABLES  # a team's HTTP deployment; bundles and snippets run stdio


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _registry_entry() -> dict[str, Any]:
    return _json(MANIFESTS / "server.json")


def _bundle() -> dict[str, Any]:
    return _json(MANIFESTS / "mcpb" / "manifest.json")


def _validate(instance: Any, schema_file: str) -> None:
    """Validate against one of the abridged schemas in tests/data.

    Raises:
        ValidationError: the most relevant error, with its path.
    """
    schema = _json(SCHEMAS / schema_file)
    validate(instance, schema, cls=Draft202012Validator, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _one_line(description: str) -> str:
    """The first sentence of a tool description, on one line: what the bundle lists."""
    flat = " ".join(description.split())
    first = re.match(r"(.+?[.!?])(?:\s|$)", flat)
    return first.group(1) if first else flat


# --- how each snippet launches the server -------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """What a client runs: a command line and the environment it adds."""

    command: str
    args: list[str]
    env: dict[str, str]


def _entry(servers: dict[str, Any]) -> Launch:
    entry = servers[SERVER_NAME]
    return Launch(entry["command"], list(entry["args"]), dict(entry.get("env", {})))


def _mcp_servers(path: Path) -> list[Launch]:
    return [_entry(_json(path)["mcpServers"])]


def _claude_code_project(path: Path) -> list[Launch]:
    assert _json(path)["mcpServers"][SERVER_NAME]["type"] == "stdio"
    return _mcp_servers(path)


def _vscode(path: Path) -> list[Launch]:
    config = _json(path)
    assert config["servers"][SERVER_NAME]["type"] == "stdio"
    inputs = {declared["id"]: declared for declared in config["inputs"]}
    launch = _entry(config["servers"])
    env: dict[str, str] = {}
    for name, value in launch.env.items():
        if asked := re.fullmatch(r"\$\{input:([^}]+)\}", value):
            declared = inputs[asked.group(1)]
            assert (declared["type"], declared["password"]) == ("promptString", True), declared
        env[name] = value  # VS Code asks for it when it starts the server: see _expand
    return [Launch(launch.command, launch.args, env)]


def _codex(path: Path) -> list[Launch]:
    return [_entry(tomllib.loads(path.read_text(encoding="utf-8"))["mcp_servers"])]


def _claude_code_commands(path: Path) -> list[list[str]]:
    """The `claude mcp add` lines of a shell snippet (commented ones too), split as a shell would."""
    lines = (line.removeprefix("#").strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [shlex.split(line) for line in lines if line.startswith("claude mcp add ")]


def _claude_mcp_add(tokens: list[str]) -> tuple[str, Launch]:
    """Read `claude mcp add [-s scope] <name> [-e K=V ...] -- <command> [args...]` as Claude Code does.

    `-e` is variadic: it takes every following argument up to the next option, so a name after it is lost.
    """
    assert tokens[:3] == ["claude", "mcp", "add"], tokens
    split = tokens.index("--")
    options, (command, *args) = tokens[3:split], tokens[split + 1 :]
    name: str | None = None
    env: dict[str, str] = {}
    position = 0
    while position < len(options):
        token = options[position]
        if token in ("-s", "--scope"):
            position += 2
        elif token in ("-e", "--env"):
            position += 1
            while position < len(options) and not options[position].startswith("-"):
                key, _, value = options[position].partition("=")
                assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"-e swallowed {options[position]!r}"
                env[key] = value
                position += 1
        else:
            assert name is None, f"two server names: {name!r} and {token!r}"
            name = token
            position += 1
    assert name is not None, f"no server name in {tokens}"
    return name, Launch(command, args, env)


def _claude_code_shell(path: Path) -> list[Launch]:
    return [_claude_mcp_add(tokens)[1] for tokens in _claude_code_commands(path)]


def _mcpb(path: Path) -> list[Launch]:
    manifest = _json(path)
    config = manifest["server"]["mcp_config"]
    # the bundle runs its own copy of this checkout: ${__dirname} is a folder like this one
    args = [arg.replace("${__dirname}", str(ROOT)) for arg in config["args"]]
    env: dict[str, str] = {}
    for name, value in config["env"].items():
        asked = re.fullmatch(r"\$\{user_config\.(\w+)\}", value)
        assert asked, f"{name}={value!r} is not a user_config reference"
        option = manifest["user_config"][asked.group(1)]
        # what Claude Desktop passes when the user leaves an optional field alone: its default (the secret: _expand)
        env[name] = value if option.get("sensitive") else str(option["default"])
    return [Launch(config["command"], args, env)]


SNIPPETS: dict[str, Callable[[Path], list[Launch]]] = {
    "clients/claude-code.mcp.json": _claude_code_project,
    "clients/claude-code.sh": _claude_code_shell,
    "clients/claude_desktop_config.json": _mcp_servers,
    "clients/cursor.mcp.json": _mcp_servers,
    "clients/vscode.mcp.json": _vscode,
    "clients/codex.config.toml": _codex,
    "clients/gemini.settings.json": _mcp_servers,
    "mcpb/manifest.json": _mcpb,
}


KEY_PLACEHOLDER = "sk-..."  # where a snippet has it, the user pastes the key over it


def _expand(value: str, key: str | None) -> str:
    """A snippet's value as its client (or the shell) passes it on, with CCAPI_API_KEY set to `key`, or unset
    (and every prompt for it left empty) when `key` is None."""

    def given(default: str) -> Callable[[re.Match[str]], str]:
        return lambda match: key if key is not None else match.expand(default)

    rules = [
        (r"\$\{CCAPI_API_KEY:-([^}]*)\}", given(r"\1")),  # Claude Code: the default when unset
        (r"\$\{CCAPI_API_KEY\}", given(r"\g<0>")),  # Claude Code passes an unset one on as written
        (r"\$CCAPI_API_KEY\b", given("")),  # the shell
        (r"\$\{input:[^}]+\}", given("")),  # VS Code's password prompt
        (r"\$\{user_config\.api_key\}", given("")),  # the bundle's secret field
    ]
    for pattern, replacement in rules:
        value = re.sub(pattern, replacement, value)
    if key is not None:
        value = value.replace(KEY_PLACEHOLDER, key)
        assert "$" not in value, f"unresolved variable in {value!r}"
    return value


def _from_this_checkout(launch: Launch) -> list[str]:
    """The command line with `uvx ccapi-suno-mcp` (the published package) or `uv run --directory <this checkout>
    [--frozen] [--no-dev] ccapi-suno-mcp` run from this checkout's environment; later arguments kept.

    (tests/test_bundle.py runs the bundle's own command, uv and all, from an unpacked bundle.)
    """
    if launch.command == "uvx":
        package, *arguments = launch.args
        assert package == DISTRIBUTION, package
    else:
        assert (launch.command, launch.args[:3]) == ("uv", ["run", "--directory", str(ROOT)]), launch
        options, (package, *arguments) = _split_at(launch.args[3:], DISTRIBUTION)
        assert set(options) <= {"--frozen", "--no-dev"}, options
    return [sys.executable, "-m", "ccapi_suno_mcp", *arguments]


def _split_at(items: list[str], first: str) -> tuple[list[str], list[str]]:
    """`items` cut before the first `first`: (before, from it on)."""
    position = items.index(first)
    return items[:position], items[position:]


# --- every file parses and validates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(path.relative_to(MANIFESTS).as_posix() for path in MANIFESTS.rglob("*") if path.is_file())
)
def test_every_manifest_file_parses(name: str) -> None:
    path = MANIFESTS / name
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        assert isinstance(json.loads(text), dict)
    elif path.suffix == ".toml":
        assert tomllib.loads(text)
    elif path.suffix == ".sh":
        assert _claude_code_commands(path)
    elif path.suffix == ".py":
        assert name == "mcpb/main.py", f"unexpected file manifests/{name}"
        compile(text, str(path), "exec")
    elif path.suffix == ".yaml":
        import yaml

        assert isinstance(yaml.safe_load(text), dict)
    elif name == "team/nginx.conf":
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        assert text.count("{") == text.count("}") > 0
        assert all(line.endswith((";", "{", "}")) for line in lines if line), name
    elif name == "team/Dockerfile":
        instructions = [line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#")]
        assert instructions[0] == "FROM" and set(instructions) <= {"FROM", "COPY", "RUN", "EXPOSE", "ENV"}
    else:
        assert name == "README.md", f"unexpected file manifests/{name}"


@pytest.mark.parametrize("schema_file", ["server.schema.json", "mcpb-manifest-0.4.schema.json"])
def test_the_abridged_schemas_are_valid_json_schemas(schema_file: str) -> None:
    Draft202012Validator.check_schema(_json(SCHEMAS / schema_file))


def test_the_registry_entry_validates_against_the_registry_schema() -> None:
    _validate(_registry_entry(), "server.schema.json")


def test_the_bundle_manifest_validates_against_the_mcpb_schema() -> None:
    _validate(_bundle(), "mcpb-manifest-0.4.schema.json")


def _package(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["packages"][0]


REGISTRY_REJECTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "a name without a namespace": lambda entry: entry.update(name="ccapi-suno-mcp"),
    "a description over 100 characters": lambda entry: entry.update(description="x" * 101),
    "a package version of latest": lambda entry: _package(entry).update(version="latest"),
    "an unknown transport": lambda entry: _package(entry).update(transport={"type": "websocket"}),
    "an environment variable without a name": lambda entry: _package(entry)["environmentVariables"][0].pop("name"),
}


@pytest.mark.parametrize("change", sorted(REGISTRY_REJECTS))
def test_the_registry_schema_rejects_what_the_registry_rejects(change: str) -> None:
    entry = _registry_entry()
    REGISTRY_REJECTS[change](entry)
    with pytest.raises(ValidationError):
        _validate(entry, "server.schema.json")


BUNDLE_REJECTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "another manifest version": lambda manifest: manifest.update(manifest_version="0.3"),
    "an unknown server type": lambda manifest: manifest["server"].update(type="docker"),
    "a server without mcp_config": lambda manifest: manifest["server"].pop("mcp_config"),
    "an author without a name": lambda manifest: manifest.update(author={}),
    "a prompt without text": lambda manifest: manifest["prompts"][0].pop("text"),
    "an unknown user_config type": lambda manifest: manifest["user_config"]["api_key"].update(type="secret"),
    "an unknown key": lambda manifest: manifest.update(homepage_url="https://example.com"),
}


@pytest.mark.parametrize("change", sorted(BUNDLE_REJECTS))
def test_the_bundle_schema_rejects_what_mcpb_rejects(change: str) -> None:
    manifest = _bundle()
    BUNDLE_REJECTS[change](manifest)
    with pytest.raises(ValidationError):
        _validate(manifest, "mcpb-manifest-0.4.schema.json")


# --- names, versions and settings agree with the code -------------------------------------------------------


def test_uvx_finds_a_console_script_named_like_the_package() -> None:
    assert PROJECT["scripts"][DISTRIBUTION] == "ccapi_suno_mcp.cli:main"


def test_the_registry_entry_agrees_with_pyproject_the_package_and_the_readme() -> None:
    entry = _registry_entry()
    assert re.findall(r"<!-- mcp-name: (\S+) -->", README) == [entry["name"]]
    assert PROJECT["readme"] == "README.md"  # PyPI shows it: the registry's ownership check reads mcp-name there
    github = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", entry["repository"]["url"])
    assert github, entry["repository"]
    assert entry["name"] == "io.github.{}/{}".format(*github.groups())
    assert entry["repository"]["source"] == "github"
    assert entry["version"] == VERSION == ccapi_suno_mcp.__version__
    assert entry["description"] == PROJECT["description"]
    (package,) = entry["packages"]
    assert {key: package[key] for key in ("registryType", "identifier", "version", "runtimeHint", "transport")} == {
        "registryType": "pypi",
        "identifier": DISTRIBUTION,
        "version": VERSION,
        "runtimeHint": "uvx",
        "transport": {"type": "stdio"},
    }


def test_the_registry_entry_declares_every_setting_as_the_settings_describe_it() -> None:
    variables = _package(_registry_entry())["environmentVariables"]
    # a stdio package: the HTTP transport's token is no setting of it
    assert [variable["name"] for variable in variables] == [name for name in ENVIRONMENT if name not in HTTP_ONLY]
    for variable in variables:
        description = ENVIRONMENT[variable["name"]]
        assert variable["description"] == description
        assert variable["isRequired"] is (variable["name"] == "CCAPI_API_KEY"), variable
        # the settings mark each secret with "Secret." in its description
        assert variable["isSecret"] is ("Secret." in description), variable
    assert variables[0] | {"description": ""} == {
        "name": "CCAPI_API_KEY",
        "description": "",
        "isRequired": True,
        "isSecret": True,
    }


def test_every_default_the_manifests_declare_is_the_servers_own_default() -> None:
    declared = [
        (variable["name"], variable["default"])
        for variable in _package(_registry_entry())["environmentVariables"]
        if "default" in variable
    ]
    bundle = _bundle()
    for name, value in bundle["server"]["mcp_config"]["env"].items():
        option = bundle["user_config"][value.removeprefix("${user_config.").removesuffix("}")]
        if "default" in option:
            declared.append((name, option["default"]))
    assert declared
    unset = Settings.from_env({})
    for name, default in declared:
        assert Settings.from_env({name: str(default)}) == unset, (name, default)  # the environment holds text


def test_the_bundle_agrees_with_pyproject(tmp_path: Path) -> None:
    bundle = _bundle()
    assert (bundle["name"], bundle["version"], bundle["description"]) == (
        DISTRIBUTION,
        VERSION,
        PROJECT["description"],
    )
    assert bundle["author"]["name"] == PROJECT["authors"][0]["name"]
    assert (bundle["license"], bundle["keywords"]) == (PROJECT["license"], PROJECT["keywords"])
    assert bundle["compatibility"] == {
        "platforms": ["darwin", "win32", "linux"],
        "runtimes": {"python": PROJECT["requires-python"]},
    }
    assert bundle["display_name"] == create_server(Settings(home=tmp_path)).title
    assert bundle["repository"]["url"] == bundle["homepage"] == _registry_entry()["repository"]["url"]


def test_the_bundle_runs_its_own_source_through_uv_with_each_stdio_setting_from_user_config() -> None:
    bundle = _bundle()
    server = bundle["server"]
    assert server["type"] == "uv"
    assert (MANIFESTS / "mcpb" / server["entry_point"]).is_file()  # copied beside the manifest by build-bundle
    config = server["mcp_config"]
    assert (config["command"], config["args"]) == (
        "uv",
        ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", DISTRIBUTION],
    )
    options: dict[str, str] = {}
    for name, value in config["env"].items():
        asked = re.fullmatch(r"\$\{user_config\.(\w+)\}", value)
        assert asked, (name, value)
        options[name] = asked.group(1)
    assert set(options) == set(ENVIRONMENT) - HTTP_ONLY
    assert sorted(options.values()) == sorted(bundle["user_config"])
    user_config = bundle["user_config"]
    key = user_config[options["CCAPI_API_KEY"]]
    assert (key["type"], key["sensitive"], key["required"]) == ("string", True, True)
    for name in ("CCAPI_SUNO_HOME", "CCAPI_SUNO_DOWNLOAD_DIR"):
        assert user_config[options[name]]["type"] == "directory"
    for name, option in options.items():
        if name != "CCAPI_API_KEY":
            # Claude Desktop passes an unset optional field without a default as the literal `${user_config...}`
            assert (user_config[option]["required"], "default" in user_config[option]) == (False, True), name


@pytest.mark.anyio
async def test_the_bundle_lists_exactly_the_served_tools_with_their_first_sentence(tmp_path: Path) -> None:
    served = await create_server(Settings(home=tmp_path)).list_tools()
    listed = _bundle()["tools"]
    assert {tool["name"]: tool["description"] for tool in listed} == {
        tool.name: _one_line(tool.description or "") for tool in served
    }
    assert len(listed) == len(served)


@pytest.mark.anyio
async def test_the_bundle_lists_exactly_the_served_prompts(tmp_path: Path) -> None:
    server = create_server(Settings(home=tmp_path))
    served = await server.list_prompts()
    tools = {tool.name for tool in await server.list_tools()}
    listed = _bundle()["prompts"]
    assert {prompt["name"]: (prompt["description"], prompt["arguments"]) for prompt in listed} == {
        prompt.name: (prompt.description, [argument.name for argument in prompt.arguments or []]) for prompt in served
    }
    assert len(listed) == len(served)
    for prompt in listed:
        assert set(re.findall(r"\$\{arguments\.(\w+)\}", prompt["text"])) == set(prompt["arguments"]), prompt
        assert set(re.findall(r"\bsuno_\w+", prompt["text"])) <= tools, prompt


# --- client snippets ----------------------------------------------------------------------------------------


def test_every_client_snippet_is_started_by_these_tests_and_named_in_the_readme() -> None:
    snippets = {path.relative_to(MANIFESTS).as_posix() for path in (MANIFESTS / "clients").iterdir()}
    assert snippets == {name for name in SNIPPETS if name.startswith("clients/")}
    readme = (MANIFESTS / "README.md").read_text(encoding="utf-8")
    for name in snippets:
        assert f"`{name.removeprefix('clients/')}`" in readme, name


def test_the_claude_code_command_names_the_server_before_the_env_flag() -> None:
    path = MANIFESTS / "clients" / "claude-code.sh"
    first, *others = _claude_code_commands(path)
    assert first.index(SERVER_NAME) < first.index("-e")
    name, launch = _claude_mcp_add(first)
    assert (name, list(launch.env)) == (SERVER_NAME, ["CCAPI_API_KEY"])
    assert [_claude_mcp_add(tokens)[0] for tokens in others] == [f"{SERVER_NAME}-sandbox"]
    assert _claude_mcp_add(others[0])[1].args == [DISTRIBUTION, "--sandbox"]
    uncommented = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("claude ")]
    assert [shlex.split(line) for line in uncommented] == [first]


@pytest.mark.anyio
async def test_the_gemini_snippet_lets_the_longest_wait_finish(tmp_path: Path) -> None:
    tools = {tool.name: tool for tool in await create_server(Settings(home=tmp_path)).list_tools()}
    longest_wait = tools["suno_wait_for_tasks"].input_schema["properties"]["timeout_seconds"]["maximum"]
    timeout_ms = _json(MANIFESTS / "clients" / "gemini.settings.json")["mcpServers"][SERVER_NAME]["timeout"]
    assert timeout_ms >= longest_wait * 1000


@pytest.mark.anyio
async def test_the_codex_snippet_waits_for_a_first_uvx_install_and_lets_the_longest_wait_finish(tmp_path: Path) -> None:
    tools = {tool.name: tool for tool in await create_server(Settings(home=tmp_path)).list_tools()}
    longest_wait = tools["suno_wait_for_tasks"].input_schema["properties"]["timeout_seconds"]["maximum"]
    entry = tomllib.loads((MANIFESTS / "clients" / "codex.config.toml").read_text(encoding="utf-8"))["mcp_servers"]
    timeouts = entry[SERVER_NAME]
    assert timeouts["startup_timeout_sec"] >= 60  # Codex's default, 10 s, is shorter than a first `uvx` install
    assert timeouts["tool_timeout_sec"] > longest_wait  # its default, 60 s, would cut a long wait short


@pytest.mark.parametrize("snippet", sorted(SNIPPETS))
def test_each_snippet_hands_the_server_the_key_once_it_is_set(snippet: str) -> None:
    launches = [launch for launch in SNIPPETS[snippet](MANIFESTS / snippet) if "CCAPI_API_KEY" in launch.env]
    assert launches
    for launch in launches:
        assert _expand(launch.env["CCAPI_API_KEY"], DUMMY_KEY) == DUMMY_KEY, launch
        assert all("$" not in _expand(value, DUMMY_KEY) for value in launch.env.values()), launch


# What the server gets from each snippet when CCAPI_API_KEY is unset (or the placeholder was left in).
UNSET_KEY_GIVES: dict[str, str] = {
    "clients/claude-code.mcp.json": "",  # ${CCAPI_API_KEY:-}
    "clients/claude-code.sh": "",  # "$CCAPI_API_KEY" in the shell
    "clients/claude_desktop_config.json": KEY_PLACEHOLDER,
    "clients/cursor.mcp.json": KEY_PLACEHOLDER,
    "clients/vscode.mcp.json": "",  # the prompt left empty
    "clients/codex.config.toml": KEY_PLACEHOLDER,
    "clients/gemini.settings.json": KEY_PLACEHOLDER,
    "mcpb/manifest.json": "",
}


def test_the_claude_code_project_file_uses_the_form_that_is_empty_when_the_variable_is_unset() -> None:
    entry = _json(MANIFESTS / "clients" / "claude-code.mcp.json")["mcpServers"][SERVER_NAME]
    assert entry["env"] == {"CCAPI_API_KEY": "${CCAPI_API_KEY:-}"}
    assert _expand("${CCAPI_API_KEY}", None) == "${CCAPI_API_KEY}"  # the plain form: passed on as written


@pytest.mark.anyio
@pytest.mark.parametrize("snippet", sorted(SNIPPETS))
async def test_each_snippet_pasted_as_is_with_no_key_set_serves_every_tool_and_says_the_key_is_missing(
    snippet: str, tmp_path: Path
) -> None:
    assert set(UNSET_KEY_GIVES) == set(SNIPPETS)
    expected = {tool.name for tool in await create_server(Settings(home=tmp_path)).list_tools()}
    sandbox = Sandbox(clock=ManualClock())  # stands in for CCAPI: it must hear nothing
    launches = SNIPPETS[snippet](MANIFESTS / snippet)
    assert launches
    async with serve_sandbox(sandbox) as origin:
        for launch in launches:
            command, *arguments = _from_this_checkout(launch)
            env = {name: value for name, value in os.environ.items() if not name.startswith("CCAPI_")}
            passed = {name: _expand(value, None) for name, value in launch.env.items()}
            env |= passed | {"CCAPI_SUNO_HOME": str(tmp_path), "CCAPI_BASE_URL": origin}
            with anyio.fail_after(30):
                async with Client(StdioServerParameters(command=command, args=arguments, env=env)) as client:
                    served = {tool.name for tool in (await client.list_tools()).tools}
                    server_info = client.server_info
                    answer = await client.call_tool("suno_get_balance", {})
            assert served == expected, launch
            assert server_info is not None and server_info.name == SERVER_NAME
            if "CCAPI_API_KEY" not in launch.env:  # claude-code.sh's offline line: the built-in sandbox answers
                assert arguments[-1] == "--sandbox" and not answer.is_error, launch
                continue
            assert passed["CCAPI_API_KEY"] == UNSET_KEY_GIVES[snippet]
            assert answer.is_error
            if UNSET_KEY_GIVES[snippet]:
                assert f"CCAPI_API_KEY holds {UNSET_KEY_GIVES[snippet]!r}, a placeholder" in text_of(answer)
            else:
                assert "No CCAPI key is configured" in text_of(answer)
    assert sandbox.stats.requests == 0


TEAM = MANIFESTS / "team"


def test_the_team_compose_file_runs_two_replicas_on_one_ledger_with_only_settings_the_server_reads() -> None:
    import yaml

    from ccapi_suno_mcp.cli import _parser  # pyright: ignore[reportPrivateUsage]

    compose: dict[str, Any] = yaml.safe_load((TEAM / "compose.yaml").read_text(encoding="utf-8"))
    services: dict[str, Any] = compose["services"]
    replicas = {name: service for name, service in services.items() if name.startswith("replica-")}
    assert set(services) == {"postgres", "proxy", *replicas} and len(replicas) == 2
    database = services["postgres"]["environment"]
    urls: set[str] = set()
    for name, replica in replicas.items():
        environment: dict[str, str] = replica["environment"]
        assert set(environment) <= set(ENVIRONMENT), name  # no setting the server does not read
        arguments = _parser().parse_args(replica["command"][1:])
        assert (replica["command"][0], arguments.transport, arguments.host) == ("ccapi-suno-mcp", "http", "0.0.0.0")
        url = environment["CCAPI_SUNO_LEDGER_URL"].replace("${POSTGRES_PASSWORD}", "pw")
        settings = Settings.from_env({**environment, "CCAPI_SUNO_LEDGER_URL": url, "CCAPI_SUNO_HTTP_TOKENS_FILE": ""})
        assert settings.ledger_url is not None
        urls.add(settings.ledger_url)
        # the tokens file is the secret mounted where the setting says
        assert environment["CCAPI_SUNO_HTTP_TOKENS_FILE"] == f"/run/secrets/{replica['secrets'][0]}"
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert f"{name}:{arguments.port}" in (TEAM / "nginx.conf").read_text(encoding="utf-8")
    assert urls == {f"postgresql://{database['POSTGRES_USER']}:pw@postgres:5432/{database['POSTGRES_DB']}"}
    assert replicas["replica-a"]["volumes"] != replicas["replica-b"]["volumes"]  # a home of its own each
    assert compose["secrets"]["tokens.json"]["file"] == "./tokens.json"
    assert "[postgres]" in (TEAM / "Dockerfile").read_text(encoding="utf-8")


def test_the_example_tokens_file_is_one_the_server_accepts() -> None:
    settings = Settings.from_env({"CCAPI_SUNO_HTTP_TOKENS_FILE": str(TEAM / "tokens.example.json")})
    assert sorted((settings.principals or {}).values()) == ["alice", "bob"]
    assert settings.principal_budgets == {"bob": (2.0, 20.0)}
