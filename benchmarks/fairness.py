"""Fair tenants (rows fair-start and pg-fair-start): how long one tenant's single job waits to start while another
tenant's backlog is queued, against the same job's wait on an idle service.

On each engine, `fabric-jobs serve --dev --jobs benchmarks.fair_jobs:registry` (quick jobs of half a second, plain
functions run in the default 32 handler threads; on PostgreSQL the worker runs the default --concurrency, 32):
tenant B creates a quick job on the idle service, several times (its time to start is the job's start_time
minus its create_time, both stamped by the service); then tenant A creates `--fair-jobs` (2,000) quick jobs,
32 Creates at a time, and as soon as they are all created tenant B creates one more. Its time to start is compared
with the idle one, and the count of A's jobs still NotStarted when B's started says how much backlog it passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from benchmarks import jobs, postgres, processes
from benchmarks.options import Options
from benchmarks.postgres import Databases
from benchmarks.results import FairStart, Results
from benchmarks.scenarios import progress
from fabric_jobs.server.edge.convert import key_to_pb
from fabric_jobs.server.model import JobKey
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

QUICK_JOB = {"durationSeconds": 0.5}
JOBS = ("--jobs", "benchmarks.fair_jobs:registry")
IDLE_SAMPLES = 5
POLL_SECONDS = 0.005
START_TIMEOUT_SECONDS = 300.0
COUNT_WAITING = "SELECT count(*) FROM job_instances WHERE tenant_id = {} AND status = 'NotStarted'"

Waiting = Callable[[str], Awaitable[int]]
"""How many of a tenant's jobs are NotStarted, read from the database."""


async def sqlite(options: Options, work: Path, results: Results) -> None:
    if "fair-start" not in options.only:
        return
    path = work / "fair.db"
    async with processes.serve(work, f"sqlite:///{path}", "serve-fair", *JOBS) as serve:
        results.fair_starts.append(await _measure("SQLite", options, serve.addresses["grpc"], _sqlite_waiting(path)))


async def pg(options: Options, work: Path, results: Results, databases: Databases) -> None:
    if "pg-fair-start" not in options.only:
        return
    url = await databases.create("fair")
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(postgres.analyzing_queue(url))
        serve = await stack.enter_async_context(processes.serve(work, url, "serve-pg-fair", *JOBS))
        results.fair_starts.append(await _measure("PostgreSQL", options, serve.addresses["grpc"], _pg_waiting(url)))


def _sqlite_waiting(path: Path) -> Waiting:
    async def waiting(tenant_id: str) -> int:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            (count,) = connection.execute(COUNT_WAITING.format("?"), (tenant_id,)).fetchone()
        return int(count)

    return waiting


def _pg_waiting(url: str) -> Waiting:
    async def waiting(tenant_id: str) -> int:
        (count,) = await postgres.query_one(url, COUNT_WAITING.format("%(tenant_id)s"), {"tenant_id": tenant_id})
        return int(count)

    return waiting


async def _measure(engine: str, options: Options, target: str, waiting: Waiting) -> FairStart:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        idle = [await _time_to_start(stub, jobs.batch_key(f"fair-idle-{engine}", n)) for n in range(IDLE_SAMPLES)]
        backlog = jobs.batch_keys(f"fair-backlog-{engine}", options.fair_jobs)
        created = time.perf_counter()
        await jobs.create(target, backlog, QUICK_JOB, wait_started=False)
        creating_seconds = time.perf_counter() - created
        single = jobs.batch_key(f"fair-single-{engine}", 0)
        busy = await _time_to_start(stub, single)
        still_waiting = await waiting(backlog[0].tenant_id)
    fair = FairStart(
        engine=engine,
        backlog=len(backlog),
        idle_ms=round(statistics.median(idle), 1),
        busy_ms=round(busy, 1),
        backlog_waiting_at_start=still_waiting,
        creating_seconds=round(creating_seconds, 2),
    )
    progress(
        f"fair-start {engine}: B's job started {fair.busy_ms:.0f} ms after its Create behind {fair.backlog:,} of A's "
        f"({still_waiting:,} still waiting), {fair.idle_ms:.0f} ms on the idle service"
    )
    return fair


async def _time_to_start(stub: pb_grpc.JobServiceAsyncStub, key: JobKey) -> float:
    """Create the job and wait for it to start; its start_time minus its create_time, in milliseconds."""
    request = pb.CreateJobInstanceRequest(
        key=key_to_pb(key), invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=json.dumps(QUICK_JOB)
    )
    await stub.CreateJobInstance(request, timeout=60)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        job = (await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key_to_pb(key)), timeout=30)).job_instance
        if job.HasField("start_time"):
            return (job.start_time.ToNanoseconds() - job.create_time.ToNanoseconds()) / 1e6
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"job {key} did not start in {START_TIMEOUT_SECONDS:.0f}s")
