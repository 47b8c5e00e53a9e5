"""The client's tests run against a real JobService on SQLite (handlers in process) and on PostgreSQL (handlers in
`fabric-jobs worker` processes), reached over a real gRPC channel and over the in-process channel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fabric_jobs.client import AdminClient, JobKey, JobsClient, RetryPolicy
from fabric_jobs.server.app import JobServer, ServiceSettings
from tests import jobs
from tests.conftest import RunningServer, start_running_server
from tests.scaleout.conftest import (  # noqa: F401  (fixtures)
    CANCEL_GRACE_SECONDS,
    CANCEL_WAIT_SECONDS,
    LEASE_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    WorkerFactory,
    run_log,
    start_worker,
)

FAST_RETRIES = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.1)
TEST_SETTINGS: dict[str, Any] = {
    "cancel_wait": CANCEL_WAIT_SECONDS,
    "cancel_grace": CANCEL_GRACE_SECONDS,
    "shutdown_grace": SHUTDOWN_GRACE_SECONDS,
    "lease_seconds": LEASE_SECONDS,
}


def new_key(job_type: str = jobs.QUICK, tenant_id: str | None = None) -> JobKey:
    """A key of the scale-out test registry with fresh ids."""
    return JobKey(
        tenant_id=tenant_id or str(uuid.uuid4()),
        workspace_id=str(uuid.uuid4()),
        item_type=jobs.ITEM_TYPE,
        item_id=str(uuid.uuid4()),
        job_type=job_type,
        job_instance_id=str(uuid.uuid4()),
    )


@dataclass
class Stack:
    """A running JobService, its store and channel kind, and clients of it."""

    server: JobServer
    store: str
    channel: str
    jobs: JobsClient
    admin: AdminClient


@dataclass
class Backend:
    """Where job instances are kept: SQLite (handlers run by the JobService) or PostgreSQL (handlers run by
    `fabric-jobs worker` processes, started by `start_worker`)."""

    store: str
    database: str
    start_worker: WorkerFactory | None

    async def start_server(self, **settings: Any) -> RunningServer:
        """A JobService on this backend (another replica when called again)."""
        merged = replace(ServiceSettings(database=self.database), **{**TEST_SETTINGS, **settings})
        return await start_running_server(merged, jobs.registry, run_handlers=self.start_worker is None)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", "sqlite:///" + str(tmp_path / "jobs.db"), None)
    return Backend("postgresql", request.getfixturevalue("postgres_url"), request.getfixturevalue("start_worker"))


@pytest.fixture
async def running_server(backend: Backend) -> AsyncIterator[RunningServer]:
    """A JobService on the backend, with one worker process on PostgreSQL."""
    running = await backend.start_server()
    try:
        if backend.start_worker is not None:
            await backend.start_worker()
        yield running
    finally:
        await running.stop()


@pytest.fixture(params=["grpc", "in-process"])
async def stack(
    request: pytest.FixtureRequest, backend: Backend, running_server: RunningServer
) -> AsyncIterator[Stack]:
    running = running_server
    if request.param == "grpc":
        jobs_client = JobsClient.connect(running.server.address, retry=FAST_RETRIES)
        admin = AdminClient(jobs_client.channel, retry=FAST_RETRIES)
    else:
        channel = running.server.in_process_channel.as_channel()
        jobs_client = JobsClient(channel, retry=FAST_RETRIES)
        admin = AdminClient(channel, retry=FAST_RETRIES)
    async with jobs_client:
        yield Stack(running.server, backend.store, request.param, jobs_client, admin)
