"""SIGTERM to real processes: handlers are told at the start of --shutdown-grace, a job that stops within it ends as
its handler ends it, only what still runs at its end is JobExecutorLost, and the process exits once nothing runs."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import grpc
import pytest

from fabric_jobs.server.backend import open_store
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import shutdown_jobs as jobs
from tests.conftest import new_key, wait_for_status
from tests.processes import REPOSITORY_ROOT, STARTUP_SECONDS, Serve, kill_if_running, launch

LONG_GRACE = "60"
"""Long enough that a process still waiting for it when the test stops waiting is plainly wrong."""
EXITED_WITHIN = 20.0
"""How long the test waits for the exit: a third of LONG_GRACE, generous on a loaded machine."""


def start_serve(database: str, *options: str) -> Serve:
    args = ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--database", database]
    return launch([*args, "--jobs", "tests.shutdown_jobs:registry", *options], grpc=True, cwd=REPOSITORY_ROOT)


async def start_running(serve: Serve, job_type: str) -> pb.JobInstanceKey:
    key = new_key(jobs.ITEM_TYPE, job_type)
    async with grpc.aio.insecure_channel(serve.grpc_address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
        await wait_for_status(stub, key, pb.JOB_INSTANCE_STATUS_IN_PROGRESS, within=STARTUP_SECONDS)
    return key


async def cancel(serve: Serve, key: pb.JobInstanceKey) -> None:
    async with grpc.aio.insecure_channel(serve.grpc_address) as channel:
        answer = await pb_grpc.JobServiceStub(channel).CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    assert answer.job_instance.status == pb.JOB_INSTANCE_STATUS_IN_PROGRESS, "the handler was to ignore its cancel"


def terminate(serve: Serve, within: float) -> str:
    """SIGTERM, then wait up to `within` seconds for the exit (failing if it does not come); the whole output."""
    serve.process.terminate()
    try:
        serve.process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        kill_if_running(serve)
        pytest.fail(f"still running {within:.0f}s after SIGTERM with nothing left to run:\n{serve.text()}")
    serve.reader.join(timeout=STARTUP_SECONDS)
    assert serve.process.returncode == 0, serve.text()
    return serve.text()


async def stored(database: str, key: pb.JobInstanceKey) -> JobRecord:
    store = open_store(database)
    await store.open()
    try:
        record = await store.get(
            JobKey(key.tenant_id, key.workspace_id, key.item_type, key.item_id, key.job_type, key.job_instance_id)
        )
    finally:
        await store.close()
    assert record is not None
    return record


def outcome(record: JobRecord) -> tuple[JobStatus, str | None, bool | None]:
    if record.error is None:
        return record.status, None, None
    return record.status, record.error.error_code, record.error.is_permanent


async def test_handlers_are_told_at_once_and_the_process_exits_when_they_have_stopped(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    serve = start_serve(database, "--shutdown-grace", LONG_GRACE, "--cancel-grace", LONG_GRACE)
    try:
        honouring = await start_running(serve, jobs.HONOURS)
        in_thread = await start_running(serve, jobs.HONOURS_THREAD)
        failing = await start_running(serve, jobs.FAILS_ON_SHUTDOWN)
        output = await asyncio.to_thread(terminate, serve, EXITED_WITHIN)
    finally:
        kill_if_running(serve)

    interrupted = (JobStatus.FAILED, "JobInterrupted", False)
    assert outcome(await stored(database, honouring)) == interrupted, output
    assert outcome(await stored(database, in_thread)) == interrupted, output
    assert outcome(await stored(database, failing)) == (JobStatus.FAILED, "Checkpointed", False), output


async def test_at_the_end_of_the_grace_a_cancelled_job_is_cancelled_and_the_rest_lost(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    serve = start_serve(database, "--shutdown-grace", "1", "--cancel-grace", LONG_GRACE, "--cancel-wait", "0.1")
    try:
        cancelled = await start_running(serve, jobs.IGNORES)
        lost = await start_running(serve, jobs.IGNORES)
        await cancel(serve, cancelled)
        output = await asyncio.to_thread(terminate, serve, EXITED_WITHIN)
    finally:
        kill_if_running(serve)

    assert outcome(await stored(database, cancelled)) == (JobStatus.CANCELLED, None, None), output
    assert outcome(await stored(database, lost)) == (JobStatus.FAILED, "JobExecutorLost", False), output
