"""The in-process executor: claims queued jobs, runs their handlers, records how they ended.

Async handlers run as tasks on the event loop, plain ones in a thread pool. Each run has a
cancellation token. A run told to cancel that has not stopped after the grace period is recorded
Cancelled and stopped by force: an async handler's task is cancelled; a thread gets JobCancelled
raised asynchronously in it (effective at its next Python instruction; a thread blocked inside a
C call stops when that call returns, and its result is discarded).
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from fabric_jobs import request_context
from fabric_jobs.cancellation import CancellationToken, CancelReason, JobCancelled
from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource, details_for, job_executor_lost
from fabric_jobs.identity import TokenUnavailable
from fabric_jobs.observability import metrics, tracing
from fabric_jobs.on_behalf_of.credential import AsyncUserCredential, UserCredential
from fabric_jobs.on_behalf_of.errors import token_unavailable_details
from fabric_jobs.on_behalf_of.tokens import NOT_CONFIGURED, TokenSource
from fabric_jobs.registry import JobContext, JobFailed, JobRegistry, JobType
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.changes import ChangeFeed

logger = logging.getLogger(__name__)
handler_log = logger.getChild("handlers")

Outcome = tuple[JobStatus, ErrorDetails | None]

HANDLER_THREAD_PREFIX = "fabric-job"


@dataclass(eq=False)
class Run:
    key: JobKey
    token: CancellationToken
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False
    handler_future: asyncio.Future[tuple[bool, BaseException | None]] | None = None
    thread_id: int | None = None
    enforcer: asyncio.Task[None] | None = None
    told_to_cancel_at: float | None = None


INTERRUPTED = job_executor_lost(
    "The job was interrupted because the service shut down before it finished; it can be retried."
)
"""A handler still running at the end of the shutdown grace."""
STOPPED_AT_SHUTDOWN = details_for(
    ErrorCode.JOB_INTERRUPTED, "The job stopped because the service shut down before it finished; it can be retried."
)
"""A handler that stopped when told the service shuts down (returned having seen its token, or raised JobCancelled)."""


class LocalExecutor:
    def __init__(
        self, store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings, owner: str
    ) -> None:
        self._store = store
        self._registry = registry
        self._feed = feed
        self._settings = settings
        self.owner = owner
        self._runs: dict[JobKey, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool = ThreadPoolExecutor(max_workers=settings.max_threads, thread_name_prefix=HANDLER_THREAD_PREFIX)
        self._thread_slots = asyncio.Semaphore(settings.max_threads)
        self._closing = False
        metrics.executor_threads_max.set(settings.max_threads)

    def schedule(self, key: JobKey) -> bool:
        """Queue the job to run here; False when this executor already runs it or is shutting down."""
        return self._start(key) is not None

    async def run(self, key: JobKey) -> None:
        """Run the job here and return once its outcome is recorded (at once if it is not NotStarted,
        already runs here, or the executor is shutting down)."""
        task = self._start(key)
        if task is not None:
            await asyncio.wait({task})  # a run that shutdown() cancelled has recorded its outcome: not an error here

    def _start(self, key: JobKey) -> asyncio.Task[None] | None:
        if self._closing or key in self._runs:
            return None
        run = Run(key, CancellationToken())
        self._runs[key] = run
        metrics.jobs_waiting.inc()
        task = asyncio.create_task(self._execute(run), name=f"job {key.job_instance_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self, key: JobKey) -> None:
        """Tell the job's handler, if it runs here; stop it by force if it is still running after the grace period."""
        run = self._runs.get(key)
        if run is None:
            return
        if run.token.reason is None:
            logger.info("job %s: telling its handler to cancel", key)
            run.token.cancel(CancelReason.CANCEL_REQUESTED)
            if run.started:
                run.told_to_cancel_at = time.perf_counter()
        if run.enforcer is None and run.started:
            run.enforcer = asyncio.create_task(self._enforce_grace(run))

    async def _execute(self, run: Run) -> None:
        key = run.key
        with request_context.job_bound(key):
            await self._execute_bound(run)

    async def _execute_bound(self, run: Run) -> None:
        key = run.key
        try:
            job_type = self._registry.get(key.item_type, key.job_type)
            if job_type is None:
                error = ErrorDetails(
                    ErrorCode.UNSUPPORTED_JOB_TYPE,
                    f"No handler is registered for job type {key.job_type!r} of item type {key.item_type!r}.",
                )
                await self._finish(key, JobStatus.FAILED, error, expected=JobStatus.NOT_STARTED)
                return
            if job_type.is_async:
                await self._claim_and_run(run, job_type)
            else:
                async with self._thread_slots:
                    metrics.executor_threads_busy.inc()
                    try:
                        await self._claim_and_run(run, job_type)
                    finally:
                        metrics.executor_threads_busy.dec()
        except Exception:
            logger.exception("executor failed on job %s", key)
        finally:
            if not run.started:
                metrics.jobs_waiting.dec()
            run.finished.set()
            if self._runs.get(key) is run:
                del self._runs[key]

    async def _claim_and_run(self, run: Run, job_type: JobType) -> None:
        if self._closing:
            return
        record = await self._store.transition(
            run.key, (JobStatus.NOT_STARTED,), JobStatus.IN_PROGRESS, at_ms=now_ms(), owner=self.owner
        )
        if record is None:
            await self._count_if_cancelled_before_start(run.key)
            return
        run.started = True
        metrics.jobs_waiting.dec()
        self._feed.publish(record)
        if record.cancel_requested or run.token.reason is not None:
            await self._finish(run.key, JobStatus.CANCELLED, None)
            return
        logger.info("job %s started", run.key)
        metrics.jobs_started_of(run.key.job_type).inc()
        tokens = self._token_source(run.key)
        credential = (
            AsyncUserCredential(tokens) if job_type.is_async else UserCredential(tokens, asyncio.get_running_loop())
        )
        context = JobContext(
            key=run.key,
            invoke_type=record.invoke_type,
            payload=json.loads(record.creation_payload),
            cancellation=run.token,
            logger=handler_log,
            caller=record.caller,
            credential=credential,
            tokens=tokens,
        )
        metrics.jobs_running.inc()
        started = time.perf_counter()
        with _handler_span(record) as span:
            try:
                status, error = await self._call(run, job_type, context)
            finally:
                stopped = time.perf_counter()
                metrics.jobs_running.dec()
                metrics.handler_duration_of(run.key.job_type).observe(stopped - started)
                if run.told_to_cancel_at is not None:
                    metrics.cancel_to_stop_of(run.key.job_type).observe(stopped - run.told_to_cancel_at)
            if error is STOPPED_AT_SHUTDOWN and await self._cancel_was_asked(run):
                status, error = JobStatus.CANCELLED, None
            if span is not None:
                span.set_attribute("fabric.job.status", status.value)
                if status is JobStatus.FAILED:
                    span.set_status(Status(StatusCode.ERROR, error.error_code if error else "Failed"))
            await self._finish(run.key, status, error)

    def _token_source(self, key: JobKey) -> TokenSource:
        provider = self._settings.user_tokens
        return NOT_CONFIGURED if provider is None else provider.source(key, self._store)

    async def _count_if_cancelled_before_start(self, key: JobKey) -> None:
        """A job this executor was given that a Cancel ended while it was NotStarted ends here, for the metrics."""
        record = await self._store.get(key)
        if record is not None and record.status is JobStatus.CANCELLED and record.start_time_ms is None:
            metrics.jobs_ended_of(key.job_type, JobStatus.CANCELLED.value).inc()

    async def _call(self, run: Run, job_type: JobType, context: JobContext) -> Outcome:
        if job_type.is_async:
            run.handler_future = asyncio.ensure_future(self._invoke_async(job_type, context))
        else:
            loop = asyncio.get_running_loop()
            call = contextvars.copy_context().run
            run.handler_future = loop.run_in_executor(self._pool, call, self._invoke_in_thread, run, job_type, context)
        await asyncio.wait({run.handler_future})
        if run.handler_future.cancelled():
            return self._outcome(run.token, cancelled_at_end=True, exc=JobCancelled("stopped by force"))
        cancelled_at_end, exc = run.handler_future.result()
        return self._outcome(run.token, cancelled_at_end, exc)

    @staticmethod
    async def _invoke_async(job_type: JobType, context: JobContext) -> tuple[bool, BaseException | None]:
        try:
            await job_type.handler(context)  # type: ignore[misc]
        except Exception as exc:
            return context.cancellation.reason is not None, exc
        return context.cancellation.reason is not None, None

    @staticmethod
    def _invoke_in_thread(run: Run, job_type: JobType, context: JobContext) -> tuple[bool, BaseException | None]:
        run.thread_id = threading.get_ident()
        try:
            job_type.handler(context)
        except Exception as exc:
            return context.cancellation.reason is not None, exc
        finally:
            run.thread_id = None
        return context.cancellation.reason is not None, None

    @staticmethod
    def _outcome(token: CancellationToken, cancelled_at_end: bool, exc: BaseException | None) -> Outcome:
        if isinstance(exc, JobFailed):
            return JobStatus.FAILED, exc.details
        if token.reason is CancelReason.SHUTDOWN and (isinstance(exc, JobCancelled) or (exc is None and token.seen)):
            return JobStatus.FAILED, STOPPED_AT_SHUTDOWN
        if token.reason is CancelReason.SHUTDOWN and exc is None:
            return JobStatus.COMPLETED, None
        if cancelled_at_end:
            return JobStatus.CANCELLED, None
        if exc is None:
            return JobStatus.COMPLETED, None
        if isinstance(exc, TokenUnavailable):
            handler_log.warning("job handler got no user token: %s", exc)
            return JobStatus.FAILED, token_unavailable_details(exc)
        handler_log.error("job handler raised", exc_info=exc)
        message = f"The job handler failed unexpectedly ({type(exc).__name__}); the workload's logs have the details."
        return JobStatus.FAILED, ErrorDetails(ErrorCode.JOB_EXECUTION_FAILED, message, source=ErrorSource.SYSTEM)

    async def _finish(
        self,
        key: JobKey,
        status: JobStatus,
        error: ErrorDetails | None,
        *,
        expected: JobStatus = JobStatus.IN_PROGRESS,
    ) -> None:
        write = self._store.transition(key, (expected,), status, at_ms=now_ms(), error=error)
        record = await asyncio.shield(write)
        if record is not None:
            self._feed.publish(record)
            logger.info("job %s ended %s", key, status)
            metrics.jobs_ended_of(key.job_type, status.value).inc()
            if error is INTERRUPTED:
                metrics.executor_lost_of("shutdown").inc()

    async def _enforce_grace(self, run: Run) -> None:
        try:
            await asyncio.wait_for(run.finished.wait(), self._settings.cancel_grace)
        except TimeoutError:
            logger.warning(
                "job %s ignored its cancellation for %.1fs: stopping it by force", run.key, self._settings.cancel_grace
            )
            await self._finish(run.key, JobStatus.CANCELLED, None)
            self._force_stop(run)

    @staticmethod
    def _force_stop(run: Run) -> None:
        future = run.handler_future
        if future is None or future.done():
            return
        metrics.forced_stops_of(run.key.job_type).inc()
        if run.thread_id is None:
            future.cancel()
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(run.thread_id), ctypes.py_object(JobCancelled))

    async def _cancel_was_asked(self, run: Run) -> bool:
        """Whether the job's cancel was asked, here or (on a shared database) through another process."""
        if run.token.reason is CancelReason.CANCEL_REQUESTED:
            return True
        record = await self._store.get(run.key)
        return record is not None and record.cancel_requested

    async def shutdown(self) -> None:
        """Tell running handlers (their token, reason SHUTDOWN) and give them the shutdown grace, returning as soon as
        none runs. A job that stops within it ends as its handler ends it (Cancelled if its cancel was asked; Failed,
        JobInterrupted, retriable if it returned or raised JobCancelled); one still running at its end is stopped by
        force and recorded Cancelled if its cancel was asked, else Failed, JobExecutorLost, retriable.

        Jobs still queued stay NotStarted and run after the next start.
        """
        self._closing = True
        running = [run for run in self._runs.values() if run.started]
        for run in running:
            run.token.cancel(CancelReason.SHUTDOWN)
        if running:
            logger.info(
                "told %d running job(s) to stop; waiting up to %.1fs", len(running), self._settings.shutdown_grace
            )
            await asyncio.wait(
                [asyncio.create_task(run.finished.wait()) for run in running], timeout=self._settings.shutdown_grace
            )
        for run in self._runs.values():
            if run.enforcer is not None:
                run.enforcer.cancel()
        for run in running:
            if not run.finished.is_set():
                if await self._cancel_was_asked(run):
                    await self._finish(run.key, JobStatus.CANCELLED, None)
                else:
                    await self._finish(run.key, JobStatus.FAILED, INTERRUPTED)
                self._force_stop(run)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def _handler_span(record: JobRecord) -> Iterator[Span | None]:
    """The handler's span, linked to the span of the Create that queued the job; nothing while tracing is off."""
    if not tracing.enabled():
        yield None
        return
    key = record.key
    ids = request_context.ids()
    attributes = {
        "fabric.activity_id": ids["activity_id"] or "",
        "fabric.request_id": ids["request_id"] or "",
        "fabric.tenant_id": key.tenant_id,
        "fabric.job": request_context.job_path(key),
        "fabric.job_type": key.job_type,
    }
    with tracing.tracer().start_as_current_span(
        f"job {key.item_type}/{key.job_type}",
        context=Context(),
        kind=tracing.CONSUMER,
        links=tracing.links_from_text(record.trace_context),
        attributes=attributes,
    ) as span:
        yield span
