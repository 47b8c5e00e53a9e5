"""The HTTP/1.1 connection (uvicorn's httptools protocol) with Fabric-shaped answers and bounds on slow clients.

uvicorn answers malformed HTTP with a plain-text 400 and requests beyond its concurrency limit with a
plain-text 503; here both are Fabric ErrorResponses. uvicorn bounds only the keep-alive idle time; here a
connection also has a deadline for a request's headers (armed when it opens and when a new request
starts), for its body (armed when the headers are complete), and a size limit on its headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fabric_jobs.errors import ErrorCode, ErrorDetails, service_unavailable
from fabric_jobs.rest_bridge.errors import error_body
from fabric_jobs.rest_bridge.settings import HttpLimits

logger = logging.getLogger(__name__)

MALFORMED = ErrorDetails(ErrorCode.INVALID_REQUEST, "The request is not valid HTTP/1.1.")
OVER_CAPACITY = service_unavailable("The service has too many open connections; retry later.")


class _HeadersTooLarge(Exception):
    pass


def _response(status: int, details: ErrorDetails, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = json.dumps(error_body(details)).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [b"content-type: application/json", b"content-length: %d" % len(body), b"connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _over_capacity(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps(error_body(OVER_CAPACITY)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 503, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class FabricHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keepalive_timeout_seconds  # type: ignore[assignment]
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out, phase, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _answer_and_close(self, status: int, details: ErrorDetails) -> None:
        """Write an ErrorResponse and close; a request being answered meanwhile sees its client gone."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if not self.transport.is_closing():
            self.transport.write(_response(status, details, self.server_state.default_headers))
            self.transport.close()

    def _timed_out(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.info("closing the connection of %s: request %s not received within %gs", client, phase, seconds)
        timeout = ErrorDetails(ErrorCode.TIMEOUT, f"The request {phase} did not arrive within {seconds:g} seconds.")
        cycle = self.cycle
        answerable = self._in_headers if phase == "headers" else cycle is not None and not cycle.response_started
        if answerable:
            self._answer_and_close(408, timeout)
        else:
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_seconds, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(self.limits.header_timeout_seconds, "headers")
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        if self._header_bytes > self.limits.max_header_bytes:
            message = f"The request line and headers are larger than {self.limits.max_header_bytes} bytes."
            self._answer_and_close(431, ErrorDetails(ErrorCode.INVALID_REQUEST, message))
        else:
            self._answer_and_close(400, MALFORMED)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            raise _HeadersTooLarge

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._arm(self.limits.body_timeout_seconds, "body")
        if len(self.connections) <= self.limits.max_connections:
            super().on_headers_complete()
            return
        logger.warning("more than %d connections open: a request answered 503", self.limits.max_connections)
        app, self.app = self.app, _over_capacity
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def http_protocol(limits: HttpLimits) -> type[FabricHttpProtocol]:
    """The protocol class to give uvicorn (`http=`), bound to `limits`."""
    return type("BoundFabricHttpProtocol", (FabricHttpProtocol,), {"limits": limits})
