"""The job type of the multi-process test, loaded by `fabric-jobs grpc` and `fabric-jobs worker` processes
with `--jobs tests.scaleout.multiprocess_jobs:registry`.

Its handler appends its job_instance_id (one line) to the file named by FABRIC_JOBS_TEST_RUN_LOG when it
starts, so that the test sees which worker ran what, and how often.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from fabric_jobs import JobContext, JobRegistry

RUN_LOG_VARIABLE = "FABRIC_JOBS_TEST_RUN_LOG"
ITEM_TYPE = "Tests.MultiProcess"
WAITS = "waits"

registry = JobRegistry()


def log_start(ctx: JobContext) -> None:
    with open(os.environ[RUN_LOG_VARIABLE], "a") as run_log:
        run_log.write(ctx.key.job_instance_id + "\n")


@registry.job(ITEM_TYPE, WAITS)
async def waits(ctx: JobContext) -> None:
    """Ends Completed after creationPayload.seconds, or Cancelled as soon as it is told to cancel."""
    log_start(ctx)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.cancellation.wait(), float(ctx.payload["seconds"]))
