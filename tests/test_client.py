"""The CCAPI client over `httpx2.MockTransport`: request shapes, error mapping, retry policy."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from ccapi_suno_mcp import ccapi
from ccapi_suno_mcp.catalogue import ACTIONS, Catalogue
from ccapi_suno_mcp.ccapi import SunoClient
from ccapi_suno_mcp.ccapi._client import MAX_RETRY_AFTER
from harness import resolve_public

KEY = "sk-test-0123456789"
BASE = "https://ccapi.test"
PARENT = "task_7f11c4b772f44710ac0fae0d5b3dc4c1"
CLIP = "07c958f3-8293-4a11-96d3-240dd62bbb31"
CLIP2 = "2b4f1d7e-0c1a-4e55-9f3a-6d1e2f3a4b5c"

# One valid call per action, and the exact body CCAPI should receive for it.
EXAMPLES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "suno_generate_music": (
        {"description": "an indie-pop song about rain", "model": "v5", "tags": "indie pop", "instrumental": False},
        "MUSIC",
        {"gpt_description_prompt": "an indie-pop song about rain", "mv": "chirp-v5", "tags": "indie pop",
         "make_instrumental": False, "custom_mode": False},
    ),
    "suno_generate_lyrics": ({"prompt": "rain on a city"}, "LYRICS", {"prompt": "rain on a city"}),
    "suno_extend_music": (
        {"clip_id": CLIP, "task_id": PARENT, "continue_at": 92.5, "lyrics": "[Bridge] la"},
        "EXTEND",
        {"continue_clip_id": CLIP, "task_id": PARENT, "continue_at": 92.5, "prompt": "[Bridge] la",
         "custom_mode": True},
    ),
    "suno_create_cover": (
        {"clip_id": CLIP, "task_id": PARENT, "tags": "jazz", "audio_weight": 0.7},
        "COVER",
        {"continue_clip_id": CLIP, "task_id": PARENT, "tags": "jazz", "audio_weight": 0.7},
    ),
    "suno_extract_stems": ({"clip_id": CLIP, "task_id": PARENT}, "STEMS", {"clip_id": CLIP, "task_id": PARENT}),
    "suno_extract_all_stems": (
        {"clip_id": CLIP, "task_id": PARENT}, "STEMS_FULL", {"clip_id": CLIP, "task_id": PARENT},
    ),
    "suno_add_vocals": (
        {"clip_id": CLIP, "task_id": PARENT, "lyrics": "[Verse] hello", "overpainting_start_s": 0,
         "overpainting_end_s": 30},
        "ADD_VOCALS",
        {"continue_clip_id": CLIP, "task_id": PARENT, "prompt": "[Verse] hello", "overpainting_start_s": 0.0,
         "overpainting_end_s": 30.0},
    ),
    "suno_add_instrumental": (
        {"clip_id": CLIP, "task_id": PARENT, "tags": "lofi"},
        "ADD_INSTRUMENTAL",
        {"continue_clip_id": CLIP, "task_id": PARENT, "tags": "lofi"},
    ),
    "suno_replace_section": (
        {"clip_id": CLIP, "task_id": PARENT, "start_s": 10, "end_s": 20, "section_lyrics": "new line",
         "full_song": True},
        "REPLACE_SECTION",
        {"clip_id": CLIP, "task_id": PARENT, "infill_start_s": 10.0, "infill_end_s": 20.0,
         "infill_lyrics": "new line", "auto_concat": True},
    ),
    "suno_remaster_music": (
        {"clip_id": CLIP, "task_id": PARENT, "model": "v5", "variation": "subtle"},
        "REMASTER",
        {"continue_clip_id": CLIP, "task_id": PARENT, "mv": "chirp-v5", "variation_category": "subtle"},
    ),
    "suno_mashup_music": (
        {"clip_ids": [CLIP, CLIP2], "description": "blend them"},
        "MASHUP",
        {"clip_ids": [CLIP, CLIP2], "gpt_description_prompt": "blend them", "custom_mode": False},
    ),
    "suno_sample_section": (
        {"clip_id": CLIP, "task_id": PARENT, "start_s": 5, "end_s": 12, "description": "a funk song"},
        "SAMPLE",
        {"sample_clip_id": CLIP, "task_id": PARENT, "chop_sample_start_s": 5.0, "chop_sample_end_s": 12.0,
         "gpt_description_prompt": "a funk song", "custom_mode": False},
    ),
    "suno_generate_sounds": (
        {"prompt": "rain on a tin roof", "loop": True, "bpm": 90, "key": "Am"},
        "SOUNDS",
        {"prompt": "rain on a tin roof", "loop": True, "bpm": 90, "key": "Am"},
    ),
    "suno_generate_midi": ({"clip_id": CLIP, "task_id": PARENT}, "MIDI", {"clip_id": CLIP, "task_id": PARENT}),
    "suno_upload_audio": ({"url": "https://example.com/a.mp3"}, "UPLOAD", {"url": "https://example.com/a.mp3"}),
    "suno_concatenate_music": (
        {"clip_id": CLIP, "task_id": PARENT}, "CONCAT", {"continue_clip_id": CLIP, "task_id": PARENT},
    ),
    "suno_get_aligned_lyrics": (
        {"clip_id": CLIP, "task_id": PARENT}, "ALIGNED_LYRICS", {"clip_id": CLIP, "task_id": PARENT},
    ),
    "suno_generate_music_video": (
        {"clip_id": CLIP, "task_id": PARENT}, "VIDEO", {"clip_id": CLIP, "task_id": PARENT},
    ),
    "suno_export_wav": ({"clip_id": CLIP, "task_id": PARENT}, "WAV", {"clip_id": CLIP, "task_id": PARENT}),
    "suno_detect_bpm": ({"clip_id": CLIP, "task_id": PARENT}, "BPM", {"clip_id": CLIP, "task_id": PARENT}),
    "suno_extract_vocals": (
        {"clip_id": CLIP, "task_id": PARENT, "start_s": 30, "end_s": 50},
        "VOX",
        {"clip_id": CLIP, "task_id": PARENT, "vocal_start_s": 30.0, "vocal_end_s": 50.0},
    ),
    "suno_upsample_tags": ({"tags": "jazz, smooth"}, "UPSAMPLE_TAGS", {"tags": "jazz, smooth"}),
}  # fmt: skip

Handler = Callable[[httpx2.Request], httpx2.Response]


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.requests: list[httpx2.Request] = []
        self._answers = list(answers)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class SleepRecorder:
    """Stands in for `anyio.sleep`: records each delay and only yields, so a retry loop that never ends can still
    be cancelled by a test's deadline."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await anyio.lowlevel.checkpoint()


