"""The job instances the benchmarks read and cancel: their keys, creating them running, and seeding a database.

Keys are deterministic (UUIDv5 of a batch name and a number), so the process that creates jobs and the
load process that calls them agree without passing anything but names and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc

from fabric_jobs.demo import ITEM_TYPE, JOB_TYPE
from fabric_jobs.server.edge.convert import key_to_pb
from fabric_jobs.server.model import InvokeType, JobKey, NewJob
from fabric_jobs.server.store.rows import new_job_params
from fabric_jobs.server.store.sqlite import QUERIES, SqliteConnector
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

NAMESPACE = uuid.UUID("3b0f6a52-2c57-4d0e-8f43-7e1c0a9d5b21")
RUNNING_PAYLOAD: dict[str, float] = {"durationSeconds": 3600}
QUICK_PAYLOAD: dict[str, float] = {"durationSeconds": 0}
RUNNING_PAYLOAD_JSON = '{"durationSeconds":3600}'
CREATE_CONCURRENCY = 32
FILL_BATCH = 100_000
START_TIMEOUT_SECONDS = 120.0


def _id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


def batch_key(batch: str, n: int) -> JobKey:
    """The n-th job of a batch; all jobs of a batch share one tenant (so the batch can be listed)."""
    return JobKey(
        tenant_id=_id(batch, "tenant"),
        workspace_id=_id(batch, "workspace", n % 16),
        item_type=ITEM_TYPE,
        item_id=_id(batch, "item", n % 256),
        job_type=JOB_TYPE,
        job_instance_id=_id(batch, n),
    )


def _md5_id(*parts: object) -> str:
    """A UUID-shaped id that SQL can compute too: md5(text)::uuid::text in PostgreSQL (benchmarks.postgres)."""
    return str(uuid.UUID(hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()))


def stored_key(n: int) -> JobKey:
    """The n-th of the stored (terminal) jobs, spread over 100 tenants, 1,000 workspaces and 10,000 items."""
    return JobKey(
        tenant_id=_md5_id("stored-tenant", n % 100),
        workspace_id=_md5_id("stored-workspace", n % 1_000),
        item_type=ITEM_TYPE,
        item_id=_md5_id("stored-item", n % 10_000),
        job_type=JOB_TYPE,
        job_instance_id=_md5_id("stored", n),
    )


def batch_keys(batch: str, count: int) -> list[JobKey]:
    return [batch_key(batch, n) for n in range(count)]


def key_fields(key: JobKey) -> list[str]:
    return [key.tenant_id, key.workspace_id, key.item_type, key.item_id, key.job_type, key.job_instance_id]


async def create_running(target: str, keys: list[JobKey]) -> None:
    """Create demo jobs that run for an hour and cancel cooperatively; return once none is still NotStarted."""
    await create(target, keys, RUNNING_PAYLOAD, wait_started=True)


async def create(target: str, keys: list[JobKey], payload_fields: dict[str, float], *, wait_started: bool) -> None:
    """Create demo jobs over gRPC, 32 at a time; with wait_started, return once none is still NotStarted."""
    payload = json.dumps(payload_fields)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        pending = iter(keys)

        async def worker() -> None:
            for key in pending:
                request = pb.CreateJobInstanceRequest(
                    key=key_to_pb(key), invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=payload
                )
                await stub.CreateJobInstance(request, timeout=60)

        await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
        if not wait_started:
            return
        for tenant in sorted({key.tenant_id for key in keys}):
            await _wait_none_queued(stub, tenant)


async def _wait_none_queued(stub: pb_grpc.JobServiceAsyncStub, tenant: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    request = pb.ListJobInstancesRequest(tenant_id=tenant, statuses=[pb.JOB_INSTANCE_STATUS_NOT_STARTED], page_size=1)
    while time.monotonic() < deadline:
        reply = await stub.ListJobInstances(request, timeout=30)
        if not reply.job_instances:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"jobs of tenant {tenant} still NotStarted after {START_TIMEOUT_SECONDS:.0f}s")


def _new_jobs(keys: Iterator[JobKey], base_ms: int) -> Iterator[NewJob]:
    for n, key in enumerate(keys):
        yield NewJob(key, InvokeType.MANUAL, RUNNING_PAYLOAD_JSON, base_ms + n)


def insert_not_started(path: Path, jobs: Iterable[NewJob]) -> None:
    """Insert NotStarted jobs, skipping keys that exist, with the store's own insert_job query in one transaction."""
    params = (new_job_params(job) for job in jobs)
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.executemany(QUERIES["insert_job"], params)


async def seed(path: Path, keys: Iterator[JobKey], status: str) -> None:
    """Insert jobs NotStarted, then set the new ones to `status` in one UPDATE.

    Used before a server opens the file: InProgress rows for the baseline app (which runs no handlers),
    Completed rows for the stored-jobs measurements (a server would run NotStarted rows at start).
    """
    await SqliteConnector(str(path)).migrate()
    base_ms = time.time_ns() // 1_000_000
    while True:
        batch = [key for _, key in zip(range(FILL_BATCH), keys, strict=False)]
        if not batch:
            break
        insert_not_started(path, _new_jobs(iter(batch), base_ms))
    with sqlite3.connect(path) as connection:
        end_ms = "create_time_ms + 1000" if status in ("Completed", "Failed", "Cancelled") else "NULL"
        connection.execute(
            f"UPDATE job_instances SET status = ?, start_time_ms = create_time_ms, end_time_ms = {end_ms} "
            "WHERE status = 'NotStarted'",
            (status,),
        )
    connection.close()


def stored_keys(start: int, stop: int) -> Iterator[JobKey]:
    return (stored_key(n) for n in range(start, stop))
