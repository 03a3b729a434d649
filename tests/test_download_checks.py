"""What suno_download accepts as a file of each kind, and the names it gives files."""

from __future__ import annotations

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from ccapi_suno_mcp.tools._download import _check_origin as check_origin  # pyright: ignore[reportPrivateUsage]
from ccapi_suno_mcp.tools._download import _current_sandbox_link as current_sandbox_link  # pyright: ignore[reportPrivateUsage]
from ccapi_suno_mcp.tools._download import _looks_like as looks_like  # pyright: ignore[reportPrivateUsage]
from ccapi_suno_mcp.tools._download import safe_file_name  # pyright: ignore[reportPrivateUsage]


@pytest.mark.parametrize(
    ("kind", "head"),
    [
        ("audio", b"ID3\x04\x00\x00\x00\x00\x00\x00"),
        ("audio", b"\xff\xfb\x90\x64\x00\x00"),
        ("audio", b"\xff\xf1\x50\x80\x00\x1f"),  # ADTS AAC
        ("audio", b"\x00\x00\x00\x20ftypM4A \x00\x00"),  # m4a, as CCAPI's Producer results are
        ("audio", b"RIFF\x24\x00\x00\x00WAVEfmt "),
        ("image", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ("image", b"\x89PNG\r\n\x1a\n"),
        ("video", b"\x00\x00\x00\x18ftypmp42"),
        ("wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
        ("midi", b"MThd\x00\x00\x00\x06"),
    ],
)
def test_real_file_headers_are_accepted(kind: str, head: bytes) -> None:
    assert looks_like(kind, head)


@pytest.mark.parametrize(
    ("kind", "head"),
    [
        ("audio", b"<html><body>"),
        ("wav", b"RIFF\x24\x00\x00\x00AVI LIST"),
        ("midi", b"ID3\x04"),
        ("image", b'{"error": 1}'),
        ("video", b"\x00\x00"),
    ],
)
def test_other_bytes_are_refused(kind: str, head: bytes) -> None:
    assert not looks_like(kind, head)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Soft Steps in the Sun", "soft-steps-in-the-sun-07c958f3.mp3"),
        ("../../etc/passwd", "etc-passwd-07c958f3.mp3"),
        ("Ünïcödé ☂ Rain", "unicode-rain-07c958f3.mp3"),
        ("", "suno-07c958f3.mp3"),
        (None, "suno-07c958f3.mp3"),
        ("X Factor Remix X", "x-factor-remix-x-07c958f3.mp3"),
        ("--Rain--", "rain-07c958f3.mp3"),
        ("a" * 70, "a" * 60 + "-07c958f3.mp3"),
    ],
)
def test_file_names_come_from_titles_and_are_never_paths(title: str | None, expected: str) -> None:
    assert safe_file_name(title, "07c958f3-8293-4a11-96d3-240dd62bbb31", "audio", ".mp3") == expected


@pytest.mark.parametrize(
    ("identifier", "kind", "expected"),
    [
        ("task_7f11c4b772f4", "wav", "rain-task7f11-wav.wav"),
        ("AbC-dE_f9ZZ", "audio", "rain-AbCdEf9Z.wav"),
        ("-_-/..", "midi", "rain-file-midi.wav"),
    ],
)
def test_file_names_keep_eight_letters_or_digits_of_the_id_and_name_the_kind(
    identifier: str, kind: str, expected: str
) -> None:
    assert safe_file_name("Rain", identifier, kind, ".wav") == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:40001/media/a.wav", "http://127.0.0.1:45301/media/a.wav"),
        ("http://127.0.0.1:40001/stream/a", "http://127.0.0.1:45301/stream/a"),
        ("http://127.0.0.1:40001/other/a.wav", "http://127.0.0.1:40001/other/a.wav"),
        ("https://cdn1.suno.ai/a.mp3", "https://cdn1.suno.ai/a.mp3"),
        ("http://evil.example/media/a.wav", "http://evil.example/media/a.wav"),
    ],
)
def test_sandbox_links_from_an_earlier_run_point_at_todays_sandbox(url: str, expected: str) -> None:
    assert current_sandbox_link(url, "http://127.0.0.1:45301") == expected
    assert current_sandbox_link(url, None) == url


def test_a_sandbox_origin_given_with_a_trailing_slash_still_makes_plain_links() -> None:
    link = current_sandbox_link("http://127.0.0.1:40001/media/a.wav", "http://127.0.0.1:45301/")
    assert link == "http://127.0.0.1:45301/media/a.wav"


@pytest.mark.parametrize("emulator", ["http://127.0.0.1:45301", "http://127.0.0.1:45301/"])
def test_links_on_the_local_emulator_are_accepted_however_its_origin_is_written(emulator: str) -> None:
    check_origin("http://127.0.0.1:45301/media/a.wav", emulator)  # no error
    with pytest.raises(ToolError, match="only https links"):
        check_origin("http://127.0.0.1:45302/media/a.wav", emulator)
    with pytest.raises(ToolError, match="only https links"):
        check_origin("http://127.0.0.1:453011/media/a.wav", emulator)  # same prefix, another port
