"""Job handlers that a test steers one at a time: each runs until the test tells it to complete or fail; some
honour their cancellation token, some ignore it. Async ones run on the service's loop, plain ones in its threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from fabric_jobs.errors import ErrorSource
from fabric_jobs.registry import JobContext, JobFailed, JobRegistry

ITEM_TYPE = "Tests.Steered"
HONOURS = "honours"
IGNORES = "ignores"
HONOURS_THREAD = "honoursThread"
IGNORES_THREAD = "ignoresThread"
JOB_TYPES = (HONOURS, IGNORES, HONOURS_THREAD, IGNORES_THREAD)
HONOURING = frozenset({HONOURS, HONOURS_THREAD})
COMPLETE = "complete"
FAIL = "fail"
FAILED_CODE = "SteeredFailure"
POLL_SECONDS = 0.002


class SteeredJobs:
    """The registry of the steered job types, the commands given to their handlers, and what the handlers did,
    keyed by job instance id (thread-safe: handlers run on the service's loop and in its threads)."""

    def __init__(self) -> None:
        self.registry = JobRegistry()
        self.calls: Counter[str] = Counter()
        self.active: set[str] = set()
        self._commands: dict[str, str] = {}
        self._lock = threading.Lock()
        self.registry.add(ITEM_TYPE, HONOURS, self._honours)
        self.registry.add(ITEM_TYPE, IGNORES, self._ignores)
        self.registry.add(ITEM_TYPE, HONOURS_THREAD, self._honours_thread)
        self.registry.add(ITEM_TYPE, IGNORES_THREAD, self._ignores_thread)

    def command(self, job_id: str, what: str) -> None:
        with self._lock:
            self._commands[job_id] = what

    def running(self) -> set[str]:
        with self._lock:
            return set(self.active)

    def _enter(self, job_id: str) -> None:
        with self._lock:
            self.calls[job_id] += 1
            self.active.add(job_id)

    def _leave(self, job_id: str) -> None:
        with self._lock:
            self.active.discard(job_id)

    def _next(self, ctx: JobContext, honours: bool) -> str | None:
        """The command given, None when an honouring handler is told to cancel, "" while neither happened."""
        with self._lock:
            what = self._commands.get(ctx.key.job_instance_id, "")
        if not what and honours and ctx.cancellation.cancelled:
            return None
        return what

    @staticmethod
    def _act(what: str | None) -> None:
        if what == FAIL:
            raise JobFailed("Told to fail.", error_code=FAILED_CODE, source=ErrorSource.USER, is_permanent=True)

    async def _run_async(self, ctx: JobContext, honours: bool) -> None:
        job_id = ctx.key.job_instance_id
        self._enter(job_id)
        try:
            while (what := self._next(ctx, honours)) == "":  # noqa: ASYNC110 - set from the test's thread
                await asyncio.sleep(POLL_SECONDS)
            self._act(what)
        finally:
            self._leave(job_id)

    def _run_thread(self, ctx: JobContext, honours: bool) -> None:
        job_id = ctx.key.job_instance_id
        self._enter(job_id)
        try:
            while (what := self._next(ctx, honours)) == "":
                time.sleep(POLL_SECONDS)
            self._act(what)
        finally:
            self._leave(job_id)

    async def _honours(self, ctx: JobContext) -> None:
        await self._run_async(ctx, honours=True)

    async def _ignores(self, ctx: JobContext) -> None:
        await self._run_async(ctx, honours=False)

    def _honours_thread(self, ctx: JobContext) -> None:
        self._run_thread(ctx, honours=True)

    def _ignores_thread(self, ctx: JobContext) -> None:
        self._run_thread(ctx, honours=False)
