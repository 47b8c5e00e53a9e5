"""The test jobs, written once: "cooperative", "ignores cancel", "fails" and the rest, run by the tests' own
JobServices and loaded by real processes too:

    fabric-jobs worker --database postgresql://… --jobs tests.jobs:registry

(the process's working directory must be the repository root). Item type ITEM_TYPE = "Test.Item"; job types
(creationPayload fields in brackets):

- COMPLETES "completes", SYNC_COMPLETES "syncCompletes" (plain function): end Completed at once.
- QUICK "quick": sleeps `delaySeconds` (default 0) whatever its token says, then returns: Completed, or
  Cancelled if a cancel reached it first.
- WAITS "waits": ends Completed after `delaySeconds` (default 3600), or Cancelled as soon as it is told.
- COOPERATES "cooperates", COOPERATES_THREAD "cooperatesThread" (plain): wait on the token; Cancelled once told.
- IGNORES_CANCEL "ignoresCancel", IGNORES_CANCEL_THREAD "ignoresCancelThread" (plain, sleeping in short steps so
  that a forced stop takes effect): sleep `delaySeconds` (default 3600) whatever the token says; only the
  forced stop after the cancel grace ends them early.
  Both record in `exited` when they stop, and in `ran_to_end` when nothing stopped them (their delay passed, or
  the test's gate opened).
- HOLDS_THREAD "holdsThread" (plain): holds a handler thread until cancelled, so later plain jobs stay NotStarted.
- GATED "gated", GATED_THREAD "gatedThread" (plain): run until the test opens its gate (`TestJobs.gate`),
  whatever the token says.
- RACES "races", RACES_THREAD "racesThread" (plain): end Completed at once or after a short random delay drawn
  from the test's seeded `rng`, to race a cancel.
- FAILS "fails": raises FAILURE, a JobFailed (errorCode FAILED_ERROR_CODE "ForecastFailed", source External, not
  permanent, messageParameters ["x"], one ExtendedInfo); CRASHES "crashes": raises RuntimeError
  (JobExecutionFailed; its text "boom" must never reach the job's error details).
- VALIDATED "validated": the demo's payload validator, then Completed; RECORDS_PAYLOAD "recordsPayload": keeps
  its payload in `payloads` and its invoke type in `invoke_types`.
- GAUGED "gauged" (plain): counts itself in `tenant_gauge` while it runs (how many of its tenant's jobs run at
  once, and the order jobs started in), then ends once the test releases it (`tenant_gauge.release`) or after
  `delaySeconds` when the payload has one; Cancelled when told. With FABRIC_JOBS_TEST_GAUGE_LOG set (every
  process), it also appends `+tenant` as it starts and `-tenant` as it ends: `most_running_in_gauge_log`.
- REPORTS_PROGRESS "reportsProgress", REPORTS_PROGRESS_THREAD "reportsProgressThread" (plain): report each
  [percent, message] of `reports` (default [[50, "halfway"]]), then wait on the token for `delaySeconds` (default
  3600): Completed, or Cancelled once told.
- FLOODS_PROGRESS "floodsProgress", FLOODS_PROGRESS_THREAD "floodsProgressThread" (plain): report progress
  `count` times (default 20000) as fast as they can (the async one lets the loop run every 100 reports), then
  FINAL_PERCENT with FINAL_MESSAGE, and return: Completed.
- BAD_PROGRESS "badProgress": report `percent` and `message` as given (ValueError for bad ones: Failed).
- Registered with deadlines: TIMES_OUT "timesOut" (as COOPERATES) and TIMES_OUT_IGNORING_THREAD
  "timesOutIgnoringThread" (as IGNORES_CANCEL_THREAD) with a timeout of TIMEOUT_SECONDS; MUST_START_SOON
  "mustStartSoon" (as SYNC_COMPLETES, so it waits for a handler thread) with a start deadline of
  START_DEADLINE_SECONDS.

Every handler, as it starts, counts its job instance id in `runs` (this process) and appends it as one line to
the file named by FABRIC_JOBS_TEST_RUN_LOG when that is set (every process): read it with `read_run_log`.

A test that runs these jobs in its own process and looks at what they did takes the `jobs` fixture (a TestJobs):
it starts from empty records, and at its end opens the gate so that no handler thread outlives the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from fabric_jobs import ErrorSource, ExtendedInfo, InvokeType, JobContext, JobFailed, JobRegistry
from fabric_jobs.demo import validate_forecast

ITEM_TYPE = "Test.Item"
COMPLETES = "completes"
SYNC_COMPLETES = "syncCompletes"
QUICK = "quick"
WAITS = "waits"
COOPERATES = "cooperates"
COOPERATES_THREAD = "cooperatesThread"
IGNORES_CANCEL = "ignoresCancel"
IGNORES_CANCEL_THREAD = "ignoresCancelThread"
HOLDS_THREAD = "holdsThread"
GATED = "gated"
GATED_THREAD = "gatedThread"
RACES = "races"
RACES_THREAD = "racesThread"
FAILS = "fails"
CRASHES = "crashes"
VALIDATED = "validated"
RECORDS_PAYLOAD = "recordsPayload"
GAUGED = "gauged"
REPORTS_PROGRESS = "reportsProgress"
REPORTS_PROGRESS_THREAD = "reportsProgressThread"
FLOODS_PROGRESS = "floodsProgress"
FLOODS_PROGRESS_THREAD = "floodsProgressThread"
BAD_PROGRESS = "badProgress"
TIMES_OUT = "timesOut"
TIMES_OUT_IGNORING_THREAD = "timesOutIgnoringThread"
MUST_START_SOON = "mustStartSoon"

DELAY_FIELD = "delaySeconds"
RUN_LOG_VARIABLE = "FABRIC_JOBS_TEST_RUN_LOG"
GAUGE_LOG_VARIABLE = "FABRIC_JOBS_TEST_GAUGE_LOG"
FAILED_ERROR_CODE = "ForecastFailed"
LONG_SECONDS = 3600.0
THREAD_STEP_SECONDS = 0.02
FINAL_PERCENT = 100.0
FINAL_MESSAGE = "done"
TIMEOUT_SECONDS = 1.0
START_DEADLINE_SECONDS = 2.0

FAILURE = JobFailed(
    "the forecast could not be computed",
    error_code=FAILED_ERROR_CODE,
    source=ErrorSource.EXTERNAL,
    is_permanent=False,
    message_parameters=("x",),
    more_details=(ExtendedInfo("Inner", "the cause", ("a",), (("region", "westeurope"),)),),
)

registry = JobRegistry()
runs: Counter[str] = Counter()
payloads: dict[str, Mapping[str, Any]] = {}
invoke_types: dict[str, InvokeType] = {}
exited: set[str] = set()
ran_to_end: set[str] = set()
_gate = threading.Event()
_rng = random.Random(0)
_lock = threading.Lock()


class TestJobs:
    """What the test jobs did in this process, for one test: `runs`, `payloads`, `invoke_types`, `exited`,
    `ran_to_end`, all emptied when it is made; `gate`, the gate of the gated handlers (a threading.Event, so any
    thread and any loop may open it); `rng`, the test's seeded random, which the racing handlers draw from. Leaving
    the `with` block opens the gate and puts a closed one in its place for the next test."""

    __test__ = False
    registry = registry
    runs = runs
    payloads = payloads
    invoke_types = invoke_types
    exited = exited
    ran_to_end = ran_to_end

    def __init__(self, rng: random.Random) -> None:
        global _rng
        with _lock:
            for record in (runs, payloads, invoke_types, exited, ran_to_end):
                record.clear()
            _rng = rng
        self.rng = rng

    @property
    def gate(self) -> threading.Event:
        return _gate

    def __enter__(self) -> TestJobs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        global _gate
        with _lock:
            _gate.set()
            _gate = threading.Event()


class TenantGauge:
    """What GAUGED jobs see of themselves in this process: how many of each tenant's run at once (now and at most),
    and the order they started in. Thread-safe: the jobs run in handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: Counter[str] = Counter()
        self.most_running: Counter[str] = Counter()
        self.started: list[str] = []
        self._releases: dict[str, threading.Event] = {}

    def enter(self, tenant_id: str, job_instance_id: str) -> None:
        with self._lock:
            self.running[tenant_id] += 1
            self.most_running[tenant_id] = max(self.most_running[tenant_id], self.running[tenant_id])
            self.started.append(job_instance_id)
        _append_to_gauge_log(f"+{tenant_id}")

    def leave(self, tenant_id: str) -> None:
        _append_to_gauge_log(f"-{tenant_id}")
        with self._lock:
            self.running[tenant_id] -= 1

    def release_event(self, job_instance_id: str) -> threading.Event:
        with self._lock:
            return self._releases.setdefault(job_instance_id, threading.Event())

    def release(self, job_instance_id: str) -> None:
        self.release_event(job_instance_id).set()


