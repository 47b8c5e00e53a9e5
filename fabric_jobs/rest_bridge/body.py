"""Reading a request body without buffering more than the configured limit."""

from __future__ import annotations

from starlette.requests import Request

from fabric_jobs.errors import ErrorCode, FieldViolation
from fabric_jobs.rest_bridge.errors import HttpError, bad_request, http_error


def _too_large(max_bytes: int) -> HttpError:
    return http_error(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"The request body is larger than {max_bytes} bytes",
        ("body",),
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body; 413 as soon as Content-Length or the bytes received exceed max_bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise bad_request([FieldViolation("Content-Length", "header Content-Length must be a number")])
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)
