"""The job types the server tests run: small, fast handlers whose every move the test can see and steer."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

from fabric_jobs import ErrorSource, ExtendedInfo, JobContext, JobFailed, JobRegistry, demo

ITEM_TYPE = "Tests.Item"

INSTANT = "instant"
INSTANT_THREAD = "instantThread"
COOPERATIVE = "cooperative"
COOPERATIVE_THREAD = "cooperativeThread"
IGNORES_ASYNC = "ignoresAsync"
IGNORES_THREAD = "ignoresThread"
GATED = "gated"
GATED_THREAD = "gatedThread"
FAILS = "fails"
RAISES = "raises"
RACES = "races"
RACES_THREAD = "racesThread"
RECORDS_PAYLOAD = "recordsPayload"
TIMES_OUT = "timesOut"
TIMES_OUT_IGNORING_THREAD = "timesOutIgnoringThread"
MUST_START_SOON = "mustStartSoon"
TIMEOUT_SECONDS = 0.3
START_DEADLINE_SECONDS = 1.0

EXPLODED = JobFailed(
    "The forecast exploded.",
    error_code="ForecastExploded",
    source=ErrorSource.EXTERNAL,
    is_permanent=False,
    message_parameters=("forecast", "42"),
    more_details=(ExtendedInfo("Inner", "the cause", ("a",), (("region", "westeurope"),)),),
)


class TestJobs:
    """A registry of test job types, with what their handlers did, keyed by job instance id.

    The racing handlers draw their delays from `rng` (seeded by the test, see tests/conftest.py).

    `gate` holds the gated handlers (threading.Event, so any thread and any loop may set it); leaving
    the `with` block releases it, so no handler thread outlives the test.
    """

    __test__ = False

    def __init__(self, rng: random.Random) -> None:
        self.registry = JobRegistry()
        self.rng = rng
        self.calls: Counter[str] = Counter()
        self.exited: set[str] = set()
        self.ran_to_end: set[str] = set()
        self.payloads: dict[str, Mapping[str, Any]] = {}
        self.gate = threading.Event()
        self._lock = threading.Lock()
        add = self.registry.add
        add(ITEM_TYPE, INSTANT, self.instant)
        add(ITEM_TYPE, INSTANT_THREAD, self.instant_thread)
        add(ITEM_TYPE, COOPERATIVE, self.cooperative)
        add(ITEM_TYPE, COOPERATIVE_THREAD, self.cooperative_thread)
        add(ITEM_TYPE, IGNORES_ASYNC, self.ignores_async)
        add(ITEM_TYPE, IGNORES_THREAD, self.ignores_thread)
        add(ITEM_TYPE, GATED, self.gated)
        add(ITEM_TYPE, GATED_THREAD, self.gated_thread)
        add(ITEM_TYPE, FAILS, self.fails)
        add(ITEM_TYPE, RAISES, self.raises)
        add(ITEM_TYPE, RACES, self.races)
        add(ITEM_TYPE, RACES_THREAD, self.races_thread)
        add(ITEM_TYPE, RECORDS_PAYLOAD, self.records_payload)
        add(ITEM_TYPE, TIMES_OUT, self.cooperative, timeout=timedelta(seconds=TIMEOUT_SECONDS))
        add(ITEM_TYPE, TIMES_OUT_IGNORING_THREAD, self.ignores_thread, timeout=TIMEOUT_SECONDS)
        add(ITEM_TYPE, MUST_START_SOON, self.instant_thread, start_deadline=START_DEADLINE_SECONDS)
        add(demo.ITEM_TYPE, demo.JOB_TYPE, demo.calculate_forecast, validate=demo.validate_forecast)

    def __enter__(self) -> TestJobs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.gate.set()

    def _called(self, ctx: JobContext) -> str:
        with self._lock:
            self.calls[ctx.key.job_instance_id] += 1
        return ctx.key.job_instance_id

    def _mark(self, done: set[str], job_id: str) -> None:
        with self._lock:
            done.add(job_id)

    async def instant(self, ctx: JobContext) -> None:
        self._called(ctx)

    async def records_payload(self, ctx: JobContext) -> None:
        self.payloads[self._called(ctx)] = ctx.payload

    def instant_thread(self, ctx: JobContext) -> None:
        self._called(ctx)

    async def cooperative(self, ctx: JobContext) -> None:
        self._called(ctx)
        await ctx.cancellation.wait()

    def cooperative_thread(self, ctx: JobContext) -> None:
        self._called(ctx)
        while not ctx.cancellation.wait_blocking(0.05):
            pass

    async def ignores_async(self, ctx: JobContext) -> None:
        job_id = self._called(ctx)
        try:
            await asyncio.sleep(60)
            self._mark(self.ran_to_end, job_id)
        finally:
            self._mark(self.exited, job_id)

    def ignores_thread(self, ctx: JobContext) -> None:
        job_id = self._called(ctx)
        try:
            spins = 0
            while not self.gate.is_set():
                spins += 1
            self._mark(self.ran_to_end, job_id)
        finally:
            self._mark(self.exited, job_id)

    async def gated(self, ctx: JobContext) -> None:
        self._called(ctx)
        while not self.gate.is_set():  # noqa: ASYNC110 - a threading.Event, settable after the loop is gone
            await asyncio.sleep(0.01)

    def gated_thread(self, ctx: JobContext) -> None:
        self._called(ctx)
        while not self.gate.wait(0.01):
            pass

    async def fails(self, ctx: JobContext) -> None:
        self._called(ctx)
        raise EXPLODED

    async def raises(self, ctx: JobContext) -> None:
        self._called(ctx)
        raise RuntimeError("boom")

    async def races(self, ctx: JobContext) -> None:
        self._called(ctx)
        if self.rng.random() < 0.8:
            await asyncio.sleep(self.rng.uniform(0, 0.02))

    def races_thread(self, ctx: JobContext) -> None:
        self._called(ctx)
        if self.rng.random() < 0.8:
            time.sleep(self.rng.uniform(0, 0.02))
