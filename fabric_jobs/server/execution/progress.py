"""A running job's progress reports, written to the store in the background, coalesced, at most one per interval.

The handler calls `report` (through ctx.report_progress) from the event loop or from its thread; it returns at once.
One flusher task per job writes the newest report waiting, then waits out the interval before the next write; a
report that comes in the meantime replaces the one waiting. `close` (before the job's end is recorded) takes no
more reports and writes the last one at once, so a handler's final report is never dropped and never lands after
the job ended. A write that fails is logged and dropped: the next report tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from fabric_jobs.observability import metrics
from fabric_jobs.server.model import JobKey, Progress, now_ms
from fabric_jobs.server.store import JobStore, StoreError
from fabric_jobs.server.store.changes import ChangeFeed

logger = logging.getLogger(__name__)

DEFAULT_PROGRESS_INTERVAL = 1.0
"""Seconds between two progress writes of one job, at least."""


class ProgressWriter:
    """The progress reports of one run of one job on executor `owner`, made on event loop `loop`."""

    def __init__(
        self,
        key: JobKey,
        owner: str,
        store: JobStore,
        feed: ChangeFeed,
        loop: asyncio.AbstractEventLoop,
        interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> None:
        self._key = key
        self._owner = owner
        self._store = store
        self._feed = feed
        self._loop = loop
        self._interval = interval
        self._lock = threading.Lock()
        self._waiting: Progress | None = None
        self._flushing = False
        self._closed = False
        self._closing = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._last_write = -interval

    def report(self, percent: float | None, message: str) -> None:
        """Take a checked report (ctx.report_progress) from any thread; the write follows in the background."""
        progress = Progress(percent, message, now_ms())
        metrics.progress_reports.inc()
        with self._lock:
            if self._closed:
                return
            self._waiting = progress
            if self._flushing:
                return
            self._flushing = True
        if _on_loop(self._loop):
            self._start_flusher()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed under a thread stopped by force: dropped
                self._loop.call_soon_threadsafe(self._start_flusher)

    async def close(self) -> None:
        """Take no more reports; write the one waiting now (waiting for a write under way). Never raises."""
        with self._lock:
            self._closed = True
        self._closing.set()
        if self._flusher is not None:
            await asyncio.wait({self._flusher})
        with self._lock:
            last, self._waiting = self._waiting, None
        if last is not None:  # reported from a thread just before close, its flusher not started yet
            await self._write(last)

    def _start_flusher(self) -> None:
        if self._closed or (self._flusher is not None and not self._flusher.done()):
            return
        self._flusher = self._loop.create_task(self._flush(), name=f"progress of job {self._key.job_instance_id}")

    async def _flush(self) -> None:
        while True:
            pause = self._last_write + self._interval - self._loop.time()
            if pause > 0 and not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), pause)
            with self._lock:
                progress, self._waiting = self._waiting, None
                if progress is None:
                    self._flushing = False
                    return
            self._last_write = self._loop.time()
            await self._write(progress)

    async def _write(self, progress: Progress) -> None:
        try:
            record = await self._store.report_progress(self._key, self._owner, progress)
        except StoreError as exc:
            logger.warning("job %s: its progress report was not stored (%s)", self._key, exc)
            return
        metrics.progress_writes.inc()
        if record is not None:
            self._feed.publish(record)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
