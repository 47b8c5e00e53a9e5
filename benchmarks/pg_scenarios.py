"""The PostgreSQL measurements (rows pg-*): the bridge against an in-process PostgresStore baseline, cancel-to-stopped
across processes, lookups with many stored jobs, and jobs started per second by one and by two workers.

Each makes its own database (benchmarks.postgres) and starts what it measures as `fabric-jobs` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import psycopg

from benchmarks import fairness, jobs, postgres, processes
from benchmarks.measure import LoadSpec, run_load
from benchmarks.options import Options
from benchmarks.postgres import Databases
from benchmarks.results import (
    PG_ROWS,
    PG_THROUGHPUT_ROWS,
    CrossProcessStop,
    Results,
    RunningCancel,
    ThroughputRow,
    WorkerRate,
)
from benchmarks.scenarios import (
    STOP_WARMUP_JOBS,
    cancel_batch,
    count_bound_cancels,
    http_items,
    measure_row,
    progress,
    stored_lookups,
    warmup_jobs,
)
from fabric_jobs.server.model import JobKey
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store.postgresql import QUERIES as STORE_QUERIES
from fabric_jobs.server.store.rows import key_params

CANCEL_WAIT_SECONDS = "10"
WORKER_SLACK = 16
LOADED_STOP_CONCURRENCY = 64
LOADED_STOP_JOBS_PER_REQUEST = 8
RUNNING_CANCEL_CONCURRENCY = 16
FLEET_REPLICAS = 2
FINISH_TIMEOUT_SECONDS = 300.0
DATABASES = (
    ("pg-baseline-get", "baseline"),
    ("pg-bridge-get", "serve"),
    ("pg-cancel-to-stopped", "stop"),
    ("pg-fleet-cancel", "fleet"),
    ("pg-stored", "stored"),
    ("pg-workers", "workers"),
    ("pg-fair-start", "fair"),
)
"""The databases made at once before measuring (others, e.g. for a --only of cancel rows alone, when needed)."""
WAIT_SAMPLE_SECONDS = 0.02
FINISH_POLL_EVERY = 5
ACTIVE_BACKENDS = """
SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU')
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
"""
COUNT_BY_STATUS = """
SELECT count(*) FILTER (WHERE status = 'Cancelled'),
    count(*) FILTER (WHERE status = 'Cancelled' AND end_time_ms IS NOT NULL)
