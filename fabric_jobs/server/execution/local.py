"""The embedded dispatch: handlers run in this process, on a LocalExecutor.

Its upkeep runs every lease/3 seconds: it renews the lease of this process's running jobs (and picks
up cancels asked for through another process sharing the database), ends Failed (retriable) the
running jobs of executors whose lease expired, and queues NotStarted jobs that no live process has queued.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from fabric_jobs.errors import job_executor_lost
from fabric_jobs.observability import metrics
from fabric_jobs.registry import JobRegistry
from fabric_jobs.server.execution.executor import LocalExecutor
from fabric_jobs.server.model import JobKey, JobStatus, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore, StoreError
from fabric_jobs.server.store.changes import ChangeFeed

logger = logging.getLogger(__name__)

RECOVERY_BATCH = 1000
PROCESS_LOST = job_executor_lost("The process running the job stopped before the job finished; it can be retried.")


class LocalDispatch:
    def __init__(self, store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings) -> None:
        self._store = store
        self._feed = feed
        self._settings = settings
        self.owner = f"executor-{uuid.uuid4()}"
        self._executor = LocalExecutor(store, registry, feed, settings, self.owner)
        self._upkeep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._store.heartbeat(self.owner, now_ms())
        await self._recover()
        self._upkeep = asyncio.create_task(self._upkeep_loop(), name="job upkeep")

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.gather(self._upkeep, return_exceptions=True)
        await self._executor.shutdown()

    async def submit(self, key: JobKey) -> None:
        self._executor.schedule(key)

    async def cancel(self, key: JobKey) -> None:
        self._executor.cancel(key)

    async def _recover(self) -> None:
        lease_ms = int(self._settings.lease_seconds * 1000)
        for record in await self._store.fail_expired(lease_ms, now_ms(), PROCESS_LOST):
            logger.warning(
                "job %s was left running by a stopped process (%s): ended Failed (retriable)", record.key, record.owner
            )
            metrics.executor_lost_of("process_lost").inc()
            metrics.jobs_ended_of(record.key.job_type, record.status.value).inc()
            self._feed.publish(record)
        queued = await self._store.keys_with_status(JobStatus.NOT_STARTED, RECOVERY_BATCH)
        scheduled = sum(self._executor.schedule(key) for key in queued)
        if scheduled:
            logger.info("queued %d job(s) left NotStarted", scheduled)

    async def _upkeep_loop(self) -> None:
        interval = max(self._settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                for key in await self._store.heartbeat(self.owner, now_ms()):
                    self._executor.cancel(key)
                await self._recover()
            except StoreError:
                logger.exception("job upkeep failed; retrying in %.1fs", interval)
