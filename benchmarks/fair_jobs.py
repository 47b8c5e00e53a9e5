"""The job type of the fair-start rows, loaded with `--jobs benchmarks.fair_jobs:registry`: the demo's item and job
type names (so that benchmarks.jobs' keys fit), as a plain function, which runs in the handler thread pool
(`--max-threads`): on SQLite the pool's places are what a backlog queues for, as `--concurrency` is on PostgreSQL.
It returns after `durationSeconds` (0.5 by default), or at once when cancelled."""

from __future__ import annotations

from fabric_jobs import JobContext, JobRegistry
from fabric_jobs.demo import ITEM_TYPE, JOB_TYPE

registry = JobRegistry()


@registry.job(ITEM_TYPE, JOB_TYPE)
def quick(ctx: JobContext) -> None:
    ctx.cancellation.wait_blocking(float(ctx.payload.get("durationSeconds", 0.5)))
