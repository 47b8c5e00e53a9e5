"""The demo registry shipped with fabric-jobs, loaded by default (`--jobs fabric_jobs.demo:registry`).

It registers Contoso.FinanceAnalytics.Forecast / calculateForecast, the names of Fabric's
reference example, and the same job under the full name Fabric gives a job type in an item manifest
and sends as jobType, Contoso.FinanceAnalytics.Forecast.CalculateForecast (`fabric-jobs manifest`
prints the manifest's <JobScheduler>; the short name is left out of it). Its creationPayload may set:
- durationSeconds: how long the job runs (number, 0 to 86400, default 10);
- outcome: "Completed" (default) or "Failed";
- ignoreCancellation: true to ignore the cancellation token, which shows the forced stop;
- progressSeconds: how often it reports its progress while it runs, and once more at its end (`fabric-jobs jobs
  watch` and the console show it): a number from 0 to 86400, default 1; 0 reports nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fabric_jobs import InvalidPayload, JobContext, JobFailed, JobRegistry

ITEM_TYPE = "Contoso.FinanceAnalytics.Forecast"
JOB_TYPE = "calculateForecast"
FULL_JOB_TYPE = f"{ITEM_TYPE}.CalculateForecast"
MAX_DURATION_SECONDS = 86400.0
DEFAULT_PROGRESS_SECONDS = 1.0

registry = JobRegistry()


def validate_forecast(payload: Mapping[str, Any]) -> None:
    allowed = {"durationSeconds", "outcome", "ignoreCancellation", "progressSeconds"}
    for name in payload:
        if name not in allowed:
            raise InvalidPayload(name, f"unknown field; allowed: {', '.join(sorted(allowed))}")
    for name, default in (("durationSeconds", 10), ("progressSeconds", DEFAULT_PROGRESS_SECONDS)):
        seconds = payload.get(name, default)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= MAX_DURATION_SECONDS
        ):
            raise InvalidPayload(name, f"must be a number from 0 to {MAX_DURATION_SECONDS:g}")
    if payload.get("outcome", "Completed") not in ("Completed", "Failed"):
        raise InvalidPayload("outcome", 'must be "Completed" or "Failed"')
    if not isinstance(payload.get("ignoreCancellation", False), bool):
        raise InvalidPayload("ignoreCancellation", "must be true or false")


@registry.job(ITEM_TYPE, FULL_JOB_TYPE, validate=validate_forecast)
@registry.job(ITEM_TYPE, JOB_TYPE, validate=validate_forecast)
async def calculate_forecast(ctx: JobContext) -> None:
    duration = float(ctx.payload.get("durationSeconds", 10))
    every = float(ctx.payload.get("progressSeconds", DEFAULT_PROGRESS_SECONDS))
    ctx.logger.info("forecast %s: running for %.1fs", ctx.key.job_instance_id, duration)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (elapsed := loop.time() - started) < duration:
        if every:
            ctx.report_progress(round(elapsed * 100 / duration, 1), f"forecasting: {elapsed:.0f} of {duration:g} s")
        step = min(every or duration, duration - elapsed)
        if ctx.payload.get("ignoreCancellation", False):
            await asyncio.sleep(step)
            continue
        try:
            await asyncio.wait_for(ctx.cancellation.wait(), step)
            ctx.logger.info("forecast %s: cancelled", ctx.key.job_instance_id)
            return
        except TimeoutError:
            pass
    if ctx.payload.get("outcome", "Completed") == "Failed":
        raise JobFailed("The forecast failed, as its creationPayload asked.", error_code="ForecastFailed")
    if every:
        ctx.report_progress(100, "forecast ready")
