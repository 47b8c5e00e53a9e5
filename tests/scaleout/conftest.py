"""Fixtures of the scale-out tests: a fresh migrated PostgreSQL database per test, `fabric-jobs worker`
processes started as real subprocesses (tests/processes.py), and a JobService in the test process that runs no
handlers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest

from fabric_jobs.server.execution.on_procrastinate import QUEUE
from fabric_jobs.server.model import JobKey
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.harness import TEST_SETTINGS, RunningServer, eventually, server_factory
from tests.processes import REPOSITORY_ROOT, STARTUP_SECONDS, Processes, Serve, clean_env, launch

READY_LINE = "fabric-jobs: worker started"

LEASE_SECONDS = TEST_SETTINGS.lease_seconds
CANCEL_GRACE_SECONDS = TEST_SETTINGS.cancel_grace
SHUTDOWN_GRACE_SECONDS = 1.0
CANCEL_WAIT_SECONDS = TEST_SETTINGS.cancel_wait
"""Shorter than the workers' cancel grace, so a Cancel of a handler that ignores its token answers InProgress."""


class WorkerFactory(Protocol):
    def __call__(self, *extra: str) -> Awaitable[Serve]: ...


class ServiceFactory(Protocol):
    def __call__(self, **settings: Any) -> Awaitable[RunningServer]: ...


async def _procrastinate_listens_since(url: str, since: float) -> bool:
    """Whether a connection opened after `since` (epoch seconds) LISTENs for procrastinate's new jobs.

    "worker started" is printed as the procrastinate worker starts; it fetches the jobs already queued at
    once but hears of new ones only once its listener connection is up, and in between a job queued waits
    for its next poll (seconds). Tests wait for the listener, so that a job created next starts at once.
    """
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_start >= to_timestamp(%s) AND query LIKE %s",
            (since, f"LISTEN %procrastinate_queue_v1#{QUEUE}%"),
        )
        row = await cursor.fetchone()
    return row is not None and int(row[0]) > 0


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    """The file every worker's handlers append their job instance id to when they start."""
    return tmp_path / "runs.log"


@pytest.fixture
async def start_worker(postgres_url: str, run_log: Path) -> AsyncIterator[WorkerFactory]:
    """Start `fabric-jobs worker` processes on the test's database; each is killed at the end if still running."""
    env = clean_env(**{jobs.RUN_LOG_VARIABLE: str(run_log)})
    with Processes() as processes:

        async def start(*extra: str) -> Serve:
            args = ["worker", "--database", postgres_url, "--jobs", "tests.jobs:registry"]
            args += ["--cancel-grace", str(CANCEL_GRACE_SECONDS), "--lease-seconds", str(LEASE_SECONDS)]
            args += ["--shutdown-grace", str(SHUTDOWN_GRACE_SECONDS), *extra]
            spawned_at = time.time()
            launching = asyncio.to_thread(launch, args, started=READY_LINE, cwd=REPOSITORY_ROOT, env=env)
            worker = processes.track(await launching)
            await eventually(
                lambda: _procrastinate_listens_since(postgres_url, spawned_at),
                within=STARTUP_SECONDS,
                what="the worker listening for new jobs",
            )
            return worker

        yield start


@pytest.fixture
async def start_service(postgres_url: str) -> AsyncIterator[ServiceFactory]:
    """Start JobServices in this process on the test's database, running no handlers (the workers do)."""
    async with server_factory(postgres_url, run_handlers=False) as start:

        async def start_scaleout(**settings: Any) -> RunningServer:
            running: RunningServer = await start(
                jobs.registry, **{"shutdown_grace": SHUTDOWN_GRACE_SECONDS, **settings}
            )
            return running

        yield start_scaleout


@pytest.fixture
async def service(start_service: ServiceFactory) -> RunningServer:
    """One JobService with the default scale-out settings."""
    return await start_service()


def key_text(key: pb.JobInstanceKey) -> str:
    """The key as procrastinate's lock and queueing lock name it."""
    parts = (key.tenant_id, key.workspace_id, key.item_type, key.item_id, key.job_type, key.job_instance_id)
    return JobKey(*parts).to_text()


async def procrastinate_statuses(url: str, key: pb.JobInstanceKey) -> list[str]:
    """The statuses of the procrastinate jobs that carry `key` to a worker (finished successful ones are deleted)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE lock = %s", (key_text(key),)
        )
        return [str(row[0]) for row in await cursor.fetchall()]
