"""Deadlines of a job: when it must have started (its start deadline) and how long a run may take (its timeout).

Both are fixed at Create, from the job type's registration or the service's defaults, and stored with the job, so
that any process can enforce them: the executor that runs a job tells its handler at the timeout (reason TIMEOUT)
and stops it by force after the cancel grace; a claim never starts a job past its start deadline; and the upkeep of
every process (`sweep`) ends Failed the queued jobs past their start deadline and, as a safety net, the running
jobs past their run deadline by more than a cancel grace and a lease (their executor, alive, would have ended
them). A job whose executor died is found lost as before, and ends JobTimedOut if it was past its run deadline.
"""

from __future__ import annotations

import logging

from fabric_jobs.errors import ErrorCode, details_for
from fabric_jobs.observability import metrics
from fabric_jobs.registry import JobType
from fabric_jobs.server.model import JobRecord, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.changes import ChangeFeed

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000
"""Jobs ended per statement of a sweep; a sweep repeats the statement while it ends a full batch."""

TIMED_OUT = details_for(
    ErrorCode.JOB_TIMED_OUT,
    "The job ran longer than its job type's timeout and was stopped; it can be retried.",
)
START_DEADLINE_EXCEEDED = details_for(
    ErrorCode.JOB_START_DEADLINE_EXCEEDED,
    "The job had not started by its start deadline and will not start; it can be retried.",
)


def deadlines_at_create(
    job_type: JobType, settings: ServiceSettings, create_time_ms: int
) -> tuple[int | None, int | None]:
    """(start deadline, timeout) of a job created at create_time_ms, in milliseconds: the job type's, else the
    service's; None where there is none."""
    start = job_type.start_deadline_seconds or settings.start_deadline_seconds
    timeout = job_type.timeout_seconds or settings.job_timeout_seconds
    return (
        None if start is None else create_time_ms + round(start * 1000),
        None if timeout is None else max(round(timeout * 1000), 1),
    )


def count_ended(record: JobRecord, deadline: str) -> None:
    metrics.deadlines_exceeded_of(deadline).inc()
    metrics.jobs_ended_of(record.key.job_type, record.status.value).inc()


async def sweep(store: JobStore, feed: ChangeFeed, settings: ServiceSettings) -> list[JobRecord]:
    """End Failed the NotStarted jobs past their start deadline and the running jobs long past their run deadline;
    returns the latter, whose handlers (wherever they still run) should be told."""
    while True:
        expired = await store.expire_start_deadlines(now_ms(), START_DEADLINE_EXCEEDED, SWEEP_BATCH)
        for record in expired:
            logger.warning("job %s did not start by its start deadline: ended Failed", record.key)
            count_ended(record, "start")
            feed.publish(record)
        if len(expired) < SWEEP_BATCH:
            break
    margin_ms = round((settings.cancel_grace + settings.lease_seconds) * 1000)
    overdue: list[JobRecord] = []
    while True:
        at_ms = now_ms()
        batch = await store.time_out_overdue(at_ms - margin_ms, at_ms, TIMED_OUT, SWEEP_BATCH)
        for record in batch:
            logger.warning("job %s ran past its timeout and its executor did not stop it: ended Failed", record.key)
            count_ended(record, "run")
            feed.publish(record)
        overdue += batch
        if len(batch) < SWEEP_BATCH:
            return overdue
