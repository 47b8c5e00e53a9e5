"""Latency of JobStore.get on SQLite and of a transition with 10^3 and with N stored jobs.

python -m benchmarks.store_lookup [N]      (N defaults to 1_000_000)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from benchmarks.jobs import insert_not_started
from fabric_jobs.server.model import InvokeType, JobKey, JobStatus, NewJob
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.sqlite import SqliteConnector

SMALL = 1_000
GET_SAMPLES = 2_000
TRANSITION_SAMPLES = 500
BATCH = 100_000
PAYLOAD = '{"parameters":{"mode":"full","tables":["sales","customers"]}}'
INSTANCE_NAMESPACE = uuid.UUID("5f1e4b5e-8a36-4c8e-9f0a-3d2b1c0e7a11")


def job_key(n: int) -> JobKey:
    return JobKey(
        tenant_id=f"tenant-{n % 100}",
        workspace_id=f"workspace-{n % 1_000}",
        item_type="Org.Workload.Item",
        item_id=f"item-{n % 10_000}",
        job_type="Refresh",
        job_instance_id=str(uuid.uuid5(INSTANCE_NAMESPACE, str(n))),
    )


def new_jobs(start: int, stop: int) -> Iterator[NewJob]:
    for n in range(start, stop):
        yield NewJob(job_key(n), InvokeType.MANUAL, PAYLOAD, 1_700_000_000_000 + n)


def fill(database: Path, start: int, stop: int) -> None:
    for batch_start in range(start, stop, BATCH):
        insert_not_started(database, new_jobs(batch_start, min(batch_start + BATCH, stop)))


async def latencies_us(samples: list[int], operation: Callable[[int], Awaitable[object]]) -> list[float]:
    timings: list[float] = []
    for n in samples:
        started = time.perf_counter_ns()
        await operation(n)
        timings.append((time.perf_counter_ns() - started) / 1_000)
    return timings


def summary(timings: list[float]) -> str:
    cuts = statistics.quantiles(timings, n=100)
    return f"p50 {cuts[49]:7.1f} µs   p99 {cuts[98]:7.1f} µs   ({len(timings)} samples)"


async def report(store: JobStore, stored: int, unstarted: range, rng: random.Random) -> None:
    async def get(n: int) -> object:
        record = await store.get(job_key(n))
        assert record is not None
        return record

    async def start(n: int) -> object:
        record = await store.transition(
            job_key(n), {JobStatus.NOT_STARTED}, JobStatus.IN_PROGRESS, at_ms=time.time_ns() // 1_000_000, owner="b"
        )
        assert record is not None
        return record

    gets = await latencies_us([rng.randrange(stored) for _ in range(GET_SAMPLES)], get)
    starts = await latencies_us(rng.sample(unstarted, TRANSITION_SAMPLES), start)
    print(f"{stored:>9,} rows  get()        {summary(gets)}")
    print(f"{stored:>9,} rows  transition() {summary(starts)}")


def file_sizes(database: Path) -> str:
    files = [database, database.with_name(f"{database.name}-wal")]
    return ", ".join(f"{file.name} {file.stat().st_size / 1e6:.0f} MB" for file in files if file.exists())


async def main(rows: int) -> None:
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.db"
        store = JobStore(SqliteConnector(str(path)))
        await store.open()
        try:
            fill(path, 0, SMALL)
            await report(store, SMALL, range(SMALL), rng)
            started = time.perf_counter()
            fill(path, SMALL, rows)
            seconds = time.perf_counter() - started
            print(f"filled {rows - SMALL:,} more rows in {seconds:.1f} s; {file_sizes(path)}")
            await report(store, rows, range(SMALL, rows), rng)
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000, help="stored rows for the large measurement")
    arguments = parser.parse_args()
    if arguments.rows < SMALL + TRANSITION_SAMPLES:
        parser.error(f"rows must be at least {SMALL + TRANSITION_SAMPLES}")
    asyncio.run(main(arguments.rows))