tenant_gauge = TenantGauge()


def _append_to_gauge_log(line: str) -> None:
    """One line, written at once with O_APPEND: lines of every process interleave whole, in the order written."""
    if path := os.environ.get(GAUGE_LOG_VARIABLE):
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(descriptor, f"{line}\n".encode())
        finally:
            os.close(descriptor)


def most_running_in_gauge_log(path: Path) -> Counter[str]:
    """The most GAUGED jobs of each tenant that ran at once in every process, replaying the gauge log at `path`.
    A job's start is logged after it started and its end before it ends, so this never counts more than ran."""
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for line in text.splitlines()[: text.count("\n")]:
        running[line[1:]] += 1 if line[0] == "+" else -1
        most[line[1:]] = max(most[line[1:]], running[line[1:]])
    return most


def started(ctx: JobContext) -> threading.Event:
    """Count the start here and append it to the run log (one write, flushed at once) when there is one; the gate
    of the test this handler started in."""
    with _lock:
        runs[ctx.key.job_instance_id] += 1
        gate = _gate
    if path := os.environ.get(RUN_LOG_VARIABLE):
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{ctx.key.job_instance_id}\n")
            log.flush()
    return gate


def mark(record: set[str], ctx: JobContext) -> None:
    with _lock:
        record.add(ctx.key.job_instance_id)


