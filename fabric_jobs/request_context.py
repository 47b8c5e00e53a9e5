"""The request's ActivityId and RequestId, and the tenant and job it concerns, carried in contextvars and
stamped on every log line.

The bridge reads the ids from Fabric's headers and sends them as gRPC metadata; the server reads the
metadata back. Tasks started while handling a request (job handlers included) inherit them.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote

ACTIVITY_ID_METADATA = "activity-id"
REQUEST_ID_METADATA = "request-id"

activity_id: contextvars.ContextVar[str] = contextvars.ContextVar("activity_id", default="-")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")
job: contextvars.ContextVar[str] = contextvars.ContextVar("job", default="-")


@contextmanager
def bound(activity: str | None, request: str | None) -> Iterator[None]:
    """Within the block, log lines carry these ids."""
    activity_token = activity_id.set(activity or "-")
    request_token = request_id.set(request or "-")
    try:
        yield
    finally:
        request_id.reset(request_token)
        activity_id.reset(activity_token)


class job_bound:
    """Within the block, log lines name this tenant and job (workspace/itemType/itemId/jobType/jobInstanceId).

    A class rather than a generator: it runs on every call and every job."""

    __slots__ = ("_job", "_job_token", "_tenant", "_tenant_token")

    def __init__(self, tenant_id: str, job_key: str) -> None:
        self._tenant = tenant_id or "-"
        self._job = job_key or "-"

    def __enter__(self) -> None:
        self._tenant_token = tenant.set(self._tenant)
        self._job_token = job.set(self._job)

    def __exit__(self, *exc_info: object) -> None:
        job.reset(self._job_token)
        tenant.reset(self._tenant_token)


MAX_ID_LENGTH = 512
"""The longest ActivityId or RequestId carried: two at the worst of percent-encoding stay under gRPC's 8 KiB of
metadata."""
_PRINTABLE_BUT_PERCENT = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


def metadata() -> tuple[tuple[str, str], ...]:
    """The current ids as gRPC metadata (nothing for an id that is not set), percent-encoded: metadata takes
    printable ASCII only, and Fabric's headers may carry any byte (read as Latin-1)."""
    pairs = ((ACTIVITY_ID_METADATA, activity_id.get()), (REQUEST_ID_METADATA, request_id.get()))
    return tuple((k, quote(v, safe=_PRINTABLE_BUT_PERCENT)) for k, v in pairs if v != "-")


def from_metadata(value: str) -> str:
    """An id as `metadata` sent it."""
    return unquote(value)


def ids() -> dict[str, str | None]:
    """The current ids by name (activity_id, request_id); None for an id that is not set."""
    activity, request = activity_id.get(), request_id.get()
    return {"activity_id": None if activity == "-" else activity, "request_id": None if request == "-" else request}


class ContextFilter(logging.Filter):
    """Stamps activity_id, request_id, tenant and job on each record ("-" for what is not set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.activity_id = activity_id.get()
        record.request_id = request_id.get()
        if not hasattr(record, "tenant"):
            record.tenant = tenant.get()
        if not hasattr(record, "job"):
            record.job = job.get()
        return True
