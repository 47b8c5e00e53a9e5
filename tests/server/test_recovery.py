"""Restarts on the same database: queued jobs run, orphaned running jobs fail retriably, history stays."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from fabric_jobs.server.backend import open_store
from fabric_jobs.server.model import InvokeType, JobKey, JobStatus, NewJob, now_ms
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, wait_for_status, wait_until
from tests.harness import POLL_INTERVAL, RunningServer, ServerFactory, eventually
from tests.jobs import ITEM_TYPE, TestJobs
from tests.server.calls import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, NOT_STARTED, create


async def get(running: RunningServer, key: pb.JobInstanceKey) -> pb.JobInstance:
    return (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance


def assert_executor_lost(job: pb.JobInstance) -> None:
    assert job.status == FAILED
    assert job.error_details.error_code == "JobExecutorLost"
    assert not job.error_details.is_permanent
    assert job.error_details.source == pb.ERROR_SOURCE_SYSTEM
    assert job.HasField("end_time")


async def write_orphan(database: str, heartbeat_ms: int) -> pb.JobInstanceKey:
    """What a killed process leaves: an InProgress row owned by an executor that no longer renews its lease."""
    store = open_store(database)
    await store.open()
    try:
        ids = [str(uuid.uuid4()) for _ in range(4)]
        key = JobKey(ids[0], ids[1], ITEM_TYPE, ids[2], job_types.COMPLETES, ids[3])
        await store.insert(NewJob(key, InvokeType.MANUAL, "{}", heartbeat_ms))
        moved = await store.transition(
            key, (JobStatus.NOT_STARTED,), JobStatus.IN_PROGRESS, at_ms=heartbeat_ms, owner="killed-process"
        )
        assert moved is not None
    finally:
        await store.close()
    return new_key(
        ITEM_TYPE,
        job_types.COMPLETES,
        tenant_id=key.tenant_id,
        workspace_id=key.workspace_id,
        item_id=key.item_id,
        job_instance_id=key.job_instance_id,
    )


async def test_queued_jobs_survive_a_restart_and_run(jobs: TestJobs, start_server: ServerFactory) -> None:
    first = await start_server(jobs.registry, max_threads=1, shutdown_grace=0.2)
    blocker = await create(first, job_types.GATED_THREAD)
    await wait_for_status(first.stub, blocker, IN_PROGRESS)
    queued = [await create(first, job_types.SYNC_COMPLETES) for _ in range(3)]
    for key in queued:
        assert (await get(first, key)).status == NOT_STARTED
    await first.stop()

    second = await start_server(jobs.registry)
    for key in queued:
        done = await wait_for_status(second.stub, key, COMPLETED)
        assert done.HasField("start_time")
        assert jobs.runs[key.job_instance_id] == 1
    assert_executor_lost(await get(second, blocker))
    assert jobs.runs[blocker.job_instance_id] == 1


async def test_job_left_running_by_a_killed_process_fails_retriably_at_start(
    jobs: TestJobs, start_server: ServerFactory, database: str
) -> None:
    stale = now_ms() - 60_000
    key = await write_orphan(database, stale)

    running = await start_server(jobs.registry, lease_seconds=1.0)
    failed = await wait_for_status(running.stub, key, FAILED)
    assert_executor_lost(failed)
    assert failed.start_time.ToMilliseconds() == stale
    assert jobs.runs[key.job_instance_id] == 0


async def test_job_of_a_process_killed_while_serving_fails_retriably_within_the_lease(
    jobs: TestJobs, start_server: ServerFactory, database: str
) -> None:
    running = await start_server(jobs.registry, lease_seconds=0.6)
    key = await write_orphan(database, now_ms())
    assert (await get(running, key)).status == IN_PROGRESS

    assert_executor_lost(await wait_for_status(running.stub, key, FAILED, within=10.0))


async def test_own_running_jobs_keep_their_lease(jobs: TestJobs, start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, lease_seconds=0.3)
    key = await create(running, job_types.GATED)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    for _ in range(int(1.0 / POLL_INTERVAL)):  # over three lease periods
        assert (await get(running, key)).status == IN_PROGRESS
        await asyncio.sleep(POLL_INTERVAL)
    jobs.gate.set()
    await wait_for_status(running.stub, key, COMPLETED)


async def test_finished_jobs_are_unchanged_across_a_restart(jobs: TestJobs, start_server: ServerFactory) -> None:
    first = await start_server(jobs.registry, cancel_wait=5.0)
    completed = await create(first, job_types.COMPLETES)
    failed = await create(first, job_types.FAILS)
    cancelled = await create(first, job_types.COOPERATES)
    await wait_for_status(first.stub, cancelled, IN_PROGRESS)
    await first.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=cancelled))
    before = [
        await wait_for_status(first.stub, completed, COMPLETED),
        await wait_for_status(first.stub, failed, FAILED),
        await wait_for_status(first.stub, cancelled, CANCELLED),
    ]
    await first.stop()

    second = await start_server(jobs.registry)
    assert [await get(second, key) for key in (completed, failed, cancelled)] == before
    assert jobs.runs[completed.job_instance_id] == 1


async def refuses_connections(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return True
    writer.close()
    return False


async def test_shutdown_lets_a_job_finishing_within_the_grace_complete(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    first = await start_server(jobs.registry, shutdown_grace=10.0)
    key = await create(first, job_types.GATED)
    await wait_for_status(first.stub, key, IN_PROGRESS)

    stopping = asyncio.create_task(first.stop())
    # The port closes, then the executor waits for its running job; one that did not wait would record the
    # job Failed at once, long before the gate opens.
    await eventually(lambda: refuses_connections(first.server.address), what="the gRPC port closing")
    assert not stopping.done()
    jobs.gate.set()
    await stopping

    second = await start_server(jobs.registry)
    done = await get(second, key)
    assert done.status == COMPLETED
    assert not done.HasField("error_details")


@pytest.mark.parametrize("job_type", [job_types.IGNORES_CANCEL, job_types.IGNORES_CANCEL_THREAD])
async def test_shutdown_records_a_job_outliving_the_grace_as_failed_retriable(
    jobs: TestJobs, start_server: ServerFactory, job_type: str
) -> None:
    first = await start_server(jobs.registry, shutdown_grace=0.2)
    key = await create(first, job_type)
    await wait_for_status(first.stub, key, IN_PROGRESS)
    await first.stop()
    await wait_until(lambda: key.job_instance_id in jobs.exited, what="the handler stopped")
    assert key.job_instance_id not in jobs.ran_to_end

    second = await start_server(jobs.registry)
    assert_executor_lost(await get(second, key))
    assert jobs.runs[key.job_instance_id] == 1
