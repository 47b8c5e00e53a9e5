"""A blocking gRPC channel over the JobService's in-process channel, for plain (sync) tests.

`JobServiceStub(BlockingChannel(...).as_channel())` is typed and behaves as a stub over a real
`grpc.Channel`: a call returns the reply or raises grpc.RpcError (a grpc.aio.AioRpcError, with code,
details and trailing metadata), a server stream is an iterator. The calls run on the service's loop.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

import grpc

from fabric_jobs.client._loop import LoopThread
from fabric_jobs.server.edge.inprocess import InProcessChannel

DEFAULT_TIMEOUT = 30.0
"""The deadline of a call that names none, so a test never waits forever."""

Metadata = Sequence[tuple[str, str]]


class _UnaryUnary:
    def __init__(self, channel: BlockingChannel, method: str) -> None:
        self._channel = channel
        self._method = method

    def __call__(self, request: Any, timeout: float | None = None, metadata: Metadata | None = None, **_: Any) -> Any:
        deadline = DEFAULT_TIMEOUT if timeout is None else timeout
        call = self._channel.target.call(self._method, request, deadline, metadata or ())
        return self._channel.loop.run(call, deadline + 5.0)


class _Stream(Iterator[Any]):
    """The replies of a server stream, consumed by one task on the loop (as a grpc.aio server runs a stream)."""

    def __init__(self, loop: LoopThread, replies: AsyncIterator[Any], timeout: float) -> None:
        self._replies: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._timeout = timeout
        self._task = asyncio.run_coroutine_threadsafe(self._pump(replies), loop.loop)

    async def _pump(self, replies: AsyncIterator[Any]) -> None:
        try:
            async for reply in replies:
                self._replies.put((True, reply))
        except Exception as exc:
            self._replies.put((False, exc))
        else:
            self._replies.put((False, None))

    def __next__(self) -> Any:
        try:
            more, value = self._replies.get(timeout=self._timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply from the stream within {self._timeout:g}s") from None
        if more:
            return value
        self._replies.put((more, value))
        if value is None:
            raise StopIteration
        raise value

    def cancel(self) -> None:
        self._task.cancel()
        self._replies.put((False, None))


class _UnaryStream:
    def __init__(self, channel: BlockingChannel, method: str) -> None:
        self._channel = channel
        self._method = method

    def __call__(
        self, request: Any, timeout: float | None = None, metadata: Metadata | None = None, **_: Any
    ) -> _Stream:
        deadline = DEFAULT_TIMEOUT if timeout is None else timeout
        replies = self._channel.target.stream(self._method, request, deadline, metadata or ())
        return _Stream(self._channel.loop, replies, deadline + 5.0)


class BlockingChannel:
    def __init__(self, loop: LoopThread, target: InProcessChannel) -> None:
        self.loop = loop
        self.target = target

    def as_channel(self) -> grpc.Channel:
        """This channel, typed as what generated (sync) stubs take."""
        return cast(grpc.Channel, self)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _UnaryUnary:
        return _UnaryUnary(self, method)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _UnaryStream:
        return _UnaryStream(self, method)

    def close(self) -> None:
        """Nothing to release; present so the channel can be closed like a grpc one."""
