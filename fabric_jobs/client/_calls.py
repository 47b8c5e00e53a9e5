"""How every call of the client is made: its metadata (ActivityId, RequestId, trace context), its deadline, its
retries, and its failure turned into one of fabric_jobs.client.errors."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypedDict, TypeVar, Unpack

import grpc
from opentelemetry import trace

from fabric_jobs import request_context
from fabric_jobs.client.errors import JobsError, from_rpc_error
from fabric_jobs.client.retries import RetryBudget, RetryPolicy
from fabric_jobs.observability import tracing

Reply = TypeVar("Reply")


class CallOptions(TypedDict, total=False):
    """What every call takes. `timeout`: seconds for the call, all its attempts included (default: the client's;
    a stream has none unless given). `activity_id` and `request_id`: sent to the service for its log lines
    (default: those of the request being handled, else fresh UUIDs)."""

    timeout: float | None
    activity_id: str | None
    request_id: str | None


Metadata = tuple[tuple[str, str], ...]


_ID_SOURCE = random.Random()
"""Fresh ActivityIds and RequestIds: correlation ids, not secrets, so not the system's random source that
uuid.uuid4 reads on every call."""


def new_id() -> str:
    """A random (version 4) UUID."""
    bits = _ID_SOURCE.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def call_metadata(activity_id: str | None, request_id: str | None) -> Metadata:
    """ActivityId and RequestId as given, else those of the request being handled (the ids bound by the bridge, the
    server or a handler), else fresh UUIDs; and the current trace context, when a span is current."""
    current = request_context.ids()
    ids = (
        (request_context.ACTIVITY_ID_METADATA, _encoded(activity_id or current["activity_id"] or new_id())),
        (request_context.REQUEST_ID_METADATA, _encoded(request_id or current["request_id"] or new_id())),
    )
    if trace.get_current_span().get_span_context().is_valid:
        return tracing.inject_metadata(ids)
    return ids


def _encoded(value: str) -> str:
    plain = value.isascii() and value.isprintable() and "%" not in value
    return value if plain else request_context.to_metadata(value)


def retriable(error: JobsError) -> bool:
    return bool(getattr(error, "retriable", False))


class Calls:
    """Makes calls with a default deadline, retrying those that are safe to retry under a policy and a budget."""

    def __init__(
        self, timeout: float, retry: RetryPolicy, budget: RetryBudget, rng: random.Random | None = None
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.retry = retry
        self.budget = budget
        self.rng = rng or random.Random()

    async def unary(
        self,
        method: Callable[..., Awaitable[Reply]],
        request: Any,
        *,
        safe: bool,
        **options: Unpack[CallOptions],
    ) -> Reply:
        """The reply of `method`; a call that is `safe` to repeat is retried while the policy, the budget and the
        deadline (`timeout`, else the client's, over all attempts) allow."""
        loop = asyncio.get_running_loop()
        timeout = options.get("timeout")
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        metadata = call_metadata(options.get("activity_id"), options.get("request_id"))
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = await method(request, timeout=max(0.0, deadline - loop.time()), metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc)
                if not retriable(error):
                    raise error from exc
                self.budget.on_failure()
                if not (safe and attempt < self.retry.max_attempts and self.budget.allows_retry()):
                    raise error from exc
                delay = self.retry.backoff(attempt, self.rng)
                if loop.time() + delay >= deadline:
                    raise error from exc
                await asyncio.sleep(delay)
                continue
            self.budget.on_success()
            return reply

    async def stream(
        self,
        method: Callable[..., Any],
        request: Any,
        **options: Unpack[CallOptions],
    ) -> AsyncIterator[Any]:
        """The replies of a server stream (no deadline unless `timeout`); the stream is cancelled when the caller
        stops reading."""
        metadata = call_metadata(options.get("activity_id"), options.get("request_id"))
        call = method(request, timeout=options.get("timeout"), metadata=metadata)
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        finally:
            cancel = getattr(call, "cancel", None)
            if cancel is not None:
                cancel()
            else:
                with contextlib.suppress(Exception):
                    await call.aclose()
