"""Retention: terminal jobs older than a window are deleted with everything that belongs to them.

`purge` runs bounded batches until none is left (each batch one short transaction, one process at a time);
`Pruner` does it in the background of a serving process (`--retention`), every prune_interval_seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from fabric_jobs.observability import metrics
from fabric_jobs.server.model import now_ms
from fabric_jobs.server.store import JobStore, StoreError
from fabric_jobs.server.store.base import JobFilter

logger = logging.getLogger(__name__)

PURGE_BATCH = 100
"""Jobs deleted per transaction: small enough that no batch holds its locks for long."""
BUSY_PAUSE_SECONDS = 0.05
"""How long a purge waits when another process's batch holds the pruning lock."""


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    """A PurgeJobInstances call, checked: which terminal jobs, how old, and whether only to count them."""

    filter: JobFilter
    older_than_ms: int
    dry_run: bool


async def purge(store: JobStore, job_filter: JobFilter, before_ms: int, *, batch: int = PURGE_BATCH) -> int:
    """Delete every terminal job the filter covers that ended before `before_ms`, batch by batch; how many."""
    total = 0
    while True:
        result = await store.purge_batch(job_filter, before_ms, batch)
        total += result.purged
        metrics.jobs_purged.inc(result.purged)
        if result.held and result.purged < batch:
            return total
        await asyncio.sleep(0 if result.held else BUSY_PAUSE_SECONDS)


class Pruner:
    """Prunes jobs that ended over `retention_seconds` ago, now and every `interval` seconds, until stopped."""

    def __init__(self, store: JobStore, retention_seconds: float, interval: float) -> None:
        self._store = store
        self._retention_ms = round(retention_seconds * 1000)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fabric-jobs-pruner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                purged = await purge(self._store, JobFilter(), now_ms() - self._retention_ms)
            except StoreError as exc:
                logger.warning("retention: pruning failed, retried in %g s: %s", self._interval, exc)
            except Exception:
                logger.exception("retention: pruning failed, retried in %g s", self._interval)
            else:
                if purged:
                    logger.info("retention: deleted %d job(s) that ended over the retention window ago", purged)
            await asyncio.sleep(self._interval)