def read_run_log(path: Path) -> Counter[str]:
    """How many times each job instance id started, according to the run log at `path` (a line still being
    written is left out)."""
    if not path.exists():
        return Counter()
    text = path.read_text(encoding="utf-8")
    return Counter(text.splitlines()[: text.count("\n")])


def delay_of(ctx: JobContext, default: float) -> float:
    return float(ctx.payload.get(DELAY_FIELD, default))


@registry.job(ITEM_TYPE, COMPLETES)
async def completes(ctx: JobContext) -> None:
    started(ctx)


@registry.job(ITEM_TYPE, SYNC_COMPLETES)
def sync_completes(ctx: JobContext) -> None:
    started(ctx)


@registry.job(ITEM_TYPE, QUICK)
async def quick(ctx: JobContext) -> None:
    started(ctx)
    await asyncio.sleep(delay_of(ctx, 0.0))


@registry.job(ITEM_TYPE, WAITS)
async def waits(ctx: JobContext) -> None:
    started(ctx)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.cancellation.wait(), delay_of(ctx, LONG_SECONDS))


@registry.job(ITEM_TYPE, COOPERATES)
async def cooperates(ctx: JobContext) -> None:
    started(ctx)
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, COOPERATES_THREAD)
def cooperates_thread(ctx: JobContext) -> None:
    started(ctx)
    while not ctx.cancellation.wait_blocking(THREAD_STEP_SECONDS):
        pass


@registry.job(ITEM_TYPE, IGNORES_CANCEL)
async def ignores_cancel(ctx: JobContext) -> None:
    started(ctx)
    try:
        await asyncio.sleep(delay_of(ctx, LONG_SECONDS))
        mark(ran_to_end, ctx)
    finally:
        mark(exited, ctx)


@registry.job(ITEM_TYPE, IGNORES_CANCEL_THREAD)
def ignores_cancel_thread(ctx: JobContext) -> None:
    gate = started(ctx)
    try:
        deadline = time.monotonic() + delay_of(ctx, LONG_SECONDS)
        while time.monotonic() < deadline and not gate.is_set():
            time.sleep(THREAD_STEP_SECONDS)
        mark(ran_to_end, ctx)
    finally:
        mark(exited, ctx)


@registry.job(ITEM_TYPE, HOLDS_THREAD)
def holds_thread(ctx: JobContext) -> None:
    started(ctx)
    while not ctx.cancellation.cancelled:
        time.sleep(0.01)


@registry.job(ITEM_TYPE, GATED)
async def gated(ctx: JobContext) -> None:
    gate = started(ctx)
    while not gate.is_set():  # noqa: ASYNC110 - a threading.Event, settable after the loop is gone
        await asyncio.sleep(0.01)


@registry.job(ITEM_TYPE, GATED_THREAD)
def gated_thread(ctx: JobContext) -> None:
    gate = started(ctx)
    while not gate.wait(0.01):
        pass


@registry.job(ITEM_TYPE, RACES)
async def races(ctx: JobContext) -> None:
    started(ctx)
    with _lock:
        delay = _rng.uniform(0, 0.02) if _rng.random() < 0.8 else None
    if delay is not None:
        await asyncio.sleep(delay)


