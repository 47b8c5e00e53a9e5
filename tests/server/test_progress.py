"""Progress: ctx.report_progress from async and thread handlers reaches GetJobInstance and Watch, coalesced to one
write per interval with the last report always kept, never in the job's history, never winning over a cancel or an
end; on SQLite and PostgreSQL alike, in the store and through a real JobService."""

# ruff: noqa: F811 (the store fixtures of test_store, imported, are this module's test parameters)
from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fabric_jobs import JobContext
from fabric_jobs.cancellation import CancellationToken
from fabric_jobs.registry import MAX_PROGRESS_MESSAGE_LENGTH
from fabric_jobs.server.lifecycle.retention import purge
from fabric_jobs.server.model import InvokeType, JobKey, JobStatus, Progress
from fabric_jobs.server.store import JobFilter, JobStore
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import jobs
from tests.conftest import ServerFactory, new_key, wait_for_status
from tests.harness import assert_reports_coalesced, eventually
from tests.server.store_data import (
    CANCELLED,
    COMPLETED,
    IN_PROGRESS,
    insert,
    job_key,
    run_sql,
    sqlite_url,
    start,
)
from tests.server.test_store import dialect, store, store_url  # noqa: F401 (fixtures)

INTERVAL = 0.2
"""The progress interval of the service tests: short, so that they run fast; long against a tight loop."""
IN_PROGRESS_PB = pb.JOB_INSTANCE_STATUS_IN_PROGRESS
COMPLETED_PB = pb.JOB_INSTANCE_STATUS_COMPLETED
CANCELLED_PB = pb.JOB_INSTANCE_STATUS_CANCELLED
FAILED_PB = pb.JOB_INSTANCE_STATUS_FAILED


