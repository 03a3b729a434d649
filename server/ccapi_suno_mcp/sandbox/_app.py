"""The sandbox: CCAPI's Suno API (a new-api fork) emulated as a Starlette app, state in memory."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import string
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._actions import ACTIONS, ActionSpec, RequestRejected, validate_submit
from ._clock import Clock, SystemClock
from ._control import SandboxControls
from ._faults import GENERIC_FAULTS, SHAPING_FAULTS, FaultCounter, Faults, SandboxStats
from ._http import HTML_502, HTML_PAGE, DroppedResponse, json_object, openai_error, task_error, task_ids
from ._media import CONTENT_TYPES, MediaItem, media_bytes
from ._results import Body, Job, Studio, TaskFails, previews, primary_link
from ._store import SavedState, StateFile
from ._tasks import QUOTA_PER_USD, STARTED_AFTER, SUBMITTED_AFTER, Account, Clip, Outcome, TaskRecord

__all__ = ["Sandbox"]

logger = logging.getLogger(__name__)

RouteKind = Literal["submit", "fetch_one", "fetch_batch", "account"]
Handler = Callable[[Request, Account], Awaitable[Response]]

_ALPHANUMERIC = string.ascii_letters + string.digits
_MARKER_FIELDS = ("prompt", "gpt_description_prompt", "tags", "description")
_MARKER_FAILURE = "The upstream model rejected this request and produced nothing (sandbox:fail marker)."
_FAULT_FAILURE = "Generation failed upstream: the job was aborted (sandbox fault injection)."


class Sandbox(SandboxControls):
    """An in-memory emulation of CCAPI's Suno API, with switches for the failures a client must survive.

    Args:
        clock: where task lifecycles read the time (default: the system clock; tests use `ManualClock`).
        api_key: the one accepted key; `None` accepts any non-empty key, each key being its own user.
        speed: divides every task duration (`speed=10` finishes ten times sooner).
        base_url: origin of the media links in results; `serve_sandbox` sets it to the bound address. Links are
            built from it whenever a record is served, so they follow the sandbox to whatever port it serves on.
        state_path: a JSON file that keeps the state (accounts, balances, tasks, clips) across restarts: loaded
            here if it exists, rewritten atomically after every change. A file that cannot be read is logged,
            moved aside (to `<name>.corrupt`) and replaced by a fresh state. `None` keeps everything in memory.

    Raises:
        ValueError: if `speed` is not positive or `api_key` is empty.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        api_key: str | None = None,
        speed: float = 1.0,
        base_url: str = "http://127.0.0.1",
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key must be a non-empty string or None")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.faults = Faults()
        self.stats = SandboxStats()
        self.base_url = base_url
        self.speed = speed
        self._api_key = api_key
        self._accounts: dict[str, Account] = {}
        """By `key_sha256`."""
        self._tasks: dict[str, TaskRecord] = {}
        self._clips: dict[str, Clip] = {}
        self._media: dict[str, MediaItem] = {}
        self._next_row_id = 1
        self._random = random.Random()
        self._release = anyio.Event()
        self.held = 0
        """Submits whose answer is being held back right now (`Faults.held_submits`)."""
        self._store = StateFile(state_path) if state_path is not None else None
        if self._store is not None:
            if (saved := self._store.load()) is None:
                self._save()  # start the file now: a fresh one, or in place of one that could not be read
            else:
                self._accounts, self._tasks, self._clips = saved.accounts, saved.tasks, saved.clips
                self._media, self._next_row_id = saved.media, saved.next_row_id
        self.app = Starlette(routes=self._routes())

    @property
    def state_path(self) -> Path | None:
        """Where the state is saved, if anywhere."""
        return self._store.path if self._store is not None else None

    def task(self, task_id: str) -> dict[str, Any]:
        """The task record (TaskDto) as the API would return it now.

        Raises:
            KeyError: if no task has this id.
        """
        return self._tasks[task_id].render(self.clock.now(), self.base_url)

    def _routes(self) -> list[Route]:
        return [
            Route("/suno/submit/{action}", self._api("submit", self._submit), methods=["POST"]),
            Route("/suno/fetch/{task_id}", self._api("fetch_one", self._fetch_one), methods=["GET"]),
            Route("/suno/fetch", self._api("fetch_batch", self._fetch_batch), methods=["POST"]),
            Route("/v1/dashboard/billing/subscription", self._api("account", self._subscription), methods=["GET"]),
            Route("/v1/dashboard/billing/usage", self._api("account", self._usage), methods=["GET"]),
            Route("/api/usage/token/", self._api("account", self._token_usage), methods=["GET"]),
            Route("/v1/models", self._api("account", self._models), methods=["GET"]),
            Route("/media/{name}", self._media_file, methods=["GET"]),
            Route("/stream/{clip_id}", self._stream, methods=["GET"]),
            Route("/_sandbox/stats", self._control_stats, methods=["GET"]),
            Route("/_sandbox/held", self._control_held, methods=["GET"]),
            Route("/_sandbox/faults", self._control_faults, methods=["GET", "POST"]),
            Route("/_sandbox/clock/advance", self._control_advance, methods=["POST"]),
            Route("/_sandbox/reset-stats", self._control_reset, methods=["POST"]),
            Route("/_sandbox/release", self._control_release, methods=["POST"]),
        ]

    # --- the API pipeline: count, inject faults, authenticate, handle ---

    def _api(self, kind: RouteKind, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        family = {"submit": "submit", "fetch_one": "fetch", "fetch_batch": "fetch"}.get(kind)

        async def endpoint(request: Request) -> Response:
            self.stats.requests += 1
            match kind:
                case "submit":
                    self.stats.submits += 1
                case "fetch_one":
                    self.stats.fetch_one += 1
                case "fetch_batch":
                    self.stats.fetch_batch += 1
                case "account":
                    pass
            if self.faults.scope in ("all", family):
                if self.faults.latency_seconds > 0:
                    await anyio.sleep(self.faults.latency_seconds)
                if (fault := self._generic_fault(openai_style=kind == "account")) is not None:
                    return fault
            self._catch_up()
            account = self._authenticate(request)
            if isinstance(account, Response):
                return account
            response = await handler(request, account)
            return self._shaped(response) if self.faults.scope in ("all", family) else response

        return endpoint

    def _take(self, fault: FaultCounter) -> bool:
        """Consume one unit of a fault counter, if any is left."""
        left = cast(int, getattr(self.faults, fault))
        if left <= 0:
            return False
        setattr(self.faults, fault, left - 1)
        self.stats.faults_injected += 1
        logger.info("sandbox: injecting fault %r (%d left)", fault, left - 1)
        return True

    def _generic_fault(self, *, openai_style: bool) -> Response | None:
        fault = next((name for name in GENERIC_FAULTS if self._take(name)), None)
        match fault:
            case None:
                return None
            case "dropped":
                return DroppedResponse()
            case "rate_limited":
                headers = {"Retry-After": str(self.faults.retry_after_seconds)}
                message = "upstream load saturated, retry later"
                if openai_style:
                    return openai_error(429, message, "rate_limit_exceeded", headers)
                return task_error(429, "rate_limit_exceeded", message, headers)
            case "server_errors":
                if openai_style:
                    return openai_error(500, "请求上游地址失败", "do_request_failed")
                return task_error(500, "do_request_failed", "请求上游地址失败")  # new-api: "upstream request failed"
            case "html_errors":
                return HTMLResponse(HTML_502, status_code=502)
            case "html_pages":
                return HTMLResponse(HTML_PAGE, status_code=200)
            case _:  # malformed: a truncated body under a JSON content type
                return Response(b'{"code":"success","message":"","data":{"id":', media_type="application/json")

    def _shaped(self, response: Response) -> Response:
        """The real answer, sent as the shaping faults say (at most one of them)."""
        fault = next((name for name in SHAPING_FAULTS if self._take(name)), None)
        body = bytes(response.body)
        if fault == "oversized":
            fields = json.loads(body)
            fields["padding"] = "x" * self.faults.oversized_bytes
            return JSONResponse(fields, status_code=response.status_code)
        if fault == "drip":
            seconds = self.faults.drip_seconds

            async def one_byte_at_a_time() -> AsyncIterator[bytes]:
                for index in range(len(body)):
                    yield body[index : index + 1]
                    await anyio.sleep(seconds)

            return StreamingResponse(
                one_byte_at_a_time(), status_code=response.status_code, media_type=response.media_type
            )
        return response

    def _authenticate(self, request: Request) -> Account | Response:
        if self.faults.key_revoked:
            self.stats.faults_injected += 1
            return self._unauthorized("invalid token")
        key = request.headers.get("authorization", "").strip()
        if key[:7].lower() in ("bearer ", "bearer"):
            key = key[7:].strip()
        if not key:
            return self._unauthorized("no token provided")
        if self._api_key is not None and key != self._api_key:
            return self._unauthorized("invalid token")
        digest = hashlib.sha256(key.encode()).hexdigest()
        account = self._accounts.get(digest)
        if account is None:
            account = self._accounts[digest] = Account(digest, user_id=len(self._accounts) + 1)
            self._save()
        return account

    def _unauthorized(self, reason: str) -> Response:
        stamp = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y%m%d%H%M%S")
        request_id = stamp + "".join(self._random.choices(_ALPHANUMERIC, k=8))
        return openai_error(401, f"{reason} (request id: {request_id})")

    # --- /suno ---

    async def _submit(self, request: Request, account: Account) -> Response:
        spec = ACTIONS.get(request.path_params["action"].upper())
        if spec is None:
            return task_error(400, "invalid_action", "invalid_action")
        try:
            body = await json_object(request)
            sources = validate_submit(
                spec,
                body,
                owned_task=lambda task_id: self._owned_task(account, task_id),
                owned_clip=lambda clip_id: self._owned_clip(account, clip_id),
                clip_ready=self._clip_ready,
            )
            self._charge(account, spec.quota)
        except RequestRejected as rejected:
            return task_error(rejected.status, rejected.code, rejected.message)
        task = self._create_task(spec, body, sources, account)
        if self._take("lost_submit_responses"):
            return DroppedResponse()
        if self._take("held_submits"):
            self.held += 1
            try:
                await self._release.wait()
            finally:
                self.held -= 1
        return JSONResponse({"code": "success", "message": spec.accept_message, "data": task.task_id})

    async def _fetch_one(self, request: Request, account: Account) -> Response:
        task = self._owned_task(account, request.path_params["task_id"])
        if task is None:
            return task_error(400, "task_not_exist", "task_not_exist")
        return JSONResponse({"code": "success", "message": "", "data": task.render(self.clock.now(), self.base_url)})

    async def _fetch_batch(self, request: Request, account: Account) -> Response:
        try:
            ids = task_ids(await json_object(request))
        except RequestRejected as rejected:
            return task_error(rejected.status, rejected.code, rejected.message)
        now, origin = self.clock.now(), self.base_url
        tasks = (self._owned_task(account, task_id) for task_id in dict.fromkeys(ids))
        data = [task.render(now, origin) for task in tasks if task]
        return JSONResponse({"code": "success", "message": "", "data": data})

    def _owned_task(self, account: Account, task_id: str) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.owner is account else None

    def _owned_clip(self, account: Account, clip_id: str) -> Clip | None:
        clip = self._clips.get(clip_id)
        return clip if clip is not None and clip.owner == account.key_sha256 else None

    def _clip_ready(self, clip: Clip) -> bool:
        return self._tasks[clip.task_id].status(self.clock.now()) == "SUCCESS"

    def _charge(self, account: Account, quota: int) -> None:
        """new-api pre-charges before creating the task (and refunds it if the task fails).

        Raises:
            RequestRejected: 403 `quota_not_enough` ("user quota is not enough", new-api's task relay's own answer)
                when the balance is too low (or the fault is set).
        """
        remaining = account.granted_quota - self._used_quota(account)
        if self._take("insufficient_balance") or remaining < quota:
            raise RequestRejected("quota_not_enough", "user quota is not enough", status=403)

    def _used_quota(self, account: Account) -> int:
        """Quota of the key's tasks; failed tasks are refunded, as new-api does."""
        now = self.clock.now()
        return sum(
            task.quota for task in self._tasks.values() if task.owner is account and task.status(now) != "FAILURE"
        )

    def _create_task(self, spec: ActionSpec, body: Body, sources: list[Clip], account: Account) -> TaskRecord:
        now, scale = self.clock.now(), 1 / self.speed
        task_id = "task_" + "".join(self._random.choices(_ALPHANUMERIC, k=32))
        studio = Studio(task_id=task_id, owner=account.key_sha256, created_at=now)
        outcome, fail_reason = self._outcome(body)
        result: dict[str, Any] = {}
        try:
            result = spec.build(Job(body, sources, studio, self._clips.get))
        except TaskFails as failure:
            outcome, fail_reason = "failure", failure.reason
            studio.produced.clear()
            studio.media.clear()
        task = TaskRecord(
            row_id=self._next_row_id,
            task_id=task_id,
            upstream_id=str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
            owner=account,
            action=spec.token,
            quota=spec.quota,
            submitted_at=now,
            accepted_at=now + SUBMITTED_AFTER * scale,
            started_at=now + STARTED_AFTER * scale,
            finishes_at=now + spec.run_seconds * scale,
            outcome=outcome,
            fail_reason=fail_reason,
            result=result,
            result_url=primary_link(result),
            streaming_clips=previews(result) if spec.streams else [],
        )
        self._next_row_id += 1
        self._tasks[task_id] = task
        self._clips.update((clip.clip_id, clip) for clip in studio.produced)
        self._media.update(studio.media)
        if self._store is not None:
            self._store.add_task(task, studio.produced, studio.media)
            self._save()
        self.stats.accepted_submits += 1
        self.stats.by_action[spec.token] = self.stats.by_action.get(spec.token, 0) + 1
        return task

    def _save(self) -> None:
        """Write the state file, if there is one. A failure is logged: the sandbox keeps serving from memory."""
        if self._store is None:
            return
        try:
            news = self._store.save(next_row_id=self._next_row_id, accounts=self._accounts)
        except OSError as error:
            logger.error("sandbox: could not save the state to %s: %s", self._store.path, error)
        else:
            self._adopt(news)

    def _catch_up(self) -> None:
        """Take in what other sandboxes on the state file wrote since this one last looked (a stat of the file
        when nothing was written), so that every request sees every sandbox's tasks."""
        if self._store is not None:
            self._adopt(self._store.news(self._accounts))

    def _adopt(self, news: SavedState) -> None:
        self._accounts.update(news.accounts)
        self._tasks.update(news.tasks)
        self._clips.update(news.clips)
        self._media.update(news.media)
        self._next_row_id = max(self._next_row_id, news.next_row_id)

    def _outcome(self, body: Body) -> tuple[Outcome, str]:
        """How a new task ends: the submit-time fault counters and the text markers decide."""
        stuck, failing = self._take("stuck"), self._take("failing")
        text = " ".join(value for name in _MARKER_FIELDS if isinstance(value := body.get(name), str))
        if stuck or "sandbox:stuck" in text:
            return "stuck", ""
        if "sandbox:fail" in text:
            return "failure", _MARKER_FAILURE
        if failing:
            return "failure", _FAULT_FAILURE
        return "success", ""

    # --- billing and models (new-api's OpenAI-compatible routes) ---

    async def _subscription(self, request: Request, account: Account) -> Response:
        total = account.granted_quota / QUOTA_PER_USD
        return JSONResponse(
            {
                "object": "billing_subscription",
                "has_payment_method": True,
                "soft_limit_usd": total,
                "hard_limit_usd": total,
                "system_hard_limit_usd": total,
                "access_until": 0,
            }
        )

    async def _usage(self, request: Request, account: Account) -> Response:
        return JSONResponse({"object": "list", "total_usage": self._used_quota(account) / QUOTA_PER_USD * 100})

    async def _token_usage(self, request: Request, account: Account) -> Response:
        used = self._used_quota(account)
        usage: dict[str, object] = {
            "object": "token_usage",
            "name": "sandbox",
            "total_granted": account.granted_quota,
            "total_used": used,
            "total_available": account.granted_quota - used,
            "unlimited_quota": False,
            "model_limits": {},
            "model_limits_enabled": False,
            "expires_at": 0,
        }
        return JSONResponse({"code": True, "message": "ok", "data": usage})

    async def _models(self, request: Request, account: Account) -> Response:
        models = [
            {"id": f"suno_{token.lower()}", "object": "model", "created": 1626777600, "owned_by": "custom"}
            for token in ACTIONS
        ]
        return JSONResponse({"success": True, "object": "list", "data": models})

    # --- media (no auth, like a CDN) ---

    async def _media_file(self, request: Request) -> Response:
        self._catch_up()
        item = self._media.get(request.path_params["name"])
        if item is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(media_bytes(item), media_type=CONTENT_TYPES[item.kind])

    async def _stream(self, request: Request) -> Response:
        clip_id: str = request.path_params["clip_id"]
        self._catch_up()
        if clip_id not in self._clips:
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(media_bytes(MediaItem("audio", clip_id)), media_type=CONTENT_TYPES["audio"])
