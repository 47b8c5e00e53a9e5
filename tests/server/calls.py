"""Status names and the one-line calls the server tests share."""

from __future__ import annotations

from fabric_jobs.v1 import job_service_pb2 as pb
from tests.conftest import new_key
from tests.harness import RunningServer
from tests.jobs import ITEM_TYPE

NOT_STARTED = pb.JOB_INSTANCE_STATUS_NOT_STARTED
IN_PROGRESS = pb.JOB_INSTANCE_STATUS_IN_PROGRESS
COMPLETED = pb.JOB_INSTANCE_STATUS_COMPLETED
FAILED = pb.JOB_INSTANCE_STATUS_FAILED
CANCELLED = pb.JOB_INSTANCE_STATUS_CANCELLED


async def create(running: RunningServer, job_type: str) -> pb.JobInstanceKey:
    """Create a Manual job of `job_type` with a new key and return the key."""
    key = new_key(ITEM_TYPE, job_type)
    await running.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    return key
