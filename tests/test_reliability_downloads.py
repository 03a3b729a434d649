"""Downloads: only links from task results, https only, capped, typed, atomic, and never outside the folder.

The ledger is seeded directly with crafted clips (as if CCAPI had returned them); the files come from a
MockTransport "CDN", so every hostile case is exact and nothing leaves the machine.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from ccapi_suno_mcp.app import create_server
from ccapi_suno_mcp.ccapi import SunoTask
from ccapi_suno_mcp.ledger import SQLiteLedger
from ccapi_suno_mcp.settings import Settings
from ccapi_suno_mcp.tools import _download as download_module
from ccapi_suno_mcp.tools._download import _target as target_in  # pyright: ignore[reportPrivateUsage]
from harness import KEY, resolve_public, running, text_of
from tagreader import audio_after_tag, id3_frames

CDN = "https://cdn.example"
MP3 = (bytes((0xFF, 0xFB, 0x54, 0xC4)) + bytes(188)) * 40  # real MPEG-1 Layer III frames (silence)
NOT_TAGGABLE = b"ID3\x04\x00" + bytes(range(256)) * 8  # an ID3 header whose size runs past the end
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
ALLOWED_NAME = re.compile(r"^[a-z0-9-]+\.mp3$")
HOSTILE_TITLES = [  # tests run as root: a title that escaped must still land inside this test's own temporary folder
    "../../escaped",
    "{tmp}/escaped",
    "..",
    "C:\\Windows\\System32\\drivers",
    "Ünïcödé 🎵 雨の歌 ☔",
    "\x00\n\r\t",
    "x" * 5000,
    "",
    None,
]


class BreaksMidway(httpx2.AsyncByteStream):
    """A response body that sends some bytes and then loses the connection."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield MP3[:100]
        raise httpx2.ReadError("connection reset by peer")


