"""Handlers for the shutdown tests, each ending its own way when the service tells it that it is shutting down."""

from __future__ import annotations

import asyncio

from fabric_jobs import CancelReason, JobContext, JobFailed, JobRegistry

ITEM_TYPE = "Contoso.Shutdown.Item"
HONOURS = "honours"
"""Returns as soon as its token is set."""
HONOURS_THREAD = "honoursThread"
"""A plain function that returns as soon as its token is set."""
FAILS_ON_SHUTDOWN = "failsOnShutdown"
"""Raises JobFailed when told of a shutdown."""
IGNORES = "ignores"
"""Never looks at its token."""

registry = JobRegistry()


@registry.job(ITEM_TYPE, HONOURS)
async def honours(ctx: JobContext) -> None:
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, HONOURS_THREAD)
def honours_thread(ctx: JobContext) -> None:
    while not ctx.cancellation.wait_blocking(timeout=1.0):
        pass


@registry.job(ITEM_TYPE, FAILS_ON_SHUTDOWN)
async def fails_on_shutdown(ctx: JobContext) -> None:
    await ctx.cancellation.wait()
    if ctx.cancellation.reason is CancelReason.SHUTDOWN:
        raise JobFailed("Saved a checkpoint; run again to resume.", error_code="Checkpointed", is_permanent=False)


@registry.job(ITEM_TYPE, IGNORES)
async def ignores(ctx: JobContext) -> None:
    await asyncio.sleep(3600)
