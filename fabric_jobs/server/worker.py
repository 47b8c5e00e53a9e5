"""A procrastinate worker that runs job handlers with the embedded executor's semantics.

Each procrastinate job names a key; the worker hands it to a LocalExecutor, which claims the row
(NotStarted → InProgress by compare-and-set), runs the handler with its cancellation token (async
handlers on the loop, plain ones in threads), stops it by force after the cancel grace, and records
the outcome by compare-and-set. procrastinate's abort of an async job cancels the job's task; the
worker turns that into the handler's token instead, so the handler is told, not killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate import worker as procrastinate_worker
from procrastinate.job_context import AbortReason, JobContext

from fabric_jobs import request_context
from fabric_jobs.server.changes import ChangeFeed
from fabric_jobs.server.executor import LocalExecutor
from fabric_jobs.server.model import JobKey
from fabric_jobs.server.procrastinate_dispatch import QUEUE, TASK_NAME
from fabric_jobs.server.registry import JobRegistry
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore

logger = logging.getLogger(__name__)

FETCH_POLL_SECONDS = 1.0
"""New jobs and aborts arrive by NOTIFY; a job queued while the worker's LISTEN connection is not up yet (its
first tens of milliseconds, or after a lost connection) is fetched by this poll instead."""
ABORT_POLL_SECONDS = 5.0
RESTART_SECONDS = 1.0


def process_name() -> str:
    """How other processes name this one: host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(
        self,
        app: procrastinate.App,
        store: JobStore,
        registry: JobRegistry,
        feed: ChangeFeed,
        settings: ServiceSettings,
        *,
        concurrency: int,
    ) -> None:
        self._app = app
        self._settings = settings
        self._concurrency = concurrency
        self.name = process_name()
        self.executor = LocalExecutor(store, registry, feed, settings, owner=f"worker-{self.name}")
        app.task(name=TASK_NAME, queue=QUEUE, pass_context=True)(self._run_job_instance)

    async def run(self, stop: asyncio.Event) -> None:
        """Take jobs until `stop` is set; then take no more, give running handlers the shutdown grace,
        record the rest Failed (retriable), and return. A procrastinate worker that stops by itself (its
        database connection lost) is started again."""
        while True:
            worker = self._procrastinate_worker()
            running = asyncio.create_task(worker.run(), name="procrastinate worker")  # type: ignore[no-untyped-call]
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                break
            stopping.cancel()
            failure = running.exception()
            logger.error("the procrastinate worker stopped (%s); starting it again in %.0fs", failure, RESTART_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RESTART_SECONDS)
            if stop.is_set():
                await self.executor.shutdown()
                return
        heartbeat = asyncio.create_task(self._beat_while_stopping(worker), name="heartbeat while stopping")
        worker.stop()  # type: ignore[no-untyped-call]
        try:
            await self.executor.shutdown()
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        await asyncio.gather(running, return_exceptions=True)

    async def _beat_while_stopping(self, worker: procrastinate_worker.Worker) -> None:
        """procrastinate stops its heartbeat as soon as it is told to stop; running handlers still have the shutdown
        grace, and replicas would take a worker silent for --lease-seconds for a dead one and fail its jobs."""
        interval = max(self._settings.lease_seconds / 3, 0.05)
        while worker.worker_id is not None:
            try:
                await self._app.job_manager.update_heartbeat(worker.worker_id)
            except procrastinate_errors.ConnectorException as exc:
                logger.warning("could not renew this worker's heartbeat while stopping: %s", exc)
            await asyncio.sleep(interval)

    def _procrastinate_worker(self) -> procrastinate_worker.Worker:
        return procrastinate_worker.Worker(
            app=self._app,
            queues=[QUEUE],
            name=self.name,
            concurrency=self._concurrency,
            install_signal_handlers=False,
            listen_notify=True,
            fetch_job_polling_interval=FETCH_POLL_SECONDS,
            abort_job_polling_interval=ABORT_POLL_SECONDS,
            update_heartbeat_interval=max(self._settings.lease_seconds / 3, 0.05),
            stalled_worker_timeout=self._settings.lease_seconds,
            shutdown_graceful_timeout=self._settings.shutdown_grace + 5.0,
            delete_jobs="successful",
        )

    async def _run_job_instance(
        self, context: JobContext, key: str, activity_id: str | None = None, request_id: str | None = None
    ) -> None:
        """The procrastinate task: run the job named by `key`, with the ids of the Create that queued it."""
        job_key = JobKey.from_text(key)
        if job_key is None:
            logger.error("procrastinate job %s names no job instance: %r", context.job.id, key)
            return
        with request_context.bound(activity_id, request_id):
            await self._run(context, job_key)

    async def _run(self, context: JobContext, job_key: JobKey) -> None:
        run = asyncio.ensure_future(self.executor.run(job_key))
        while True:
            try:
                await asyncio.shield(run)
                return
            except asyncio.CancelledError:
                if context.abort_reason() is not AbortReason.USER_REQUEST:
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                logger.info("job %s: cancel requested", job_key)
                self.executor.cancel(job_key)
