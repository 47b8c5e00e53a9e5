"""The test jobs, written once: "cooperative", "ignores cancel", "fails" and the rest, run by the tests' own
JobServices and loaded by real processes too:

    fabric-jobs worker --database postgresql://… --jobs tests.jobs:registry

(the process's working directory must be the repository root). Item type ITEM_TYPE = "Test.Item"; job types
(creationPayload fields in brackets):

- COMPLETES "completes", SYNC_COMPLETES "syncCompletes" (plain function): end Completed at once.
- QUICK "quick": sleeps `delaySeconds` (default 0) whatever its token says, then returns: Completed, or
  Cancelled if a cancel reached it first.
- WAITS "waits": ends Completed after `delaySeconds` (default 3600), or Cancelled as soon as it is told.
- COOPERATES "cooperates", COOPERATES_THREAD "cooperatesThread" (plain): wait on the token; Cancelled once told.
- IGNORES_CANCEL "ignoresCancel", IGNORES_CANCEL_THREAD "ignoresCancelThread" (plain, sleeping in short steps so
  that a forced stop takes effect): sleep `delaySeconds` (default 3600) whatever the token says; only the
  forced stop after the cancel grace ends them early.
- HOLDS_THREAD "holdsThread" (plain): holds a handler thread until cancelled, so later plain jobs stay NotStarted.
- FAILS "fails": raises JobFailed (errorCode FAILED_ERROR_CODE "ForecastFailed", source External, not permanent,
  messageParameters ["x"]); CRASHES "crashes": raises RuntimeError (JobExecutionFailed).
- VALIDATED "validated": the demo's payload validator, then Completed; RECORDS_PAYLOAD "recordsPayload": keeps
  its payload in `payloads` and its invoke type in `invoke_types`.

Every handler, as it starts, counts its job instance id in `runs` (this process) and appends it as one line to
the file named by FABRIC_JOBS_TEST_RUN_LOG when that is set (every process): read it with `read_run_log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fabric_jobs import ErrorSource, InvokeType, JobContext, JobFailed, JobRegistry
from fabric_jobs.demo import validate_forecast

ITEM_TYPE = "Test.Item"
COMPLETES = "completes"
SYNC_COMPLETES = "syncCompletes"
QUICK = "quick"
WAITS = "waits"
COOPERATES = "cooperates"
COOPERATES_THREAD = "cooperatesThread"
IGNORES_CANCEL = "ignoresCancel"
IGNORES_CANCEL_THREAD = "ignoresCancelThread"
HOLDS_THREAD = "holdsThread"
FAILS = "fails"
CRASHES = "crashes"
VALIDATED = "validated"
RECORDS_PAYLOAD = "recordsPayload"

DELAY_FIELD = "delaySeconds"
RUN_LOG_VARIABLE = "FABRIC_JOBS_TEST_RUN_LOG"
FAILED_ERROR_CODE = "ForecastFailed"
LONG_SECONDS = 3600.0
THREAD_STEP_SECONDS = 0.02

registry = JobRegistry()
runs: Counter[str] = Counter()
payloads: dict[str, Mapping[str, Any]] = {}
invoke_types: dict[str, InvokeType] = {}


def started(ctx: JobContext) -> None:
    """Count the start here and append it to the run log (one write, flushed at once) when there is one."""
    runs[ctx.key.job_instance_id] += 1
    if path := os.environ.get(RUN_LOG_VARIABLE):
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{ctx.key.job_instance_id}\n")
            log.flush()


def read_run_log(path: Path) -> Counter[str]:
    """How many times each job instance id started, according to the run log at `path` (a line still being
    written is left out)."""
    if not path.exists():
        return Counter()
    text = path.read_text(encoding="utf-8")
    return Counter(text.splitlines()[: text.count("\n")])


def delay_of(ctx: JobContext, default: float) -> float:
    return float(ctx.payload.get(DELAY_FIELD, default))


@registry.job(ITEM_TYPE, COMPLETES)
async def completes(ctx: JobContext) -> None:
    started(ctx)


@registry.job(ITEM_TYPE, SYNC_COMPLETES)
def sync_completes(ctx: JobContext) -> None:
    started(ctx)


@registry.job(ITEM_TYPE, QUICK)
async def quick(ctx: JobContext) -> None:
    started(ctx)
    await asyncio.sleep(delay_of(ctx, 0.0))


@registry.job(ITEM_TYPE, WAITS)
async def waits(ctx: JobContext) -> None:
    started(ctx)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.cancellation.wait(), delay_of(ctx, LONG_SECONDS))


@registry.job(ITEM_TYPE, COOPERATES)
async def cooperates(ctx: JobContext) -> None:
    started(ctx)
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, COOPERATES_THREAD)
def cooperates_thread(ctx: JobContext) -> None:
    started(ctx)
    while not ctx.cancellation.wait_blocking(THREAD_STEP_SECONDS):
        pass


@registry.job(ITEM_TYPE, IGNORES_CANCEL)
async def ignores_cancel(ctx: JobContext) -> None:
    started(ctx)
    await asyncio.sleep(delay_of(ctx, LONG_SECONDS))


@registry.job(ITEM_TYPE, IGNORES_CANCEL_THREAD)
def ignores_cancel_thread(ctx: JobContext) -> None:
    started(ctx)
    deadline = time.monotonic() + delay_of(ctx, LONG_SECONDS)
    while time.monotonic() < deadline:
        time.sleep(THREAD_STEP_SECONDS)


@registry.job(ITEM_TYPE, HOLDS_THREAD)
def holds_thread(ctx: JobContext) -> None:
    started(ctx)
    while not ctx.cancellation.cancelled:
        time.sleep(0.01)


@registry.job(ITEM_TYPE, FAILS)
async def fails(ctx: JobContext) -> None:
    started(ctx)
    raise JobFailed(
        "the forecast could not be computed",
        error_code=FAILED_ERROR_CODE,
        source=ErrorSource.EXTERNAL,
        is_permanent=False,
        message_parameters=("x",),
    )


@registry.job(ITEM_TYPE, CRASHES)
async def crashes(ctx: JobContext) -> None:
    started(ctx)
    raise RuntimeError("the handler crashed")


@registry.job(ITEM_TYPE, VALIDATED, validate=validate_forecast)
async def validated(ctx: JobContext) -> None:
    started(ctx)


@registry.job(ITEM_TYPE, RECORDS_PAYLOAD)
async def records_payload(ctx: JobContext) -> None:
    started(ctx)
    payloads[ctx.key.job_instance_id] = ctx.payload
    invoke_types[ctx.key.job_instance_id] = ctx.invoke_type
