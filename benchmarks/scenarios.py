"""The measurements: throughput rows, cancel-to-stopped, stored-jobs lookups, memory. Each starts what it measures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sys
import time
from pathlib import Path

from benchmarks import jobs, processes
from benchmarks.measure import LoadResult, LoadSpec, run_load
from benchmarks.options import Options
from benchmarks.processes import ServerProcess
from benchmarks.results import THROUGHPUT_ROWS, CancelToStopped, Memory, Results, StoredRow, ThroughputRow
from fabric_jobs.server.model import JobKey

COUNT_BOUND_SECONDS = 120.0
STOP_WARMUP_JOBS = 10
SETTLE_SECONDS = 1.0


def progress(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


def warmup_jobs(concurrency: int) -> int:
    return 2 * concurrency + 10


async def stored_lookups(options: Options, target: str, sample: list[JobKey], size: int) -> list[StoredRow]:
    """Get, then Cancel (of Completed jobs: a read and an answer), of `sample` over gRPC at concurrency 1."""
    rows = []
    for operation in ("get", "cancel"):
        spec = LoadSpec(
            tool="grpc",
            target=target,
            items=[jobs.key_fields(key) for key in sample],
            cycle=True,
            concurrency=1,
            duration=options.duration,
            warmup_seconds=options.warmup,
            operation=operation,
            expect="JOB_INSTANCE_STATUS_COMPLETED",
        )
        rows.append(StoredRow(size, operation, await run_load(spec)))
    return rows


def http_items(keys: list[JobKey], cancel: bool) -> list[list[str]]:
    items = []
    for key in keys:
        path = (
            f"/workspaces/{key.workspace_id}/items/{key.item_type}/{key.item_id}"
            f"/jobTypes/{key.job_type}/instances/{key.job_instance_id}"
        )
        items.append(["POST", path + "/cancel", key.tenant_id] if cancel else ["GET", path, key.tenant_id])
    return items


def _spec(
    options: Options, row: str, target: str, keys: list[JobKey], concurrency: int, cpu_pids: tuple[int, ...]
) -> LoadSpec:
    cancel = row.endswith("-cancel")
    tool, operation = "http", "get"
    if row == "constant":
        items, expect = [["GET", "/constant", "-"]], '"Completed"'
    elif row.startswith("grpc-"):
        tool, operation = "grpc", row.removeprefix("grpc-")
        items = [jobs.key_fields(key) for key in keys]
        expect = "JOB_INSTANCE_STATUS_CANCELLED" if cancel else "JOB_INSTANCE_STATUS_IN_PROGRESS"
    else:
        items, expect = http_items(keys, cancel), ('"Cancelled"' if cancel else '"InProgress"')
    return LoadSpec(
        tool=tool,
        target=target,
        items=items,
        cycle=not cancel,
        concurrency=concurrency,
        duration=options.duration,
        warmup_seconds=options.warmup,
        warmup_items=warmup_jobs(concurrency) if cancel else 0,
        operation=operation,
        expect=expect,
        cpu_pids=cpu_pids,
    )


def cancel_batch(row: str, concurrency: int, options: Options) -> list[JobKey]:
    return jobs.batch_keys(f"{row}-c{concurrency}", options.cancel_jobs + warmup_jobs(concurrency))


async def throughput(options: Options, work: Path, results: Results) -> None:
    """Every throughput row at every concurrency, then cancel-to-stopped, against one serve and one baseline app."""
    rows = [row for row in THROUGHPUT_ROWS if row in options.only]
    need_serve = any(row.startswith(("bridge-", "grpc-")) for row in rows) or "cancel-to-stopped" in options.only
    need_baseline = any(row.startswith("baseline-") or row == "constant" for row in rows)
    if not (need_serve or need_baseline):
        return
    async with contextlib.AsyncExitStack() as stack:
        serve: ServerProcess | None = None
        baseline: ServerProcess | None = None
        if need_baseline:
            database = work / "baseline.db"
            cancel_batches = (cancel_batch("baseline-cancel", c, options) for c in options.concurrency)
            await jobs.seed(
                database, itertools.chain(jobs.batch_keys("get", options.get_jobs), *cancel_batches), "InProgress"
            )
            baseline = await stack.enter_async_context(processes.baseline(work, f"sqlite:///{database}"))
        if need_serve:
            serve = await stack.enter_async_context(processes.serve(work, f"sqlite:///{work / 'serve.db'}"))
            await jobs.create_running(serve.addresses["grpc"], jobs.batch_keys("get", options.get_jobs))
        for row in rows:
            server = baseline if row.startswith("baseline-") or row == "constant" else serve
            assert server is not None
            target = server.addresses["grpc" if row.startswith("grpc-") else ("http" if server is baseline else "rest")]
            creates_on = serve.addresses["grpc"] if server is serve and serve is not None else None
            await measure_row(options, row, target, creates_on, results, cpu_pids=(server.pid,))
        if "cancel-to-stopped" in options.only and serve is not None:
            results.cancel_to_stopped = await cancel_to_stopped(options, serve)


async def measure_row(
    options: Options,
    row: str,
    target: str,
    creates_on: str | None,
    results: Results,
    *,
    row_name: str | None = None,
    cpu_pids: tuple[int, ...] = (),
) -> None:
    """One throughput row at every concurrency. Cancel rows cancel fresh running jobs, created first through the
    gRPC address `creates_on` (None: they were seeded in the database). The CPU time of the `cpu_pids` processes
    over each measured window is reported per request."""
    for concurrency in options.concurrency:
        keys = jobs.batch_keys("get", options.get_jobs)
        if row.endswith("-cancel"):
            keys = cancel_batch(row_name or row, concurrency, options)
            if creates_on is not None:
                await jobs.create_running(creates_on, keys)
        result = await run_load(_spec(options, row, target, keys, concurrency, cpu_pids))
        results.throughput.append(ThroughputRow(row_name or row, concurrency, result))
        progress(f"{row_name or row} c={concurrency}: {result.rps:.0f} rps, p50 {result.p50_ms:.2f} ms")


async def cancel_to_stopped(options: Options, serve: ServerProcess) -> CancelToStopped:
    """CancelJobInstance of running cooperative jobs, one at a time: the call returns once the stop is recorded."""
    keys = jobs.batch_keys("stop", options.stop_jobs + STOP_WARMUP_JOBS)
    await jobs.create_running(serve.addresses["grpc"], keys)
    result = await count_bound_cancels(options, serve.addresses["grpc"], keys, STOP_WARMUP_JOBS)
    progress(f"cancel-to-stopped: p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms")
    return CancelToStopped(options.stop_jobs, result)


async def count_bound_cancels(
    options: Options, target: str, keys: list[JobKey], warmup: int, concurrency: int = 1
) -> LoadResult:
    spec = LoadSpec(
        tool="grpc",
        target=target,
        items=[jobs.key_fields(key) for key in keys],
        cycle=False,
        concurrency=concurrency,
        duration=COUNT_BOUND_SECONDS,
        warmup_seconds=COUNT_BOUND_SECONDS,
        warmup_items=warmup,
        operation="cancel",
        expect="JOB_INSTANCE_STATUS_CANCELLED",
    )
    return await run_load(spec)


async def stored(options: Options, work: Path, results: Results) -> None:
    """Get and Cancel over gRPC at concurrency 1 with more and more job instances stored (Completed ones)."""
    if "stored" not in options.only:
        return
    database = work / "stored.db"
    filled = 0
    for size in options.stored:
        started = time.perf_counter()
        await jobs.seed(database, jobs.stored_keys(filled, size), "Completed")
        filled = size
        progress(f"stored: {size:,} job instances in the database ({time.perf_counter() - started:.1f}s to fill)")
        async with processes.serve(work, f"sqlite:///{database}", f"serve-stored-{size}") as serve:
            target = serve.addresses["grpc"]
            rng = random.Random(size)
            sample = [jobs.stored_key(rng.randrange(size)) for _ in range(options.sample_keys)]
            results.stored.extend(await stored_lookups(options, target, sample, size))
            running = jobs.batch_keys(f"stored-running-{size}", options.stored_running_jobs + STOP_WARMUP_JOBS)
            await jobs.create_running(target, running)
            result = await count_bound_cancels(options, target, running, STOP_WARMUP_JOBS)
            results.stored.append(StoredRow(size, "cancel running", result))
            progress(f"stored {size:,}: get p50 {results.stored[-3].result.p50_ms:.3f} ms")


async def memory(options: Options, work: Path, results: Results) -> None:
    """VmRSS of `fabric-jobs serve` idle (after start and a few calls), then with memory_jobs demo jobs running."""
    if "memory" not in options.only:
        return
    async with processes.serve(work, f"sqlite:///{work / 'memory.db'}", "serve-memory") as serve:
        warm = jobs.batch_keys("memory-warm", 4)
        await jobs.create_running(serve.addresses["grpc"], warm)
        spec = LoadSpec(
            tool="http",
            target=serve.addresses["rest"],
            items=http_items(warm, cancel=False),
            cycle=True,
            concurrency=1,
            duration=0.2,
            warmup_seconds=0.0,
        )
        await run_load(spec)
        await asyncio.sleep(SETTLE_SECONDS)
        idle = processes.rss_mib(serve.pid)
        started = time.perf_counter()
        await jobs.create_running(serve.addresses["grpc"], jobs.batch_keys("memory-running", options.memory_jobs))
        seconds = time.perf_counter() - started
        await asyncio.sleep(SETTLE_SECONDS)
        running = processes.rss_mib(serve.pid)
    results.memory = Memory(idle_mib=round(idle, 1), running_jobs=options.memory_jobs, running_mib=round(running, 1))
    results.notes.append(f"memory: created and started {options.memory_jobs:,} demo jobs in {seconds:.1f}s over gRPC")
    progress(f"memory: idle {idle:.1f} MiB, {running:.1f} MiB with {options.memory_jobs:,} running jobs")