def ok(data: Any) -> httpx2.Response:
    return httpx2.Response(200, json={"code": "success", "message": "", "data": data})


def task_record(task_id: str = PARENT, status: str = "IN_PROGRESS", **extra: Any) -> dict[str, Any]:
    return {"id": 4, "task_id": task_id, "platform": "suno", "action": "MUSIC", "status": status,
            "progress": "20%", "fail_reason": "", "submit_time": 1773385996, "start_time": 0, "finish_time": 0,
            "properties": {"input": ""}, "data": {"progress": "20%", "status": status, "task_id": "upstream"},
            **extra}  # fmt: skip


def make_client(
    handler: Handler,
    *,
    api_key: str | None = KEY,
    sleep: SleepRecorder | None = None,
    jitter: Callable[[], float] = lambda: 1.0,  # the top of the range: each delay is exactly the backoff
) -> SunoClient:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return SunoClient(
        api_key=api_key, base_url=BASE, http_client=http, sleep=sleep or SleepRecorder(), jitter=jitter,
        resolve=resolve_public,
    )  # fmt: skip


def test_every_enabled_action_has_a_request_shape_example() -> None:
    assert set(EXAMPLES) == {spec.tool for spec in ACTIONS if spec.enabled}


@pytest.mark.anyio
@pytest.mark.parametrize("tool", sorted(EXAMPLES))
async def test_submit_sends_each_action_to_its_route_with_the_mapped_body(tool: str) -> None:
    arguments, token, expected_body = EXAMPLES[tool]
    catalogue = Catalogue()
    spec = catalogue.spec(tool)
    body = catalogue.build_body(spec, spec.request.model_validate(arguments))
    recorder = Recorder(ok("task_new0000000000000000000000000001"))
    async with make_client(recorder) as client:
        task_id = await client.submit(spec.action, body)
    assert task_id == "task_new0000000000000000000000000001"
    [request] = recorder.requests
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/suno/submit/{token}")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == expected_body


