"""What ctx.report_progress costs a handler, and how many store writes its reports become.

python -m benchmarks.progress [--database URL] [--reports N] [--jobs J] [--seconds S]

Through a real JobService (SQLite by default; a migrated PostgreSQL database with --database):
- one plain handler (in a thread) and one async handler each report N times in a tight loop, then 100% and
  return: the time per report in the handler, the reports and the writes they became;
- J async handlers at once report every 10 ms for S seconds: the writes per second the store took, against
  J / --progress-interval (1 s), and the reports they coalesced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from prometheus_client import REGISTRY

from fabric_jobs import JobContext, JobRegistry
from fabric_jobs.server.app import ServiceSettings, start_job_server
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

ITEM_TYPE = "Bench.Progress"
per_report_us: dict[str, float] = {}
registry = JobRegistry()


@registry.job(ITEM_TYPE, "floodThread")
def flood_thread(ctx: JobContext) -> None:
    count = int(ctx.payload["count"])
    started = time.perf_counter()
    for step in range(count):
        ctx.report_progress(step * 100 / count, f"step {step}")
    per_report_us["thread"] = (time.perf_counter() - started) / count * 1e6
    ctx.report_progress(100, "done")


@registry.job(ITEM_TYPE, "flood")
async def flood(ctx: JobContext) -> None:
    count = int(ctx.payload["count"])
    started = time.perf_counter()
    for step in range(count):
        ctx.report_progress(step * 100 / count, f"step {step}")
    per_report_us["async"] = (time.perf_counter() - started) / count * 1e6
    ctx.report_progress(100, "done")


@registry.job(ITEM_TYPE, "steady")
async def steady(ctx: JobContext) -> None:
    seconds = float(ctx.payload["seconds"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (elapsed := loop.time() - started) < seconds:
        ctx.report_progress(elapsed * 100 / seconds, "working")
        await asyncio.sleep(0.01)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def run(stub: pb_grpc.JobServiceAsyncStub, job_type: str, payload: dict[str, float]) -> pb.JobInstance:
    key = pb.JobInstanceKey(
        tenant_id=str(uuid.uuid4()),
        workspace_id=str(uuid.uuid4()),
        item_type=ITEM_TYPE,
        item_id=str(uuid.uuid4()),
        job_type=job_type,
        job_instance_id=str(uuid.uuid4()),
    )
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=json.dumps(payload)
    )
    await stub.CreateJobInstance(request)
    job = pb.JobInstance()
    async for change in stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key)):
        job = change.job_instance
    return job


async def measure(database: str, reports: int, jobs: int, seconds: float) -> None:
    server = await start_job_server(ServiceSettings(database=database, worker_concurrency=jobs + 2), registry, port=0)
    channel = grpc.aio.insecure_channel(server.address)
    stub = pb_grpc.JobServiceStub(channel)
    try:
        for job_type, kind in (("floodThread", "thread"), ("flood", "async")):
            reports_before = counter("fabric_jobs_progress_reports_total")
            writes_before = counter("fabric_jobs_progress_writes_total")
            job = await run(stub, job_type, {"count": reports})
            ran = (job.end_time.ToMilliseconds() - job.start_time.ToMilliseconds()) / 1000
            print(
                f"{kind:6} handler: {reports:,} reports in a tight loop, {per_report_us[kind]:.2f} us each; "
                f"{counter('fabric_jobs_progress_reports_total') - reports_before:,.0f} reports became "
                f"{counter('fabric_jobs_progress_writes_total') - writes_before:,.0f} writes in {ran:.2f} s; "
                f"last kept: {job.progress.percent:g}% {job.progress.message}"
            )
        reports_before = counter("fabric_jobs_progress_reports_total")
        writes_before = counter("fabric_jobs_progress_writes_total")
        started = time.perf_counter()
        await asyncio.gather(*(run(stub, "steady", {"seconds": seconds}) for _ in range(jobs)))
        took = time.perf_counter() - started
        writes = counter("fabric_jobs_progress_writes_total") - writes_before
        print(
            f"{jobs} async handlers reporting every 10 ms for {seconds:g} s: "
            f"{counter('fabric_jobs_progress_reports_total') - reports_before:,.0f} reports, {writes:,.0f} writes "
            f"({writes / took:,.0f} writes/s over {took:.1f} s; "
            "about one per job per second by the 1 s interval, and each job's last)"
        )
    finally:
        await channel.close(None)
        await server.stop(grace=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="a migrated database URL (default: a fresh SQLite file)")
    parser.add_argument("--reports", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = args.database or f"sqlite:///{Path(folder) / 'progress.db'}"
        asyncio.run(measure(database, args.reports, args.jobs, args.seconds))


if __name__ == "__main__":
    main()
