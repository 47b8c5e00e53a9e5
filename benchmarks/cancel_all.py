"""What cleaning up after an item costs: one AdminService.CancelJobInstances of every job of an item.

python -m benchmarks.cancel_all [--jobs 2000] [--pg-concurrency 100] [--postgres URL]   (exit 1 on a violation)

`fabric-jobs serve --dev` runs as a separate process on loopback, on a fresh SQLite file (every demo job of the
item runs: they are all InProgress) and then on a fresh PostgreSQL database with `--concurrency` set to
--pg-concurrency (that many run, the rest wait NotStarted in procrastinate's queue). Each round creates --jobs
cooperative demo jobs of one item over gRPC, waits until they are as described, then times one
CancelJobInstances over gRPC, a second one (which must ask none), and the time until every job is Cancelled.
Checked: the first call asks every job, the second none, and every job ends Cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.jobs import RUNNING_PAYLOAD, create
from benchmarks.postgres import databases, default_server, unreachable_reason
from benchmarks.processes import serve
from fabric_jobs.client import AdminClient, JobFilter, JobKey, JobStatus
from fabric_jobs.demo import ITEM_TYPE, JOB_TYPE

SETTLE_SECONDS = 300.0
"""How long the jobs may take to reach the state measured from (and, after the call, to end)."""


@dataclass(frozen=True)
class Round:
    store: str
    running: int
    queued: int
    asked: int
    ended: int
    call_seconds: float
    second_asked: int
    second_seconds: float
    all_ended_seconds: float


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {SETTLE_SECONDS:.0f} s")
        await asyncio.sleep(0.1)


async def measure(store: str, database: str, work: Path, jobs: int, *extra: str) -> Round:
    async with serve(work, database, f"serve-{store}", *extra) as server:
        target = server.addresses["grpc"]
        tenant, workspace, item = (str(uuid.uuid4()) for _ in range(3))
        keys = [JobKey(tenant, workspace, ITEM_TYPE, item, JOB_TYPE, str(uuid.uuid4())) for _ in range(jobs)]
        await create(target, keys, RUNNING_PAYLOAD, wait_started=False)
        of_item = JobFilter(item_id=item)
        async with AdminClient.connect(target, timeout=SETTLE_SECONDS) as admin:
            previous = -1

            async def settled() -> bool:
                nonlocal previous
                running = (await admin.count(of_item)).by_status[JobStatus.IN_PROGRESS]
                steady, previous = running == previous, running
                return steady and running > 0

            await _until(settled, "the item's jobs starting")
            counts = (await admin.count(of_item)).by_status
            started = time.perf_counter()
            done = await admin.cancel_all(of_item)
            call_seconds = time.perf_counter() - started
            again_started = time.perf_counter()
            again = await admin.cancel_all(of_item)
            second_seconds = time.perf_counter() - again_started

            async def all_cancelled() -> bool:
                return (await admin.count(of_item)).by_status[JobStatus.CANCELLED] == jobs

            await _until(all_cancelled, "every job of the item ending Cancelled")
            all_ended_seconds = time.perf_counter() - started
    return Round(
        store,
        counts[JobStatus.IN_PROGRESS],
        counts[JobStatus.NOT_STARTED],
        done.asked,
        done.ended,
        call_seconds,
        again.asked,
        second_seconds,
        all_ended_seconds,
    )


def _line(result: Round) -> str:
    return (
        f"{result.store}: {result.running} running + {result.queued} queued jobs of one item: asked {result.asked}, "
        f"{result.ended} ended within the cancel wait, in {result.call_seconds:.2f} s; all Cancelled after "
        f"{result.all_ended_seconds:.2f} s; a second call asked {result.second_asked} in {result.second_seconds:.3f} s"
    )


async def run(jobs: int, pg_concurrency: int, postgres: str) -> list[Round]:
    results = []
    with tempfile.TemporaryDirectory(prefix="fabric-jobs-cancel-all-") as directory:
        work = Path(directory)
        results.append(await measure("SQLite", f"sqlite:///{work / 'jobs.db'}", work, jobs))
        print(_line(results[-1]), flush=True)
        reason = unreachable_reason(postgres)
        if reason is not None:
            print(f"PostgreSQL: skipped: {reason}")
            return results
        async with databases(postgres) as made:
            url = await made.create("cancel_all")
            results.append(await measure("PostgreSQL", url, work, jobs, "--concurrency", str(pg_concurrency)))
            print(_line(results[-1]), flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cancel_all", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs of the item (default %(default)s)")
    parser.add_argument(
        "--pg-concurrency", type=int, default=100, help="jobs serve runs at once on PostgreSQL (default %(default)s)"
    )
    parser.add_argument("--postgres", default=default_server(), help="PostgreSQL server (default %(default)s)")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.jobs, args.pg_concurrency, args.postgres))
    violations = [r for r in results if r.asked != args.jobs or r.second_asked != 0]
    for result in violations:
        print(f"VIOLATION {result.store}: asked {result.asked} of {args.jobs}, then {result.second_asked}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