@pytest.mark.anyio
async def test_fetch_task_gets_one_record_and_keeps_raw_data() -> None:
    recorder = Recorder(ok(task_record(extra_field="kept")))
    async with make_client(recorder) as client:
        task = await client.fetch_task(PARENT)
    [request] = recorder.requests
    assert (request.method, str(request.url)) == ("GET", f"{BASE}/suno/fetch/{PARENT}")
    assert task.state is ccapi.TaskStatus.IN_PROGRESS
    assert task.progress_percent == 20
    assert task.data == {"progress": "20%", "status": "IN_PROGRESS", "task_id": "upstream"}
    assert task.model_extra == {"id": 4, "extra_field": "kept"}


@pytest.mark.anyio
async def test_fetch_tasks_batches_a_hundred_ids_per_request_in_order() -> None:
    ids = [f"task_{n:032d}" for n in range(250)]
    seen: list[list[str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        chunk: list[str] = json.loads(request.content)["ids"]
        seen.append(chunk)
        return ok([task_record(task_id) for task_id in chunk])

    async with make_client(handler) as client:
        tasks = await client.fetch_tasks([*ids, ids[0]])
    assert [len(chunk) for chunk in seen] == [100, 100, 50]
    assert [task.task_id for task in tasks] == ids


@pytest.mark.anyio
async def test_unknown_status_strings_count_as_pending() -> None:
    async with make_client(Recorder(ok(task_record(status="WARMING_UP")))) as client:
        task = await client.fetch_task(PARENT)
    assert task.state is ccapi.TaskStatus.UNKNOWN
    assert not task.is_terminal


@pytest.mark.anyio
async def test_get_balance_reads_new_api_billing_routes() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/subscription"):
            return httpx2.Response(200, json={"object": "billing_subscription", "hard_limit_usd": 12.5})
        return httpx2.Response(200, json={"object": "list", "total_usage": 250.0})

    async with make_client(handler) as client:
        balance = await client.get_balance()
    assert balance == ccapi.Balance(remaining_usd=10.0, used_usd=2.5, total_usd=12.5)


@pytest.mark.anyio
async def test_a_missing_key_fails_before_any_request() -> None:
    recorder = Recorder(ok("task_x"))
    async with make_client(recorder, api_key=None) as client:
        with pytest.raises(ccapi.MissingAPIKeyError):
            await client.submit("MUSIC", {})
    assert recorder.requests == []


ERROR_CASES: list[tuple[httpx2.Response, type[ccapi.CCAPIError], str | None]] = [
    (
        httpx2.Response(401, json={"error": {"message": "invalid token (request id: x)", "type": "new_api_error",
                                             "code": ""}}),
        ccapi.AuthenticationError, None,
    ),
    (httpx2.Response(402, json={"error": {"message": "Insufficient balance", "code": "insufficient_funds"}}),
     ccapi.InsufficientBalanceError, "insufficient_funds"),
    (httpx2.Response(403, json={"code": "insufficient_user_quota", "message": "user quota is not enough",
                                "data": None}), ccapi.InsufficientBalanceError, "insufficient_user_quota"),
    # new-api's task relay (TaskErrorWrapperLocal(..., "quota_not_enough", 403)): the body CCAPI's routes answer
    (httpx2.Response(403, json={"code": "quota_not_enough", "message": "user quota is not enough", "data": None}),
     ccapi.InsufficientBalanceError, "quota_not_enough"),
    (httpx2.Response(403, json={"code": "forbidden", "message": "user is banned", "data": None}),
     ccapi.PermissionDeniedError, "forbidden"),
    (httpx2.Response(400, json={"code": "task_not_exist", "message": "task_not_exist", "data": None}),
     ccapi.NotFoundError, "task_not_exist"),
    (httpx2.Response(400, json={"code": "invalid_action", "message": "invalid_action", "data": None}),
     ccapi.BadRequestError, "invalid_action"),
    (httpx2.Response(429, headers={"retry-after": "7"}, json={"code": "rate_limited", "message": "slow down"}),
     ccapi.RateLimitedError, "rate_limited"),
    (httpx2.Response(500, json={"code": "do_request_failed", "message": "请求上游地址失败", "data": None}),
     ccapi.ServerError, "do_request_failed"),
    (httpx2.Response(502, headers={"content-type": "text/html"}, text="<html><h1>Bad gateway</h1></html>"),
     ccapi.ServerError, None),
    (httpx2.Response(200, text="not json"), ccapi.UnexpectedResponseError, None),
    (httpx2.Response(200, json={"unexpected": True}), ccapi.UnexpectedResponseError, None),
    (httpx2.Response(200, json={"code": "fail_to_fetch_task", "message": "upstream", "data": None}),
     ccapi.BadRequestError, "fail_to_fetch_task"),
]  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize(("response", "error_type", "code"), ERROR_CASES)
async def test_each_error_answer_maps_to_its_error_type(
    response: httpx2.Response, error_type: type[ccapi.CCAPIError], code: str | None
) -> None:
    async with make_client(Recorder(response)) as client:
        with pytest.raises(error_type) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    if isinstance(caught.value, ccapi.APIStatusError):
        assert caught.value.code == code


QUOTING_ANSWERS: list[tuple[int, dict[str, Any]]] = [
    (401, {"error": {"message": "invalid token {key}", "type": "new_api_error"}}),
    (402, {"error": {"message": "no balance left for {key}", "code": "insufficient_funds"}}),
    (403, {"code": "forbidden", "message": "{bare} is banned", "data": None}),
    (400, {"code": "invalid_request", "message": "{key} may not use this action", "data": None}),
    (429, {"code": "rate_limited", "message": "slow down, {key}"}),
    (500, {"code": "do_request_failed", "message": "upstream failed for Bearer {key}", "data": None}),
    (200, {"code": "invalid_request", "message": "{key} may not use this action", "data": None}),
    (200, {"code": "fail_to_fetch_task", "message": "upstream failed for {bare}", "data": None}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "body"), QUOTING_ANSWERS)
async def test_an_error_answer_that_quotes_the_key_keeps_its_message_with_the_key_masked(
    status: int, body: dict[str, Any]
) -> None:
    text = json.dumps(body).replace("{key}", KEY).replace("{bare}", KEY.removeprefix("sk-"))
    response = httpx2.Response(status, text=text, headers={"content-type": "application/json"})
    async with make_client(Recorder(response)) as client:
        with pytest.raises(ccapi.APIStatusError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert "[redacted]" in caught.value.message
    assert KEY.removeprefix("sk-") not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("sk-abcd and abcd", "sk-abcd", "[redacted] and [redacted]"),  # four characters are masked
        ("sk-zzzz and zzzz", "sk-zzzz", "[redacted] and [redacted]"),  # the whole key first, whatever it spells
        ("sk-abc and abc", "sk-abc", "[redacted] and abc"),  # three are too few to mask without mangling text
        ("no key here", None, "no key here"),
        ("no key here", "", "no key here"),
    ],
)
def test_redact_masks_the_key_with_and_without_its_prefix(text: str, secret: str | None, expected: str) -> None:
    assert ccapi.redact(text, secret) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("status", [300, 302, 307])
async def test_a_redirect_is_never_taken_for_an_answer(status: int) -> None:
    redirect = httpx2.Response(
        status, headers={"location": "https://elsewhere.test/"}, json={"code": "success", "data": "task_x"}
    )
    async with make_client(Recorder(redirect)) as client:
        with pytest.raises(ccapi.CCAPIError):
            await client.submit("MUSIC", {"prompt": "x"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "described"),
    [({"content-type": "text/html; charset=utf-8"}, "an HTML error page"), ({}, "an unreadable body")],
)
async def test_a_server_error_that_is_not_json_says_what_came_back(headers: dict[str, str], described: str) -> None:
    response = httpx2.Response(503, headers=headers, content=b"<html><h1>Service Unavailable</h1></html>")
    async with make_client(Recorder(response)) as client:
        with pytest.raises(ccapi.ServerError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert caught.value.message == f"CCAPI answered HTTP 503 with {described}"


@pytest.mark.anyio
@pytest.mark.parametrize("data", [None, "", 123, ["task_x"]])
async def test_an_accepted_submit_without_a_task_id_is_an_unexpected_response(data: Any) -> None:
    async with make_client(Recorder(ok(data))) as client:
        with pytest.raises(ccapi.UnexpectedResponseError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert (str(caught.value), caught.value.status_code) == ("CCAPI accepted the submit but sent no task id", 200)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx2.Response(200, text="not json"), "CCAPI answered HTTP 200 with a body that is not a JSON object"),
        (httpx2.Response(202, json=["a", "list"]), "CCAPI answered HTTP 202 with a body that is not a JSON object"),
        (httpx2.Response(200, json={"data": "task_x"}), "CCAPI answered without its {code, message, data} envelope"),
    ],
)
async def test_an_answer_that_is_not_an_envelope_says_so(response: httpx2.Response, message: str) -> None:
    async with make_client(Recorder(response)) as client:
        with pytest.raises(ccapi.UnexpectedResponseError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert str(caught.value).startswith(message)  # then what it was, briefly
    if "HTTP" in message:
        assert caught.value.status_code == response.status_code


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "error_type", "message", "may_have_been_sent"),
    [
        (httpx2.ConnectError("refused"), ccapi.APIConnectionError,
         f"could not connect to CCAPI at {BASE} (ConnectError)", False),
        (httpx2.ConnectTimeout("slow"), ccapi.APITimeoutError,
         f"could not connect to CCAPI at {BASE} (ConnectTimeout)", False),
        (httpx2.ReadTimeout("slow"), ccapi.APITimeoutError, "CCAPI did not answer in time (ReadTimeout)", True),
        (httpx2.RemoteProtocolError("dropped"), ccapi.APIConnectionError,
         "the connection to CCAPI broke (RemoteProtocolError)", True),
    ],
)  # fmt: skip
async def test_a_transport_failure_says_what_broke_and_whether_the_request_may_have_been_sent(
    failure: Exception, error_type: type[ccapi.APIConnectionError], message: str, may_have_been_sent: bool
) -> None:
    recorder = Recorder(failure)
    async with make_client(recorder) as client:
        with anyio.fail_after(5), pytest.raises(ccapi.APIConnectionError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert len(recorder.requests) == (1 if may_have_been_sent else ccapi.DEFAULT_MAX_RETRIES + 1)
    assert type(caught.value) is error_type
    assert (str(caught.value), caught.value.request_may_have_been_sent) == (message, may_have_been_sent)


@pytest.mark.anyio
async def test_rate_limit_keeps_retry_after() -> None:
    response = httpx2.Response(429, headers={"retry-after": "7"}, json={"code": "x", "message": "slow"})
    async with make_client(Recorder(response)) as client:
        with pytest.raises(ccapi.RateLimitedError) as caught:
            await client.submit("MUSIC", {})
    assert caught.value.retry_after == 7.0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "error_type"),
    [
        (httpx2.ReadTimeout("slow"), ccapi.APITimeoutError),
        (httpx2.RemoteProtocolError("dropped"), ccapi.APIConnectionError),
        (httpx2.ReadError("reset"), ccapi.APIConnectionError),
    ],
)
async def test_a_submit_is_not_retried_once_the_request_may_have_been_sent(
    failure: Exception, error_type: type[ccapi.APIConnectionError]
) -> None:
    recorder, sleep = Recorder(failure), SleepRecorder()
    async with make_client(recorder, sleep=sleep) as client:
        with pytest.raises(error_type) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert caught.value.request_may_have_been_sent
    assert len(recorder.requests) == 1
    assert sleep.delays == []