@pytest.fixture
def database(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The service tests' database (tests/conftest.py's start_server takes it): SQLite, then PostgreSQL."""
    if dialect == "sqlite":
        return sqlite_url(tmp_path / "jobs.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


async def progress_rows(url: str, key: JobKey) -> int:
    rows = await run_sql(
        url, f"SELECT count(*) FROM job_transitions WHERE job_instance_id = '{key.job_instance_id}' AND progress"
    )
    count: int = rows[0][0]
    return count


# --- in the store ---------------------------------------------------------------------------------------------


async def test_a_report_replaces_the_progress_and_bumps_the_version_without_touching_the_status(
    store: JobStore, store_url: str
) -> None:
    key = job_key()
    await insert(store, key)
    started = await start(store, key, owner="worker-a")

    first = await store.report_progress(key, "worker-a", Progress(12.5, "reading", 2_100))
    second = await store.report_progress(key, "worker-a", Progress(None, "writing", 2_200))

    assert first is not None
    assert second is not None
    assert first.progress == Progress(12.5, "reading", 2_100)
    assert second.progress == Progress(None, "writing", 2_200)
    assert (first.version, second.version) == (started.version + 1, started.version + 2)
    assert second.status is IN_PROGRESS
    assert not second.cancel_requested
    assert await store.get(key) == second
    assert [step.status for step in await store.transitions(key)] == [JobStatus.NOT_STARTED, IN_PROGRESS]
    assert await progress_rows(store_url, key) == 1, "each report replaces the job's progress row of the feed"


async def test_the_change_feed_carries_a_report(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)
    seq = await store.last_change_seq()

    await store.report_progress(key, "worker-a", Progress(40.0, "", 2_100))

    changes = await store.changes_after(seq, 10)
    assert [record.progress for _, record in changes] == [Progress(40.0, "", 2_100)]


async def test_a_report_is_dropped_unless_the_job_runs_on_the_executor_that_reports(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)
    assert await store.report_progress(key, "worker-a", Progress(1.0, "early", 1_500)) is None
    await start(store, key, owner="worker-a")
    assert await store.report_progress(key, "worker-b", Progress(2.0, "stranger", 2_100)) is None
    kept = await store.report_progress(key, "worker-a", Progress(99.0, "nearly", 2_200))
    assert kept is not None

    ended = await store.transition(key, {IN_PROGRESS}, COMPLETED, at_ms=2_300)
    assert ended is not None
    assert ended.progress == kept.progress

    assert await store.report_progress(key, "worker-a", Progress(100.0, "late", 2_400)) is None
    assert await store.get(key) == ended


async def test_cancel_and_end_never_lose_to_reports_racing_them(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key, owner="worker-a")
    written: list[int] = []
    ended = asyncio.Event()

    async def report_until_ended() -> None:
        step = 0
        while not ended.is_set() or step < 5:
            step += 1
            record = await store.report_progress(key, "worker-a", Progress(step % 100, f"step {step}", 2_000 + step))
            if record is not None:
                assert record.status is IN_PROGRESS
                written.append(record.version)
            elif ended.is_set():
                return
            await asyncio.sleep(0)  # the SQLite store answers without yielding: let the cancel in

    async def cancel_then_end() -> None:
        await asyncio.sleep(0.05)
        asked = await store.cancel(key, 3_000)
        assert asked is not None
        assert asked.status is IN_PROGRESS
        assert asked.cancel_requested
        final = await store.transition(key, {IN_PROGRESS}, CANCELLED, at_ms=3_100)
        assert final is not None, "the end lost to a progress report"
        ended.set()

    await asyncio.gather(report_until_ended(), cancel_then_end())

    final = await store.get(key)
    assert final is not None
    assert final.status is CANCELLED
    assert final.cancel_requested
    assert final.version == 2 + len(written) + 2, "every change counted once: reports, cancel asked, the end"
    assert max(written) < final.version


async def test_a_purged_job_takes_its_progress_row_along(store: JobStore, store_url: str) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)
    await store.report_progress(key, "worker-a", Progress(50.0, "half", 2_100))
    await store.transition(key, {IN_PROGRESS}, COMPLETED, at_ms=2_200)

    assert await purge(store, JobFilter(), 5_000) == 1
    assert await progress_rows(store_url, key) == 0


# --- the handler's API -----------------------------------------------------------------------------------------


def context(sink: list[tuple[float | None, str]] | None = None) -> JobContext:
    reports = sink if sink is not None else []
    return JobContext(
        key=JobKey("t", "w", "I", "i", "j", "x"),
        invoke_type=InvokeType.MANUAL,
        payload={},
        cancellation=CancellationToken(),
        logger=logging.getLogger("test"),
        progress_sink=lambda percent, message: reports.append((percent, message)),
    )


@pytest.mark.parametrize(
    ("percent", "message", "says"),
    [
        (None, None, "a percent, a message or both"),
        (None, "", "a percent, a message or both"),
        (-0.5, None, "from 0 to 100"),
        (100.01, None, "from 0 to 100"),
        (math.nan, None, "from 0 to 100"),
        (math.inf, "x", "from 0 to 100"),
        (True, None, "a number"),
        ("50", None, "a number"),
        (50, 7, "text"),
        (50, "x" * (MAX_PROGRESS_MESSAGE_LENGTH + 1), f"at most {MAX_PROGRESS_MESSAGE_LENGTH} characters"),
    ],
)
def test_a_bad_report_raises_value_error_and_goes_nowhere(percent: object, message: object, says: str) -> None:
    reports: list[tuple[float | None, str]] = []
    with pytest.raises(ValueError, match=says):
        context(reports).report_progress(percent, message)  # type: ignore[arg-type]
    assert reports == []


def test_a_good_report_reaches_the_sink_as_stored() -> None:
    reports: list[tuple[float | None, str]] = []
    ctx = context(reports)
    ctx.report_progress(0)
    ctx.report_progress(100, "x" * MAX_PROGRESS_MESSAGE_LENGTH)
    ctx.report_progress(message="only words")
    assert reports == [(0.0, ""), (100.0, "x" * MAX_PROGRESS_MESSAGE_LENGTH), (None, "only words")]


def test_a_context_made_by_hand_checks_reports_and_drops_them() -> None:
    ctx = JobContext(
        JobKey("t", "w", "I", "i", "j", "x"), InvokeType.MANUAL, {}, CancellationToken(), logging.getLogger()
    )
    ctx.report_progress(10, "fine")
    with pytest.raises(ValueError, match="from 0 to 100"):
        ctx.report_progress(200)


# --- through a JobService ----------------------------------------------------------------------------------------


async def create(stub: pb_grpc.JobServiceAsyncStub, job_type: str, payload: object) -> pb.JobInstanceKey:
    key = new_key(jobs.ITEM_TYPE, job_type)
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=json.dumps(payload)
    )
    await stub.CreateJobInstance(request)
    return key


async def watch(stub: pb_grpc.JobServiceAsyncStub, key: pb.JobInstanceKey) -> AsyncIterator[pb.JobInstance]:
    async for change in stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key)):
        yield change.job_instance


@pytest.mark.parametrize("job_type", [jobs.REPORTS_PROGRESS, jobs.REPORTS_PROGRESS_THREAD])
async def test_progress_from_a_handler_reaches_a_watcher_and_get_and_stays_after_a_cancel(
    start_server: ServerFactory, job_type: str
) -> None:
    running = await start_server(jobs.registry, progress_interval=INTERVAL)
    key = await create(running.stub, job_type, {"reports": [[10, "loading"], [62.5, "crunching numbers"]]})
    seen: list[pb.JobInstance] = []

    async with asyncio.timeout(10):
        async for job in watch(running.stub, key):
            seen.append(job)
            if job.HasField("progress") and job.progress.message == "crunching numbers":
                break
    live = seen[-1]
    assert live.status == IN_PROGRESS_PB
    assert (live.progress.percent, live.progress.message) == (62.5, "crunching numbers")
    assert live.progress.update_time.ToMilliseconds() >= live.start_time.ToMilliseconds()
    got = (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance
    assert got.progress == live.progress
    assert all(not job.HasField("progress") for job in seen if job.status != IN_PROGRESS_PB)

    ended = (await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance
    ended = await wait_for_status(running.stub, key, CANCELLED_PB) if ended.status != CANCELLED_PB else ended
    assert ended.progress == live.progress, "the progress stays with the job once it ended"


async def test_a_report_of_only_a_message_has_no_percent(start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, progress_interval=INTERVAL)
    key = await create(running.stub, jobs.REPORTS_PROGRESS, {"reports": [[None, "counting rows"]], "delaySeconds": 0})

    done = await wait_for_status(running.stub, key, COMPLETED_PB)

    assert done.progress.message == "counting rows"
    assert not done.progress.HasField("percent")


@pytest.mark.parametrize("job_type", [jobs.FLOODS_PROGRESS, jobs.FLOODS_PROGRESS_THREAD])
async def test_a_tight_loop_of_reports_costs_one_write_per_interval_and_its_last_report_is_kept(
    start_server: ServerFactory, database: str, job_type: str
) -> None:
    running = await start_server(jobs.registry, progress_interval=INTERVAL)
    count = 20_000
    key = await create(running.stub, job_type, {"count": count})

    done = await wait_for_status(running.stub, key, COMPLETED_PB, within=30)

    assert (done.progress.percent, done.progress.message) == (jobs.FINAL_PERCENT, jobs.FINAL_MESSAGE)
    await assert_reports_coalesced(database, done, INTERVAL)
    admin = admin_grpc.AdminServiceStub(running.channel)
    history = await admin.ListJobInstanceTransitions(admin_pb.ListJobInstanceTransitionsRequest(key=key))
    assert [step.status for step in history.transitions] == [
        pb.JOB_INSTANCE_STATUS_NOT_STARTED,
        IN_PROGRESS_PB,
        COMPLETED_PB,
    ], "progress is not a step of the history"


async def test_a_bad_report_fails_the_handler_that_made_it(start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, progress_interval=INTERVAL)
    bad = await create(running.stub, jobs.BAD_PROGRESS, {"percent": 101})
    good = await create(running.stub, jobs.BAD_PROGRESS, {"percent": 5, "message": "fine"})

    failed = await wait_for_status(running.stub, bad, FAILED_PB)
    completed = await wait_for_status(running.stub, good, COMPLETED_PB)

    assert failed.error_details.error_code == "JobExecutionFailed"
    assert not failed.HasField("progress")
    assert (completed.progress.percent, completed.progress.message) == (5.0, "fine")


async def test_the_admin_change_watch_sees_progress(start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, progress_interval=INTERVAL)
    admin = admin_grpc.AdminServiceStub(running.channel)
    stream = admin.WatchJobInstanceChanges(admin_pb.WatchJobInstanceChangesRequest())
    await stream.initial_metadata()
    key = await create(running.stub, jobs.REPORTS_PROGRESS_THREAD, {"reports": [[33, "a third"]]})

    async def progress_seen() -> pb.JobInstance:
        async with asyncio.timeout(10):
            async for change in stream:
                job = change.job_instance
                if job.key == key and job.progress.message == "a third":
                    return job
        raise AssertionError("the change watch ended")

    job = await progress_seen()
    stream.cancel()
    assert job.status == IN_PROGRESS_PB
    assert job.progress.percent == 33
    await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    await wait_for_status(running.stub, key, CANCELLED_PB)


async def test_a_handler_flooding_progress_and_ignoring_its_cancel_still_ends_cancelled(
    start_server: ServerFactory,
) -> None:
    running = await start_server(jobs.registry, progress_interval=INTERVAL)
    key = await create(running.stub, jobs.FLOODS_PROGRESS_THREAD, {"count": 10**12})

    async def reporting() -> pb.JobInstance | None:
        job = (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance
        return job if job.progress.message.startswith("step ") else None

    await eventually(reporting, what="the handler's progress")
    await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    ended = await wait_for_status(running.stub, key, CANCELLED_PB, within=10)  # stopped by force after the grace

    assert ended.progress.message.startswith("step ")
    history = await admin_grpc.AdminServiceStub(running.channel).ListJobInstanceTransitions(
        admin_pb.ListJobInstanceTransitionsRequest(key=key)
    )
    assert history.job_instance.status == CANCELLED_PB
    assert [step.status for step in history.transitions][-1] == CANCELLED_PB
