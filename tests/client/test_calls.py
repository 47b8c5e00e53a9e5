"""Every call of JobsClient and AdminClient against a real JobService: SQLite and PostgreSQL (with a worker
process), over a real gRPC channel and over the in-process channel."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid

import pytest

from fabric_jobs.client import (
    CancelledAll,
    ErrorSource,
    InvalidRequest,
    InvokeType,
    JobFilter,
    JobInstanceNotFound,
    JobStatus,
)
from tests import jobs
from tests.client.conftest import Stack, new_key

WAIT = 20.0


async def test_create_get_list_wait_and_a_repeated_create(stack: Stack) -> None:
    key = new_key(jobs.QUICK)
    payload = {"delaySeconds": 0, "big": 2**70, "ratio": 0.5}
    first = await stack.jobs.create(key, payload=payload, invoke_type=InvokeType.SCHEDULED)
    assert first.created
    assert first.job.key == key
    assert first.job.invoke_type is InvokeType.SCHEDULED
    assert first.job.create_time.tzinfo is datetime.UTC
    again = await stack.jobs.create(key, payload=payload, invoke_type=InvokeType.SCHEDULED)
    assert not again.created
    final = await stack.jobs.wait(key, timeout=WAIT)
    assert final.status is JobStatus.COMPLETED
    assert final.is_terminal
    assert final.start_time is not None
    assert final.end_time is not None
    assert final.error_details is None
    assert await stack.jobs.get(key) == final
    page = await stack.jobs.list(key.tenant_id, statuses=[JobStatus.COMPLETED])
    assert page.jobs == (final,)
    assert page.next_page_token is None
    assert [state async for state in stack.jobs.watch(key)] == [final]


async def test_a_failed_job_carries_its_error_details(stack: Stack) -> None:
    key = new_key(jobs.FAILS)
    await stack.jobs.create(key)
    final = await stack.jobs.wait(key, timeout=WAIT)
    assert final.status is JobStatus.FAILED
    details = final.error_details
    assert details is not None
    assert (details.error_code, details.source, details.is_permanent, details.message_parameters) == (
        jobs.FAILED_ERROR_CODE,
        ErrorSource.EXTERNAL,
        False,
        ("x",),
    )


async def test_cancel_watch_and_the_admin_calls(stack: Stack) -> None:
    key = new_key(jobs.COOPERATES)
    tenant = JobFilter(tenant_id=key.tenant_id)
    watch = stack.jobs.watch(key, timeout=WAIT)
    await stack.jobs.create(key)
    seen = [await anext(watch)]
    while not seen[-1].cancel_requested and seen[-1].status is JobStatus.NOT_STARTED:
        seen.append(await anext(watch))
    cancelled = await stack.jobs.cancel(key)
    assert cancelled.cancel_requested
    assert cancelled.status in (JobStatus.CANCELLED, JobStatus.IN_PROGRESS)
    seen.extend([state async for state in watch])
    final = seen[-1]
    assert final.status == JobStatus.CANCELLED
    assert final.end_time is not None
    assert await stack.jobs.wait(key, timeout=WAIT) == final
    assert await stack.jobs.cancel(key) == final, "a cancel of a finished job changes nothing"

    page = await stack.admin.search(tenant)
    assert page.jobs == (final,)
    counts = await stack.admin.count(tenant)
    assert counts.total == 1
    assert counts.by_status[JobStatus.CANCELLED] == 1
    assert sum(counts.by_status.values()) == 1
    history = await stack.admin.history(key)
    assert history.job == final
    assert history.transitions[0].status is JobStatus.NOT_STARTED
    assert history.transitions[-1].status is JobStatus.CANCELLED
    assert any(step.cancel_requested for step in history.transitions)


async def test_search_pages_across_tenants(stack: Stack) -> None:
    keys = [new_key(jobs.QUICK) for _ in range(3)]
    for key in keys:
        await stack.jobs.create(key)
    item_type = JobFilter(item_type=jobs.ITEM_TYPE, job_type=jobs.QUICK)
    first = await stack.admin.search(item_type, page_size=2)
    assert len(first.jobs) == 2
    assert first.next_page_token is not None
    rest = await stack.admin.search(item_type, page_size=2, page_token=first.next_page_token)
    assert {job.key for job in (*first.jobs, *rest.jobs)} == set(keys)
    assert rest.next_page_token is None
    await asyncio.gather(*(stack.jobs.wait(key, timeout=WAIT) for key in keys))


async def test_an_unknown_job_is_job_instance_not_found_on_every_call(stack: Stack) -> None:
    key = new_key()
    for call in (
        stack.jobs.get(key),
        stack.jobs.cancel(key),
        stack.jobs.wait(key, timeout=WAIT),
        stack.admin.history(key),
    ):
        with pytest.raises(JobInstanceNotFound) as raised:
            await call
        assert raised.value.details.error_code == "JobInstanceNotFound"
        assert not raised.value.retriable


async def test_watch_changes_sees_the_jobs_created_after_it_started(stack: Stack) -> None:
    tenant_id = new_key().tenant_id
    changes = stack.admin.watch_changes(JobFilter(tenant_id=tenant_id), timeout=WAIT)
    first = asyncio.ensure_future(anext(changes))
    created = []
    try:
        for _ in range(50):  # the stream is opened by the task: create jobs until it has seen one
            key = new_key(jobs.QUICK, tenant_id=tenant_id)
            await stack.jobs.create(key)
            created.append(key)
            done, _ = await asyncio.wait({first}, timeout=0.2)
            if done:
                break
        change = await asyncio.wait_for(first, WAIT)
    finally:
        first.cancel()
        await changes.aclose()
    assert change.key in created


async def test_cancel_all_cancels_an_items_jobs_not_ended_once(stack: Stack) -> None:
    first = new_key(jobs.COOPERATES)
    second = dataclasses.replace(first, job_instance_id=str(uuid.uuid4()))
    for key in (first, second):
        await stack.jobs.create(key)
    item = JobFilter(tenant_id=first.tenant_id, item_id=first.item_id)

    done = await stack.admin.cancel_all(item)

    assert done.asked == 2
    assert 0 <= done.ended <= 2  # how many within the cancel wait: the server's tests say exactly
    for key in (first, second):
        assert (await stack.jobs.wait(key, timeout=WAIT)).status is JobStatus.CANCELLED
    assert await stack.admin.cancel_all(item) == CancelledAll(asked=0, ended=0)
    with pytest.raises(InvalidRequest) as refused:
        await stack.admin.cancel_all(JobFilter(tenant_id=first.tenant_id))
    assert [violation.field for violation in refused.value.field_violations] == ["filter"]
