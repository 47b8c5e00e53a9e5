"""Server values to and from protobuf messages."""

from __future__ import annotations

from fabric_jobs.errors import details_to_pb
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus
from fabric_jobs.v1 import job_service_pb2 as pb

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


def key_to_pb(key: JobKey) -> pb.JobInstanceKey:
    return pb.JobInstanceKey(**key.fields())


def record_to_pb(record: JobRecord) -> pb.JobInstance:
    message = pb.JobInstance(
        key=key_to_pb(record.key),
        status=STATUS_TO_PB[record.status],
        invoke_type=INVOKE_TYPE_TO_PB[record.invoke_type],
        cancel_requested=record.cancel_requested,
    )
    message.create_time.FromMilliseconds(record.create_time_ms)
    if record.start_time_ms is not None:
        message.start_time.FromMilliseconds(record.start_time_ms)
    if record.end_time_ms is not None:
        message.end_time.FromMilliseconds(record.end_time_ms)
    if record.error is not None:
        message.error_details.CopyFrom(details_to_pb(record.error))
    return message