@dataclass
class Cdn:
    """The media host: serves `files` by path and records every request it sees."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=lambda: dict[str, tuple[str, bytes]]())
    broken: set[str] = field(default_factory=lambda: set[str]())
    requests: list[httpx2.Request] = field(default_factory=lambda: list[httpx2.Request]())

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if path in self.broken:
            return httpx2.Response(200, headers={"content-type": "audio/mpeg"}, stream=BreaksMidway())
        if path not in self.files:
            return httpx2.Response(404, text="Not Found")
        content_type, body = self.files[path]
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)


@dataclass
class Setup:
    client: Client
    ledger: SQLiteLedger
    cdn: Cdn
    downloads: Path
    seeded: int = 0

    async def clip(self, audio_url: str, *, title: str | None = "Rain", image_url: str | None = None) -> str:
        """Record a finished task with one clip whose audio is at `audio_url`; returns the clip id."""
        self.seeded += 1
        clip_id = f"clip-{self.seeded:04d}"
        task_id = f"task_seeded{self.seeded:04d}"
        body = {"gpt_description_prompt": f"seeded song {self.seeded}"}
        record = await self.ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body=body)
        await self.ledger.record_task_id(record.submission_id, task_id)
        clip = {"clip_id": clip_id, "title": title, "audio_url": audio_url, "state": "complete", "duration": 1.0}
        if image_url is not None:
            clip["image_url"] = image_url
        await self.ledger.apply_update(SunoTask(task_id=task_id, status="SUCCESS", data={"clips": [clip]}))
        return clip_id

    async def download(self, clip_id: str, **arguments: Any) -> tuple[bool, str, dict[str, Any] | None]:
        result = await self.client.call_tool("suno_download", {"clip_id": clip_id, **arguments})
        return result.is_error, text_of(result), result.structured_content

    def leftovers(self) -> list[str]:
        return sorted(entry.name for entry in self.downloads.rglob(".partial-*"))


@asynccontextmanager
async def seeded_server(home: Path) -> AsyncGenerator[Setup]:
    cdn = Cdn()
    settings = Settings(api_key=KEY, base_url="https://api.ccapi.example", home=home)
    async with (
        SQLiteLedger(home / "ledger.sqlite3") as ledger,
        httpx2.AsyncClient(transport=httpx2.MockTransport(cdn)) as http,
        Client(create_server(settings, http_client=http, resolve=resolve_public, ledger=ledger)) as client,
    ):
        yield Setup(client=client, ledger=ledger, cdn=cdn, downloads=settings.downloads)


@pytest.mark.anyio
async def test_download_takes_no_url_from_the_caller(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as setup:
        tools = {tool.name: tool for tool in (await setup.client.list_tools()).tools}
    properties = set(tools["suno_download"].input_schema["properties"])
    assert properties == {"clip_id", "kind", "task_id", "overwrite"}
    assert not [name for name in properties if "url" in name or "path" in name]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["http://evil.example/song.mp3", "file:///etc/passwd", "ftp://cdn.example/song.mp3", "https:///song.mp3"]
)
async def test_a_result_link_that_is_not_https_is_refused_without_a_request(tmp_path: Path, url: str) -> None:
    async with seeded_server(tmp_path) as setup:
        failed, message, _ = await setup.download(await setup.clip(url))
        requests = len(setup.cdn.requests)
    assert failed and "only https links" in message
    assert requests == 0
    assert not setup.downloads.exists() or list(setup.downloads.iterdir()) == []


@pytest.mark.anyio
async def test_the_sandbox_loopback_origin_is_accepted_but_another_loopback_port_is_not(tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        submitted = await harness.call("suno_generate_music", {"description": "a calm piano piece"})
        [task] = (await harness.finished([submitted["task_id"]]))["tasks"]
        saved = await harness.call("suno_download", {"clip_id": task["clips"][0]["clip_id"]})
        async with SQLiteLedger(tmp_path / "ledger.sqlite3") as ledger:
            record = await ledger.begin_submission(tool="suno_generate_music", action="MUSIC", body={"x": 1})
            await ledger.record_task_id(record.submission_id, "task_otherport")
            clip = {"clip_id": "clip-other-port", "audio_url": "http://127.0.0.1:1/media/x.wav"}
            await ledger.apply_update(SunoTask(task_id="task_otherport", status="SUCCESS", data={"clips": [clip]}))
        refused = await harness.fail("suno_download", {"clip_id": "clip-other-port"})
    assert Path(saved["path"]).read_bytes()[:3] == b"ID3"  # the sandbox's MP3, tagged
    assert "only https links" in refused


@pytest.mark.anyio
async def test_a_file_over_the_size_cap_is_not_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "MAX_DOWNLOAD_BYTES", len(MP3) - 1)
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/big.mp3"] = ("audio/mpeg", MP3)
        failed, message, _ = await setup.download(await setup.clip(f"{CDN}/big.mp3"))
    assert failed and "larger than" in message
    assert list(setup.downloads.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "body", "fragment"),
    [
        ("text/html", b"<html>login</html>", "not audio"),
        ("application/json", MP3, "not audio"),
        ("audio/mpeg", b"<html>an error page served as audio</html>", "does not look like audio"),
        ("audio/mpeg", b"", "empty"),
    ],
)
async def test_a_file_of_the_wrong_type_is_not_saved(
    tmp_path: Path, content_type: str, body: bytes, fragment: str
) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = (content_type, body)
        failed, message, _ = await setup.download(await setup.clip(f"{CDN}/song.mp3"))
    assert failed and fragment in message
    assert list(setup.downloads.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize("title", HOSTILE_TITLES)
async def test_hostile_titles_become_plain_file_names_inside_the_folder(tmp_path: Path, title: str | None) -> None:
    title = title.replace("{tmp}", str(tmp_path)) if title else title
    async with seeded_server(tmp_path / "home") as setup:  # downloads in tmp/home/downloads: ../../ is tmp
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        failed, message, saved = await setup.download(await setup.clip(f"{CDN}/song.mp3", title=title))
    assert not failed, message
    assert saved is not None
    path = Path(saved["path"])
    assert path.parent == setup.downloads.resolve()
    assert ALLOWED_NAME.match(path.name) and len(path.name) <= 100, path.name
    assert audio_after_tag(path) == MP3
    assert sorted(entry.name for entry in setup.downloads.iterdir()) == [f"{path.stem}.json", path.name]
    written = [entry for entry in tmp_path.rglob("*") if entry.is_file() and entry.suffix in (".mp3", ".json")]
    assert sorted(written) == [path.with_suffix(".json"), path]


@pytest.mark.anyio
@pytest.mark.parametrize("title", HOSTILE_TITLES)
async def test_hostile_titles_make_a_release_folder_of_plain_names_inside_the_folder(
    tmp_path: Path, title: str | None
) -> None:
    title = title.replace("{tmp}", str(tmp_path)) if title else title
    async with seeded_server(tmp_path / "home") as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        failed, message, saved = await setup.download(await setup.clip(f"{CDN}/song.mp3", title=title), kind="release")
    assert not failed, message
    assert saved is not None
    folder = Path(saved["path"])
    assert folder.parent == setup.downloads.resolve() and re.fullmatch(r"[a-z0-9-]+", folder.name), folder.name
    names = sorted(entry.name for entry in folder.iterdir())
    assert len(names) == 2 and all(re.fullmatch(r"[a-z0-9-]+\.(mp3|json)", name) for name in names), names
    written = [entry for entry in tmp_path.rglob("*") if entry.is_file() and entry.suffix in (".mp3", ".json")]
    assert sorted(written) == sorted(folder / name for name in names)


@pytest.mark.parametrize("name", ["../escaped.mp3", "../../escaped.mp3", "sub/../../escaped.mp3", "{tmp}/escaped.mp3"])
def test_a_target_name_that_leaves_the_folder_is_refused_even_when_the_name_check_is_passed(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "home" / "downloads"  # every escape above still lands inside tmp_path
    with pytest.raises(ToolError, match="outside the download folder"):
        target_in(folder, name.replace("{tmp}", str(tmp_path)), overwrite=True)


def test_a_target_inside_a_symlinked_subfolder_that_points_outside_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "downloads", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "linked").symlink_to(outside)
    with pytest.raises(ToolError, match="outside the download folder"):
        target_in(folder, "linked/escaped.mp3", overwrite=True)


@pytest.mark.parametrize("points_to", ["outside/precious.txt", "downloads/other.mp3", "nowhere.mp3"])
def test_a_target_that_is_a_symlink_is_refused_wherever_it_points(tmp_path: Path, points_to: str) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.txt").write_text("precious")
    (folder / "other.mp3").write_bytes(MP3)
    (folder / "song.mp3").symlink_to(tmp_path / points_to)
    with pytest.raises(ToolError, match="outside the download folder"):
        target_in(folder, "song.mp3", overwrite=True)
    assert (tmp_path / "outside" / "precious.txt").read_text() == "precious"


def test_a_plain_name_is_a_target_inside_the_folder_even_when_the_folder_is_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-downloads"
    real.mkdir()
    (tmp_path / "downloads").symlink_to(real)
    assert target_in(tmp_path / "downloads", "song.mp3", overwrite=False) == real.resolve() / "song.mp3"
    made = target_in(tmp_path / "new" / "downloads", "song.mp3", overwrite=False)  # a missing folder is made
    assert made == (tmp_path / "new" / "downloads").resolve() / "song.mp3"


def test_an_existing_target_is_refused_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "song.mp3").write_bytes(MP3)
    with pytest.raises(ToolError, match="overwrite=true"):
        target_in(tmp_path, "song.mp3", overwrite=False)
    assert target_in(tmp_path, "song.mp3", overwrite=True) == tmp_path.resolve() / "song.mp3"


@pytest.mark.anyio
async def test_a_symlink_planted_at_the_target_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "precious.txt"
    outside.parent.mkdir()
    outside.write_text("precious")
    async with seeded_server(tmp_path / "home") as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        _, _, saved = await setup.download(clip_id)
        assert saved is not None
        target = Path(saved["path"])
        target.unlink()
        target.symlink_to(outside)
        refused, message, _ = await setup.download(clip_id, overwrite=True)
        refused_again, _, _ = await setup.download(clip_id)
    assert refused and refused_again and "outside the download folder" in message
    assert target.is_symlink()
    assert outside.read_text() == "precious"
    assert setup.leftovers() == []


@pytest.mark.anyio
async def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        _, _, saved = await setup.download(clip_id)
        assert saved is not None
        target = Path(saved["path"])
        target.write_bytes(b"my own edit")
        refused, message, _ = await setup.download(clip_id)
        kept = target.read_bytes()
        replaced, _, _ = await setup.download(clip_id, overwrite=True)
    assert refused and "overwrite=true" in message
    assert kept == b"my own edit"
    assert not replaced and audio_after_tag(target) == MP3


@pytest.mark.anyio
async def test_a_download_cut_off_midway_leaves_the_good_file_and_no_partial_file(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        _, _, saved = await setup.download(clip_id)
        assert saved is not None
        setup.cdn.broken.add("/song.mp3")
        failed, message, _ = await setup.download(clip_id, overwrite=True)
    assert failed and "Could not download" in message
    assert audio_after_tag(Path(saved["path"])) == MP3
    assert setup.leftovers() == []


@pytest.mark.anyio
async def test_the_api_key_is_never_sent_to_the_media_host(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        failed, message, _ = await setup.download(await setup.clip(f"{CDN}/song.mp3"))
        [request] = setup.cdn.requests
    assert not failed, message
    assert "authorization" not in request.headers
    assert KEY not in str(request.headers)  # nor in any other header


@pytest.mark.anyio
async def test_a_release_folder_planted_as_a_symlink_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    async with seeded_server(tmp_path / "home") as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        setup.downloads.mkdir(parents=True)
        (setup.downloads / "rain-clip0001").symlink_to(outside)
        failed, message, _ = await setup.download(clip_id, kind="release")
        failed_again, _, _ = await setup.download(clip_id, kind="release", overwrite=True)
        requests = len(setup.cdn.requests)
    assert failed and failed_again and "not a plain folder inside the download folder" in message
    assert list(outside.iterdir()) == []
    assert requests == 0


@pytest.mark.anyio
async def test_a_symlink_planted_at_the_sidecar_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    async with seeded_server(tmp_path / "home") as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        setup.downloads.mkdir(parents=True)
        (setup.downloads / "rain-clip0001.json").symlink_to(outside)
        failed, message, _ = await setup.download(clip_id, overwrite=True)
        requests = len(setup.cdn.requests)
    assert failed and "outside the download folder" in message
    assert outside.read_text() == "precious"
    assert requests == 0  # refused before anything was fetched
    assert [entry.name for entry in setup.downloads.iterdir()] == ["rain-clip0001.json"]


class FullDisk:
    """A disk that fills up: files the server opens for writing (through os.fdopen) after the first `room` fail
    on their first write with ENOSPC, as a full disk would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
        real = os.fdopen
        opened = 0

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            nonlocal opened
            handle = real(fd, mode, *args, **kwargs)
            if "w" not in mode:
                return handle
            opened += 1
            return handle if opened <= room else _NoSpace(handle)

        monkeypatch.setattr(os, "fdopen", fdopen)


