"""A real OpenID provider for tests: npm `oidc-provider`, pinned by `tests/oidc/package-lock.json`, installed
with `npm ci` on first use and started on a loopback port (`tests/oidc/provider.mjs` says what it issues).

People sign in on its development login page, which takes any login name as the person's `sub`:
`ScriptedLogin` plays that page for the Python SDK client, as a person would in a browser.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from anyio.streams.text import TextReceiveStream
from mcp.client.auth import AuthorizationCodeResult
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from processes import free_port

FOLDER = Path(__file__).parent / "oidc"
REDIRECT_URI = "http://127.0.0.1:33418/callback"
"""Where the provider sends the browser back; nothing listens there: `ScriptedLogin` stops at that redirect."""


def install() -> None:
    """`npm ci` in tests/oidc when its node_modules do not match the lock file."""
    marker = FOLDER / "node_modules" / ".package-lock.json"
    lock = FOLDER / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    command = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(command, cwd=FOLDER, check=True, stdout=sys.stderr, timeout=300)


@asynccontextmanager
async def identity_provider(resource: str) -> AsyncGenerator[str]:
    """The provider on a free loopback port, issuing tokens for `resource`; yields its issuer. Stopped on exit,
    whatever happened inside."""
    await anyio.to_thread.run_sync(install)
    port = free_port()
    command = ["node", str(FOLDER / "provider.mjs"), str(port), resource]
    listening = anyio.Event()
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    log: list[str] = []
    async with process, anyio.create_task_group() as tasks:

        async def read_log() -> None:  # reads stderr to its end, so the pipe never fills
            assert process.stderr is not None
            async for text in TextReceiveStream(process.stderr):
                log.append(text)
                if "listening on" in "".join(log[-3:]):
                    listening.set()

        tasks.start_soon(read_log)
        try:
            with anyio.fail_after(30):
                await listening.wait()
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()


class MemoryStorage:
    """The SDK client's token storage, in memory (a fresh client: nothing registered, no tokens)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.IGNORECASE)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', re.IGNORECASE)


async def sign_in(authorize_url: str, login: str) -> str:
    """Follows `authorize_url` as a browser would, signs in as `login` on the provider's page (and continues
    past any consent page), and returns the URL the provider finally sends the browser to (its redirect_uri,
    not fetched)."""
    redirect_uri = parse_qs(urlsplit(authorize_url).query)["redirect_uri"][0]
    async with httpx2.AsyncClient(timeout=30) as browser:
        url = authorize_url
        for _ in range(12):
            response = await browser.get(url)
            while response.is_redirect:
                url = urljoin(url, response.headers["location"])
                if url.startswith(redirect_uri):
                    return url
                response = await browser.get(url)
            action = _FORM_ACTION.search(response.text)
            if action is None:
                raise AssertionError(f"no form at {url}: {response.status_code} {response.text[:300]}")
            form = {name: unescape(value) for name, value in _HIDDEN.findall(response.text)}
            if form.get("prompt") == "login":
                form |= {"login": login, "password": "any"}
            posted = await browser.post(urljoin(url, unescape(action.group(1))), data=form)
            if not posted.is_redirect:
                raise AssertionError(f"the form at {url} answered {posted.status_code}: {posted.text[:300]}")
            url = urljoin(url, posted.headers["location"])
            if url.startswith(redirect_uri):
                return url
    raise AssertionError(f"signing in as {login} did not come back to {redirect_uri}")


class ScriptedLogin:
    """The SDK client's redirect and callback handlers for a person who signs in as `login`."""

    def __init__(self, login: str) -> None:
        self.login = login
        self.returned: str | None = None
        self.authorize_urls: list[str] = []

    async def redirect(self, authorize_url: str) -> None:
        self.authorize_urls.append(authorize_url)
        self.returned = await sign_in(authorize_url, self.login)

    async def callback(self) -> AuthorizationCodeResult:
        assert self.returned is not None
        query = parse_qs(urlsplit(self.returned).query)
        if "error" in query:
            raise AssertionError(f"the provider refused: {query}")
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query.get("iss", [None])[0])
