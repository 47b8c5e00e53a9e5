"""The change feed carries records: a waiter takes what its own process published and reads only for what
another process announced, so a Cancel does only the store work it needs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus
from fabric_jobs.server.store.changes import UNKNOWN_VERSION, ChangeFeed, announcement, parse_announcement
from fabric_jobs.server.store.sqlite import SqliteConnector
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import RunningServer, ServerFactory, wait_for_status
from tests.jobs import TestJobs
from tests.server.calls import CANCELLED, IN_PROGRESS, create

KEY = JobKey(
    "7d1f0a55-0b8e-4c6e-9a55-1f2e3d4c5b6a",
    "0c2b9a8d-7e6f-4a5b-8c9d-0e1f2a3b4c5d",
    "Tests.Item",
    "4b3a2c1d-0e9f-48a7-b6c5-d4e3f2a1b0c9",
    "cooperative",
    "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
)


def record(version: int, status: JobStatus = JobStatus.IN_PROGRESS) -> JobRecord:
    return JobRecord(KEY, status, InvokeType.MANUAL, "{}", 1, 2, None, None, False, "owner", version)


async def test_a_subscriber_takes_the_newest_record_published_and_reads_only_for_newer_announcements() -> None:
    feed = ChangeFeed()
    held = record(2)
    with feed.subscribe(KEY) as changes:
        assert not await changes.wait(0.01)
        assert changes.take(held) is held

        feed.publish(record(4, JobStatus.CANCELLED))
        feed.publish(record(3))
        assert await changes.wait(0.01)
        assert changes.take(held) == record(4, JobStatus.CANCELLED)

        feed.publish_announced(KEY, 2)
        assert changes.take(held) is held, "an announcement of a version it holds needs no read"
        feed.publish_announced(KEY, 3)
        assert changes.take(held) is None, "a newer version announced by another process needs a read"
        feed.publish(record(3))
        feed.publish_announced(KEY, 3)
        assert changes.take(held) == record(3), "the announcement of a change whose record came needs no read"
        feed.publish_announced(KEY, None)
        assert changes.take(held) is None
        feed.publish(record(5))
        feed.publish_all()
        assert changes.take(held) is None, "after a gap in notifications, it reads"

        feed.publish(replace(record(9), key=replace(KEY, job_instance_id="another")))
        assert not await changes.wait(0.01)


def test_an_announcement_carries_the_key_the_version_and_the_store_that_made_it() -> None:
    announced = parse_announcement(announcement(KEY, 7, "store-a"))
    assert announced is not None
    assert (announced.key, announced.version, announced.origin) == (KEY, 7, "store-a")
    bare = parse_announcement(KEY.to_text())
    assert bare is not None
    assert (bare.key, bare.version, bare.origin) == (KEY, None, None)
    assert parse_announcement("not a key 7 x") is None
    assert UNKNOWN_VERSION > 2**62


@contextmanager
def statements_of(running: RunningServer) -> Iterator[list[str]]:
    """The SQL statements the server's SQLite store runs meanwhile, without BEGIN and COMMIT. SQLite reports a
    statement again for each trigger it fires (job_instances' history), so a write may be listed more than once."""
    connector = running.server.manager._store.connector
    assert isinstance(connector, SqliteConnector)
    connection = connector._connection
    assert isinstance(connection, sqlite3.Connection)
    seen: list[str] = []

    def trace(statement: str) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT"):
            seen.append(" ".join(statement.split()))

    connection.set_trace_callback(trace)
    try:
        yield seen
    finally:
        connection.set_trace_callback(None)


def reads(statements: list[str]) -> list[str]:
    return [statement for statement in statements if statement.upper().startswith("SELECT")]


def writes(statements: list[str]) -> set[str]:
    return {statement.split(" WHERE ")[0][:60] for statement in statements if statement.upper().startswith("UPDATE")}


async def test_a_cancel_of_a_running_job_runs_its_cancel_and_the_handlers_end_and_reads_nothing(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry, cancel_wait=5.0, lease_seconds=600.0)
    key = await create(running, job_types.COOPERATES)
    await wait_for_status(running.stub, key, IN_PROGRESS)

    with statements_of(running) as statements:
        answer = await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    assert answer.job_instance.status == CANCELLED
    assert reads(statements) == [], "the wait starts from the cancel's row and takes the handler's end as published"
    assert len(writes(statements)) == 2, statements
    assert {statement.upper().split()[0] for statement in statements} == {"UPDATE"}, statements


async def test_a_cancel_of_a_handler_that_ignores_it_reads_the_job_once_a_poll_and_once_at_the_end(
    jobs: TestJobs, start_server: ServerFactory
) -> None:
    running = await start_server(jobs.registry, cancel_wait=1.5, cancel_grace=30.0, lease_seconds=600.0)
    key = await create(running, job_types.IGNORES_CANCEL)
    await wait_for_status(running.stub, key, IN_PROGRESS)

    with statements_of(running) as statements:
        answer = await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    assert answer.job_instance.status == IN_PROGRESS
    assert answer.job_instance.cancel_requested
    assert len(writes(statements)) == 1, statements
    assert len(reads(statements)) == 2, f"a read at the 1 s poll and one at the end of the 1.5 s wait: {statements}"