class _NoSpace:
    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def __enter__(self) -> _NoSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@pytest.mark.anyio
async def test_a_full_disk_leaves_no_partial_file_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        FullDisk(monkeypatch, room=0)
        failed, message, _ = await setup.download(clip_id)
        failed_release, release_message, _ = await setup.download(clip_id, kind="release")
    assert failed and "is full: the file was not saved (no partial file is left)" in message
    assert failed_release and "is full: the file was not saved" in release_message
    assert [entry for entry in setup.downloads.rglob("*") if entry.is_file()] == []


@pytest.mark.anyio
async def test_a_disk_full_by_the_sidecar_keeps_the_song_and_says_the_sidecar_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        clip_id = await setup.clip(f"{CDN}/song.mp3")
        FullDisk(monkeypatch, room=1)
        failed, message, saved = await setup.download(clip_id)
    assert not failed, message
    assert saved is not None and saved["files"] == [saved["path"]]
    assert saved["notes"] == [f"sidecar not saved: Could not write rain-clip0001.json ({os.strerror(errno.ENOSPC)})."]
    assert "Note: sidecar not saved" in message
    assert audio_after_tag(Path(saved["path"])) == MP3
    assert [entry.name for entry in setup.downloads.iterdir()] == ["rain-clip0001.mp3"]


