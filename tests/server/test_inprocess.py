"""The in-process channel answers exactly as the real gRPC server does: same replies, codes, details, metadata."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fabric_jobs import JobContext, JobRegistry
from fabric_jobs.request_context import ContextFilter
from fabric_jobs.server.app import JobServer, ServiceSettings, start_job_server
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.conftest import rpc_error, status_details, wait_for_status

ITEM_TYPE = "Test.Item"

registry = JobRegistry()


@registry.job(ITEM_TYPE, "waitForCancel")
async def wait_for_cancel(ctx: JobContext) -> None:
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, "slowToStop")
async def slow_to_stop(ctx: JobContext) -> None:
    await ctx.cancellation.wait()
    await asyncio.sleep(0.5)


def _key(job_type: str = "waitForCancel", **fields: str) -> pb.JobInstanceKey:
    values = {
        "tenant_id": str(uuid.uuid4()),
        "workspace_id": str(uuid.uuid4()),
        "item_type": ITEM_TYPE,
        "item_id": str(uuid.uuid4()),
        "job_type": job_type,
        "job_instance_id": str(uuid.uuid4()),
    }
    values.update(fields)
    return pb.JobInstanceKey(**values)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[JobServer]:
    settings = ServiceSettings(database=f"sqlite:///{tmp_path / 'jobs.db'}", cancel_wait=5.0, cancel_grace=5.0)
    running = await start_job_server(settings, registry)
    yield running
    await running.stop(grace=0)


Stubs = tuple["pb_grpc.JobServiceAsyncStub", health_pb2_grpc.HealthStub]


@pytest.fixture(params=["grpc", "in-process"])
async def stubs(request: pytest.FixtureRequest, server: JobServer) -> AsyncIterator[Stubs]:
    if request.param == "in-process":
        channel = server.in_process_channel.as_channel()
        yield pb_grpc.JobServiceStub(channel), health_pb2_grpc.HealthStub(channel)
        return
    async with grpc.aio.insecure_channel(server.address) as socket_channel:
        yield pb_grpc.JobServiceStub(socket_channel), health_pb2_grpc.HealthStub(socket_channel)


async def test_replies_are_the_same_messages(stubs: Stubs) -> None:
    stub, _ = stubs
    key = _key()
    created = await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    assert created.created
    assert created.job_instance.key == key
    got = await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))
    assert got.job_instance.key == key
    cancelled = await stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    assert cancelled.job_instance.status == pb.JOB_INSTANCE_STATUS_CANCELLED


async def test_errors_carry_the_same_code_and_rich_details(stubs: Stubs) -> None:
    stub, _ = stubs
    missing = await rpc_error(stub.GetJobInstance(pb.GetJobInstanceRequest(key=_key())))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    details = status_details(missing)
    assert (details.reason, details.domain) == ("JobInstanceNotFound", "fabric-jobs")

    invalid = await rpc_error(stub.GetJobInstance(pb.GetJobInstanceRequest(key=_key(workspace_id="nope"))))
    assert invalid.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(status_details(invalid).field_violations) == ["key.workspace_id"]


async def test_deadline_exceeded(stubs: Stubs) -> None:
    stub, _ = stubs
    key = _key("slowToStop")
    await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    await wait_for_status(stub, key, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    error = await rpc_error(stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key), timeout=0.01))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_watch_streams(stubs: Stubs) -> None:
    stub, _ = stubs
    key = _key()
    await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    statuses = []
    async for message in stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key)):
        statuses.append(message.job_instance.status)
        if message.job_instance.status == pb.JOB_INSTANCE_STATUS_IN_PROGRESS:
            await stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    assert statuses[-1] == pb.JOB_INSTANCE_STATUS_CANCELLED
    missing = _key()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=missing)):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health(stubs: Stubs) -> None:
    _, health = stubs
    reply = await health.Check(health_pb2.HealthCheckRequest(service="fabric_jobs.v1.JobService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_request_ids_reach_the_server_logs(stubs: Stubs, caplog: pytest.LogCaptureFixture) -> None:
    stub, _ = stubs
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="fabric_jobs"):
        await rpc_error(
            stub.GetJobInstance(
                pb.GetJobInstanceRequest(key=_key()), metadata=(("activity-id", "act-1"), ("request-id", "req-1"))
            )
        )
    calls = [
        r for r in caplog.records if r.name == "fabric_jobs.server.interceptors" and "GetJobInstance" in r.getMessage()
    ]
    assert calls
    assert all((r.activity_id, r.request_id) == ("act-1", "req-1") for r in calls)  # type: ignore[attr-defined]
