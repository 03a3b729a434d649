"""Settings: the one place that reads the environment, once, at start-up."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from ccapi_suno_mcp.catalogue import TOOLSETS, Catalogue, CatalogueError, Toolset, load_overrides
from ccapi_suno_mcp.ccapi import DEFAULT_BASE_URL, key_problem
from ccapi_suno_mcp.ledger._protocol import DEFAULT_PRINCIPAL
from ccapi_suno_mcp.principals import OAUTH_PRINCIPAL_PREFIX, is_oauth_principal, oauth_principal

__all__ = [
    "DEFAULT_ARTIST",
    "DEFAULT_CALL_DEADLINE",
    "DEFAULT_PRINCIPAL",
    "DEFAULT_QUOTA_PER_USD",
    "ENVIRONMENT",
    "HTTP_ONLY_VARIABLES",
    "LOOPBACK_HOSTS",
    "SECRET_VARIABLES",
    "ConfirmMode",
    "OAuthSettings",
    "Settings",
    "SettingsError",
    "is_placeholder_key",
]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_CALL_DEADLINE = 25.0
"""Seconds a tool call may take in all, retries included: well under the 60 s many clients allow a request."""
DEFAULT_QUOTA_PER_USD = 500_000
"""CCAPI quota units per US dollar: new-api's default display unit (inferred for CCAPI)."""
DEFAULT_ARTIST = "Suno"
"""The artist tag of saved songs when CCAPI_SUNO_ARTIST is unset."""
ConfirmMode = Literal["over_budget", "always"]
"""When a billable call needs the user's approval: only past a budget, or every time."""
SECRET_VARIABLES = frozenset({"CCAPI_API_KEY", "CCAPI_SUNO_HTTP_TOKEN", "CCAPI_SUNO_OAUTH_CLIENT_SECRET"})
_OAUTH_VARIABLES = frozenset(
    {
        "CCAPI_SUNO_OAUTH_ISSUER",
        "CCAPI_SUNO_OAUTH_RESOURCE",
        "CCAPI_SUNO_OAUTH_SCOPE",
        "CCAPI_SUNO_OAUTH_AUDIENCES",
        "CCAPI_SUNO_OAUTH_JWKS_URL",
        "CCAPI_SUNO_OAUTH_GROUP",
        "CCAPI_SUNO_OAUTH_PEOPLE_FILE",
        "CCAPI_SUNO_OAUTH_INTROSPECTION_URL",
        "CCAPI_SUNO_OAUTH_CLIENT_ID",
        "CCAPI_SUNO_OAUTH_CLIENT_SECRET",
    }
)
HTTP_ONLY_VARIABLES = frozenset(
    {"CCAPI_SUNO_HTTP_TOKEN", "CCAPI_SUNO_HTTP_TOKENS_FILE", "CCAPI_SUNO_LEDGER_URL", *_OAUTH_VARIABLES}
)
"""Settings of a team's HTTP deployment: the stdio packages (bundle, registry entry, snippets) do not offer them."""
_MIN_TOKEN_LENGTH = 16
DEFAULT_OAUTH_SCOPE = "suno:use"
_PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

