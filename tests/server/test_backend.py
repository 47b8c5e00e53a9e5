"""The one place that tells the databases apart: what a URL's backend is, and what a process on it runs."""

from __future__ import annotations

import asyncio
import re

import pytest

from fabric_jobs.server.app import ServiceSettings, run_worker
from fabric_jobs.server.backend import open_backend
from fabric_jobs.server.store import StoreError
from fabric_jobs.server.store.postgresql import PostgresConnector
from fabric_jobs.server.store.sqlite import SqliteConnector
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.conftest import new_key, wait_for_status
from tests.harness import server_factory
from tests.jobs import COMPLETES, ITEM_TYPE, TestJobs


def test_sqlite_runs_handlers_in_the_serving_process_and_postgresql_also_on_workers() -> None:
    sqlite = open_backend("sqlite:///./jobs.db")
    assert isinstance(sqlite.store.connector, SqliteConnector)
    assert not sqlite.separate_workers
    for url in ("postgresql://u@db.example:6543/jobs", "postgres://u@db.example:6543/jobs"):
        postgresql = open_backend(url)
        assert isinstance(postgresql.store.connector, PostgresConnector)
        assert postgresql.separate_workers


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://db/jobs",
            "must be sqlite:///path/to/file.db or postgresql://user@host:port/dbname, not 'mysql://db/jobs'",
        ),
        ("sqlite:///", "sqlite:/// needs a file path"),
    ],
)
def test_a_url_of_no_database_is_one_line(url: str, message: str) -> None:
    with pytest.raises(StoreError, match="^database URL: " + re.escape(message)):
        open_backend(url)


async def test_a_service_on_sqlite_told_to_leave_jobs_to_workers_runs_them_itself(
    database: str, jobs: TestJobs
) -> None:
    async with server_factory(database, run_handlers=False) as start:
        running = await start(jobs.registry)
        key = new_key(ITEM_TYPE, COMPLETES)
        await running.stub.CreateJobInstance(
            pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
        )
        await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_COMPLETED)


async def test_a_worker_on_sqlite_is_refused(database: str, jobs: TestJobs) -> None:
    with pytest.raises(StoreError, match="a worker takes its jobs from PostgreSQL"):
        await run_worker(ServiceSettings(database=database), jobs.registry, asyncio.Event())
