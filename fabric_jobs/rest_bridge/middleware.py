"""Plain ASGI middleware: the request's ids around everything, one log line and the metrics of each request,
and a last line of defence against crashes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fabric_jobs import keys, request_context
from fabric_jobs.observability import metrics, tracing
from fabric_jobs.rest_bridge.errors import error_response, internal_error
from fabric_jobs.rest_bridge.validation import TENANT_HEADER

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"


def _job(scope: Scope) -> str:
    """The job's path (workspace/itemType/itemId/jobType/jobInstanceId) if every part of it is valid, else "-"."""
    params = scope.get("path_params") or {}
    values = [params.get(part.json_name) for part in keys.PATH_PARTS]
    if all(
        isinstance(value, str) and part.rule.holds(value) for value, part in zip(values, keys.PATH_PARTS, strict=True)
    ):
        return "/".join(str(value) for value in values)
    return "-"


def _tenant(headers: Headers) -> str:
    """The caller's tenant if the header holds a valid one, else ""."""
    tenant = headers.get(TENANT_HEADER, "").strip()
    return tenant if keys.TENANT.rule.holds(tenant) else ""


class RequestMiddleware:
    """Around every request: binds ActivityId and RequestId for logging and gRPC metadata (a new UUID for one the
    request lacks), echoes both,
    logs one line (method, route, status, duration, tenant, job) and counts it, and turns any exception that
    escapes the app into a 500 InternalError ErrorResponse (its traceback logged, never sent)."""

    def __init__(self, app: ASGIApp, route_names: Mapping[Any, str]) -> None:
        self.app = app
        self._route_names = route_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        activity_id = headers.get("activityid", "").strip() or str(uuid.uuid4())
        request_id = headers.get("requestid", "").strip() or str(uuid.uuid4())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                echoed = MutableHeaders(scope=message)
                echoed["RequestId"] = request_id
                echoed["ActivityId"] = activity_id
                if tracing.enabled():
                    self._describe_span(scope, headers, activity_id, request_id)
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
                self._done(scope, headers, status, time.perf_counter() - started)

    def _describe_span(self, scope: Scope, headers: Headers, activity_id: str, request_id: str) -> None:
        """Name the request's span (the ASGI instrumentation's, ended with the response) by its route, and give it
        Fabric's ids and the job."""
        route = self._route_names.get(scope.get("endpoint"), UNMATCHED_ROUTE)
        job = _job(scope)
        span = trace.get_current_span()
        span.update_name(f"{scope['method']} {route}")
        span.set_attributes(
            {
                "http.route": route,
                "fabric.activity_id": activity_id,
                "fabric.request_id": request_id,
                "fabric.tenant_id": _tenant(headers),
                "fabric.job": "" if job == "-" else job,
            }
        )

    def _done(self, scope: Scope, headers: Headers, status: int, seconds: float) -> None:
        route = self._route_names.get(scope.get("endpoint"), UNMATCHED_ROUTE)
        code = str(status) if status else "aborted"
        metrics.http.record(route, code, seconds)
        if not logger.isEnabledFor(logging.INFO):
            return
        job = _job(scope)
        duration_ms = round(seconds * 1000, 1)
        logger.info(
            "%s %s %s %.1fms",
            scope["method"],
            route,
            code,
            duration_ms,
            extra={
                "method": scope["method"],
                "route": route,
                "status": status or None,
                "duration_ms": duration_ms,
                request_context.TENANT_EXTRA: _tenant(headers) or "-",
                request_context.JOB_EXTRA: job,
            },
        )