@pytest.mark.anyio
async def test_a_submit_whose_connection_never_opened_is_retried() -> None:
    recorder, sleep = (
        Recorder(httpx2.ConnectError("refused"), httpx2.ConnectTimeout("slow"), ok("task_ok")),
        SleepRecorder(),
    )
    async with make_client(recorder, sleep=sleep) as client:
        assert await client.submit("MUSIC", {"prompt": "x"}) == "task_ok"
    assert len(recorder.requests) == 3
    assert sleep.delays == [0.5, 1.0]


@pytest.mark.anyio
async def test_a_submit_is_not_retried_after_a_server_error() -> None:
    recorder = Recorder(httpx2.Response(503, json={"code": "x", "message": "busy"}), ok("task_ok"))
    async with make_client(recorder) as client:
        with pytest.raises(ccapi.ServerError):
            await client.submit("MUSIC", {"prompt": "x"})
    assert len(recorder.requests) == 1


@pytest.mark.anyio
async def test_polls_retry_transient_failures_with_capped_backoff_and_retry_after() -> None:
    recorder = Recorder(
        httpx2.Response(429, headers={"retry-after": "3"}, json={"code": "x", "message": "slow"}),
        httpx2.Response(502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}),
        httpx2.RemoteProtocolError("dropped"),
        httpx2.Response(200, text="{broken"),
        ok(task_record(status="SUCCESS")),
    )
    sleep = SleepRecorder()
    async with make_client(recorder, sleep=sleep) as client:
        task = await client.fetch_task(PARENT)
    assert task.state is ccapi.TaskStatus.SUCCESS
    assert sleep.delays == [3.0, 1.0, 2.0, 4.0]