ENVIRONMENT: Mapping[str, str] = {
    "CCAPI_API_KEY": "Your CCAPI API key (sk-...). Secret. Without it the server starts and lists tools, "
    "but calls that reach CCAPI fail with an explanation.",
    "CCAPI_BASE_URL": f"CCAPI's origin. Default {DEFAULT_BASE_URL}.",
    "CCAPI_SUNO_HOME": "Folder for the task ledger (ledger.sqlite3) and, by default, downloads. "
    "Default: the platform's user data folder.",
    "CCAPI_SUNO_DOWNLOAD_DIR": "Folder that suno_download writes into. Default: <CCAPI_SUNO_HOME>/downloads.",
    "CCAPI_SUNO_ARTIST": f"The artist written into the tags and sidecars of saved songs. Default {DEFAULT_ARTIST}.",
    "CCAPI_SUNO_TOOLSETS": f"Comma list of tool groups to expose: {', '.join(TOOLSETS)}. Default: all.",
    "CCAPI_SUNO_ACTIONS": "JSON object, or the path of a JSON file, overriding CCAPI action tokens, body field "
    "names and model names (see docs/ccapi.md).",
    "CCAPI_SUNO_HTTP_TOKEN": "Bearer token that clients of the HTTP transport must send. Secret. Required to bind "
    "beyond 127.0.0.1 unless people sign in (CCAPI_SUNO_OAUTH_*: then it is optional, for services); without "
    "sign-in, on loopback one is made when unset and kept in CCAPI_SUNO_HOME/http-token.",
    "CCAPI_SUNO_DEADLINE_SECONDS": f"Longest a tool call may take, retries included (suno_wait_for_tasks is bounded "
    f"by its timeout_seconds instead). Keep it under your client's request limit (60 s in many). Default "
    f"{DEFAULT_CALL_DEADLINE:g}.",
    "CCAPI_QUOTA_PER_USD": f"CCAPI quota units per US dollar, to show charges in dollars (new-api's default unit; "
    f"inferred for CCAPI). Default {DEFAULT_QUOTA_PER_USD}.",
    "CCAPI_SUNO_DAILY_BUDGET_USD": "Most US dollars to spend in a day (this machine's local time): a billable call "
    "that would pass it is sent only if the user approves it. Default: no limit.",
    "CCAPI_SUNO_MONTHLY_BUDGET_USD": "Most US dollars to spend in a calendar month, the same way. Default: no limit.",
    "CCAPI_SUNO_CONFIRM": "When to ask the user before a billable call: over_budget (only when it would pass a "
    "budget) or always. Default over_budget.",
    "CCAPI_SUNO_LEDGER_URL": "postgresql://user:password@host:5432/database: keep the task ledger in this "
    "PostgreSQL database, shared by every replica that names it (needs the postgres extra). Unset: the SQLite file "
    "in CCAPI_SUNO_HOME. Its password is never logged.",
    "CCAPI_SUNO_HTTP_TOKENS_FILE": "Path of a JSON file naming each principal (user) of the HTTP transport and its "
    'bearer token, e.g. {"alice": {"token": "...", "daily_budget_usd": 5}}; each sees and spends only its own tasks, '
    "within budgets of its own if given (daily_budget_usd, monthly_budget_usd). Secret file.",
    "CCAPI_SUNO_OAUTH_ISSUER": "The issuer of your identity provider (Keycloak, Entra ID, Okta, Auth0...), exactly as "
    "its tokens' iss claim spells it. Set with CCAPI_SUNO_OAUTH_RESOURCE, it makes the HTTP transport an OAuth 2.1 "
    "resource server: each person who signs in is a principal of their own (see docs/sign-in.md).",
    "CCAPI_SUNO_OAUTH_RESOURCE": "The public https URL of this server's /mcp endpoint, exactly as clients connect to "
    "it (behind a proxy: the proxy's URL). Access tokens must carry it as their audience.",
    "CCAPI_SUNO_OAUTH_SCOPE": f"The scope a person needs to use the server; grant it only to people who may spend "
    f"the team's CCAPI balance. Default {DEFAULT_OAUTH_SCOPE}.",
    "CCAPI_SUNO_OAUTH_AUDIENCES": "Comma list of further accepted token audiences, for identity providers that cannot "
    "put the URL in aud (Entra ID v2: the API's application id). Default: none.",
    "CCAPI_SUNO_OAUTH_JWKS_URL": "URL of the provider's signing keys (JWKS). Default: the jwks_uri of the issuer's "
    "metadata.",
    "CCAPI_SUNO_OAUTH_GROUP": "claim=value a token must also carry to be let in, e.g. groups=suno or roles=Suno.Use "
    "(a list claim must contain the value). Default: the scope alone decides.",
    "CCAPI_SUNO_OAUTH_PEOPLE_FILE": "Path of a JSON file of people's own budgets by their subject (sub), and a default "
    'for people not listed under "*", e.g. {"*": {"daily_budget_usd": 2}, "248289761001": {"daily_budget_usd": 20}}.',
    "CCAPI_SUNO_OAUTH_INTROSPECTION_URL": "RFC 7662 introspection endpoint, for providers that issue opaque (not JWT) "
    "access tokens; the server authenticates with CCAPI_SUNO_OAUTH_CLIENT_ID and CCAPI_SUNO_OAUTH_CLIENT_SECRET.",
    "CCAPI_SUNO_OAUTH_CLIENT_ID": "This server's own client id at the provider, for introspection.",
    "CCAPI_SUNO_OAUTH_CLIENT_SECRET": "This server's own client secret at the provider, for introspection. Secret.",
}


