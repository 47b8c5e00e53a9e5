"""Fast job handlers for the bridge tests, registered under the item type Test.Item."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from fabric_jobs import JobContext, JobFailed, JobRegistry
from fabric_jobs.demo import validate_forecast

ITEM_TYPE = "Test.Item"
COMPLETES = "completes"
COOPERATES = "cooperates"
IGNORES_CANCEL = "ignoresCancel"
FAILS = "fails"
CRASHES = "crashes"
HOLDS_THREAD = "holdsThread"
SYNC_COMPLETES = "syncCompletes"
VALIDATED = "validated"
RECORDS_PAYLOAD = "recordsPayload"

registry = JobRegistry()
runs: Counter[str] = Counter()
payloads: dict[str, Mapping[str, Any]] = {}


@registry.job(ITEM_TYPE, COMPLETES)
async def completes(ctx: JobContext) -> None:
    runs[ctx.key.job_instance_id] += 1


@registry.job(ITEM_TYPE, COOPERATES)
async def cooperates(ctx: JobContext) -> None:
    runs[ctx.key.job_instance_id] += 1
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, IGNORES_CANCEL)
async def ignores_cancel(ctx: JobContext) -> None:
    runs[ctx.key.job_instance_id] += 1
    await asyncio.Event().wait()


@registry.job(ITEM_TYPE, FAILS)
def fails(ctx: JobContext) -> None:
    raise JobFailed("the forecast could not be computed", error_code="ForecastFailed", message_parameters=("x",))


@registry.job(ITEM_TYPE, CRASHES)
async def crashes(ctx: JobContext) -> None:
    raise RuntimeError("the handler crashed")


@registry.job(ITEM_TYPE, HOLDS_THREAD)
def holds_thread(ctx: JobContext) -> None:
    """Occupies the server's only handler thread until cancelled, so later plain jobs stay NotStarted."""
    while not ctx.cancellation.cancelled:
        time.sleep(0.01)


@registry.job(ITEM_TYPE, SYNC_COMPLETES)
def sync_completes(ctx: JobContext) -> None:
    runs[ctx.key.job_instance_id] += 1


@registry.job(ITEM_TYPE, VALIDATED, validate=validate_forecast)
async def validated(ctx: JobContext) -> None:
    runs[ctx.key.job_instance_id] += 1


@registry.job(ITEM_TYPE, RECORDS_PAYLOAD)
async def records_payload(ctx: JobContext) -> None:
    payloads[ctx.key.job_instance_id] = ctx.payload
