"""Deadlines on the embedded engine (SQLite, handlers in this process): a run past its timeout is told, stopped by
force after the cancel grace and ends Failed, JobTimedOut; a job still NotStarted at its start deadline ends Failed,
JobStartDeadlineExceeded, and never starts, whichever process comes to it."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest

from fabric_jobs import JobRegistry
from fabric_jobs.server.backend import open_store
from fabric_jobs.server.model import InvokeType, JobKey, JobStatus, NewJob, now_ms
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, wait_for_status
from tests.harness import TEST_SETTINGS, RunningServer, ServerFactory, eventually
from tests.jobs import ITEM_TYPE, TestJobs
from tests.server.calls import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, NOT_STARTED, create

TIMED_OUT = "JobTimedOut"
START_DEADLINE_EXCEEDED = "JobStartDeadlineExceeded"


async def get(running: RunningServer, key: pb.JobInstanceKey) -> pb.JobInstance:
    return (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance


def ran_for(job: pb.JobInstance) -> float:
    return (job.end_time.ToMilliseconds() - job.start_time.ToMilliseconds()) / 1000


def assert_failed_retriable(job: pb.JobInstance, error_code: str) -> None:
    assert job.status == FAILED, job
    assert job.error_details.error_code == error_code
    assert not job.error_details.is_permanent
    assert job.error_details.source == pb.ERROR_SOURCE_SYSTEM
    assert job.HasField("end_time")


async def test_a_job_past_its_timeout_is_told_and_ends_failed_timed_out_not_cancelled(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry)
    key = await create(running, job_types.TIMES_OUT)

    failed = await wait_for_status(running.stub, key, FAILED)
    assert_failed_retriable(failed, TIMED_OUT)
    assert job_types.TIMEOUT_SECONDS <= ran_for(failed) < job_types.TIMEOUT_SECONDS + TEST_SETTINGS.cancel_grace
    assert not failed.cancel_requested
    cancelled_after = (await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance
    assert cancelled_after == failed
    assert jobs.runs[key.job_instance_id] == 1


async def test_a_handler_ignoring_its_timeout_is_stopped_by_force_after_the_grace_and_ends_failed(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry)
    key = await create(running, job_types.TIMES_OUT_IGNORING_THREAD)

    failed = await wait_for_status(running.stub, key, FAILED)
    assert_failed_retriable(failed, TIMED_OUT)
    assert ran_for(failed) >= job_types.TIMEOUT_SECONDS + TEST_SETTINGS.cancel_grace
    await eventually(lambda: key.job_instance_id in jobs.exited, what="the forced stop of the handler's thread")
    assert key.job_instance_id not in jobs.ran_to_end
    assert (await get(running, key)) == failed


async def test_the_service_default_timeout_bounds_job_types_registered_without_one(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry, job_timeout_seconds=0.3)
    timed = await create(running, job_types.COOPERATES)
    quick = await create(running, job_types.COMPLETES)

    assert_failed_retriable(await wait_for_status(running.stub, timed, FAILED), TIMED_OUT)
    assert (await wait_for_status(running.stub, quick, COMPLETED)).status == COMPLETED


async def test_a_cancel_before_the_timeout_still_ends_cancelled(jobs: TestJobs, start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, job_timeout_seconds=30.0)
    key = await create(running, job_types.COOPERATES)
    await wait_for_status(running.stub, key, IN_PROGRESS)

    answer = (await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance
    assert answer.status == CANCELLED
    assert not answer.HasField("error_details")


async def test_a_job_not_started_by_its_start_deadline_ends_failed_and_never_starts(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry, max_threads=1)
    blocker = await create(running, job_types.GATED_THREAD)
    await wait_for_status(running.stub, blocker, IN_PROGRESS)
    key = await create(running, job_types.MUST_START_SOON)
    assert (await get(running, key)).status == NOT_STARTED

    failed = await wait_for_status(running.stub, key, FAILED, within=job_types.START_DEADLINE_SECONDS + 5.0)
    assert_failed_retriable(failed, START_DEADLINE_EXCEEDED)
    assert not failed.HasField("start_time")
    deadline_ms = failed.create_time.ToMilliseconds() + job_types.START_DEADLINE_SECONDS * 1000
    assert failed.end_time.ToMilliseconds() >= deadline_ms

    jobs.gate.set()  # the thread it waited for is free: it still must not start
    await wait_for_status(running.stub, blocker, COMPLETED)
    after = await create(running, job_types.SYNC_COMPLETES)
    await wait_for_status(running.stub, after, COMPLETED)
    assert jobs.runs[key.job_instance_id] == 0
    assert await get(running, key) == failed


async def test_a_start_deadline_passing_while_no_process_runs_is_enforced_by_the_next_one(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    first = await start_server(jobs.registry, max_threads=1, shutdown_grace=0.2)
    blocker = await create(first, job_types.GATED_THREAD)
    await wait_for_status(first.stub, blocker, IN_PROGRESS)
    key = await create(first, job_types.MUST_START_SOON)
    created = await get(first, key)
    await first.stop()
    assert created.status == NOT_STARTED
    deadline_ms = created.create_time.ToMilliseconds() + job_types.START_DEADLINE_SECONDS * 1000
    await eventually(lambda: now_ms() > deadline_ms, within=job_types.START_DEADLINE_SECONDS + 1.0, what="the deadline")

    second = await start_server(jobs.registry)
    failed = await get(second, key)  # the start's upkeep ended it before the service answered
    assert_failed_retriable(failed, START_DEADLINE_EXCEEDED)
    assert not failed.HasField("start_time")
    assert jobs.runs[key.job_instance_id] == 0


async def write_running(database: str, *, owner: str, started_ms: int, timeout_ms: int | None) -> pb.JobInstanceKey:
    """An InProgress row claimed by `owner` at started_ms, with a timeout: what a process leaves when it is killed."""
    store = open_store(database)
    await store.open()
    try:
        ids = [str(uuid.uuid4()) for _ in range(4)]
        key = JobKey(ids[0], ids[1], ITEM_TYPE, ids[2], job_types.COMPLETES, ids[3])
        await store.insert(NewJob(key, InvokeType.MANUAL, "{}", started_ms, timeout_ms=timeout_ms))
        moved = await store.transition(
            key, (JobStatus.NOT_STARTED,), JobStatus.IN_PROGRESS, at_ms=started_ms, owner=owner
        )
        assert moved is not None
        assert moved.run_deadline_ms == (None if timeout_ms is None else started_ms + timeout_ms)
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


async def test_a_job_of_a_killed_process_past_its_timeout_ends_timed_out_not_lost(
    jobs: TestJobs, start_server: ServerFactory, database: str
) -> None:
    stale = now_ms() - 60_000
    past_timeout = await write_running(database, owner="killed-process", started_ms=stale, timeout_ms=1_000)
    within_timeout = await write_running(database, owner="killed-process", started_ms=stale, timeout_ms=3_600_000)

    running = await start_server(jobs.registry, lease_seconds=1.0)
    assert_failed_retriable(await wait_for_status(running.stub, past_timeout, FAILED), TIMED_OUT)
    assert_failed_retriable(await wait_for_status(running.stub, within_timeout, FAILED), "JobExecutorLost")


async def test_a_job_long_past_its_timeout_ends_failed_even_while_its_owner_renews_its_lease(
    jobs: TestJobs, start_server: ServerFactory, database: str
) -> None:
    """The safety net: an executor that is alive but never enforced the timeout (an older release, a stalled loop)."""
    running = await start_server(jobs.registry, lease_seconds=0.6, cancel_grace=0.2)
    store = open_store(database)
    await store.open()
    try:
        await store.heartbeat("alive-elsewhere", now_ms())
        key = await write_running(database, owner="alive-elsewhere", started_ms=now_ms(), timeout_ms=200)

        async def timed_out() -> pb.JobInstance | None:
            await store.heartbeat("alive-elsewhere", now_ms())
            job = await get(running, key)
            return job if job.status == FAILED else None

        failed = await eventually(timed_out, within=5.0, what="the job ending Failed")
    finally:
        await store.close()
    assert_failed_retriable(failed, TIMED_OUT)
    assert ran_for(failed) >= 0.2 + 0.2 + 0.6


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"timeout": timedelta(minutes=5), "start_deadline": 90}, (300.0, 90.0)),
        ({"timeout": 0.5}, (0.5, None)),
        ({}, (None, None)),
    ],
)
def test_a_registration_takes_deadlines_as_timedeltas_or_seconds(
    options: dict[str, object], expected: tuple[float | None, float | None]
) -> None:
    registry = JobRegistry()
    registry.job(ITEM_TYPE, "deadlines", **options)(handlers_instant)  # type: ignore[arg-type]
    job_type = registry.get(ITEM_TYPE, "deadlines")
    assert job_type is not None
    assert (job_type.timeout_seconds, job_type.start_deadline_seconds) == expected


@pytest.mark.parametrize("bad", [0, -1, timedelta(0), float("inf"), float("nan"), "10", True])
def test_a_deadline_that_is_not_a_positive_length_of_time_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"timeout of {ITEM_TYPE}/deadlines")):
        JobRegistry().add(ITEM_TYPE, "deadlines", handlers_instant, timeout=bad)  # type: ignore[arg-type]


async def handlers_instant(ctx: object) -> None:
    """A handler for registrations that never run."""
