"""Retention: ended jobs older than the window are deleted with everything that belongs to them, on SQLite and
PostgreSQL alike; younger and unended jobs stay; two pruners at once delete each job once."""

# ruff: noqa: F811 (the store fixtures of test_store, imported, are this module's test parameters)
from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from fabric_jobs.server.lifecycle.retention import purge
from fabric_jobs.server.model import JobKey, JobStatus
from fabric_jobs.server.store import JobFilter, JobStore
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import jobs as job_types
from tests.conftest import POLL_INTERVAL, ServerFactory, new_key, wait_for_status
from tests.jobs import ITEM_TYPE, TestJobs
from tests.server.store_data import (
    CANCELLED,
    COMPLETED,
    FAILED,
    NOT_STARTED,
    insert,
    job_key,
    run_sql,
    start,
    status_of,
)
from tests.server.test_store import dialect, on_stores_at_once, store, store_url  # noqa: F401 (fixtures)

WINDOW_END_MS = 10_000
"""Jobs that ended before this are past the window of the tests."""


def purged_total() -> float:
    return REGISTRY.get_sample_value("fabric_jobs_jobs_purged_total") or 0.0


async def end(store: JobStore, key: JobKey, status: JobStatus, at_ms: int) -> None:
    await insert(store, key, create_time_ms=1_000)
    if status is CANCELLED:
        assert await store.cancel(key, at_ms) is not None
        return
    await start(store, key, at_ms=1_500)
    assert await store.transition(key, {JobStatus.IN_PROGRESS}, status, at_ms=at_ms) is not None


async def history_rows(url: str, key: JobKey) -> int:
    rows = await run_sql(url, f"SELECT count(*) FROM job_transitions WHERE job_instance_id = '{key.job_instance_id}'")
    count: int = rows[0][0]
    return count


async def test_old_ended_jobs_go_with_their_history_young_and_unended_ones_stay(
    store: JobStore, store_url: str
) -> None:
    old = {job_key("old-done"): COMPLETED, job_key("old-failed"): FAILED, job_key("old-cancelled"): CANCELLED}
    for key, status in old.items():
        await end(store, key, status, at_ms=5_000)
    young = job_key("young")
    await end(store, young, COMPLETED, at_ms=WINDOW_END_MS + 1)
    running, waiting = job_key("running"), job_key("waiting")
    await insert(store, waiting, create_time_ms=500)
    await insert(store, running, create_time_ms=500)
    await start(store, running, at_ms=600)
    before = purged_total()

    assert await store.count_purgeable(JobFilter(), WINDOW_END_MS) == 3
    assert await purge(store, JobFilter(), WINDOW_END_MS, batch=2) == 3

    for key in old:
        assert await store.get(key) is None
        assert await store.transitions(key) == []
        assert await history_rows(store_url, key) == 0
    assert await status_of(store, young) == COMPLETED
    assert await status_of(store, running) == JobStatus.IN_PROGRESS
    assert await status_of(store, waiting) == NOT_STARTED
    assert len(await store.transitions(young)) == 3
    assert purged_total() - before == 3
    assert await store.count_purgeable(JobFilter(), WINDOW_END_MS) == 0
    assert await purge(store, JobFilter(), WINDOW_END_MS) == 0


async def test_the_filter_chooses_which_old_jobs_go(store: JobStore) -> None:
    await end(store, job_key("a-done", tenant="ta"), COMPLETED, at_ms=5_000)
    await end(store, job_key("a-failed", tenant="ta"), FAILED, at_ms=5_000)
    await end(store, job_key("b-done", tenant="tb"), COMPLETED, at_ms=5_000)

    only_failed_of_a = JobFilter(tenant_id="ta", statuses=frozenset({FAILED}))
    assert await store.count_purgeable(only_failed_of_a, WINDOW_END_MS) == 1
    assert await purge(store, only_failed_of_a, WINDOW_END_MS) == 1

    assert await store.get(job_key("a-failed", tenant="ta")) is None
    assert await status_of(store, job_key("a-done", tenant="ta")) == COMPLETED
    assert await status_of(store, job_key("b-done", tenant="tb")) == COMPLETED