# What a key looks like when a client passed the variable through unexpanded, or a snippet was pasted unedited.
# No real key has these shapes (CCAPI keys are `sk-` and letters and digits), so such a value counts as missing.
_PLACEHOLDER_KEY = re.compile(
    r"""
      .*\$\{.*          # ${CCAPI_API_KEY}, ${user_config.api_key}, ${env:CCAPI_API_KEY}, ${input:...}
    | \$[A-Za-z_]\w*     # $CCAPI_API_KEY
    | %[A-Za-z_]\w*%     # %CCAPI_API_KEY% (Windows)
    | \{\{.*\}\}        # {{CCAPI_API_KEY}}
    | <.*>              # <your CCAPI key>
    | sk-(?:[.xX*…]{3,}|…)  # sk-..., sk-…, sk-xxx, sk-XXXX, sk-***
    """,
    re.VERBOSE,
)
_PLACEHOLDER_SHOWN = 60  # characters of a placeholder repeated in messages


def is_placeholder_key(value: str) -> bool:
    """Whether `value` is an unexpanded variable or a template placeholder rather than a key."""
    return _PLACEHOLDER_KEY.fullmatch(value.strip()) is not None


class SettingsError(ValueError):
    """The environment holds a value the server cannot use; the message says which and how to fix it."""


def _default_home() -> Path:
    from platformdirs import user_data_path  # only needed when CCAPI_SUNO_HOME is unset

    return user_data_path("ccapi-suno-mcp", appauthor=False)


