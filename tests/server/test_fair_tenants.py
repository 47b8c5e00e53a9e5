"""Fair tenants, on SQLite and PostgreSQL alike: --max-running-per-tenant caps a tenant's running jobs across every
replica (measured by the handlers themselves), the jobs over the cap wait NotStarted and start oldest first as the
tenant's running jobs end, and another tenant's job starts while the first tenant's backlog waits."""

# ruff: noqa: F811 (the store fixtures of test_store, imported, are this module's test parameters)
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import jobs
from tests.conftest import ServerFactory, new_key, wait_for_status
from tests.harness import eventually, server_factory
from tests.server.test_store import dialect, store_url  # noqa: F401 (fixtures)

NOT_STARTED = pb.JOB_INSTANCE_STATUS_NOT_STARTED
IN_PROGRESS = pb.JOB_INSTANCE_STATUS_IN_PROGRESS
COMPLETED = pb.JOB_INSTANCE_STATUS_COMPLETED
TENANT_A = "a0a0a0a0-0000-4000-8000-00000000000a"
TENANT_B = "b0b0b0b0-0000-4000-8000-00000000000b"


@pytest.fixture(autouse=True)
def fresh_gauge() -> Iterator[jobs.TenantGauge]:
    """The gauge of this test alone; every job it held is released at the end."""
    jobs.tenant_gauge = gauge = jobs.TenantGauge()
    yield gauge
    for job_instance_id in gauge.started:
        gauge.release(job_instance_id)


@pytest.fixture
async def start_server(store_url: str) -> AsyncIterator[ServerFactory]:
    async with server_factory(store_url) as start:
        yield start


async def create(
    stub: pb_grpc.JobServiceAsyncStub, tenant_id: str, name: str, payload: str = "{}"
) -> pb.JobInstanceKey:
    key = new_key(jobs.ITEM_TYPE, jobs.GAUGED, tenant_id=tenant_id, job_instance_id=name)
    request = pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=payload)
    await stub.CreateJobInstance(request)
    return key


async def statuses(stub: pb_grpc.JobServiceAsyncStub, keys: list[pb.JobInstanceKey]) -> list[int]:
    replies = [await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)) for key in keys]
    return [reply.job_instance.status for reply in replies]


async def started(count: int) -> list[str]:
    """The first `count` job instance ids the gauged handlers started, once as many have started."""
    return await eventually(
        lambda: jobs.tenant_gauge.started[:count] if len(jobs.tenant_gauge.started) >= count else None,
        what=f"{count} gauged jobs starting",
    )


def names(count: int) -> list[str]:
    """Job instance ids that sort as they are numbered, so that jobs created in the same millisecond still have an
    order: oldest first is then the order of creation."""
    prefix = uuid.uuid4().hex[:8]
    return [f"{prefix}-0000-4000-8000-{number:012d}" for number in range(count)]


def capped(**settings: Any) -> dict[str, Any]:
    """Small places everywhere, so that the cap, not the executor, is what holds jobs back."""
    return {"max_threads": 8, "worker_concurrency": 8, **settings}


async def test_a_tenants_running_jobs_never_exceed_the_cap_across_replicas(
    start_server: ServerFactory, dialect: str
) -> None:
    first = await start_server(jobs.registry, **capped(max_running_per_tenant=2))
    # On PostgreSQL a second replica, with its own worker, claims from the same queue; SQLite has one process.
    second = await start_server(jobs.registry, **capped(max_running_per_tenant=2)) if dialect == "postgresql" else first
    quick = '{"delaySeconds": 0.05}'
    keys = []
    for number, name in enumerate(names(12)):
        keys.append(await create((first, second)[number % 2].stub, TENANT_A, name, quick))
    for name in names(4):
        keys.append(await create(second.stub, TENANT_B, name, quick))

    async def all_completed() -> bool:
        return await statuses(first.stub, keys) == [COMPLETED] * len(keys)

    await eventually(all_completed, within=30, what="every job completing")
    assert jobs.tenant_gauge.most_running[TENANT_A] <= 2
    assert jobs.tenant_gauge.most_running[TENANT_B] <= 2
    assert sorted(jobs.tenant_gauge.started) == sorted(key.job_instance_id for key in keys), "each ran once"


async def test_jobs_over_the_cap_wait_then_start_oldest_first_as_the_tenants_jobs_end(
    start_server: ServerFactory, dialect: str
) -> None:
    server = await start_server(jobs.registry, **capped(max_running_per_tenant=2))
    a = [await create(server.stub, TENANT_A, name) for name in names(5)]
    first_two = await started(2)
    assert set(first_two) == {a[0].job_instance_id, a[1].job_instance_id}

    b = await create(server.stub, TENANT_B, names(1)[0])
    await wait_for_status(server.stub, b, IN_PROGRESS)
    assert await statuses(server.stub, a[2:]) == [NOT_STARTED] * 3, "A's backlog waits while B's job runs"

    for ending, starting in ((0, 2), (1, 3), (2, 4)):
        jobs.tenant_gauge.release(a[ending].job_instance_id)
        await wait_for_status(server.stub, a[starting], IN_PROGRESS)
        assert await statuses(server.stub, a[starting + 1 :]) == [NOT_STARTED] * (len(a) - starting - 1)

    assert jobs.tenant_gauge.started[2:] == [b.job_instance_id, *(key.job_instance_id for key in a[2:])]
    assert jobs.tenant_gauge.most_running[TENANT_A] == 2
    for key in (a[3], a[4], b):
        jobs.tenant_gauge.release(key.job_instance_id)
    for key in [*a, b]:
        await wait_for_status(server.stub, key, COMPLETED)
    assert all(jobs.runs[key.job_instance_id] == 1 for key in [*a, b])


async def test_another_tenants_job_starts_in_the_next_round_not_after_the_backlog(
    start_server: ServerFactory, dialect: str
) -> None:
    # No cap: two places in all (two handler threads; on PostgreSQL, a worker that runs two jobs at once).
    server = await start_server(jobs.registry, max_threads=2, worker_concurrency=2)
    a = [await create(server.stub, TENANT_A, name) for name in names(6)]
    assert set(await started(2)) == {a[0].job_instance_id, a[1].job_instance_id}
    b = await create(server.stub, TENANT_B, names(1)[0])

    jobs.tenant_gauge.release(a[0].job_instance_id)
    jobs.tenant_gauge.release(a[1].job_instance_id)

    # The two places that free go to the next tenant in turn: A's next job and B's (in either order: two places
    # free at once, and on PostgreSQL two worker slots fetch concurrently), never two of A's.
    assert set((await started(4))[2:]) == {a[2].job_instance_id, b.job_instance_id}
    assert await statuses(server.stub, a[3:]) == [NOT_STARTED] * 3, "B did not wait for A's backlog"
    for key in [*a, b]:
        jobs.tenant_gauge.release(key.job_instance_id)
    await asyncio.gather(*(wait_for_status(server.stub, key, COMPLETED) for key in [*a, b]))
