"""Event-loop lag: a task that wakes every INTERVAL seconds and records how late each wake-up ran."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fabric_jobs.observability import metrics

INTERVAL_SECONDS = 0.25


async def _measure(interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        planned = loop.time() + interval
        await asyncio.sleep(interval)
        metrics.event_loop_lag.observe(max(0.0, loop.time() - planned))


@contextlib.asynccontextmanager
async def lag_monitor(interval: float = INTERVAL_SECONDS) -> AsyncIterator[None]:
    """Within the block, fabric_jobs_event_loop_lag_seconds records this loop's lag."""
    task = asyncio.create_task(_measure(interval), name="event-loop lag")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
