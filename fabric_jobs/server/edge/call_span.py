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

_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def call_span(
    method: str, context: grpc.aio.ServicerContext[Any, Any], request: Any
) -> contextlib.AbstractContextManager[Span | None]:
    """A SERVER span around the call, or nothing (at no cost) while tracing is off."""
    return _span(method, context, request) if tracing.enabled() else _NO_SPAN


@contextlib.contextmanager
def _span(method: str, context: grpc.aio.ServicerContext[Any, Any], request: Any) -> Iterator[Span | None]:
    service, _, name = method.lstrip("/").partition("/")
    key = request_context.job_key.get()
    ids = request_context.ids()
    attributes = {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": name,
        "fabric.activity_id": ids["activity_id"] or "",
        "fabric.request_id": ids["request_id"] or "",
        "fabric.tenant_id": "" if key is None else key.tenant_id,
        "fabric.job": "" if key is None else request_context.job_path(key),
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