@registry.job(ITEM_TYPE, RACES_THREAD)
def races_thread(ctx: JobContext) -> None:
    started(ctx)
    with _lock:
        delay = _rng.uniform(0, 0.02) if _rng.random() < 0.8 else None
    if delay is not None:
        time.sleep(delay)


@registry.job(ITEM_TYPE, FAILS)
async def fails(ctx: JobContext) -> None:
    started(ctx)
    raise JobFailed(
        FAILURE.details.message,
        error_code=FAILURE.details.error_code,
        source=FAILURE.details.source,
        is_permanent=FAILURE.details.is_permanent,
        message_parameters=FAILURE.details.message_parameters,
        more_details=FAILURE.details.more_details,
    )


@registry.job(ITEM_TYPE, CRASHES)
async def crashes(ctx: JobContext) -> None:
    started(ctx)
    raise RuntimeError("boom")


@registry.job(ITEM_TYPE, VALIDATED, validate=validate_forecast)
async def validated(ctx: JobContext) -> None:
    started(ctx)


@registry.job(ITEM_TYPE, RECORDS_PAYLOAD)
async def records_payload(ctx: JobContext) -> None:
    started(ctx)
    payloads[ctx.key.job_instance_id] = ctx.payload
    invoke_types[ctx.key.job_instance_id] = ctx.invoke_type


@registry.job(ITEM_TYPE, GAUGED)
def gauged(ctx: JobContext) -> None:
    started(ctx)
    tenant_gauge.enter(ctx.key.tenant_id, ctx.key.job_instance_id)
    try:
        if DELAY_FIELD in ctx.payload:
            ctx.cancellation.wait_blocking(delay_of(ctx, 0.0))
            return
        released = tenant_gauge.release_event(ctx.key.job_instance_id)
        while not released.wait(THREAD_STEP_SECONDS) and not ctx.cancellation.cancelled:
            pass
    finally:
        tenant_gauge.leave(ctx.key.tenant_id)


def reports_of(ctx: JobContext) -> list[tuple[float, str]]:
    return [(percent, message) for percent, message in ctx.payload.get("reports", [[50, "halfway"]])]


@registry.job(ITEM_TYPE, REPORTS_PROGRESS)
async def reports_progress(ctx: JobContext) -> None:
    started(ctx)
    for percent, message in reports_of(ctx):
        ctx.report_progress(percent, message)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.cancellation.wait(), delay_of(ctx, LONG_SECONDS))


@registry.job(ITEM_TYPE, REPORTS_PROGRESS_THREAD)
def reports_progress_thread(ctx: JobContext) -> None:
    started(ctx)
    for percent, message in reports_of(ctx):
        ctx.report_progress(percent=percent, message=message)
    ctx.cancellation.wait_blocking(delay_of(ctx, LONG_SECONDS))


@registry.job(ITEM_TYPE, FLOODS_PROGRESS)
async def floods_progress(ctx: JobContext) -> None:
    started(ctx)
    count = int(ctx.payload.get("count", 20_000))
    for step in range(count):
        ctx.report_progress(step * 100 / count, f"step {step}")
        if step % 100 == 0:
            await asyncio.sleep(0)
    ctx.report_progress(FINAL_PERCENT, FINAL_MESSAGE)


@registry.job(ITEM_TYPE, FLOODS_PROGRESS_THREAD)
def floods_progress_thread(ctx: JobContext) -> None:
    started(ctx)
    count = int(ctx.payload.get("count", 20_000))
    for step in range(count):
        ctx.report_progress(step * 100 / count, f"step {step}")
    ctx.report_progress(FINAL_PERCENT, FINAL_MESSAGE)


@registry.job(ITEM_TYPE, BAD_PROGRESS)
async def bad_progress(ctx: JobContext) -> None:
    started(ctx)
    ctx.report_progress(ctx.payload.get("percent"), ctx.payload.get("message"))


@registry.job(ITEM_TYPE, TIMES_OUT, timeout=timedelta(seconds=TIMEOUT_SECONDS))
async def times_out(ctx: JobContext) -> None:
    started(ctx)
    await ctx.cancellation.wait()


@registry.job(ITEM_TYPE, TIMES_OUT_IGNORING_THREAD, timeout=TIMEOUT_SECONDS)
def times_out_ignoring_thread(ctx: JobContext) -> None:
    ignores_cancel_thread(ctx)


@registry.job(ITEM_TYPE, MUST_START_SOON, start_deadline=START_DEADLINE_SECONDS)
def must_start_soon(ctx: JobContext) -> None:
    started(ctx)
