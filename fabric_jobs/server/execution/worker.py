"""A procrastinate worker that runs job handlers with the embedded executor's semantics.

Each procrastinate job names a key; the worker hands it to a LocalExecutor, which claims the row
(NotStarted → InProgress by compare-and-set), runs the handler with its cancellation token (async
handlers on the loop, plain ones in threads), stops it by force after the cancel grace, and records
the outcome by compare-and-set. An abort asked through procrastinate (a Cancel on any replica) is
turned into the handler's token, so the handler is told, not killed.

procrastinate's worker answers each abort notification by walking every job it runs, twice (3.10,
`Worker._handle_abort_jobs_requested`): with thousands of jobs running, each Cancel cost the worker's
event loop milliseconds, and Cancels queued behind one another. This worker looks the aborted job
up by its id instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate import worker as procrastinate_worker
from procrastinate.job_context import JobContext

from fabric_jobs import request_context
from fabric_jobs.registry import JobRegistry
from fabric_jobs.server.execution.executor import LocalExecutor
from fabric_jobs.server.execution.on_procrastinate import QUEUE, TASK_NAME
from fabric_jobs.server.model import JobKey
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.changes import ChangeFeed

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
        self._keys_by_job_id: dict[int, JobKey] = {}
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
        return _AbortByLookup(
            self._abort,
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
        job_id = context.job.id
        if job_id is not None:
            self._keys_by_job_id[job_id] = job_key
        try:
            with request_context.bound(activity_id, request_id):
                # Shielded: only a shutdown cancels this task, and the executor gives the handler its grace then.
                await asyncio.shield(self.executor.run(job_key))
        finally:
            if job_id is not None:
                self._keys_by_job_id.pop(job_id, None)

    def _abort(self, job_ids: Iterable[int]) -> None:
        """procrastinate was asked to abort these jobs (by notification, or found by its abort poll)."""
        for job_id in job_ids:
            key = self._keys_by_job_id.get(job_id)
            if key is not None:
                logger.info("job %s: cancel requested", key)
                self.executor.cancel(key)


class _AbortByLookup(procrastinate_worker.Worker):
    """procrastinate's worker, with aborts asked by a user handed to `on_abort` (a lookup per aborted job) instead
    of its walk over every running job. Shutdown aborts stay procrastinate's own (they cancel the jobs' tasks)."""

    def __init__(self, on_abort: Callable[[Iterable[int]], None], **options: Any) -> None:
        super().__init__(**options)
        self._on_abort = on_abort

    def _handle_abort_jobs_requested(self, job_ids: Iterable[int]) -> None:
        self._on_abort(job_ids)
