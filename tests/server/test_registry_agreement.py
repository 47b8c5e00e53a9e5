"""Replicas and workers on one PostgreSQL database compare their registries: a process that runs no handler for a
job type it accepts, or a worker with job types the replicas refuse, is named in a WARNING."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from fabric_jobs import JobContext, JobRegistry
from fabric_jobs.server.settings import ServiceSettings
from tests.conftest import RunningServer, start_running_server, wait_until

ITEM_TYPE = "Contoso.Agreement.Item"


async def handler(ctx: JobContext) -> None:
    pass


def registry_of(*job_types: str) -> JobRegistry:
    registry = JobRegistry()
    for job_type in job_types:
        registry.add(ITEM_TYPE, job_type, handler)
    return registry


@contextlib.asynccontextmanager
async def worker_and_replica(
    database: str, worker_job_types: tuple[str, ...], replica_job_types: tuple[str, ...]
) -> AsyncIterator[None]:
    """A JobService that runs handlers (as `serve` or a worker) and a `grpc` replica, on one database."""
    settings = ServiceSettings(database=database, lease_seconds=0.6, shutdown_grace=0.5)
    started: list[RunningServer] = []
    try:
        started.append(await start_running_server(settings, registry_of(*worker_job_types), run_handlers=True))
        started.append(await start_running_server(settings, registry_of(*replica_job_types), run_handlers=False))
        yield
    finally:
        for running in reversed(started):
            await running.stop()


def messages(caplog: pytest.LogCaptureFixture, *words: str, level: int = logging.INFO) -> list[str]:
    said = [record.getMessage() for record in caplog.records if record.levelno >= level]
    return [message for message in said if all(word in message for word in words)]


async def test_a_replica_names_the_job_types_it_and_a_worker_disagree_on(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fabric_jobs")
    async with worker_and_replica(postgres_url, ("shared", "workerOnly"), ("shared", "replicaOnly")):
        await wait_until(
            lambda: bool(messages(caplog, "job types", "worker")), within=10.0, what="a warning about the registries"
        )
    message = " ".join(messages(caplog, "job types", "worker"))
    assert f"{ITEM_TYPE}/workerOnly" in message
    assert f"{ITEM_TYPE}/replicaOnly" in message
    assert f"{ITEM_TYPE}/shared" not in message
    assert "--jobs" in message


async def test_processes_that_agree_say_nothing(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fabric_jobs")
    async with worker_and_replica(postgres_url, ("a", "b"), ("b", "a")):
        await wait_until(lambda: bool(messages(caplog, "agree")), within=10.0, what="the comparison")
    assert messages(caplog, "job types", level=logging.WARNING) == []
