"""Cancel over gRPC: a queued job never starts, a running one is told, then stopped by force; history stays."""

from __future__ import annotations

import pytest

from fabric_jobs.server.backend import open_store
from fabric_jobs.server.edge import requests as validation
from fabric_jobs.server.model import JobStatus, now_ms
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import wait_for_status, wait_until
from tests.harness import RunningServer, ServerFactory
from tests.jobs import TestJobs
from tests.server.calls import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, NOT_STARTED, create


async def cancel(running: RunningServer, key: pb.JobInstanceKey) -> pb.JobInstance:
    return (await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance


async def test_cancel_of_a_queued_job_cancels_it_and_its_handler_never_starts(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry, max_threads=1)
    blocker = await create(running, job_types.GATED_THREAD)
    await wait_for_status(running.stub, blocker, IN_PROGRESS)
    queued = await create(running, job_types.SYNC_COMPLETES)
    sentinel = await create(running, job_types.SYNC_COMPLETES)
    assert (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=queued))).job_instance.status == NOT_STARTED

    cancelled = await cancel(running, queued)
    assert cancelled.status == CANCELLED
    assert cancelled.cancel_requested
    assert cancelled.HasField("end_time")
    assert not cancelled.HasField("start_time")
    assert await cancel(running, queued) == cancelled

    jobs.gate.set()
    await wait_for_status(running.stub, sentinel, COMPLETED)
    await wait_for_status(running.stub, blocker, COMPLETED)
    assert jobs.runs[queued.job_instance_id] == 0
    assert (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=queued))).job_instance == cancelled


@pytest.mark.parametrize("job_type", [job_types.COOPERATES, job_types.COOPERATES_THREAD])
async def test_cancel_of_a_cooperative_running_job_returns_cancelled(
    jobs: TestJobs, start_server: ServerFactory, job_type: str
) -> None:
    running = await start_server(jobs.registry, cancel_wait=5.0)
    key = await create(running, job_type)
    started = await wait_for_status(running.stub, key, IN_PROGRESS)

    cancelled = await cancel(running, key)
    assert cancelled.status == CANCELLED
    assert cancelled.cancel_requested
    assert cancelled.start_time == started.start_time
    assert cancelled.HasField("end_time")
    assert not cancelled.HasField("error_details")
    assert await cancel(running, key) == cancelled
    assert jobs.runs[key.job_instance_id] == 1


@pytest.mark.parametrize("job_type", [job_types.IGNORES_CANCEL, job_types.IGNORES_CANCEL_THREAD])
async def test_handler_ignoring_the_cancel_is_stopped_by_force_after_the_grace(
    jobs: TestJobs, start_server: ServerFactory, job_type: str
) -> None:
    running = await start_server(jobs.registry, cancel_wait=0.1, cancel_grace=1.0)
    key = await create(running, job_type)
    started = await wait_for_status(running.stub, key, IN_PROGRESS)

    answer = await cancel(running, key)
    assert answer.status == IN_PROGRESS
    assert answer.cancel_requested
    assert not answer.HasField("end_time")

    cancelled = await wait_for_status(running.stub, key, CANCELLED)
    assert cancelled.start_time == started.start_time
    assert cancelled.HasField("end_time")
    assert not cancelled.HasField("error_details")
    job_id = key.job_instance_id
    await wait_until(lambda: job_id in jobs.exited, what="the handler stopped")
    assert job_id not in jobs.ran_to_end
    assert await cancel(running, key) == cancelled


@pytest.mark.parametrize(
    ("job_type", "status"),
    [(job_types.COMPLETES, COMPLETED), (job_types.FAILS, FAILED), (job_types.CRASHES, FAILED)],
)
async def test_cancel_of_a_finished_job_changes_nothing(
    jobs: TestJobs, start_server: ServerFactory, job_type: str, status: pb.JobInstanceStatus.ValueType
) -> None:
    running = await start_server(jobs.registry)
    key = await create(running, job_type)
    finished = await wait_for_status(running.stub, key, status)

    assert await cancel(running, key) == finished
    assert await cancel(running, key) == finished
    assert (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance == finished


async def test_cancel_of_a_cancelled_job_changes_nothing(jobs: TestJobs, start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, cancel_wait=5.0)
    key = await create(running, job_types.COOPERATES)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    cancelled = await cancel(running, key)
    assert cancelled.status == CANCELLED

    assert await cancel(running, key) == cancelled
    assert (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance == cancelled
    assert jobs.runs[key.job_instance_id] == 1


async def test_a_cancel_asked_through_another_process_stops_the_running_job(
    jobs: TestJobs, start_server: ServerFactory, database: str
) -> None:
    running = await start_server(jobs.registry, lease_seconds=0.3)
    key = await create(running, job_types.COOPERATES)
    await wait_for_status(running.stub, key, IN_PROGRESS)

    other_process = open_store(database)
    await other_process.open()
    try:
        requested = await other_process.cancel(validation.job_key(pb.CancelJobInstanceRequest(key=key)), now_ms())
    finally:
        await other_process.close()
    assert requested is not None
    assert (requested.status, requested.cancel_requested) == (JobStatus.IN_PROGRESS, True)

    cancelled = await wait_for_status(running.stub, key, CANCELLED)
    assert cancelled.cancel_requested
    assert jobs.runs[key.job_instance_id] == 1
