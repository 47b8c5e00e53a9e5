"""What the client's calls return: frozen values with Fabric's names, made from the services' messages."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2

from fabric_jobs.errors import ErrorDetails, details_from_pb
from fabric_jobs.identity import Caller, caller_from_pb
from fabric_jobs.keys import JobKey, key_from_pb
from fabric_jobs.status import INVOKE_TYPE_FROM_PB, STATUS_FROM_PB, STATUS_TO_PB, InvokeType, JobStatus
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import job_service_pb2 as pb


@dataclass(frozen=True, slots=True)
class JobProgress:
    """What a job's handler last reported of its progress (ctx.report_progress)."""

    percent: float | None
    """0 to 100; None when the report gave only a message."""
    message: str
    """Empty when the report gave only a percent."""
    update_time: datetime.datetime
    """When the handler reported it (UTC)."""


@dataclass(frozen=True, slots=True)
class JobState:
    """A job instance as the service reports it. Times are UTC; `start_time` is set once the handler started,
    `end_time` once the status is terminal, `error_details` when it failed."""

    key: JobKey
    status: JobStatus
    invoke_type: InvokeType
    create_time: datetime.datetime
    start_time: datetime.datetime | None = None
    end_time: datetime.datetime | None = None
    error_details: ErrorDetails | None = None
    cancel_requested: bool = False
    """True once a cancel was asked for, even while the handler is still stopping."""
    caller: Caller | None = None
    """Who asked for the job (from the Create's subjectToken); None for a job created without one."""
    progress: JobProgress | None = None
    """What its handler last reported of its progress; None until it reports. Fabric's REST state never has it."""

    @property
    def is_terminal(self) -> bool:
        """Completed, Failed or Cancelled: the status never changes again."""
        return self.status.is_terminal


@dataclass(frozen=True, slots=True)
class Created:
    """The answer to a Create: the job's state, and whether this call created it (False: an identical request
    had, so nothing new runs)."""

    job: JobState
    created: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One page of job instances, newest first; `next_page_token` is None on the last page."""

    jobs: tuple[JobState, ...]
    next_page_token: str | None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which job instances an AdminService call covers; a field left empty covers any."""

    tenant_id: str = ""
    workspace_id: str = ""
    item_type: str = ""
    item_id: str = ""
    job_type: str = ""
    job_instance_id: str = ""
    statuses: frozenset[JobStatus] = field(default_factory=frozenset)
    created_since: datetime.datetime | None = None
    """Only instances created at or after this time (a naive datetime is taken as UTC)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of a job's history: the status it entered (or kept, when a cancel was asked while it ran)."""

    status: JobStatus
    cancel_requested: bool
    time: datetime.datetime


@dataclass(frozen=True, slots=True)
class History:
    """A job instance as it is now and its history, oldest step first."""

    job: JobState
    transitions: tuple[Transition, ...]


@dataclass(frozen=True, slots=True)
class Counts:
    """How many job instances a filter covers, by status (every status present, zero included)."""

    by_status: dict[JobStatus, int]
    total: int


@dataclass(frozen=True, slots=True)
class CancelledAll:
    """What AdminClient.cancel_all did."""

    asked: int
    """How many job instances it asked to cancel: those not ended whose cancel had not been asked before."""
    ended: int
    """Of those, how many had ended when it returned; the others' handlers are stopping (told through their token,
    stopped by force after the service's cancel grace)."""


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def time_from_pb(timestamp: timestamp_pb2.Timestamp) -> datetime.datetime:
    """A UTC datetime (to the microsecond); a little faster than Timestamp.ToDatetime."""
    return _EPOCH + datetime.timedelta(seconds=timestamp.seconds, microseconds=timestamp.nanos // 1000)


def job_from_pb(instance: pb.JobInstance) -> JobState:
    return JobState(
        key=key_from_pb(instance.key),
        status=STATUS_FROM_PB[instance.status],
        invoke_type=INVOKE_TYPE_FROM_PB.get(instance.invoke_type, InvokeType.UNKNOWN_FUTURE_VALUE),
        create_time=time_from_pb(instance.create_time),
        start_time=time_from_pb(instance.start_time) if instance.HasField("start_time") else None,
        end_time=time_from_pb(instance.end_time) if instance.HasField("end_time") else None,
        error_details=details_from_pb(instance.error_details) if instance.HasField("error_details") else None,
        cancel_requested=instance.cancel_requested,
        caller=caller_from_pb(instance.caller) if instance.HasField("caller") else None,
        progress=progress_from_pb(instance.progress) if instance.HasField("progress") else None,
    )


def progress_from_pb(progress: pb.JobProgress) -> JobProgress:
    return JobProgress(
        percent=progress.percent if progress.HasField("percent") else None,
        message=progress.message,
        update_time=time_from_pb(progress.update_time),
    )


def page_from_pb(instances: Iterable[pb.JobInstance], next_page_token: str) -> Page:
    return Page(tuple(job_from_pb(job) for job in instances), next_page_token or None)


def filter_to_pb(job_filter: JobFilter) -> admin_pb.JobInstanceFilter:
    message = admin_pb.JobInstanceFilter(
        tenant_id=job_filter.tenant_id,
        workspace_id=job_filter.workspace_id,
        item_type=job_filter.item_type,
        item_id=job_filter.item_id,
        job_type=job_filter.job_type,
        job_instance_id=job_filter.job_instance_id,
        statuses=sorted(STATUS_TO_PB[status] for status in job_filter.statuses),
    )
    if job_filter.created_since is not None:
        since = job_filter.created_since
        if since.tzinfo is None:
            since = since.replace(tzinfo=datetime.UTC)
        message.created_since.FromDatetime(since)
    return message


def history_from_pb(reply: admin_pb.ListJobInstanceTransitionsResponse) -> History:
    return History(
        job_from_pb(reply.job_instance),
        tuple(
            Transition(STATUS_FROM_PB[step.status], step.cancel_requested, time_from_pb(step.time))
            for step in reply.transitions
        ),
    )


def counts_from_pb(reply: admin_pb.CountJobInstancesResponse) -> Counts:
    by_status = dict.fromkeys(JobStatus, 0)
    for entry in reply.counts:
        if entry.status in STATUS_FROM_PB:
            by_status[STATUS_FROM_PB[entry.status]] = entry.count
    return Counts(by_status, reply.total)