@pytest.mark.anyio
async def test_a_retry_after_of_a_day_is_capped() -> None:
    recorder = Recorder(
        httpx2.Response(429, headers={"retry-after": "86400"}, json={"code": "x", "message": "slow"}),
        ok(task_record(status="SUCCESS")),
    )
    sleep = SleepRecorder()
    async with make_client(recorder, sleep=sleep) as client:
        task = await client.fetch_task(PARENT)
    assert task.state is ccapi.TaskStatus.SUCCESS
    assert sleep.delays == [MAX_RETRY_AFTER]
    assert MAX_RETRY_AFTER <= 60


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("0.1", [0.5, 1.0]), ("-5", [0.5, 1.0]), ("Wed, 21 Oct 2026 07:28:00 GMT", [0.5, 1.0]), ("1.5", [1.5, 1.5])],
)
async def test_a_retry_after_shorter_than_the_backoff_or_unreadable_leaves_the_backoff(
    retry_after: str, expected: list[float]
) -> None:
    limited = httpx2.Response(429, headers={"retry-after": retry_after}, json={"code": "x", "message": "slow"})
    recorder, sleep = Recorder(limited, limited, ok(task_record())), SleepRecorder()
    async with make_client(recorder, sleep=sleep) as client:
        await client.fetch_task(PARENT)
    assert sleep.delays == expected


