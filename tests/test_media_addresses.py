"""Media links reach public hosts only: a link (or a redirect) to this machine or its network is refused before
any connection, after resolving the name, and the request goes to the address that was checked."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import httpx2
import pytest

from ccapi_suno_mcp import ccapi
from ccapi_suno_mcp.ccapi import SunoClient, SunoTask
from ccapi_suno_mcp.ccapi._addresses import Resolver, non_public_kind
from ccapi_suno_mcp.ledger import SQLiteLedger
from harness import PUBLIC_ADDRESS, resolve_public, text_of
from processes import server_client

NOWHERE = "http://127.0.0.1:1"  # CCAPI is never asked: the seeded task is finished
MP3 = b"ID3\x04\x00" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("64:ff9b::7f00:1", "reserved"),
    ],
)
def test_a_non_public_address_is_named_for_what_it_is(address: str, kind: str) -> None:
    assert non_public_kind(address) == kind


@pytest.mark.parametrize("address", [PUBLIC_ADDRESS, "8.8.8.8", "2606:4700::1111"])
def test_a_public_address_is_allowed(address: str) -> None:
    assert non_public_kind(address) is None


class Listener:
    """A TCP port on loopback that counts the connections it gets (and answers none)."""

    def __init__(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        self.listener = listener
        self.connections = 0

    @property
    def port(self) -> int:
        return int(self.listener.extra(anyio.abc.SocketAttribute.local_port))  # one listener: 127.0.0.1

    async def serve(self) -> None:
        async def counted(stream: anyio.abc.SocketStream) -> None:
            self.connections += 1
            await stream.aclose()

        await self.listener.serve(counted)


@asynccontextmanager
async def listening() -> AsyncGenerator[Listener]:
    listener = Listener(await anyio.create_tcp_listener(local_host="127.0.0.1"))
    async with listener.listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve)
        yield listener
        tasks.cancel_scope.cancel()


async def _seed(home: Path, audio_url: str) -> str:
    """A finished task in the ledger at `home` whose clip's audio is at `audio_url` (as CCAPI could return it)."""
    async with SQLiteLedger(home / "ledger.sqlite3") as ledger:
        record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"p": audio_url})
        await ledger.record_task_id(record.submission_id, "task_local")
        clip = {"clip_id": "clip-local", "title": "Local", "audio_url": audio_url, "state": "complete"}
        await ledger.apply_update(SunoTask(task_id="task_local", status="SUCCESS", data={"clips": [clip]}))
    return "clip-local"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("transport", "host", "shown"),
    [
        ("stdio", "127.0.0.1", "127.0.0.1: it is a loopback address"),
        ("stdio", "localhost", "(127.0.0.1): it is a loopback address"),
        ("http", "127.0.0.1", "127.0.0.1: it is a loopback address"),
    ],
)
async def test_a_media_link_to_a_local_service_is_refused_without_connecting(
    tmp_path: Path, transport: str, host: str, shown: str
) -> None:
    home = tmp_path / "home"
    with anyio.fail_after(60):
        async with listening() as local_service:
            clip_id = await _seed(home, f"https://{host}:{local_service.port}/song.mp3")
            async with server_client(transport, home, NOWHERE, tmp_path / "pid") as client:
                result = await client.call_tool("suno_download", {"clip_id": clip_id})
            connections = local_service.connections
    assert result.is_error
    assert shown in text_of(result) and "Nothing was fetched" in text_of(result)
    assert connections == 0
    assert not (home / "downloads").exists() or list((home / "downloads").iterdir()) == []


class Cdn:
    """A mock media host: redirects `/moved` to `target`, serves `/song.mp3`; records what it was asked."""

    def __init__(self, target: str = "") -> None:
        self.target = target
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path == "/moved":
            return httpx2.Response(302, headers={"location": self.target})
        return httpx2.Response(200, headers={"content-type": "audio/mpeg"}, content=MP3)


def _resolver(table: dict[str, list[str]], asked: list[str]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return table.get(host) or await resolve_public(host, port)

    return resolve


async def _download(cdn: Cdn, url: str, table: dict[str, list[str]], asked: list[str]) -> bytes:
    async with (
        httpx2.AsyncClient(transport=httpx2.MockTransport(cdn)) as http,
        SunoClient(
            api_key="sk-x", base_url="https://ccapi.test", http_client=http, resolve=_resolver(table, asked)
        ) as client,
        client.open_download(url) as (_, chunks),
    ):
        return b"".join([chunk async for chunk in chunks])


@pytest.mark.anyio
async def test_the_request_goes_to_the_checked_address_under_the_links_name() -> None:
    cdn, asked = Cdn(), list[str]()
    data = await _download(cdn, "https://cdn.example:8443/song.mp3", {}, asked)
    [request] = cdn.requests
    assert data == MP3 and asked == ["cdn.example"]  # resolved once: no second lookup could answer otherwise
    assert (request.url.host, request.url.port, request.headers["host"]) == (PUBLIC_ADDRESS, 8443, "cdn.example:8443")
    assert request.extensions["sni_hostname"] == "cdn.example"  # the certificate is checked for the name


@pytest.mark.anyio
async def test_a_name_with_any_private_address_is_refused_before_connecting() -> None:
    cdn, asked = Cdn(), list[str]()
    with pytest.raises(ccapi.ForbiddenAddressError, match=r"cdn.example \(10.0.0.7\): it is a private address"):
        await _download(cdn, "https://cdn.example/song.mp3", {"cdn.example": [PUBLIC_ADDRESS, "10.0.0.7"]}, asked)
    assert cdn.requests == []


@pytest.mark.anyio
async def test_a_redirect_to_a_private_host_is_refused_before_connecting_there() -> None:
    cdn, asked = Cdn("https://metadata.internal/latest/"), list[str]()
    table = {"metadata.internal": ["169.254.169.254"]}
    with pytest.raises(ccapi.ForbiddenAddressError, match="link-local address"):
        await _download(cdn, "https://cdn.example/moved", table, asked)
    assert [request.url.path for request in cdn.requests] == ["/moved"]  # the first hop only
    assert asked == ["cdn.example", "metadata.internal"]


@pytest.mark.anyio
async def test_a_redirect_to_a_public_host_is_followed_and_checked() -> None:
    cdn, asked = Cdn("https://media.example/song.mp3"), list[str]()
    assert await _download(cdn, "https://cdn.example/moved", {}, asked) == MP3
    assert asked == ["cdn.example", "media.example"]
    assert [request.headers["host"] for request in cdn.requests] == ["cdn.example", "media.example"]


@pytest.mark.anyio
async def test_a_redirect_to_plain_http_is_refused() -> None:
    cdn, asked = Cdn("http://cdn.example/song.mp3"), list[str]()
    with pytest.raises(ccapi.UnexpectedResponseError, match="not https"):
        await _download(cdn, "https://cdn.example/moved", {}, asked)
    assert len(cdn.requests) == 1
