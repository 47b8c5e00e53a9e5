"""Every row of DESIGN.md's job instance semantics, over gRPC on PostgreSQL, the handlers running in
`fabric-jobs worker` processes and the JobService (which runs none) in the test process."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from fabric_jobs.server.execution.on_procrastinate import LOST_DEFER_AFTER_MS
from fabric_jobs.v1 import admin_service_pb2, admin_service_pb2_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import jobs
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import RunningServer, eventually
from tests.processes import stop
from tests.scaleout.conftest import (
    CANCEL_GRACE_SECONDS,
    LEASE_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    ServiceFactory,
    WorkerFactory,
    key_text,
    procrastinate_statuses,
)

NOT_STARTED = pb.JOB_INSTANCE_STATUS_NOT_STARTED
IN_PROGRESS = pb.JOB_INSTANCE_STATUS_IN_PROGRESS
COMPLETED = pb.JOB_INSTANCE_STATUS_COMPLETED
FAILED = pb.JOB_INSTANCE_STATUS_FAILED
CANCELLED = pb.JOB_INSTANCE_STATUS_CANCELLED

RUN_SECONDS = 10.0
"""How long a job may take to be picked up and run by a worker on a busy machine."""
EXECUTOR_LOST_SECONDS = 20.0
"""A killed worker's job ends Failed within the lease (2 s) and an upkeep interval; polled up to this."""
LOST_DEFER_SECONDS = LOST_DEFER_AFTER_MS / 1000 + LEASE_SECONDS / 3
"""A stored job without a queued procrastinate job is queued again by the next upkeep after this age."""
NOTIFY_SECONDS = 0.5
"""A change made by a worker reaches a Watch in this process within this, far below the 30 s safety poll
(and below the 1 s poll of a listener that lost its connection)."""
WATCHED_JOBS = 3
"""Six changes watched, so that a 1 s poll is unlikely to bring all of them within NOTIFY_SECONDS by chance."""


def payload(**fields: Any) -> str:
    return json.dumps(fields)


async def create(
    stub: pb_grpc.JobServiceAsyncStub, job_type: str, **fields: Any
) -> tuple[pb.JobInstanceKey, pb.CreateJobInstanceResponse]:
    key = new_key(jobs.ITEM_TYPE, job_type)
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=payload(**fields)
    )
    return key, await stub.CreateJobInstance(request)


