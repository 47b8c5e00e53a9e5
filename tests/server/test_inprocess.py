"""The in-process channel answers exactly as the real gRPC server does: the same calls, made over both channels to
one JobService, give the same replies, codes, details and metadata."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fabric_jobs.request_context import ContextFilter
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import CHANNELS, Channel, RunningServer, ServerFactory
from tests.jobs import COOPERATES, IGNORES_CANCEL, ITEM_TYPE, registry

NEVER_CREATED = "00000000-0000-4000-8000-000000000001"
"""The id of the missing job both channels are asked for: error messages name it."""


def _key(job_type: str = COOPERATES, **fields: str) -> pb.JobInstanceKey:
    return new_key(ITEM_TYPE, job_type, **fields)


@pytest.fixture
async def running(start_server: ServerFactory) -> RunningServer:
    return await start_server(registry, cancel_wait=5.0, cancel_grace=5.0)


def _same_shape(reply: pb.JobInstance) -> pb.JobInstance:
    """The reply without what differs from one job to the next (its key and times)."""
    shape = pb.JobInstance()
    shape.CopyFrom(reply)
    for field in ("key", "create_time", "start_time", "end_time"):
        shape.ClearField(field)
    return shape


def _error_shape(error: grpc.aio.AioRpcError) -> tuple[Any, ...]:
    details = status_details(error)
    trailing: Any = error.trailing_metadata() or ()
    metadata = sorted(name for name, _ in trailing)
    return (error.code(), error.details(), details.reason, details.domain, details.field_violations, metadata)


async def _replies(channel: grpc.aio.Channel) -> list[Any]:
    """What the JobService answers one scenario over `channel`: create, get, cancel, a repeated cancel, the errors
    of a missing and an invalid key, a watch to the end, a deadline that runs out and the health check."""
    stub = pb_grpc.JobServiceStub(channel)
    key = _key()
    answers: list[Any] = []
    created = await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    answers += [created.created, created.job_instance.key == key, _same_shape(created.job_instance)]
    await wait_for_status(stub, key, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    got = await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))
    answers.append(_same_shape(got.job_instance))
    for _ in range(2):
        cancelled = await stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
        answers.append(_same_shape(cancelled.job_instance))

    missing = _key(job_instance_id=NEVER_CREATED)
    answers.append(_error_shape(await rpc_error(stub.GetJobInstance(pb.GetJobInstanceRequest(key=missing)))))
    invalid = pb.GetJobInstanceRequest(key=_key(workspace_id="nope"))
    answers.append(_error_shape(await rpc_error(stub.GetJobInstance(invalid))))

    watched = _key()
    await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=watched, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    await wait_for_status(stub, watched, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    statuses = []
    async for message in stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=watched)):
        statuses.append(message.job_instance.status)
        if message.job_instance.status == pb.JOB_INSTANCE_STATUS_IN_PROGRESS:
            await stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=watched))
    answers.append((statuses[0], statuses[-1]))  # between them, whether the cancel's flag shows first is timing
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=missing)):
            pass
    answers.append(_error_shape(caught.value))

    slow = _key(IGNORES_CANCEL)
    await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=slow, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    await wait_for_status(stub, slow, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    late = await rpc_error(stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=slow), timeout=0.01))
    answers.append((late.code(), late.details()))

    health = health_pb2_grpc.HealthStub(channel)
    answers.append(await health.Check(health_pb2.HealthCheckRequest(service="fabric_jobs.v1.JobService")))
    return answers


async def test_the_same_calls_get_the_same_answers_over_both_channels(running: RunningServer) -> None:
    in_process, over_grpc = [await _replies(running.channel_of(kind)) for kind in CHANNELS]

    assert in_process == over_grpc
    assert in_process[:2] == [True, True]
    assert in_process[-1].status == health_pb2.HealthCheckResponse.SERVING
    assert in_process[-2][0] == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("kind", CHANNELS)
async def test_request_ids_reach_the_server_logs(
    running: RunningServer, kind: Channel, caplog: pytest.LogCaptureFixture
) -> None:
    stub = pb_grpc.JobServiceStub(running.channel_of(kind))
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="fabric_jobs"):
        await rpc_error(
            stub.GetJobInstance(
                pb.GetJobInstanceRequest(key=_key()), metadata=(("activity-id", "act-1"), ("request-id", "req-1"))
            )
        )
    calls = [
        r
        for r in caplog.records
        if r.name == "fabric_jobs.server.edge.interceptors" and "GetJobInstance" in r.getMessage()
    ]
    assert calls
    assert all((r.activity_id, r.request_id) == ("act-1", "req-1") for r in calls)  # type: ignore[attr-defined]
