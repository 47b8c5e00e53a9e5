"""The one server interceptor: binds ActivityId/RequestId and the job, logs and counts each call, traces it (see
call_span), maps errors to statuses."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc

from fabric_jobs import request_context
from fabric_jobs.errors import INTERNAL_ERROR, FabricError, service_unavailable
from fabric_jobs.observability import metrics
from fabric_jobs.server.edge.call_span import call_span, end_span
from fabric_jobs.server.edge.decoding import Undecodable, lenient
from fabric_jobs.server.edge.status_codes import to_grpc_status
from fabric_jobs.server.store import StoreError

logger = logging.getLogger(__name__)

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


def _as_fabric_error(exc: Exception) -> FabricError:
    if isinstance(exc, FabricError):
        return exc
    if isinstance(exc, StoreError):
        logger.error("store failure: %s", exc, exc_info=exc)
        return FabricError(service_unavailable("The job store is unavailable; retry later."))
    logger.error("unexpected error", exc_info=exc)
    return FabricError(INTERNAL_ERROR)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    status = to_grpc_status(_as_fabric_error(exc))
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class _CallLog:
    __slots__ = ("level", "method", "started")

    def __init__(self, method: str) -> None:
        self.method = method
        self.level = logging.DEBUG if method.startswith("/grpc.") else logging.INFO
        self.started = time.perf_counter()

    def done(self, context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
        code = context.code() or grpc.StatusCode.OK
        if not isinstance(code, grpc.StatusCode):
            code = (
                _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
                if isinstance(code, int)
                else grpc.StatusCode.UNKNOWN
            )
        seconds = time.perf_counter() - self.started
        metrics.grpc.record(self.method, code.name, seconds)
        if logger.isEnabledFor(self.level):
            elapsed_ms = round(seconds * 1000, 1)
            extra = {"grpc_method": self.method, "grpc_code": code.name, "duration_ms": elapsed_ms}
            logger.log(self.level, "%s %s %.1fms", self.method, code.name, elapsed_ms, extra=extra)
        return code


def _ids(context: grpc.aio.ServicerContext[Any, Any]) -> tuple[str | None, str | None]:
    activity = request = None
    for key, value in context.invocation_metadata() or ():
        if key == request_context.ACTIVITY_ID_METADATA and isinstance(value, str):
            activity = request_context.from_metadata(value)
        elif key == request_context.REQUEST_ID_METADATA and isinstance(value, str):
            request = request_context.from_metadata(value)
    return activity, request


def _wrap_unary(behavior: UnaryBehavior, method: str) -> UnaryBehavior:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        with (
            request_context.bound(*_ids(context)),
            request_context.job_bound(getattr(request, "key", None)),
            call_span(method, context, request) as span,
        ):
            call = _CallLog(method)
            try:
                if isinstance(request, Undecodable):
                    raise request.error()
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc)
            finally:
                end_span(span, call.done(context))

    return wrapped


def _wrap_stream(behavior: StreamBehavior, method: str) -> StreamBehavior:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        with (
            request_context.bound(*_ids(context)),
            request_context.job_bound(getattr(request, "key", None)),
            call_span(method, context, request) as span,
        ):
            call = _CallLog(method)
            try:
                if isinstance(request, Undecodable):
                    raise request.error()
                async for response in behavior(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc)
            finally:
                end_span(span, call.done(context))

    return wrapped


def wrap_handler(method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler with ids bound, the call logged, errors mapped and an undecodable request answered
    INVALID_ARGUMENT; the same for every call of `method`, of every service the server registers."""
    deserializer = lenient(handler.request_deserializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary(cast(UnaryBehavior, handler.unary_unary), method),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        behavior = cast(StreamBehavior, handler.unary_stream)
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream(behavior, method) if inspect.isasyncgenfunction(behavior) else _wrap_unary(behavior, method),  # type: ignore[arg-type]
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class RequestInterceptor(_ServerInterceptor):
    """Wraps each method's handler once (see wrap_handler) and reuses it for every call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, wrap_handler(method, handler))
            self._wrapped[method] = cached
        return cached[1]
