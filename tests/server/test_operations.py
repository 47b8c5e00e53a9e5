"""What operators rely on: gRPC health, server reflection, and request ids on every log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fabric_jobs.request_context import ContextFilter
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, wait_for_status
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs

JOB_SERVICE = "fabric_jobs.v1.JobService"


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry)


@pytest.mark.parametrize("service", ["", JOB_SERVICE])
async def test_health_check_is_serving(running: RunningServer, service: str) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_job_service(running: RunningServer) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(running.channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names: set[str] = set()
    async for reply in reflection.ServerReflectionInfo(ask()):
        names.update(service.name for service in reply.list_services_response.service)
    assert JOB_SERVICE in names
    assert "grpc.health.v1.Health" in names


async def test_log_records_carry_the_callers_activity_and_request_ids(
    running: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fabric_jobs")
    caplog.handler.addFilter(ContextFilter())
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    request = pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)

    await running.stub.CreateJobInstance(request, metadata=(("activity-id", "A1"), ("request-id", "R1")))
    await running.stub.GetJobInstance(
        pb.GetJobInstanceRequest(key=key), metadata=(("activity-id", "A2"), ("request-id", "R2"))
    )
    await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_COMPLETED)

    def ids_of(message_part: str) -> set[tuple[object, object]]:
        return {
            (getattr(record, "activity_id", None), getattr(record, "request_id", None))
            for record in caplog.records
            if message_part in record.getMessage()
        }

    assert ids_of("CreateJobInstance OK") == {("A1", "R1")}
    assert ("A1", "R1") in ids_of("created")
    assert ("A2", "R2") in ids_of("GetJobInstance OK")
    assert ("-", "-") in ids_of("GetJobInstance OK"), "calls without ids log '-'"
