"""An in-process channel to the JobService: for a bridge that shares the service's process.

It offers what a grpc.aio channel offers to generated stubs (`unary_unary`, `unary_stream`), so
`JobServiceStub(InProcessChannel(...))` works as it does over a socket: the same request and
reply messages, the same interceptors, the same status codes and rich error details (raised as
grpc.aio.AioRpcError), the same deadlines. What it skips is serialisation and the network hop,
which costs about 0.8 ms of CPU per call over real gRPC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import grpc

from fabric_jobs.server.edge.interceptors import wrap_handler

Metadata = Sequence[tuple[str, str]]
Registration = Callable[[Any, Any], None]


class _Context:
    """The part of grpc.aio.ServicerContext the service and its interceptor use."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self._metadata = tuple(metadata)
        self._deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        self._code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing_metadata: Metadata = ()

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()) -> None:
        self._code = code
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata)
        raise grpc.aio.AbortError()

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def error(self) -> grpc.aio.AioRpcError:
        return _rpc_error(self._code or grpc.StatusCode.UNKNOWN, self.details, self.trailing_metadata)

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        """Nothing to send in process: a stream's caller reads its first message directly."""

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - asyncio.get_running_loop().time())


def _rpc_error(code: grpc.StatusCode, details: str, trailing: Metadata = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details, None)


class _UnaryUnary:
    def __init__(self, channel: InProcessChannel, method: str) -> None:
        self._channel = channel
        self._method = method

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Metadata | None = None, **_: Any
    ) -> Awaitable[Any]:
        return self._channel.call(self._method, request, timeout, metadata or ())


class _UnaryStream:
    def __init__(self, channel: InProcessChannel, method: str) -> None:
        self._channel = channel
        self._method = method

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Metadata | None = None, **_: Any
    ) -> AsyncIterator[Any]:
        return self._channel.stream(self._method, request, timeout, metadata or ())


class _Collector:
    """Stands in for a grpc server to collect the method handlers a generated add_*_to_server registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Generic handlers duplicate the registered ones below."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


class InProcessChannel:
    def __init__(self, registrations: Sequence[tuple[Registration, Any]]) -> None:
        collector = _Collector()
        for register, servicer in registrations:
            register(servicer, collector)
        self._handlers = {method: wrap_handler(method, handler) for method, handler in collector.handlers.items()}

    def as_channel(self) -> grpc.aio.Channel:
        """This channel, typed as what generated stubs take."""
        return cast(grpc.aio.Channel, self)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _UnaryUnary:
        return _UnaryUnary(self, method)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _UnaryStream:
        return _UnaryStream(self, method)

    def _handler(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        handler = self._handlers.get(method)
        if handler is None:
            raise _rpc_error(grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {method}")
        return handler

    async def call(self, method: str, request: Any, deadline: float | None, metadata: Metadata) -> Any:
        behavior = cast(Callable[[Any, _Context], Awaitable[Any]], self._handler(method).unary_unary)
        context = _Context(metadata, deadline)
        try:
            async with asyncio.timeout(deadline):
                return await behavior(request, context)
        except grpc.aio.AbortError:
            raise context.error() from None
        except TimeoutError:
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    async def stream(self, method: str, request: Any, deadline: float | None, metadata: Metadata) -> AsyncIterator[Any]:
        behavior = cast(Callable[[Any, _Context], AsyncIterator[Any]], self._handler(method).unary_stream)
        context = _Context(metadata, deadline)
        try:
            async with asyncio.timeout(deadline):
                async for response in behavior(request, context):
                    yield response
        except grpc.aio.AbortError:
            raise context.error() from None
        except TimeoutError:
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    async def close(self) -> None:
        """Nothing to release; present so the channel can be closed like a grpc.aio one."""
