"""The job instance as the server sees it: key, status, record. Plain values, no I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.identity import Caller
from fabric_jobs.keys import JobKey
from fabric_jobs.status import TERMINAL_STATUSES, InvokeType, JobStatus

__all__ = [
    "TERMINAL_STATUSES",
    "CreationPayload",
    "InvokeType",
    "JobKey",
    "JobRecord",
    "JobStatus",
    "NewJob",
    "Progress",
    "QueuedJob",
    "Transition",
    "now_ms",
]


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
    caller: Caller | None = None
    credential: bytes | None = field(default=None, repr=False)
    """Sealed credential material for tokens on the caller's behalf, stored with the job until it ends."""
    start_deadline_ms: int | None = None
    """When the job must have started, else it ends Failed (JobStartDeadlineExceeded); None: no deadline."""
    timeout_ms: int | None = None
    """How long a run may take, else it ends Failed (JobTimedOut); None: no limit."""


@dataclass(frozen=True, slots=True)
class Progress:
    """What a running job's handler last reported of its progress (each report replaces the whole)."""

    percent: float | None
    """0 to 100; None when the report gave only a message."""
    message: str
    """Empty when the report gave only a percent."""
    at_ms: int
    """When the handler reported it."""


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
    """The executor that claimed the job (kept once it ends): named when its lease runs out."""
    version: int
    """1 when created, one more at each change of the row: a watch yields the record when it moves."""
    trace_context: str | None = None
    caller: Caller | None = None
    start_turn: int = 0
    """Its turn to start among every tenant's queued jobs, given when created: one more than its tenant's last
    queued job, never before the first queued job of any tenant. Jobs start lowest turn first."""
    progress: Progress | None = None
    """None until the handler first reports its progress; kept once the job ends."""
    start_deadline_ms: int | None = None
    """When the job must have started (it never starts later); None: no deadline."""
    timeout_ms: int | None = None
    """How long a run may take; None: no limit."""
    run_deadline_ms: int | None = None
    """Once started with a timeout: when its run must have ended (start_time_ms + timeout_ms)."""


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A NotStarted job and its turn to start."""

    key: JobKey
    start_turn: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of a job's history: the status it entered (or kept, when a cancel was asked) and when."""

    status: JobStatus
    cancel_requested: bool
    at_ms: int


def now_ms() -> int:
    return time.time_ns() // 1_000_000