_Budget = tuple[float | None, float | None]
"""Daily and monthly budgets in US dollars (None: no limit of that kind)."""


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """The HTTP transport as an OAuth 2.1 resource server of the team's identity provider (`CCAPI_SUNO_OAUTH_*`)."""

    issuer: str
    resource: str
    """The public URL of `/mcp`: the audience tokens must carry, and the `resource` of the metadata."""
    scope: str = DEFAULT_OAUTH_SCOPE
    audiences: tuple[str, ...] = ()
    """Further accepted audiences (Entra ID's application id)."""
    jwks_url: str | None = None
    """None: the `jwks_uri` of the issuer's metadata."""
    group: tuple[str, str] | None = None
    """A claim and a value it must hold (or contain), besides the scope."""
    default_budget: _Budget | None = None
    """The budgets of people not listed in the people file (None: none of their own)."""
    introspection_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        return (self.resource, *self.audiences)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, read once by `from_env` (or built directly by tests)."""

    api_key: str | None = field(default=None, repr=False)
    api_key_placeholder: str | None = None
    """What CCAPI_API_KEY held when it was a placeholder (so `api_key` is None): messages say it was not expanded."""
    api_key_problem: str | None = None
    """Why CCAPI_API_KEY cannot be used when it holds a character no key has, e.g. a pasted zero-width space (so
    `api_key` is None): the message names the variable and the character, never the key."""
    base_url: str = DEFAULT_BASE_URL
    home: Path = field(default_factory=_default_home)
    download_dir: Path | None = None
    artist: str = DEFAULT_ARTIST
    toolsets: frozenset[Toolset] = frozenset(TOOLSETS)
    action_overrides: Mapping[str, Any] = field(default_factory=lambda: dict[str, Any]())
    sandbox: bool = False
    http_token: str | None = field(default=None, repr=False)
    call_deadline: float = DEFAULT_CALL_DEADLINE
    quota_per_usd: int = DEFAULT_QUOTA_PER_USD
    daily_budget_usd: float | None = None
    """None: no daily limit."""
    monthly_budget_usd: float | None = None
    """None: no monthly limit."""
    confirm: ConfirmMode = "over_budget"
    ledger_url: str | None = field(default=None, repr=False)
    """A PostgreSQL URL: the shared ledger of a team's replicas (None: the SQLite file in `home`)."""
    principals: Mapping[str, str] | None = field(default=None, repr=False)
    """Bearer token to principal name, from CCAPI_SUNO_HTTP_TOKENS_FILE (None: one user)."""
    tokens_file: Path | None = None
    """The file `principals` came from (CCAPI_SUNO_HTTP_TOKENS_FILE)."""
    principal_budgets: Mapping[str, tuple[float | None, float | None]] = field(
        default_factory=lambda: dict[str, tuple[float | None, float | None]]()
    )
    """A principal's own daily and monthly budgets in US dollars (None: none of its own), from the tokens file
    (or, for people who sign in, the people file)."""
    oauth: OAuthSettings | None = None
    """Set: the HTTP transport accepts the identity provider's access tokens (each person a principal)."""

    @property
    def isolated(self) -> bool:
        """Whether principals are kept apart: a task id of another principal is as unknown as one never seen."""
        return self.principals is not None or self.oauth is not None

    def own_budgets(self, principal: str) -> _Budget | None:
        """A principal's own daily and monthly budgets: listed for it, or the default of people who sign in."""
        listed = self.principal_budgets.get(principal)
        if listed is not None:
            return listed
        if self.oauth is not None and is_oauth_principal(principal):
            return self.oauth.default_budget
        return None

    @property
    def http_tokens(self) -> dict[str, str]:
        """Every bearer token the HTTP transport accepts, with the principal it names."""
        tokens = dict(self.principals or {})
        if self.http_token is not None:
            tokens.setdefault(self.http_token, DEFAULT_PRINCIPAL)
        return tokens

    @property
    def secrets(self) -> list[str]:
        """Every secret value the logs must never show: the key, the tokens, the ledger's password."""
        password = urlsplit(self.ledger_url).password if self.ledger_url else None
        client_secret = self.oauth.client_secret if self.oauth else None
        values = [self.api_key, self.http_token, *(self.principals or {}), password, client_secret]
        return [value for value in values if value]

    @property
    def downloads(self) -> Path:
        return self.download_dir or self.home / "downloads"

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite3"

    def catalogue(self) -> Catalogue:
        """The action catalogue with `CCAPI_SUNO_ACTIONS` applied.

        Raises:
            SettingsError: if the overrides do not fit the catalogue.
        """
        try:
            return Catalogue().apply_overrides(self.action_overrides)
        except CatalogueError as exc:
            raise SettingsError(str(exc)) from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, sandbox: bool = False) -> Settings:
        """Read the settings from the environment.

        Raises:
            SettingsError: for a value that cannot be used (the message names the variable).
        """
        env = os.environ if environ is None else environ
        base_url = (env.get("CCAPI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        parts = urlsplit(base_url)
        local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if not (parts.scheme == "https" and parts.hostname) and not local:
            raise SettingsError(
                f"CCAPI_BASE_URL must be an https:// URL (plain http only to this machine, e.g. a local sandbox); "
                f"got {base_url!r}"
            )
        home_text = env.get("CCAPI_SUNO_HOME", "").strip()
        home = Path(home_text).expanduser() if home_text else _default_home()
        download_text = env.get("CCAPI_SUNO_DOWNLOAD_DIR", "").strip()
        key = (env.get("CCAPI_API_KEY") or "").strip()
        placeholder = is_placeholder_key(key)
        problem = None if placeholder or not key else key_problem(key)
        tokens_text = env.get("CCAPI_SUNO_HTTP_TOKENS_FILE", "").strip()
        principals, principal_budgets = _parse_tokens_file(tokens_text)
        oauth, people_budgets = _parse_oauth(env)
        if oauth is not None and principals is not None:
            clashing = [name for name in principals.values() if is_oauth_principal(name)]
            if clashing:
                raise SettingsError(
                    f"CCAPI_SUNO_HTTP_TOKENS_FILE: {clashing[0]} starts with {OAUTH_PRINCIPAL_PREFIX!r}, which names "
                    "people who sign in; rename it"
                )
        settings = cls(
            api_key=None if placeholder or problem else key or None,
            api_key_placeholder=key[:_PLACEHOLDER_SHOWN] if placeholder else None,
            api_key_problem=problem,
            base_url=base_url,
            home=home,
            download_dir=Path(download_text).expanduser() if download_text else None,
            artist=" ".join(env.get("CCAPI_SUNO_ARTIST", "").split()) or DEFAULT_ARTIST,
            toolsets=_parse_toolsets(env.get("CCAPI_SUNO_TOOLSETS", "")),
            action_overrides=_parse_actions(env.get("CCAPI_SUNO_ACTIONS", "")),
            sandbox=sandbox,
            http_token=(env.get("CCAPI_SUNO_HTTP_TOKEN") or "").strip() or None,
            call_deadline=_parse_seconds("CCAPI_SUNO_DEADLINE_SECONDS", env.get("CCAPI_SUNO_DEADLINE_SECONDS", "")),
            quota_per_usd=_parse_quota_rate(env.get("CCAPI_QUOTA_PER_USD", "")),
            daily_budget_usd=_parse_budget("CCAPI_SUNO_DAILY_BUDGET_USD", env.get("CCAPI_SUNO_DAILY_BUDGET_USD", "")),
            monthly_budget_usd=_parse_budget(
                "CCAPI_SUNO_MONTHLY_BUDGET_USD", env.get("CCAPI_SUNO_MONTHLY_BUDGET_USD", "")
            ),
            confirm=_parse_confirm(env.get("CCAPI_SUNO_CONFIRM", "")),
            ledger_url=_parse_ledger_url(env.get("CCAPI_SUNO_LEDGER_URL", "")),
            principals=principals,
            tokens_file=Path(tokens_text).expanduser() if tokens_text else None,
            principal_budgets={**principal_budgets, **people_budgets},
            oauth=oauth,
        )
        settings.catalogue()  # fail at start-up, not at the first call
        return settings


def _parse_seconds(name: str, text: str) -> float:
    if not text.strip():
        return DEFAULT_CALL_DEADLINE
    try:
        seconds = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, e.g. 25; got {text!r}") from None
    if not 1 <= seconds <= 3600:
        raise SettingsError(f"{name} must be between 1 and 3600 seconds; got {text!r}")
    return seconds


def _parse_quota_rate(text: str) -> int:
    if not text.strip():
        return DEFAULT_QUOTA_PER_USD
    try:
        rate = float(text.strip())  # a form may send a whole number as 500000.0
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate.is_integer() and rate >= 1):
        raise SettingsError(f"CCAPI_QUOTA_PER_USD must be a whole number of quota units, e.g. 500000; got {text!r}")
    return int(rate)


def _parse_budget(name: str, text: str) -> float | None:
    if not text.strip():
        return None
    try:
        dollars = float(text.strip())
    except ValueError:
        raise SettingsError(
            f"{name} must be a number of US dollars, e.g. 5 or 0.50 (unset: no limit); got {text!r}"
        ) from None
    if not math.isfinite(dollars) or dollars < 0:
        raise SettingsError(f"{name} must be 0 or more US dollars (unset: no limit); got {text!r}")
    return dollars


def _parse_confirm(text: str) -> ConfirmMode:
    word = text.strip().lower()
    if word in ("", "over_budget"):
        return "over_budget"
    if word == "always":
        return "always"
    raise SettingsError(f"CCAPI_SUNO_CONFIRM must be over_budget or always; got {text!r}")


def _parse_toolsets(text: str) -> frozenset[Toolset]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names or names == ["all"]:
        return frozenset(TOOLSETS)
    unknown = [name for name in names if name not in TOOLSETS]
    if unknown:
        raise SettingsError(f"CCAPI_SUNO_TOOLSETS: unknown toolset {unknown[0]!r}; choose from {', '.join(TOOLSETS)}")
    chosen: set[Toolset] = {toolset for toolset in TOOLSETS if toolset in names}
    chosen.add("status")  # without status tools nothing submitted could be followed
    return frozenset(chosen)


def _parse_actions(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        return load_overrides(text)
    except CatalogueError as exc:
        raise SettingsError(str(exc)) from exc


def _parse_ledger_url(text: str) -> str | None:
    url = text.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise SettingsError(
            "CCAPI_SUNO_LEDGER_URL must be a PostgreSQL URL naming a database, e.g. "
            "postgresql://ccapi:secret@db.internal:5432/ccapi_suno; unset it to keep the SQLite ledger"
        )
    return url


_PRINCIPAL_FIELDS = ("token", "daily_budget_usd", "monthly_budget_usd")


_OwnBudgets = dict[str, tuple[float | None, float | None]]


def _json_file(name: str, text: str) -> tuple[Path, object]:
    """The path named by setting `name` and its JSON document.

    Raises:
        SettingsError: the file cannot be read or is not JSON.
    """
    path = Path(text.strip()).expanduser()
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {path} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SettingsError(f"{name}: {path} is not JSON ({exc})") from None


def _parse_tokens_file(text: str) -> tuple[dict[str, str] | None, _OwnBudgets]:
    """`principals` (bearer token to principal) and `principal_budgets`, from the JSON file
    `{"<principal>": {"token": "<token>", "daily_budget_usd": 5, "monthly_budget_usd": 50}, ...}` (budgets optional).
    """
    name = "CCAPI_SUNO_HTTP_TOKENS_FILE"
    if not text.strip():
        return None, {}
    path, document = _json_file(name, text)
    if not isinstance(document, dict) or not document:
        raise SettingsError(f'{name}: {path} must be a JSON object of principals, e.g. {{"alice": {{"token": "..."}}}}')
    tokens: dict[str, str] = {}
    budgets: _OwnBudgets = {}
    for principal, entry in cast(dict[str, Any], document).items():
        if not _PRINCIPAL_NAME.fullmatch(principal):
            raise SettingsError(
                f"{name}: {principal!r} is not a principal name (letters, digits, '.', '_', '@', '-'; at most 64)"
            )
        fields = cast(dict[str, Any], entry) if isinstance(entry, dict) else None
        token = fields.get("token") if fields is not None else None
        if not isinstance(token, str) or len(token.strip()) < _MIN_TOKEN_LENGTH:
            raise SettingsError(f'{name}: {principal} needs a "token" of at least {_MIN_TOKEN_LENGTH} characters')
        unknown = sorted(set(fields or {}) - set(_PRINCIPAL_FIELDS))
        if unknown:
            takes = ", ".join(_PRINCIPAL_FIELDS)
            raise SettingsError(f"{name}: {principal} has unknown field(s) {', '.join(unknown)}; it takes {takes}")
        own = tuple(_own_budget(name, principal, key, (fields or {}).get(key)) for key in _PRINCIPAL_FIELDS[1:])
        if own != (None, None):
            budgets[principal] = (own[0], own[1])
        if token.strip() in tokens:
            raise SettingsError(f"{name}: {principal} has the same token as {tokens[token.strip()]}; give each its own")
        tokens[token.strip()] = principal
    return tokens, budgets


def _own_budget(name: str, principal: str, key: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise SettingsError(f"{name}: {principal}'s {key} must be 0 or more US dollars, e.g. 5; got {value!r}")
    return float(value)


def _parse_https_url(name: str, text: str) -> str:
    """An https URL (plain http only to this machine), kept exactly as given but for surrounding space."""
    url = text.strip()
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" and parts.hostname) and not local:
        raise SettingsError(f"{name} must be an https:// URL (plain http only to this machine); got {url!r}")
    return url


def _parse_oauth(env: Mapping[str, str]) -> tuple[OAuthSettings | None, _OwnBudgets]:
    """The `CCAPI_SUNO_OAUTH_*` settings, and the people file's budgets by principal."""
    given = {name: env.get(name, "").strip() for name in sorted(_OAUTH_VARIABLES)}
    if not any(given.values()):
        return None, {}
    issuer, resource = given["CCAPI_SUNO_OAUTH_ISSUER"], given["CCAPI_SUNO_OAUTH_RESOURCE"]
    if not issuer or not resource:
        missing = "CCAPI_SUNO_OAUTH_ISSUER" if not issuer else "CCAPI_SUNO_OAUTH_RESOURCE"
        raise SettingsError(
            f"{missing} is not set: signing in needs both the identity provider's issuer (CCAPI_SUNO_OAUTH_ISSUER) "
            "and the public URL of /mcp (CCAPI_SUNO_OAUTH_RESOURCE)"
        )
    issuer = _parse_https_url("CCAPI_SUNO_OAUTH_ISSUER", issuer)
    resource = _parse_https_url("CCAPI_SUNO_OAUTH_RESOURCE", resource)
    if urlsplit(resource).query or urlsplit(resource).fragment:
        raise SettingsError(f"CCAPI_SUNO_OAUTH_RESOURCE must not carry a query or fragment; got {resource!r}")
    scope = given["CCAPI_SUNO_OAUTH_SCOPE"] or DEFAULT_OAUTH_SCOPE
    if any(char.isspace() or char in '"\\' for char in scope):
        raise SettingsError(f"CCAPI_SUNO_OAUTH_SCOPE must be one scope, without spaces or quotes; got {scope!r}")
    jwks_url = given["CCAPI_SUNO_OAUTH_JWKS_URL"]
    introspection_url = given["CCAPI_SUNO_OAUTH_INTROSPECTION_URL"]
    client_id, client_secret = given["CCAPI_SUNO_OAUTH_CLIENT_ID"], given["CCAPI_SUNO_OAUTH_CLIENT_SECRET"]
    if introspection_url and not (client_id and client_secret):
        raise SettingsError(
            "CCAPI_SUNO_OAUTH_INTROSPECTION_URL needs this server's own CCAPI_SUNO_OAUTH_CLIENT_ID and "
            "CCAPI_SUNO_OAUTH_CLIENT_SECRET at the identity provider"
        )
    group_text = given["CCAPI_SUNO_OAUTH_GROUP"]
    group: tuple[str, str] | None = None
    if group_text:
        claim, equals, value = group_text.partition("=")
        if not equals or not claim.strip() or not value.strip():
            raise SettingsError(f"CCAPI_SUNO_OAUTH_GROUP must be claim=value, e.g. groups=suno; got {group_text!r}")
        group = (claim.strip(), value.strip())
    default_budget, budgets = _parse_people_file(given["CCAPI_SUNO_OAUTH_PEOPLE_FILE"], issuer)
    oauth = OAuthSettings(
        issuer=issuer,
        resource=resource,
        scope=scope,
        audiences=tuple(item.strip() for item in given["CCAPI_SUNO_OAUTH_AUDIENCES"].split(",") if item.strip()),
        jwks_url=_parse_https_url("CCAPI_SUNO_OAUTH_JWKS_URL", jwks_url) if jwks_url else None,
        group=group,
        default_budget=default_budget,
        introspection_url=(
            _parse_https_url("CCAPI_SUNO_OAUTH_INTROSPECTION_URL", introspection_url) if introspection_url else None
        ),
        client_id=client_id or None,
        client_secret=client_secret or None,
    )
    return oauth, budgets


_PEOPLE_FIELDS = ("daily_budget_usd", "monthly_budget_usd")


def _parse_people_file(text: str, issuer: str) -> tuple[_Budget | None, _OwnBudgets]:
    """The default budget (`"*"`) and each listed person's own, by principal, from
    `{"*": {"daily_budget_usd": 2}, "<sub>": {"daily_budget_usd": 20, "monthly_budget_usd": 100}}`."""
    name = "CCAPI_SUNO_OAUTH_PEOPLE_FILE"
    if not text.strip():
        return None, {}
    path, document = _json_file(name, text)
    if not isinstance(document, dict):
        raise SettingsError(f'{name}: {path} must be a JSON object, e.g. {{"*": {{"daily_budget_usd": 2}}}}')
    default: _Budget | None = None
    budgets: _OwnBudgets = {}
    for subject, entry in cast(dict[str, Any], document).items():
        fields = cast(dict[str, Any], entry) if isinstance(entry, dict) else None
        unknown = sorted(set(fields or {}) - set(_PEOPLE_FIELDS)) if fields is not None else ["(not an object)"]
        if unknown:
            takes = ", ".join(_PEOPLE_FIELDS)
            raise SettingsError(f"{name}: {subject} has unknown field(s) {', '.join(unknown)}; it takes {takes}")
        own = tuple(_own_budget(name, subject, key, (fields or {}).get(key)) for key in _PEOPLE_FIELDS)
        if subject == "*":
            default = (own[0], own[1])
        else:
            budgets[oauth_principal(issuer, subject)] = (own[0], own[1])
    return default, budgets
