"""Deadlines on the scale-out engine (PostgreSQL, handlers in `fabric-jobs worker` processes, the JobService in the
test process running none): timeouts told and enforced by the worker, held when the worker is killed past them;
start deadlines enforced by whichever process is alive, the queued procrastinate job removed or skipped."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from fabric_jobs.server.model import now_ms
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.conftest import wait_for_status
from tests.harness import RunningServer, eventually
from tests.processes import stop
from tests.scaleout.conftest import (
    CANCEL_GRACE_SECONDS,
    ServiceFactory,
    WorkerFactory,
    procrastinate_statuses,
)
from tests.scaleout.test_semantics import (
    COMPLETED,
    EXECUTOR_LOST_SECONDS,
    FAILED,
    IN_PROGRESS,
    NOT_STARTED,
    RUN_SECONDS,
    create,
    get,
    seconds,
)

TIMED_OUT = "JobTimedOut"
START_DEADLINE_EXCEEDED = "JobStartDeadlineExceeded"


def assert_failed_retriable(job: pb.JobInstance, error_code: str) -> None:
    assert job.status == FAILED, job
    assert job.error_details.error_code == error_code
    assert not job.error_details.is_permanent
    assert job.error_details.source == pb.ERROR_SOURCE_SYSTEM


async def test_a_job_past_its_timeout_is_told_by_its_worker_and_ends_failed_timed_out(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path
) -> None:
    await start_worker()
    key, _ = await create(service.stub, jobs.TIMES_OUT)

    failed = await wait_for_status(service.stub, key, FAILED, within=RUN_SECONDS + jobs.TIMEOUT_SECONDS)
    assert_failed_retriable(failed, TIMED_OUT)
    ran = seconds(failed.end_time) - seconds(failed.start_time)
    assert jobs.TIMEOUT_SECONDS <= ran < jobs.TIMEOUT_SECONDS + CANCEL_GRACE_SECONDS
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 1


@pytest.mark.slow
async def test_a_thread_ignoring_its_timeout_is_stopped_after_the_grace_and_ends_failed_not_cancelled(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path
) -> None:
    await start_worker()
    key, _ = await create(service.stub, jobs.TIMES_OUT_IGNORING_THREAD)

    failed = await wait_for_status(service.stub, key, FAILED, within=RUN_SECONDS + jobs.TIMEOUT_SECONDS)
    assert_failed_retriable(failed, TIMED_OUT)
    ran = seconds(failed.end_time) - seconds(failed.start_time)
    assert jobs.TIMEOUT_SECONDS + CANCEL_GRACE_SECONDS <= ran < jobs.LONG_SECONDS
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 1


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_job_whose_worker_is_killed_past_its_timeout_ends_timed_out_and_never_runs_again(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path
) -> None:
    doomed = await start_worker("--cancel-grace", "60")  # it would stop the handler by force only in a minute
    key, _ = await create(service.stub, jobs.TIMES_OUT_IGNORING_THREAD)
    running = await wait_for_status(service.stub, key, IN_PROGRESS, within=RUN_SECONDS)
    past_timeout = seconds(running.start_time) + jobs.TIMEOUT_SECONDS + 0.2
    await eventually(lambda: time.time() > past_timeout, within=RUN_SECONDS, what="the run passing its timeout")
    assert (await get(service.stub, key)).status == IN_PROGRESS

    await asyncio.to_thread(stop, doomed, signal.SIGKILL)
    await start_worker()
    failed = await wait_for_status(service.stub, key, FAILED, within=EXECUTOR_LOST_SECONDS)

    assert_failed_retriable(failed, TIMED_OUT)
    assert failed.start_time == running.start_time
    later, _ = await create(service.stub, jobs.QUICK)
    await wait_for_status(service.stub, later, COMPLETED, within=RUN_SECONDS)
    assert jobs.read_run_log(run_log) == {key.job_instance_id: 1, later.job_instance_id: 1}


async def past_start_deadline(job: pb.JobInstance) -> None:
    deadline = seconds(job.create_time) + jobs.START_DEADLINE_SECONDS
    await eventually(
        lambda: now_ms() / 1000 > deadline, within=jobs.START_DEADLINE_SECONDS + 1.0, what="the start deadline"
    )


async def test_a_start_deadline_passing_while_no_worker_runs_ends_the_job_and_unqueues_it(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path, postgres_url: str
) -> None:
    key, created = await create(service.stub, jobs.MUST_START_SOON)
    assert created.job_instance.status == NOT_STARTED
    assert await procrastinate_statuses(postgres_url, key) == ["todo"]

    failed = await wait_for_status(service.stub, key, FAILED, within=jobs.START_DEADLINE_SECONDS + RUN_SECONDS)
    assert_failed_retriable(failed, START_DEADLINE_EXCEEDED)
    assert not failed.HasField("start_time")
    assert seconds(failed.end_time) >= seconds(failed.create_time) + jobs.START_DEADLINE_SECONDS
    assert await procrastinate_statuses(postgres_url, key) == []  # deleted in the statement that ended the job

    await start_worker()
    later, _ = await create(service.stub, jobs.QUICK)
    await wait_for_status(service.stub, later, COMPLETED, within=RUN_SECONDS)
    assert await get(service.stub, key) == failed
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 0


async def test_a_start_deadline_passing_while_no_process_runs_is_enforced_by_the_next_worker(
    start_service: ServiceFactory, start_worker: WorkerFactory, run_log: Path, postgres_url: str
) -> None:
    first = await start_service()
    key, created = await create(first.stub, jobs.MUST_START_SOON)
    await first.stop()
    await past_start_deadline(created.job_instance)

    await start_worker()  # it may fetch the queued job before its upkeep ends it: its claim refuses to start it

    async def unqueued() -> bool:
        return await procrastinate_statuses(postgres_url, key) == []

    await eventually(unqueued, within=RUN_SECONDS, what="the job's procrastinate job gone")
    second = await start_service()
    failed = await get(second.stub, key)
    assert_failed_retriable(failed, START_DEADLINE_EXCEEDED)
    assert not failed.HasField("start_time")
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 0
