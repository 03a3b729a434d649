"""How the sandbox speaks HTTP as new-api does: its two error bodies, the broken answers faults inject, JSON bodies.

new-api answers the /suno routes with a task error body and its middleware and the /v1 and /api routes with an
OpenAI-style one; a dropped answer and nginx's 502 page are what a failing upstream looks like; request bodies
must be JSON objects.
"""

from __future__ import annotations

import json
from typing import cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ._actions import RequestRejected
from ._results import Body

__all__ = ["HTML_502", "HTML_PAGE", "DroppedResponse", "json_object", "openai_error", "task_error", "task_ids"]

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
HTML_PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Scheduled maintenance</title></head>\n'
    "<body><h1>We'll be back soon</h1><p>The service is undergoing maintenance.</p></body></html>\n"
)


class DroppedResponse(Response):
    """Starts a response and never finishes it.

    Over a real server (uvicorn) the app returning mid-body makes the server close the connection, so the
    client sees a transport error (httpx2.RemoteProtocolError), not a response.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1024")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"code":"success","data":', "more_body": True})


def task_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """new-api's task error body, used on the /suno routes."""
    return JSONResponse({"code": code, "message": message, "data": None}, status_code=status, headers=headers)


def openai_error(status: int, message: str, code: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    """new-api's OpenAI-style error body, used by its middleware and on the /v1 and /api routes."""
    body = {"error": {"message": message, "type": "new_api_error", "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def json_object(request: Request) -> Body:
    """The request body as a JSON object.

    Raises:
        RequestRejected: `invalid_request` when the body is not a JSON object.
    """
    try:
        parsed: object = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestRejected("invalid_request", f"invalid JSON body: {error}") from error
    if not isinstance(parsed, dict):
        raise RequestRejected("invalid_request", "the request body must be a JSON object")
    return cast(Body, parsed)


def task_ids(body: Body) -> list[str]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in cast(list[object], ids)):
        raise RequestRejected("invalid_request", "ids: must be a list of task ids")
    return cast(list[str], ids)