async def get(stub: pb_grpc.JobServiceAsyncStub, key: pb.JobInstanceKey) -> pb.JobInstance:
    return (await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance


async def cancel(stub: pb_grpc.JobServiceAsyncStub, key: pb.JobInstanceKey) -> pb.JobInstance:
    return (await stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance


async def watch(stub: pb_grpc.JobServiceAsyncStub, key: pb.JobInstanceKey) -> list[tuple[float, pb.JobInstance]]:
    """Every state the Watch sends until the job is terminal, each with the wall-clock time it arrived."""
    stream = stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    return [(time.time(), reply.job_instance) async for reply in stream]


async def forget_queued_job(url: str, key: pb.JobInstanceKey) -> None:
    """What a crash between storing a job and queueing it leaves: the row without its procrastinate job."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("DELETE FROM procrastinate_jobs WHERE queueing_lock = %s", (key_text(key),))


def seconds(timestamp: Any) -> float:
    return float(timestamp.ToMilliseconds()) / 1000


async def handler_never_ran(postgres_url: str, run_log: Path, key: pb.JobInstanceKey) -> None:
    """Wait until no procrastinate job carries `key` any more (a worker took it and let it go), then check
    that its handler never started."""

    async def gone() -> bool:
        return not any(status in ("todo", "doing") for status in await procrastinate_statuses(postgres_url, key))

    await eventually(gone, within=RUN_SECONDS, what=f"a worker taking job {key.job_instance_id}")
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 0


async def test_create_queues_then_runs_then_completes(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path
) -> None:
    key, created = await create(service.stub, jobs.QUICK, delaySeconds=0.5)
    assert created.created
    assert created.job_instance.status == NOT_STARTED
    assert not created.job_instance.HasField("start_time")
    assert not created.job_instance.HasField("end_time")
    watching = asyncio.ensure_future(watch(service.stub, key))
    await start_worker()

    seen = [job for _, job in await asyncio.wait_for(watching, RUN_SECONDS)]
    assert [job.status for job in seen] == [NOT_STARTED, IN_PROGRESS, COMPLETED]
    in_progress, completed = seen[1], seen[2]
    assert in_progress.HasField("start_time")
    assert not in_progress.HasField("end_time")
    assert completed.start_time == in_progress.start_time
    assert seconds(completed.end_time) - seconds(completed.start_time) >= 0.5
    assert not completed.HasField("error_details")
    assert await get(service.stub, key) == completed
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 1


async def test_watch_sees_a_workers_changes_at_once(service: RunningServer, start_worker: WorkerFactory) -> None:
    await start_worker()

    async def watch_one() -> list[tuple[float, pb.JobInstance]]:
        key, _ = await create(service.stub, jobs.QUICK, delaySeconds=1.0)
        return await watch(service.stub, key)

    for seen in await asyncio.wait_for(asyncio.gather(*(watch_one() for _ in range(WATCHED_JOBS))), RUN_SECONDS):
        statuses = [job.status for _, job in seen]
        assert statuses[-2:] == [IN_PROGRESS, COMPLETED], statuses
        (started_seen, started), (ended_seen, ended) = seen[-2:]
        assert started_seen - seconds(started.start_time) < NOTIFY_SECONDS
        assert ended_seen - seconds(ended.end_time) < NOTIFY_SECONDS


async def test_the_same_request_again_creates_nothing_and_runs_nothing_twice(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path
) -> None:
    key, first = await create(service.stub, jobs.QUICK)
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=payload()
    )
    again = await service.stub.CreateJobInstance(request)
    assert not again.created
    assert again.job_instance == first.job_instance

    await start_worker()
    completed = await wait_for_status(service.stub, key, COMPLETED, within=RUN_SECONDS)
    after = await service.stub.CreateJobInstance(request)
    assert not after.created
    assert after.job_instance == completed

    later, _ = await create(service.stub, jobs.QUICK)
    await wait_for_status(service.stub, later, COMPLETED, within=RUN_SECONDS)
    assert jobs.read_run_log(run_log) == {key.job_instance_id: 1, later.job_instance_id: 1}
    assert await get(service.stub, key) == completed


async def test_a_different_request_for_an_existing_key_is_already_exists(service: RunningServer) -> None:
    key, first = await create(service.stub, jobs.QUICK, delaySeconds=1)
    different = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=payload(delaySeconds=2)
    )
    err = await rpc_error(service.stub.CreateJobInstance(different))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert status_details(err).reason == "JobInstanceConflict"
    other_invoke_type = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_SCHEDULED, creation_payload_json=payload(delaySeconds=1)
    )
    assert (await rpc_error(service.stub.CreateJobInstance(other_invoke_type))).code() == grpc.StatusCode.ALREADY_EXISTS
    assert await get(service.stub, key) == first.job_instance


async def test_an_unregistered_job_type_is_failed_precondition_and_nothing_is_stored(service: RunningServer) -> None:
    key = new_key(jobs.ITEM_TYPE, "notRegistered")
    request = pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
    err = await rpc_error(service.stub.CreateJobInstance(request))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status_details(err).reason == "UnsupportedJobType"
    assert (await rpc_error(get(service.stub, key))).code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("call", ["get", "cancel"])
async def test_get_and_cancel_of_an_unknown_key_are_not_found(service: RunningServer, call: str) -> None:
    key = new_key(jobs.ITEM_TYPE, jobs.QUICK)
    err = await rpc_error(get(service.stub, key) if call == "get" else cancel(service.stub, key))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert status_details(err).reason == "JobInstanceNotFound"
    assert status_details(err).error.error_code == "JobInstanceNotFound"


async def test_cancel_of_a_not_started_job_cancels_it_and_its_handler_never_starts(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path, postgres_url: str
) -> None:
    key, _ = await create(service.stub, jobs.QUICK)
    cancelled = await cancel(service.stub, key)
    assert cancelled.status == CANCELLED
    assert cancelled.HasField("end_time")
    assert not cancelled.HasField("start_time")

    await start_worker()
    await handler_never_ran(postgres_url, run_log, key)
    assert await get(service.stub, key) == cancelled


@pytest.mark.parametrize("job_type", [jobs.COOPERATES, jobs.COOPERATES_THREAD])
async def test_cancel_of_a_cooperative_running_job_answers_cancelled(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path, job_type: str
) -> None:
    await start_worker()
    key, _ = await create(service.stub, job_type)
    running = await wait_for_status(service.stub, key, IN_PROGRESS, within=RUN_SECONDS)

    asked = time.monotonic()
    answer = await cancel(service.stub, key)
    assert time.monotonic() - asked < service.settings.cancel_wait + 1.0
    assert answer.status == CANCELLED, answer
    assert answer.start_time == running.start_time
    assert seconds(answer.end_time) >= seconds(answer.start_time)
    assert answer.cancel_requested
    assert await get(service.stub, key) == answer
    assert jobs.read_run_log(run_log)[key.job_instance_id] == 1


@pytest.mark.slow
@pytest.mark.parametrize("job_type", [jobs.IGNORES_CANCEL, jobs.IGNORES_CANCEL_THREAD])
async def test_a_handler_ignoring_its_token_is_stopped_after_the_grace_and_ends_cancelled(
    service: RunningServer, start_worker: WorkerFactory, job_type: str
) -> None:
    await start_worker()
    key, _ = await create(service.stub, job_type)
    await wait_for_status(service.stub, key, IN_PROGRESS, within=RUN_SECONDS)

    answer = await cancel(service.stub, key)
    assert answer.status == IN_PROGRESS, answer
    assert answer.cancel_requested
    assert not answer.HasField("end_time")
    cancelled = await wait_for_status(service.stub, key, CANCELLED, within=RUN_SECONDS)
    stopped_after = seconds(cancelled.end_time) - seconds(cancelled.start_time)
    assert stopped_after >= CANCEL_GRACE_SECONDS
    assert stopped_after < jobs.LONG_SECONDS


async def test_cancel_of_a_terminal_job_changes_nothing_and_repeats_its_answer(
    service: RunningServer, start_worker: WorkerFactory
) -> None:
    await start_worker()
    completed_key, _ = await create(service.stub, jobs.QUICK)
    completed = await wait_for_status(service.stub, completed_key, COMPLETED, within=RUN_SECONDS)
    assert await cancel(service.stub, completed_key) == completed
    assert await cancel(service.stub, completed_key) == completed
    assert await get(service.stub, completed_key) == completed

    cancelled_key, _ = await create(service.stub, jobs.COOPERATES)
    await wait_for_status(service.stub, cancelled_key, IN_PROGRESS, within=RUN_SECONDS)
    first = await cancel(service.stub, cancelled_key)
    assert first.status == CANCELLED
    assert await cancel(service.stub, cancelled_key) == first
    assert await get(service.stub, cancelled_key) == first


async def test_a_raising_handler_ends_failed_with_error_details(
    service: RunningServer, start_worker: WorkerFactory
) -> None:
    await start_worker()
    raised_key, _ = await create(service.stub, jobs.CRASHES)
    raised = await wait_for_status(service.stub, raised_key, FAILED, within=RUN_SECONDS)
    assert raised.error_details.error_code == "JobExecutionFailed"
    assert raised.error_details.source == pb.ERROR_SOURCE_SYSTEM
    assert "RuntimeError" in raised.error_details.message
    assert raised.HasField("start_time")
    assert raised.HasField("end_time")

    failed_key, _ = await create(service.stub, jobs.FAILS)
    failed = await wait_for_status(service.stub, failed_key, FAILED, within=RUN_SECONDS)
    assert failed.error_details.error_code == jobs.FAILED_ERROR_CODE
    assert failed.error_details.source == pb.ERROR_SOURCE_EXTERNAL
    assert not failed.error_details.is_permanent
    assert list(failed.error_details.message_parameters) == ["x"]


async def test_a_not_started_job_survives_a_restart_and_runs_once_a_worker_comes(
    start_service: ServiceFactory, start_worker: WorkerFactory, run_log: Path
) -> None:
    first = await start_service()
    key, created = await create(first.stub, jobs.QUICK)
    assert created.job_instance.status == NOT_STARTED
    await first.stop()

    second = await start_service()
    assert await get(second.stub, key) == created.job_instance
    await start_worker()
    completed = await wait_for_status(second.stub, key, COMPLETED, within=RUN_SECONDS)
    assert completed.HasField("start_time")
    assert jobs.read_run_log(run_log) == {key.job_instance_id: 1}


@pytest.mark.slow
async def test_a_stored_job_whose_queueing_was_lost_is_queued_again_and_runs(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path, postgres_url: str
) -> None:
    key, _ = await create(service.stub, jobs.QUICK)
    assert await procrastinate_statuses(postgres_url, key) == ["todo"]
    await forget_queued_job(postgres_url, key)

    await start_worker()
    await wait_for_status(service.stub, key, COMPLETED, within=LOST_DEFER_SECONDS + RUN_SECONDS)
    assert jobs.read_run_log(run_log) == {key.job_instance_id: 1}


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_job_of_a_killed_worker_ends_failed_retriable_and_never_runs_again(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path
) -> None:
    doomed = await start_worker()
    key, _ = await create(service.stub, jobs.COOPERATES)
    running = await wait_for_status(service.stub, key, IN_PROGRESS, within=RUN_SECONDS)
    await start_worker()

    killed_at = time.time()
    await asyncio.to_thread(stop, doomed, signal.SIGKILL)
    assert doomed.process.returncode == -signal.SIGKILL
    failed = await wait_for_status(service.stub, key, FAILED, within=EXECUTOR_LOST_SECONDS)

    assert failed.error_details.error_code == "JobExecutorLost"
    assert not failed.error_details.is_permanent
    assert failed.start_time == running.start_time
    assert seconds(failed.end_time) - killed_at < LEASE_SECONDS + 2 * LEASE_SECONDS / 3 + 2.0
    later, _ = await create(service.stub, jobs.QUICK)
    await wait_for_status(service.stub, later, COMPLETED, within=RUN_SECONDS)
    assert jobs.read_run_log(run_log) == {key.job_instance_id: 1, later.job_instance_id: 1}
    assert await get(service.stub, key) == failed
    assert await history(service, key) == [
        (NOT_STARTED, running.create_time.ToMilliseconds()),
        (IN_PROGRESS, running.start_time.ToMilliseconds()),
        (FAILED, failed.end_time.ToMilliseconds()),
    ]


@pytest.mark.slow
async def test_sigterm_tells_handlers_then_records_what_outlives_the_grace_failed_retriable(
    service: RunningServer, start_worker: WorkerFactory
) -> None:
    worker = await start_worker()
    long_key, _ = await create(service.stub, jobs.IGNORES_CANCEL)
    told_key, _ = await create(service.stub, jobs.COOPERATES)
    short_key, _ = await create(service.stub, jobs.QUICK, delaySeconds=SHUTDOWN_GRACE_SECONDS / 2)
    for key in (long_key, told_key, short_key):
        await wait_for_status(service.stub, key, IN_PROGRESS, within=RUN_SECONDS)

    terminated_at = time.time()
    output = await asyncio.to_thread(stop, worker)
    assert worker.process.returncode == 0, output

    interrupted = await get(service.stub, long_key)
    assert interrupted.status == FAILED, interrupted
    assert [status for status, _ in await history(service, long_key)] == [NOT_STARTED, IN_PROGRESS, FAILED]
    assert interrupted.error_details.error_code == "JobExecutorLost"
    assert not interrupted.error_details.is_permanent
    assert seconds(interrupted.end_time) - terminated_at >= SHUTDOWN_GRACE_SECONDS - 0.01
    told = await get(service.stub, told_key)
    assert (told.status, told.error_details.error_code, told.error_details.is_permanent) == (
        FAILED,
        "JobInterrupted",
        False,
    )
    finished = await get(service.stub, short_key)
    assert finished.status == COMPLETED, finished


@pytest.mark.slow
async def test_a_worker_keeps_its_heartbeat_through_a_grace_longer_than_the_lease(
    service: RunningServer, start_worker: WorkerFactory
) -> None:
    """Replicas must not take a stopping worker for a dead one: its job ends as the worker records it, and the
    worker logs no error (procrastinate's finish of a job a replica had failed was an ERROR with a traceback)."""
    grace = 3 * LEASE_SECONDS
    worker = await start_worker("--shutdown-grace", str(grace))
    key, _ = await create(service.stub, jobs.IGNORES_CANCEL)
    await wait_for_status(service.stub, key, IN_PROGRESS, within=RUN_SECONDS)

    stopped_output = await asyncio.to_thread(stop, worker)
    assert worker.process.returncode == 0, stopped_output

    ended = await get(service.stub, key)
    assert ended.status == FAILED, ended
    assert "the service shut down" in ended.error_details.message, ended
    output = worker.text()
    assert " ERROR " not in output, output
    assert "Traceback" not in output, output


async def test_cancel_from_a_second_replica_reaches_the_worker(
    start_service: ServiceFactory, start_worker: WorkerFactory
) -> None:
    first = await start_service()
    second = await start_service()
    await start_worker()
    key, _ = await create(first.stub, jobs.COOPERATES)
    await wait_for_status(first.stub, key, IN_PROGRESS, within=RUN_SECONDS)
    answer = await cancel(second.stub, key)
    assert answer.status == CANCELLED
    assert await get(first.stub, key) == answer


async def history(service: RunningServer, key: pb.JobInstanceKey) -> list[tuple[int, int]]:
    """The job's transitions as the AdminService tells them: (status, time in ms)."""
    admin = admin_service_pb2_grpc.AdminServiceStub(service.channel)
    reply = await admin.ListJobInstanceTransitions(admin_service_pb2.ListJobInstanceTransitionsRequest(key=key))
    return [(step.status, step.time.ToMilliseconds()) for step in reply.transitions]
