"""The job instance as the server sees it: key, status, record. Plain values, no I/O."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.keys import KEY_FIELDS


class JobStatus(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class InvokeType(enum.StrEnum):
    """Fabric's JobInvokeType; Fabric also sends it as the integers 0, 1, 2 in this order."""

    UNKNOWN_FUTURE_VALUE = "UnknownFutureValue"
    SCHEDULED = "Scheduled"
    MANUAL = "Manual"


@dataclass(frozen=True, slots=True)
class JobKey:
    """The full identity of a job instance; a key differing in any field is another job. Its fields are
    fabric_jobs.keys.KEY_PARTS, in that order."""

    tenant_id: str
    workspace_id: str
    item_type: str
    item_id: str
    job_type: str
    job_instance_id: str

    def __str__(self) -> str:
        return f"{self.job_instance_id} ({self.item_type}/{self.job_type})"

    def fields(self) -> dict[str, str]:
        """The parts by field name: a JobInstanceKey's fields, a query's parameters."""
        return {field: getattr(self, field) for field in KEY_FIELDS}

    def to_text(self) -> str:
        """The six parts joined by '/': a procrastinate lock, a NOTIFY payload. No part holds a '/'."""
        return "/".join(getattr(self, field) for field in KEY_FIELDS)

    @classmethod
    def from_text(cls, text: str) -> JobKey | None:
        """The key `to_text` wrote, or None for text it did not write."""
        parts = text.split("/")
        if len(parts) != len(KEY_FIELDS) or not all(parts):
            return None
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class CreationPayload:
    """A Create's payload: its fields, their compact JSON text (key order and number types kept), and the
    request field it came in (creation_payload_json, or the deprecated creation_payload), for errors."""

    fields: dict[str, Any]
    text: str
    field: str


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a create asks to store. creation_payload is compact JSON text, as the handler will get it."""

    key: JobKey
    invoke_type: InvokeType
    creation_payload: str
    create_time_ms: int
    trace_context: str | None = None
    """The W3C trace context of the Create (JSON of traceparent and tracestate), while tracing is on."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A stored job instance. Times are milliseconds since the Unix epoch, UTC."""

    key: JobKey
    status: JobStatus
    invoke_type: InvokeType
    creation_payload: str
    create_time_ms: int
    start_time_ms: int | None
    end_time_ms: int | None
    error: ErrorDetails | None
    cancel_requested: bool
    owner: str | None
    version: int
    trace_context: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of a job's history: the status it entered (or kept, when a cancel was asked) and when."""

    status: JobStatus
    cancel_requested: bool
    at_ms: int


def now_ms() -> int:
    return time.time_ns() // 1_000_000
