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
from typing import Protocol
from urllib.parse import quote, unquote

ACTIVITY_ID_METADATA = "activity-id"
REQUEST_ID_METADATA = "request-id"

activity_id: contextvars.ContextVar[str] = contextvars.ContextVar("activity_id", default="-")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class JobKeyLike(Protocol):
    """A job's key: the JobService's JobInstanceKey message and the server's JobKey both are."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def item_type(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def job_type(self) -> str: ...
    @property
    def job_instance_id(self) -> str: ...


job_key: contextvars.ContextVar[JobKeyLike | None] = contextvars.ContextVar("job_key", default=None)


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
    """Within the block, log lines name this job and its tenant (nothing for None or a key without an instance id).

    A class rather than a generator, and the key formatted only when a line is logged: it runs on every call."""

    __slots__ = ("_key", "_token")

    def __init__(self, key: JobKeyLike | None) -> None:
        self._key = key if key is not None and key.job_instance_id else None

    def __enter__(self) -> None:
        self._token = job_key.set(self._key)

    def __exit__(self, *exc_info: object) -> None:
        job_key.reset(self._token)


def job_path(key: JobKeyLike) -> str:
    """How log lines and spans name a job: workspaceId/itemType/itemId/jobType/jobInstanceId."""
    return f"{key.workspace_id}/{key.item_type}/{key.item_id}/{key.job_type}/{key.job_instance_id}"


MAX_ID_LENGTH = 512
"""The longest ActivityId or RequestId carried: two at the worst of percent-encoding stay under gRPC's 8 KiB of
metadata."""
_PRINTABLE_BUT_PERCENT = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


def metadata() -> tuple[tuple[str, str], ...]:
    """The current ids as gRPC metadata (nothing for an id that is not set), percent-encoded: metadata takes
    printable ASCII only, and Fabric's headers may carry any byte (read as Latin-1)."""
    pairs = ((ACTIVITY_ID_METADATA, activity_id.get()), (REQUEST_ID_METADATA, request_id.get()))
    return tuple((k, to_metadata(v)) for k, v in pairs if v != "-")


def to_metadata(value: str) -> str:
    """An id as gRPC metadata carries it: percent-encoded to printable ASCII."""
    return quote(value, safe=_PRINTABLE_BUT_PERCENT)


def from_metadata(value: str) -> str:
    """An id as `metadata` sent it."""
    return unquote(value)


def ids() -> dict[str, str | None]:
    """The current ids by name (activity_id, request_id); None for an id that is not set."""
    activity, request = activity_id.get(), request_id.get()
    return {"activity_id": None if activity == "-" else activity, "request_id": None if request == "-" else request}


TENANT_EXTRA = "context_tenant"
JOB_EXTRA = "context_job"
"""`extra` names for a line that states its tenant and job itself (the one line per REST request)."""


class ContextFilter(logging.Filter):
    """Stamps activity_id, request_id, tenant and job on each record ("-" for what is not set). They always win over
    fields of the same name a library passes as `extra` (procrastinate's `job` is its whole job as a dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.activity_id = activity_id.get()
        record.request_id = request_id.get()
        if hasattr(record, JOB_EXTRA):
            record.tenant = getattr(record, TENANT_EXTRA, "-")
            record.job = getattr(record, JOB_EXTRA)
            return True
        key = job_key.get()
        record.tenant = "-" if key is None else key.tenant_id
        record.job = "-" if key is None else job_path(key)
        return True