@pytest.mark.anyio
async def test_a_file_whose_tags_cannot_be_written_is_saved_as_served_with_a_note(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", NOT_TAGGABLE)
        failed, message, saved = await setup.download(await setup.clip(f"{CDN}/song.mp3"))
    assert not failed, message
    assert saved is not None and Path(saved["path"]).read_bytes() == NOT_TAGGABLE
    [note] = saved["notes"]
    assert note.startswith("tags not written (mp3 file") and note.endswith("the file is saved without them")
    assert f"Note: {note}" in message
    assert setup.leftovers() == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("image_url", "served", "fragment"),
    [
        ("http://evil.example/cover.png", None, "only https links"),
        (f"{CDN}/cover.png", ("text/html", b"<html>login</html>"), "not image"),
        (f"{CDN}/cover.png", ("image/png", b"<html>not a png</html>"), "does not look like image"),
    ],
)
async def test_a_cover_that_fails_the_download_checks_is_not_embedded_and_the_song_is_still_saved(
    tmp_path: Path, image_url: str, served: tuple[str, bytes] | None, fragment: str
) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        if served is not None:
            setup.cdn.files["/cover.png"] = served
        failed, message, saved = await setup.download(await setup.clip(f"{CDN}/song.mp3", image_url=image_url))
        fetched = [request.url.host for request in setup.cdn.requests]
    assert not failed, message
    assert saved is not None
    [note] = saved["notes"]
    assert note.startswith("cover not embedded:") and fragment in note
    assert "evil.example" not in fetched
    frames = id3_frames(Path(saved["path"]))
    assert "APIC:Cover" not in frames and frames["TIT2"].text == ["Rain"]


@pytest.mark.anyio
async def test_the_cover_is_fetched_from_the_clips_own_link_and_embedded(tmp_path: Path) -> None:
    async with seeded_server(tmp_path) as setup:
        setup.cdn.files["/song.mp3"] = ("audio/mpeg", MP3)
        setup.cdn.files["/cover.png"] = ("image/png", PNG)
        _, message, saved = await setup.download(await setup.clip(f"{CDN}/song.mp3", image_url=f"{CDN}/cover.png"))
        [cover_request, _] = setup.cdn.requests
    assert saved is not None, message
    assert "authorization" not in cover_request.headers  # the key goes to CCAPI only, never to a media host
    assert id3_frames(Path(saved["path"]))["APIC:Cover"].data == PNG
