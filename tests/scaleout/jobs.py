"""Job types for the scale-out tests, run by real worker processes:

    fabric-jobs worker --database postgresql://… --jobs tests.scaleout.jobs:registry

(the process's working directory must be the repository root). Other test modules import these names;
keep them stable.

Item type: ITEM_TYPE = "Test.ScaleOut.Item". Job types (JobContext.payload fields in brackets):

- QUICK "quick" (async): sleeps `delaySeconds` (a number, default 0), ignoring the token, then returns:
  Completed, or Cancelled if a cancel reached it before it returned.
- COOPERATIVE "cooperative" (async): waits on the cancellation token; ends Cancelled once told.
- COOPERATIVE_THREAD "cooperativeThread" (plain function, in a thread): the same, polling the token.
- IGNORES_TOKEN "ignoresToken" (async): sleeps `delaySeconds` (default 3600) whatever the token says;
  only the executor's forced stop after --cancel-grace ends it early.
- IGNORES_TOKEN_THREAD "ignoresTokenThread" (plain): the same in a thread, sleeping in short steps so
  that the forced stop (an exception raised in the thread) takes effect.
- RAISES "raises" (async): raises RuntimeError: Failed, errorCode JobExecutionFailed.
- FAILS "fails" (async): raises JobFailed: Failed, errorCode FAILED_ERROR_CODE ("ScaleOutTestFailure"),
  isPermanent false, messageParameters ("scaleout",).

Every handler, when it starts, appends one line "<job_instance_id>\\n" to the file named by the
environment variable FABRIC_JOBS_TEST_RUN_LOG (RUN_LOG_VARIABLE) when it is set, so that a test can
prove that no job ran twice across processes (read it with `read_run_log`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

from fabric_jobs import ErrorSource, JobContext, JobFailed, JobRegistry

ITEM_TYPE = "Test.ScaleOut.Item"

QUICK = "quick"
COOPERATIVE = "cooperative"
COOPERATIVE_THREAD = "cooperativeThread"
IGNORES_TOKEN = "ignoresToken"
IGNORES_TOKEN_THREAD = "ignoresTokenThread"
RAISES = "raises"
FAILS = "fails"

DELAY_FIELD = "delaySeconds"
RUN_LOG_VARIABLE = "FABRIC_JOBS_TEST_RUN_LOG"
FAILED_ERROR_CODE = "ScaleOutTestFailure"
IGNORED_TOKEN_SECONDS = 3600.0
THREAD_STEP_SECONDS = 0.02

registry = JobRegistry()


def record_start(ctx: JobContext) -> None:
    """Append the job instance id to the run log, in one write, flushed at once."""
    path = os.environ.get(RUN_LOG_VARIABLE)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{ctx.key.job_instance_id}\n")
            log.flush()


def read_run_log(path: Path) -> Counter[str]:
    """How many times each job instance id started, according to the run log at `path`."""
    if not path.exists():
        return Counter()
    return Counter(path.read_text(encoding="utf-8").splitlines())


def delay_of(ctx: JobContext, default: float) -> float:
    return float(ctx.payload.get(DELAY_FIELD, default))


@registry.job(ITEM_TYPE, QUICK)
async def quick(ctx: JobContext) -> None:
    record_start(ctx)
    await asyncio.sleep(delay_of(ctx, 0.0))


@registry.job(ITEM_TYPE, COOPERATIVE)
async def cooperative(ctx: JobContext) -> None:
    record_start(ctx)
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, COOPERATIVE_THREAD)
def cooperative_thread(ctx: JobContext) -> None:
    record_start(ctx)
    while not ctx.cancellation.wait_blocking(THREAD_STEP_SECONDS):
        pass


@registry.job(ITEM_TYPE, IGNORES_TOKEN)
async def ignores_token(ctx: JobContext) -> None:
    record_start(ctx)
    await asyncio.sleep(delay_of(ctx, IGNORED_TOKEN_SECONDS))


@registry.job(ITEM_TYPE, IGNORES_TOKEN_THREAD)
def ignores_token_thread(ctx: JobContext) -> None:
    record_start(ctx)
    deadline = time.monotonic() + delay_of(ctx, IGNORED_TOKEN_SECONDS)
    while time.monotonic() < deadline:
        time.sleep(THREAD_STEP_SECONDS)


@registry.job(ITEM_TYPE, RAISES)
async def raises(ctx: JobContext) -> None:
    record_start(ctx)
    raise RuntimeError("the scale-out test handler raised")


@registry.job(ITEM_TYPE, FAILS)
async def fails(ctx: JobContext) -> None:
    record_start(ctx)
    raise JobFailed(
        "The scale-out test job failed as it was told to.",
        error_code=FAILED_ERROR_CODE,
        source=ErrorSource.EXTERNAL,
        is_permanent=False,
        message_parameters=("scaleout",),
    )