@pytest.mark.anyio
async def test_retry_delays_with_the_lowest_jitter_are_half_the_backoff() -> None:
    recorder, sleep = Recorder(httpx2.Response(500, json={"code": "x", "message": "down"})), SleepRecorder()
    async with make_client(recorder, sleep=sleep, jitter=lambda: 0.0) as client:
        with anyio.fail_after(5), pytest.raises(ccapi.ServerError):
            await client.fetch_tasks([PARENT])
    assert sleep.delays == [0.25, 0.5, 1.0, 2.0]


@pytest.mark.anyio
async def test_retry_delays_with_real_jitter_spread_between_half_and_all_of_the_backoff() -> None:
    sleep = SleepRecorder()
    async with make_client(
        Recorder(httpx2.Response(503, json={"code": "x", "message": "busy"})), sleep=sleep, jitter=random.random
    ) as client:
        for _ in range(25):
            with anyio.fail_after(5), pytest.raises(ccapi.ServerError):
                await client.fetch_task(PARENT)
    backoffs = [0.5, 1.0, 2.0, 4.0] * 25
    assert len(sleep.delays) == len(backoffs)
    assert all(backoff / 2 <= delay <= backoff for delay, backoff in zip(sleep.delays, backoffs, strict=True))
    assert len(set(sleep.delays)) > 90  # spread, not one fixed fraction: 100 equal draws do not happen


