"""Execution on PostgreSQL inside one test process: two JobServices on one database, each with its own pool,
change listener and procrastinate app, as two replicas would have. Only the database connects them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from fabric_jobs.server.backend import open_store
from fabric_jobs.server.edge.convert import key_to_pb
from fabric_jobs.server.model import InvokeType, JobKey, NewJob, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store.changes import SAFETY_POLL_SECONDS
from fabric_jobs.v1 import admin_service_pb2, admin_service_pb2_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import jobs as job_types
from tests.conftest import new_key, wait_for_status, wait_until
from tests.harness import RunningServer, eventually, start_running_server
from tests.jobs import TestJobs

IN_PROGRESS = pb.JOB_INSTANCE_STATUS_IN_PROGRESS
COMPLETED = pb.JOB_INSTANCE_STATUS_COMPLETED
CANCELLED = pb.JOB_INSTANCE_STATUS_CANCELLED

LISTENERS = "FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN fabric_jobs_changes%%'"

Replica = Callable[..., Awaitable["pb_grpc.JobServiceAsyncStub"]]


@pytest.fixture
async def replica(postgres_url: str, jobs: TestJobs) -> AsyncIterator[Replica]:
    """Start JobService replicas on one fresh PostgreSQL database; each gives a gRPC stub to itself."""
    started: list[RunningServer] = []
    defaults = ServiceSettings(
        database=postgres_url, cancel_wait=5.0, cancel_grace=1.0, shutdown_grace=0.5, lease_seconds=1.5
    )

    async def start(*, run_handlers: bool, **settings: Any) -> pb_grpc.JobServiceAsyncStub:
        running = await start_running_server(replace(defaults, **settings), jobs.registry, run_handlers=run_handlers)
        started.append(running)
        return running.stub

    yield start
    for running in reversed(started):
        await running.stop()


async def create(stub: pb_grpc.JobServiceAsyncStub, job_type: str) -> pb.JobInstanceKey:
    key = new_key(job_types.ITEM_TYPE, job_type)
    await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    return key


async def statuses_until_terminal(
    stream: AsyncIterable[pb.WatchJobInstanceResponse],
) -> list[pb.JobInstanceStatus.ValueType]:
    """The statuses the rest of a Watch shows (a cancel request is a change too), within a third of the safety poll."""
    statuses: list[pb.JobInstanceStatus.ValueType] = []
    async with asyncio.timeout(SAFETY_POLL_SECONDS / 3):
        async for change in stream:
            statuses.append(change.job_instance.status)
    return statuses


async def test_a_cancel_on_one_replica_stops_the_handler_run_by_another(replica: Replica, jobs: TestJobs) -> None:
    with_worker = await replica(run_handlers=True, cancel_grace=60.0)  # a Cancelled answer is the handler's own stop
    without = await replica(run_handlers=False)
    key = await create(without, job_types.COOPERATES)
    await wait_for_status(with_worker, key, IN_PROGRESS)

    answer = (await without.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance

    assert answer.status == CANCELLED
    assert answer.HasField("end_time")
    assert jobs.runs[key.job_instance_id] == 1


async def test_watch_on_one_replica_hears_changes_made_by_another(replica: Replica) -> None:
    with_worker = await replica(run_handlers=True)
    watching = await replica(run_handlers=False)
    key = await create(with_worker, job_types.COOPERATES)
    await wait_for_status(with_worker, key, IN_PROGRESS)
    stream = watching.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    first = await anext(aiter(stream))
    assert first.job_instance.status == IN_PROGRESS

    await with_worker.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))

    # Without the notification the watching replica would look again only after its safety poll.
    assert await statuses_until_terminal(stream) == [IN_PROGRESS, CANCELLED]


async def test_changes_are_still_seen_after_the_listener_loses_its_connection(
    replica: Replica, postgres_url: str
) -> None:
    with_worker = await replica(run_handlers=True)
    watching = await replica(run_handlers=False)
    key = await create(with_worker, job_types.COOPERATES)
    await wait_for_status(with_worker, key, IN_PROGRESS)
    stream = watching.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    assert (await anext(aiter(stream))).job_instance.status == IN_PROGRESS

    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        cursor = await admin.execute(f"SELECT pg_terminate_backend(pid) {LISTENERS}")
        assert len(await cursor.fetchall()) == 2, "each replica listens on its own connection"
        await with_worker.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))

        assert (await statuses_until_terminal(stream))[-1] == CANCELLED

        async def reconnected() -> bool:
            cursor = await admin.execute(f"SELECT count(*) {LISTENERS}")
            return await cursor.fetchone() == (2,)

        await eventually(reconnected, within=10, what="both listeners reconnecting")


async def test_a_stored_job_whose_defer_was_lost_is_queued_again_and_runs(
    replica: Replica, postgres_url: str, jobs: TestJobs
) -> None:
    key = JobKey(
        **{field.name: value for field, value in new_key(job_types.ITEM_TYPE, job_types.COMPLETES).ListFields()}
    )
    store = open_store(postgres_url)
    await store.open()
    try:
        await store.insert(NewJob(key, InvokeType.MANUAL, "{}", now_ms()))
    finally:
        await store.close()

    with_worker = await replica(run_handlers=True)

    done = await wait_for_status(with_worker, key_to_pb(key), COMPLETED, within=20.0)
    assert done.HasField("start_time")
    await wait_until(lambda: jobs.runs[key.job_instance_id] == 1, what="the handler ran once")


async def test_a_create_whose_defer_fails_is_accepted_and_runs_once_procrastinate_answers_again(
    replica: Replica, postgres_url: str, jobs: TestJobs
) -> None:
    with_worker = await replica(run_handlers=True)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute("ALTER TABLE procrastinate_jobs RENAME TO procrastinate_jobs_away")
        try:
            key = await create(with_worker, job_types.COMPLETES)
        finally:
            await admin.execute("ALTER TABLE procrastinate_jobs_away RENAME TO procrastinate_jobs")

    await wait_for_status(with_worker, key, COMPLETED, within=20.0)
    await wait_until(lambda: jobs.runs[key.job_instance_id] == 1, what="the handler ran once")


async def test_the_admin_change_feed_of_one_replica_sees_jobs_another_runs(postgres_url: str, jobs: TestJobs) -> None:
    settings = ServiceSettings(database=postgres_url, cancel_wait=5.0, cancel_grace=1.0, shutdown_grace=0.5)
    with_worker = await start_running_server(settings, jobs.registry, run_handlers=True)
    watching = await start_running_server(settings, jobs.registry, run_handlers=False)
    try:
        admin = admin_service_pb2_grpc.AdminServiceStub(watching.channel)
        stream = admin.WatchJobInstanceChanges(admin_service_pb2.WatchJobInstanceChangesRequest())
        await stream.initial_metadata()
        key = await create(with_worker.stub, job_types.COMPLETES)

        seen: list[pb.JobInstanceStatus.ValueType] = []
        async with asyncio.timeout(10):
            while COMPLETED not in seen:
                reply = await stream.read()
                assert isinstance(reply, admin_service_pb2.WatchJobInstanceChangesResponse)
                assert reply.job_instance.key == key
                seen.append(reply.job_instance.status)
        stream.cancel()
        history = await admin.ListJobInstanceTransitions(admin_service_pb2.ListJobInstanceTransitionsRequest(key=key))

        assert seen[-1] == COMPLETED
        assert [step.status for step in history.transitions] == [
            pb.JOB_INSTANCE_STATUS_NOT_STARTED,
            IN_PROGRESS,
            COMPLETED,
        ]
    finally:
        await watching.stop()
        await with_worker.stop()
