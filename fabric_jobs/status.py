"""A job instance's status and invoke type by Fabric's names, and as the JobService's enums."""

from __future__ import annotations

import enum

from fabric_jobs.v1 import job_service_pb2 as pb


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


STATUS_TO_PB = {
    JobStatus.NOT_STARTED: pb.JOB_INSTANCE_STATUS_NOT_STARTED,
    JobStatus.IN_PROGRESS: pb.JOB_INSTANCE_STATUS_IN_PROGRESS,
    JobStatus.COMPLETED: pb.JOB_INSTANCE_STATUS_COMPLETED,
    JobStatus.FAILED: pb.JOB_INSTANCE_STATUS_FAILED,
    JobStatus.CANCELLED: pb.JOB_INSTANCE_STATUS_CANCELLED,
}
STATUS_FROM_PB = {value: key for key, value in STATUS_TO_PB.items()}

INVOKE_TYPE_TO_PB = {
    InvokeType.UNKNOWN_FUTURE_VALUE: pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE,
    InvokeType.SCHEDULED: pb.JOB_INVOKE_TYPE_SCHEDULED,
    InvokeType.MANUAL: pb.JOB_INVOKE_TYPE_MANUAL,
}
INVOKE_TYPE_FROM_PB = {value: key for key, value in INVOKE_TYPE_TO_PB.items()}
