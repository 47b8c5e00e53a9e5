"""Server values to and from protobuf messages."""

from __future__ import annotations

from fabric_jobs.errors import details_to_pb
from fabric_jobs.identity import caller_to_pb
from fabric_jobs.keys import key_to_pb
from fabric_jobs.server.model import JobRecord
from fabric_jobs.status import INVOKE_TYPE_FROM_PB, INVOKE_TYPE_TO_PB, STATUS_FROM_PB, STATUS_TO_PB
from fabric_jobs.v1 import job_service_pb2 as pb

__all__ = [
    "INVOKE_TYPE_FROM_PB",
    "INVOKE_TYPE_TO_PB",
    "STATUS_FROM_PB",
    "STATUS_TO_PB",
    "key_to_pb",
    "record_to_pb",
]


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
    if record.caller is not None:
        message.caller.CopyFrom(caller_to_pb(record.caller))
    return message