@pytest.mark.anyio
async def test_polls_give_up_after_the_retry_budget() -> None:
    recorder, sleep = Recorder(httpx2.Response(500, json={"code": "x", "message": "down"})), SleepRecorder()
    async with make_client(recorder, sleep=sleep) as client:
        with anyio.fail_after(5), pytest.raises(ccapi.ServerError):
            await client.fetch_tasks([PARENT])
    assert len(recorder.requests) == ccapi.DEFAULT_MAX_RETRIES + 1
    assert max(sleep.delays) <= ccapi.MAX_RETRY_DELAY


@pytest.mark.anyio
async def test_polls_do_not_retry_what_cannot_change() -> None:
    recorder = Recorder(httpx2.Response(400, json={"code": "task_not_exist", "message": "task_not_exist"}))
    async with make_client(recorder) as client:
        with pytest.raises(ccapi.NotFoundError):
            await client.fetch_task(PARENT)
    assert len(recorder.requests) == 1


@pytest.mark.anyio
async def test_downloads_never_carry_the_api_key() -> None:
    recorder = Recorder(httpx2.Response(200, content=b"RIFF....WAVE", headers={"content-type": "audio/wav"}))
    async with make_client(recorder) as client, client.open_download("https://cdn.test/a.wav") as (kind, chunks):
        data = b"".join([chunk async for chunk in chunks])
    assert (kind, data) == ("audio/wav", b"RIFF....WAVE")
    assert "authorization" not in recorder.requests[0].headers


@pytest.mark.anyio
async def test_an_odd_field_in_a_task_record_is_dropped_not_fatal() -> None:
    record = task_record(status="SUCCESS", submit_time="soon")
    record["data"] = {"clips": [{"clip_id": CLIP, "title": "T", "created_at": 1773385996, "duration": "n/a"}]}
    async with make_client(Recorder(ok(record))) as client:
        task = await client.fetch_task(PARENT)
    assert task.submit_time is None
    assert [(clip.clip_id, clip.title, clip.created_at, clip.duration) for clip in task.clips] == [
        (CLIP, "T", None, None)
    ]


@pytest.mark.anyio
async def test_a_task_record_without_a_usable_id_is_an_unexpected_response() -> None:
    async with make_client(Recorder(ok([{"task_id": 7}]))) as client:
        with pytest.raises(ccapi.UnexpectedResponseError):
            await client.fetch_tasks([PARENT])


@pytest.mark.anyio
async def test_an_answer_that_cannot_be_decoded_is_a_connection_error_that_may_have_been_sent() -> None:
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)  # the body is decoded as it is read, which fails here
        return httpx2.Response(200, headers={"content-encoding": "gzip"}, stream=httpx2.ByteStream(b"not gzip"))

    async with make_client(handler) as client:
        with pytest.raises(ccapi.APIConnectionError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert caught.value.request_may_have_been_sent
    assert len(sent) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_answer_past_the_size_cap_is_refused_unread_and_never_retried(declared: bool) -> None:
    body = b'{"code":"success","data":[],"padding":"' + b"x" * ccapi.MAX_RESPONSE_BYTES + b'"}'
    asked: list[httpx2.Request] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 2**16):
            yield body[start : start + 2**16]

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append(request)
        return httpx2.Response(200, content=body if declared else chunks())

    async with make_client(handler) as client:
        with pytest.raises(ccapi.ResponseTooLargeError, match="more than the 8 MB this server reads"):
            await client.fetch_tasks(["task_a"])
    assert len(asked) == 1


@pytest.mark.anyio
async def test_an_html_page_instead_of_json_is_described_by_its_type_size_and_title() -> None:
    page = "<html><head><title>Captive\n portal</title></head><body>sign in</body></html>"
    answer = httpx2.Response(200, text=page, headers={"content-type": "text/html; charset=utf-8"})
    async with make_client(Recorder(answer)) as client:
        with pytest.raises(ccapi.UnexpectedResponseError) as caught:
            await client.submit("MUSIC", {"prompt": "x"})
    assert str(caught.value).endswith(f"(text/html, {len(page)} bytes, titled 'Captive portal')")
