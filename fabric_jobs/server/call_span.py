"""The OpenTelemetry span of a JobService call, child of the caller's span when its gRPC metadata carries a W3C
traceparent. One implementation for calls over the network and over the in-process channel, which never meets a
grpc.aio server interceptor."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
from opentelemetry.trace import Span, Status, StatusCode

from fabric_jobs import request_context
from fabric_jobs.observability import tracing


def job_of(request: Any) -> tuple[str, str]:
    """The tenant and job (workspace/itemType/itemId/jobType/jobInstanceId) a request names; "" for none."""
    key = getattr(request, "key", None)
    if key is None or not key.job_instance_id:
        return "", ""
    return key.tenant_id, f"{key.workspace_id}/{key.item_type}/{key.item_id}/{key.job_type}/{key.job_instance_id}"


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def call_span(
    method: str, context: grpc.aio.ServicerContext[Any, Any], request: Any
) -> contextlib.AbstractContextManager[Span | None]:
    """A SERVER span around the call, or nothing (at no cost) while tracing is off."""
    return _span(method, context, request) if tracing.enabled() else _NO_SPAN


@contextlib.contextmanager
def _span(method: str, context: grpc.aio.ServicerContext[Any, Any], request: Any) -> Iterator[Span | None]:
    service, _, name = method.lstrip("/").partition("/")
    tenant, job = job_of(request)
    ids = request_context.ids()
    attributes = {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": name,
        "fabric.activity_id": ids["activity_id"] or "",
        "fabric.request_id": ids["request_id"] or "",
        "fabric.tenant_id": tenant,
        "fabric.job": job,
    }
    parent = tracing.extract_metadata(context.invocation_metadata() or ())
    with tracing.tracer().start_as_current_span(
        method.lstrip("/"), context=parent, kind=tracing.SERVER, attributes=attributes, record_exception=False
    ) as span:
        yield span


def end_span(span: Span | None, code: grpc.StatusCode) -> None:
    if span is None:
        return
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