async def test_two_pruners_at_once_delete_every_old_job_once(store: JobStore, store_url: str) -> None:
    old = [job_key(f"old-{number}") for number in range(120)]
    for key in old:
        await end(store, key, COMPLETED, at_ms=5_000)
    young = job_key("young")
    await end(store, young, COMPLETED, at_ms=WINDOW_END_MS + 1)

    counts = await on_stores_at_once(store_url, 2, lambda pruner: purge(pruner, JobFilter(), WINDOW_END_MS, batch=7))

    assert sum(counts) == len(old)
    assert await store.count_purgeable(JobFilter(), WINDOW_END_MS) == 0
    assert await status_of(store, young) == COMPLETED
    rows = await run_sql(store_url, "SELECT count(*) FROM job_instances")
    assert rows[0][0] == 1


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
async def test_on_postgresql_a_job_goes_with_its_procrastinate_jobs_and_their_events(
    store: JobStore, store_url: str
) -> None:
    done, kept, finishing = job_key("done"), job_key("kept"), job_key("finishing")
    for key in (done, finishing):
        await end(store, key, COMPLETED, at_ms=5_000)
    await end(store, kept, COMPLETED, at_ms=WINDOW_END_MS + 1)
    for key, status in ((done, "succeeded"), (done, "failed"), (kept, "succeeded"), (finishing, "doing")):
        await run_sql(
            store_url,
            "WITH queued AS (INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status) "
            f"VALUES ('fabric_jobs', 'fabric_jobs.run_job_instance', '{key.to_text()}', '{{}}', '{status}') "
            "RETURNING id) INSERT INTO procrastinate_events (job_id, type) SELECT id, 'deferred' FROM queued",
        )

    assert await purge(store, JobFilter(), WINDOW_END_MS) == 1

    assert await store.get(done) is None
    remaining = await run_sql(store_url, "SELECT lock, status FROM procrastinate_jobs ORDER BY lock")
    assert sorted(remaining) == sorted([(finishing.to_text(), "doing"), (kept.to_text(), "succeeded")])
    events = await run_sql(store_url, "SELECT count(*) FROM procrastinate_events")
    assert events[0][0] == 2  # the events of the two rows left
    assert await status_of(store, finishing) == COMPLETED  # waits until its procrastinate job ends


async def exists(stub: pb_grpc.JobServiceAsyncStub, key: pb.JobInstanceKey) -> bool:
    try:
        await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_a_serving_process_prunes_in_the_background(start_server: ServerFactory, jobs: TestJobs) -> None:
    running = await start_server(jobs.registry, retention_seconds=0.3, prune_interval_seconds=0.05)
    ended, unended = new_key(ITEM_TYPE, job_types.COMPLETES), new_key(ITEM_TYPE, job_types.COOPERATES)
    for key in (ended, unended):
        await running.stub.CreateJobInstance(
            pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
        )
    await wait_for_status(running.stub, ended, pb.JOB_INSTANCE_STATUS_COMPLETED)
    await wait_for_status(running.stub, unended, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)

    for _ in range(int(5.0 / POLL_INTERVAL)):
        if not await exists(running.stub, ended):
            break
        await asyncio.sleep(POLL_INTERVAL)
    else:
        raise AssertionError("the ended job was not deleted within 5 s")

    await wait_for_status(running.stub, unended, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)


async def test_a_change_after_a_purge_gets_a_newer_number_than_every_change_before(store: JobStore) -> None:
    """A change watcher goes on from the newest number it saw: a purge of the newest changes must not let
    SQLite hand their numbers out again."""
    await end(store, job_key("only"), COMPLETED, at_ms=5_000)
    newest_before = await store.last_change_seq()

    assert await purge(store, JobFilter(), WINDOW_END_MS) == 1
    await insert(store, job_key("next"), create_time_ms=20_000)

    changes = await store.changes_after(newest_before, 10)
    assert [record.key for _, record in changes] == [job_key("next")]


async def test_a_purged_job_takes_its_stored_credential_along(store: JobStore, store_url: str) -> None:
    """A credential is forgotten when its job ends; one left behind (written by hand here) goes with the job."""
    key = job_key("with-credential")
    await end(store, key, COMPLETED, at_ms=5_000)
    sealed = "X'00'" if store_url.startswith("sqlite") else "'\\x00'::bytea"
    await run_sql(
        store_url,
        "INSERT INTO job_credentials (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, sealed) "
        f"VALUES ('{key.tenant_id}', '{key.workspace_id}', '{key.item_type}', '{key.item_id}', '{key.job_type}', "
        f"'{key.job_instance_id}', {sealed})",
    )

    assert await purge(store, JobFilter(), WINDOW_END_MS) == 1

    assert await run_sql(store_url, "SELECT count(*) FROM job_credentials") == [(0,)]
