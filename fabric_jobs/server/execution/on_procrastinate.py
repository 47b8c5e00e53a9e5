"""Execution on procrastinate, for job instances kept in PostgreSQL.

Our job_instances row stays the truth that Fabric sees; a procrastinate job is only the vehicle
that brings a key to a worker: task `fabric_jobs.run_job_instance` on queue `fabric_jobs`, its lock
and queueing lock the key's text, so a key is queued at most once and never runs on two workers
at once. A Cancel asks procrastinate to abort the key's running job, which the worker hears through
LISTEN/NOTIFY. The upkeep, run by every JobService replica and every worker, loses nothing: the
running jobs of a worker whose heartbeat stopped end Failed (JobExecutorLost, retriable), and a
NotStarted row without a queued job (its defer lost in a crash) is queued again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status
from psycopg_pool import AsyncConnectionPool

from fabric_jobs import request_context
from fabric_jobs.errors import job_executor_lost
from fabric_jobs.observability import metrics
from fabric_jobs.server.model import JobKey, JobStatus, now_ms
from fabric_jobs.server.store import JobStore, StoreError
from fabric_jobs.server.store.changes import ChangeFeed
from fabric_jobs.server.store.queries import load_named_queries

logger = logging.getLogger(__name__)

TASK_NAME = "fabric_jobs.run_job_instance"
QUEUE = "fabric_jobs"
LOST_DEFER_AFTER_MS = 5_000
PROCRASTINATE_POOL_SIZE = 10
UPKEEP_BATCH = 1000

QUERIES = load_named_queries("procrastinate.sql")
WORKER_LOST = job_executor_lost("The worker running the job stopped before the job finished; it can be retried.")


def new_app(url: str) -> procrastinate.App:
    """A procrastinate App with a connection pool of its own, whose commits do not wait for the disk.

    procrastinate's rows are only the vehicle; our job_instances rows, written durably on the store's
    own pool, are the truth. A procrastinate write lost in a database crash costs nothing: a lost defer
    is queued again by the upkeep, a lost fetch runs the job on another worker whose claim finds it
    taken, a lost finish is found by the upkeep as a stalled job whose row has already ended. Each job
    commits twice on each side; sparing two flushes a job is what lets a worker start jobs at the rate
    the machine allows.
    """
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=url,
            min_size=1,
            max_size=PROCRASTINATE_POOL_SIZE,
            kwargs={"options": "-c synchronous_commit=off"},
            pool_factory=_statement_pool,
        )
    )


def _statement_pool(**arguments: Any) -> AsyncConnectionPool[Any]:
    """procrastinate's pool, its connections in autocommit and not checked before each use.

    Every query procrastinate sends is one statement (a call of one of its functions), so a transaction around
    it only adds a BEGIN and a COMMIT, and the pool's check an empty query: four round trips where one does. A
    connection the server closed fails its next query, which procrastinate reports and the pool then replaces,
    as the store's own pool does.
    """
    arguments.pop("check", None)
    return AsyncConnectionPool(**arguments, configure=_autocommit)


async def _autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)


class ProcrastinateDispatch:
    def __init__(self, app: procrastinate.App, store: JobStore, feed: ChangeFeed, *, lease_seconds: float) -> None:
        self._app = app
        self._store = store
        self._feed = feed
        self._lease_seconds = lease_seconds
        self._upkeep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.upkeep()
        self._upkeep = asyncio.create_task(self._upkeep_loop(), name="procrastinate upkeep")

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.gather(self._upkeep, return_exceptions=True)
            self._upkeep = None

    async def submit(self, key: JobKey) -> None:
        text = key.to_text()
        deferrer = self._app.configure_task(TASK_NAME, queue=QUEUE, lock=text, queueing_lock=text)
        ids = {name: value for name, value in request_context.ids().items() if value is not None}
        try:
            await deferrer.defer_async(key=text, **ids)
        except procrastinate_errors.AlreadyEnqueued:
            logger.debug("job %s is already queued", key)
        except procrastinate_errors.ConnectorException as exc:
            # The row is stored: the upkeep queues it once the database answers again.
            logger.warning("job %s is stored but could not be queued yet (%s); the upkeep will queue it", key, exc)

    async def cancel(self, key: JobKey) -> None:
        try:
            await self._query("abort_running_job_of_key", lock=key.to_text())
        except procrastinate_errors.ConnectorException as exc:
            raise StoreError(f"procrastinate could not abort job {key}: {exc}") from exc

    async def upkeep(self) -> None:
        """End Failed the running jobs of stalled workers, and queue again the rows whose defer was lost."""
        manager = self._app.job_manager
        stalled = await manager.get_stalled_jobs(
            queue=QUEUE, task_name=TASK_NAME, seconds_since_heartbeat=self._lease_seconds
        )
        for job in stalled:
            key = JobKey.from_text(str(job.task_kwargs.get("key", "")))
            if key is not None:
                record = await self._store.transition(
                    key,
                    (JobStatus.IN_PROGRESS,),
                    JobStatus.FAILED,
                    at_ms=now_ms(),
                    error=WORKER_LOST,
                )
                if record is not None:
                    logger.warning("job %s: its worker (%s) stopped; ended Failed (retriable)", key, record.owner)
                    metrics.executor_lost_of("worker_lost").inc()
                    metrics.jobs_ended_of(key.job_type, record.status.value).inc()
                    self._feed.publish(record)
            assert job.id is not None
            try:
                await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
            except procrastinate_errors.ConnectorException:
                logger.debug("procrastinate job %s was finished by another process", job.id)
        await manager.prune_stalled_workers(self._lease_seconds)
        lost = await self._query(
            "not_started_without_queued_job", before_ms=now_ms() - LOST_DEFER_AFTER_MS, limit=UPKEEP_BATCH
        )
        for row in lost:
            key = JobKey.from_text(row["key"])
            if key is not None:
                logger.info("job %s was stored but not queued: queueing it", key)
                await self.submit(key)

    async def _upkeep_loop(self) -> None:
        interval = max(self._lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.upkeep()
            except Exception:
                logger.exception("procrastinate upkeep failed; retrying in %.1fs", interval)

    async def _query(self, name: str, **arguments: Any) -> list[dict[str, Any]]:
        return await self._app.connector.execute_query_all_async(QUERIES[name], **arguments)
