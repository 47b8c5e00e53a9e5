"""Plain ASGI middleware: the request's ids around everything, and a last line of defence against crashes."""

from __future__ import annotations

import logging

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric_jobs import request_context
from fabric_jobs.rest_bridge.errors import error_response, internal_error

logger = logging.getLogger(__name__)


class RequestMiddleware:
    """Around every request: binds ActivityId and RequestId for logging and gRPC metadata, echoes RequestId,
    logs one access line, and turns any exception that escapes the app into a 500 InternalError ErrorResponse
    (its traceback logged, never sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        activity_id = headers.get("activityid", "").strip() or None
        request_id = headers.get("requestid", "").strip() or None
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id is not None:
                    MutableHeaders(scope=message)["RequestId"] = request_id
            await send(message)

        with request_context.bound(activity_id, request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except ClientDisconnect:
                logger.info("the client disconnected before it had sent its request; nothing to answer")
            except Exception:
                logger.exception("unexpected error while handling %s %s", scope["method"], scope["path"])
                if not status:
                    await error_response(internal_error())(scope, receive, send_with_id)
            finally:
                logger.info("%s %s -> %s", scope["method"], scope["path"], status or "aborted")