FROM job_instances WHERE tenant_id = %(tenant_id)s
"""
COUNT_FINISHED = """
SELECT count(*) FROM job_instances
WHERE tenant_id = %(tenant_id)s AND status IN ('Completed', 'Failed', 'Cancelled')
"""
ANALYZE_QUEUE = "ANALYZE procrastinate_jobs, job_instances"
START_TIMES = "SELECT start_time_ms FROM job_instances WHERE tenant_id = %(tenant_id)s ORDER BY start_time_ms"


async def run(options: Options, work: Path, results: Results) -> None:
    """Every pg-* row asked for, on the server of --postgres; skipped with the reason when it is unreachable
    (in CI, where CI=true, that is an error)."""
    if not options.only & set(PG_ROWS):
        return
    reason = postgres.unreachable_reason(options.postgres)
    if reason is not None:
        if os.environ.get("CI") == "true":
            raise RuntimeError(reason)
        results.postgres = f"not measured: {reason}"
        progress(f"PostgreSQL rows skipped: {reason}")
        return
    async with postgres.databases(options.postgres) as databases:
        results.postgres = await postgres.server_version(databases.url("postgres"))
        (autovacuum,) = await postgres.query_one(databases.url("postgres"), "SHOW autovacuum", {})
        results.notes.append(
            "PostgreSQL rows: while jobs are created for pg-bridge-cancel and pg-cancel-to-stopped the benchmark runs "
            "ANALYZE procrastinate_jobs every second, and pg-workers analyzes once after queueing: a stand-in for "
            f"autoanalyze (autovacuum is {autovacuum} on this server). Without fresh statistics a queue that grew "
            "from empty keeps the plan of an empty table and procrastinate's fetch walks every queued job "
            "(procrastinate issue #1242; measured here: 239 ms per fetch with 2,000 jobs queued, 0.55 ms after "
            "ANALYZE), so jobs start at a few per second."
        )
        await databases.prepare(purpose for row, purpose in DATABASES if row in options.only)
        await throughput(options, work, results, databases)
        await fleet(options, work, results, databases)
        await cancel_to_stopped(options, work, results, databases)
        await stored(options, work, results, databases)
        await started_per_second(options, work, results, databases)
        await fairness.pg(options, work, results, databases)


async def throughput(options: Options, work: Path, results: Results, databases: Databases) -> None:
    """pg-bridge-* on `fabric-jobs serve --dev --database postgresql://…`, pg-baseline-* on the baseline app on a
    PostgresStore, each on its own database."""
    rows = [row for row in PG_THROUGHPUT_ROWS if row in options.only and row != "pg-fleet-cancel"]
    if not rows:
        return
    async with contextlib.AsyncExitStack() as stack:
        servers: dict[str, processes.ServerProcess] = {}
        if any(row.startswith("pg-baseline-") for row in rows):
            url = await databases.create("baseline")
            batches = (cancel_batch("pg-baseline-cancel", c, options) for c in options.concurrency)
            await postgres.seed_keys(
                url, itertools.chain(jobs.batch_keys("get", options.get_jobs), *batches), "InProgress"
            )
            servers["baseline"] = await stack.enter_async_context(processes.baseline(work, url, "baseline-pg"))
        if any(row.startswith("pg-bridge-") for row in rows):
            url = await databases.create("serve")
            running = options.get_jobs + sum(len(cancel_batch("pg", c, options)) for c in options.concurrency)
            concurrency = str(running + WORKER_SLACK)
            serve = processes.serve(work, url, "serve-pg", "--concurrency", concurrency)
            await stack.enter_async_context(postgres.analyzing_queue(url))
            servers["serve"] = await stack.enter_async_context(serve)
            await jobs.create_running(servers["serve"].addresses["grpc"], jobs.batch_keys("get", options.get_jobs))
        for row in rows:
            base_row = row.removeprefix("pg-")
            if base_row.startswith("baseline-"):
                baseline = servers["baseline"]
                target = baseline.addresses["http"]
                await measure_row(options, base_row, target, None, results, row_name=row, cpu_pids=(baseline.pid,))
            else:
                serve_process = servers["serve"]
                target, creates_on = serve_process.addresses["rest"], serve_process.addresses["grpc"]
                await measure_row(
                    options, base_row, target, creates_on, results, row_name=row, cpu_pids=(serve_process.pid,)
                )


async def cancel_to_stopped(options: Options, work: Path, results: Results, databases: Databases) -> None:
    """CancelJobInstance sent to a `fabric-jobs grpc` replica, one at a time and then 64 at a time, of cooperative jobs
    running in a `fabric-jobs worker` process: the call returns once the job is recorded Cancelled (--cancel-wait
    10 s)."""
    if "pg-cancel-to-stopped" not in options.only:
        return
    url = await databases.create("stop")
    one_by_one = jobs.batch_keys("pg-stop", options.pg_stop_jobs + STOP_WARMUP_JOBS)
    loaded_jobs = LOADED_STOP_CONCURRENCY * LOADED_STOP_JOBS_PER_REQUEST
    loaded = jobs.batch_keys("pg-stop-loaded", loaded_jobs + warmup_jobs(LOADED_STOP_CONCURRENCY))
    async with contextlib.AsyncExitStack() as stack:
        replica = processes.grpc_replica(work, url, "grpc-stop", "--cancel-wait", CANCEL_WAIT_SECONDS)
        slots = len(one_by_one) + len(loaded) + WORKER_SLACK
        worker = processes.worker(work, url, "worker-stop", "--concurrency", str(slots))
        await stack.enter_async_context(postgres.analyzing_queue(url))
        await processes.start_together(stack, replica, worker)
        target = replica.addresses["grpc"]
        for keys, concurrency, measured in (
            (one_by_one, 1, options.pg_stop_jobs),
            (loaded, LOADED_STOP_CONCURRENCY, loaded_jobs),
        ):
            await jobs.create_running(target, keys)
            warmup = STOP_WARMUP_JOBS if concurrency == 1 else warmup_jobs(concurrency)
            result = await count_bound_cancels(options, target, keys, warmup, concurrency)
            tenant = {"tenant_id": keys[0].tenant_id}
            cancelled, with_end_time = await postgres.query_one(url, COUNT_BY_STATUS, tenant)
            stop = CrossProcessStop(measured, result, len(keys), cancelled, with_end_time, concurrency)
            results.pg_cancel_to_stopped.append(stop)
            progress(
                f"pg-cancel-to-stopped c={concurrency}: p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms; "
                f"{with_end_time} of {len(keys)} Cancelled with an end time"
            )


def _fleet(work: Path, url: str, name: str, worker_slots: int) -> list[processes.ServerProcess]:
    """Two `fabric-jobs grpc` replicas and two `fabric-jobs worker` processes on `url` (not started)."""
    replicas = [processes.grpc_replica(work, url, f"{name}-grpc-{n}") for n in range(FLEET_REPLICAS)]
    workers = [
        processes.worker(work, url, f"{name}-worker-{n}", "--concurrency", str(worker_slots))
        for n in range(FLEET_REPLICAS)
    ]
    return [*replicas, *workers]


async def _start_fleet(
    stack: contextlib.AsyncExitStack, work: Path, url: str, name: str, worker_slots: int
) -> tuple[processes.ServerProcess, list[processes.ServerProcess]]:
    """Start the fleet and a `fabric-jobs rest` bridge balancing over its replicas (gRPC round robin)."""
    members = _fleet(work, url, name, worker_slots)
    await processes.start_together(stack, *members)
    replicas = [member for member in members if "grpc" in member.addresses]
    target = "ipv4:" + ",".join(replica.addresses["grpc"] for replica in replicas)
    rest = processes.rest_bridge(work, target, f"{name}-rest")
    await stack.enter_async_context(rest)
    return rest, [rest, *members]


async def fleet(options: Options, work: Path, results: Results, databases: Databases) -> None:
    """pg-fleet-cancel and pg-cancel-running: REST Cancel through `fabric-jobs rest` → two `fabric-jobs grpc` replicas
    → PostgreSQL ← two `fabric-jobs worker` processes, the production topology. The CPU per request is that of all
    five processes."""
    wanted = {"pg-fleet-cancel", "pg-cancel-running"} & options.only
    if not wanted:
        return
    url = await databases.create("fleet")
    fleet_batches = {
        c: jobs.batch_keys(f"pg-fleet-c{c}", options.pg_fleet_cancels + warmup_jobs(c)) for c in options.concurrency
    }
    most_running = max(options.pg_running) if "pg-cancel-running" in wanted else 0
    cancels = options.pg_running_cancels + warmup_jobs(RUNNING_CANCEL_CONCURRENCY)
    slots = (most_running + len(options.pg_running) * cancels + sum(map(len, fleet_batches.values()))) // 2
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(postgres.analyzing_queue(url))
        rest, members = await _start_fleet(stack, work, url, "fleet", slots + WORKER_SLACK)
        creates_on = next(member.addresses["grpc"] for member in members if "grpc" in member.addresses)
        pids = tuple(member.pid for member in members)
        if "pg-fleet-cancel" in wanted:
            for concurrency, keys in fleet_batches.items():
                await jobs.create_running(creates_on, keys)
                result = await run_load(_cancel_spec(options, rest.addresses["rest"], keys, concurrency, pids))
                results.throughput.append(ThroughputRow("pg-fleet-cancel", concurrency, result))
                progress(f"pg-fleet-cancel c={concurrency}: {result.rps:.0f} rps, p99 {result.p99_ms:.2f} ms")
        if "pg-cancel-running" in wanted:
            background: list[JobKey] = []
            for running in options.pg_running:
                more = jobs.batch_keys("pg-background", running)[len(background) :]
                await jobs.create_running(creates_on, more)
                background += more
                keys = jobs.batch_keys(f"pg-running-{running}", cancels)
                await jobs.create_running(creates_on, keys)
                spec = _cancel_spec(options, rest.addresses["rest"], keys, RUNNING_CANCEL_CONCURRENCY, pids)
                result = await run_load(spec)
                results.pg_cancel_running.append(RunningCancel(running, RUNNING_CANCEL_CONCURRENCY, result))
                progress(
                    f"pg-cancel-running with {running:,} running: {result.rps:.0f} rps, p99 {result.p99_ms:.2f} ms"
                )


def _cancel_spec(
    options: Options, target: str, keys: list[JobKey], concurrency: int, cpu_pids: tuple[int, ...]
) -> LoadSpec:
    return LoadSpec(
        tool="http",
        target=target,
        items=http_items(keys, cancel=True),
        cycle=False,
        concurrency=concurrency,
        duration=options.duration,
        warmup_seconds=options.warmup,
        warmup_items=warmup_jobs(concurrency),
        operation="get",
        expect='"Cancelled"',
        cpu_pids=cpu_pids,
    )


async def stored(options: Options, work: Path, results: Results, databases: Databases) -> None:
    """Get and Cancel (of a Completed job: a read and an answer) over gRPC at concurrency 1 on a `fabric-jobs grpc`
    replica, with more and more Completed jobs seeded by one INSERT … SELECT FROM generate_series."""
    if "pg-stored" not in options.only:
        return
    url = await databases.create("stored")
    filled = 0
    for size in options.pg_stored:
        started = time.perf_counter()
        await postgres.seed_stored(url, filled, size)
        filled = size
        progress(f"pg-stored: {size:,} job instances in PostgreSQL ({time.perf_counter() - started:.1f}s to fill)")
        rng = random.Random(size)
        sample = [jobs.stored_key(rng.randrange(size)) for _ in range(options.sample_keys)]
        async with processes.grpc_replica(work, url, f"grpc-stored-{size}") as replica:
            results.pg_stored.extend(await stored_lookups(options, replica.addresses["grpc"], sample, size))
        plan = await _get_plan(url, sample[0])
        progress(f"pg-stored {size:,}: get p50 {results.pg_stored[-2].result.p50_ms:.3f} ms; plan: {plan}")
        if size == options.pg_stored[-1]:
            results.notes.append(f"PostgreSQL plan of the store's get_job with {size:,} rows: {plan}")


async def _get_plan(url: str, key: JobKey) -> str:
    rows = await postgres.query_all(url, "EXPLAIN (COSTS OFF) " + STORE_QUERIES["get_job"], key_params(key))
    return " ".join(str(rows[0][0]).split())


async def started_per_second(options: Options, work: Path, results: Results, databases: Databases) -> None:
    """Jobs started per second by one, then two `fabric-jobs worker` processes (default --concurrency): K quick demo
    jobs (durationSeconds 0) are created through a `fabric-jobs grpc` replica while no worker runs, the replica is
    stopped, the tables analyzed (what autovacuum would do; without fresh statistics procrastinate's fetch walks
    every queued job), then the workers are started together and the rows' start times read once all are
    Completed."""
    if "pg-workers" not in options.only:
        return
    url = await databases.create("workers")
    for count in (1, 2):
        keys = jobs.batch_keys(f"pg-start-{count}", options.start_jobs)
        async with processes.grpc_replica(work, url, f"grpc-queue-{count}") as replica:
            await jobs.create(replica.addresses["grpc"], keys, jobs.QUICK_PAYLOAD, wait_started=False)
        await postgres.execute(url, ANALYZE_QUEUE)
        rate = await _run_workers(url, work, count, keys)
        results.worker_rates.append(rate)
        progress(
            f"pg-workers: {count} worker(s) started {rate.rate:.0f} jobs/s ({rate.whole_rate:.0f} first to last); "
            f"CPU: {rate.worker_cpu_percent:.0f}% per worker, {rate.postgres_cpu_percent:.0f}% postgres"
        )


async def _run_workers(url: str, work: Path, count: int, keys: list[JobKey]) -> WorkerRate:
    tenant = {"tenant_id": keys[0].tenant_id}
    async with contextlib.AsyncExitStack() as stack:
        workers = [processes.worker(work, url, f"worker-start-{count}-{n}") for n in range(count)]
        await processes.start_together(stack, *workers)
        window_start_ms = max(worker.ready_ms for worker in workers)
        worker_cpu = [processes.cpu_seconds(worker.pid) for worker in workers]
        postgres_cpu = processes.postgres_cpu_seconds()
        machine_busy, machine_total = processes.machine_cpu_seconds()
        waits = await _sample_waits_until_finished(url, tenant, len(keys), count)
        worker_cpu = [
            processes.cpu_seconds(worker.pid) - before for worker, before in zip(workers, worker_cpu, strict=True)
        ]
        postgres_cpu = processes.postgres_cpu_seconds() - postgres_cpu
        busy_after, total_after = processes.machine_cpu_seconds()
        elapsed = time.time() - window_start_ms / 1000
    starts = [int(row[0]) for row in await postgres.query_all(url, START_TIMES, tenant)]
    in_window = [start for start in starts if start >= window_start_ms]
    window_seconds = max(in_window[-1] - window_start_ms, 1) / 1000 if in_window else 0.0
    whole_seconds = max(starts[-1] - starts[0], 1) / 1000
    return WorkerRate(
        workers=count,
        concurrency=ServiceSettings().worker_concurrency,
        jobs=len(keys),
        window_jobs=len(in_window),
        window_seconds=round(window_seconds, 3),
        rate=round(len(in_window) / window_seconds, 1) if window_seconds else 0.0,
        whole_rate=round((len(starts) - 1) / whole_seconds, 1),
        worker_cpu_percent=round(100 * sum(worker_cpu) / count / elapsed, 1),
        postgres_cpu_percent=round(100 * postgres_cpu / elapsed, 1),
        machine_busy_percent=round(100 * (busy_after - machine_busy) / max(total_after - machine_total, 1e-9), 1),
        backend_states=[
            f"{state} {100 * seen / max(sum(waits.values()), 1):.0f}%" for state, seen in waits.most_common(4)
        ],
    )


async def _sample_waits_until_finished(
    url: str, tenant: Mapping[str, object], jobs_count: int, workers: int
) -> Counter[str]:
    """Poll until every job is finished; meanwhile sample what the database's active backends wait on."""
    waits: Counter[str] = Counter()
    deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        for sample in itertools.count():
            if sample % FINISH_POLL_EVERY == 0:
                cursor = await connection.execute(COUNT_FINISHED, tenant)
                finished = await cursor.fetchone()
                if finished is not None and finished[0] == jobs_count:
                    return waits
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{workers} worker(s) did not finish {jobs_count} jobs in {FINISH_TIMEOUT_SECONDS:.0f}s"
                )
            cursor = await connection.execute(ACTIVE_BACKENDS)
            waits.update(str(row[0]) for row in await cursor.fetchall())
            await asyncio.sleep(WAIT_SAMPLE_SECONDS)
    raise AssertionError("unreachable")
