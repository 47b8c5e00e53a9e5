"""The AdminService over real gRPC: jobs of every tenant, counts, a job's history, every change live."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from fabric_jobs.keys import KEY_FIELDS
from fabric_jobs.server.app import ADMIN_SERVICE_NAME
from fabric_jobs.server.lifecycle.admin import matches
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus
from fabric_jobs.server.store import JobFilter
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs
from tests.server.calls import CANCELLED, COMPLETED, FAILED, IN_PROGRESS, NOT_STARTED


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry)


@pytest.fixture
def admin(running: RunningServer) -> admin_grpc.AdminServiceAsyncStub:
    return admin_grpc.AdminServiceStub(running.channel)


async def create(running: RunningServer, job_type: str, **fields: str) -> pb.JobInstanceKey:
    key = new_key(ITEM_TYPE, job_type, **fields)
    await running.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    return key


async def test_search_lists_every_tenant_newest_first_filtered_and_paged(
    running: RunningServer, admin: admin_grpc.AdminServiceAsyncStub
) -> None:
    tenant = str(uuid.uuid4())
    keys = [await create(running, job_types.GATED, tenant_id=tenant if n % 2 else "") for n in range(5)]
    for key in keys:
        await wait_for_status(running.stub, key, IN_PROGRESS)

    everything = await admin.SearchJobInstances(admin_pb.SearchJobInstancesRequest())
    first = await admin.SearchJobInstances(admin_pb.SearchJobInstancesRequest(page_size=3))
    rest = await admin.SearchJobInstances(
        admin_pb.SearchJobInstancesRequest(page_size=3, page_token=first.next_page_token)
    )
    of_tenant = await admin.SearchJobInstances(
        admin_pb.SearchJobInstancesRequest(filter=admin_pb.JobInstanceFilter(tenant_id=tenant.upper()))
    )
    by_id = await admin.SearchJobInstances(
        admin_pb.SearchJobInstancesRequest(filter=admin_pb.JobInstanceFilter(job_instance_id=keys[2].job_instance_id))
    )
    queued = await admin.SearchJobInstances(
        admin_pb.SearchJobInstancesRequest(filter=admin_pb.JobInstanceFilter(statuses=[NOT_STARTED]))
    )

    listed = list(everything.job_instances)
    order = [(job.create_time.ToMilliseconds(), job.key.job_instance_id) for job in listed]
    assert order == sorted(order, reverse=True)
    assert sorted(job.key.job_instance_id for job in listed) == sorted(key.job_instance_id for key in keys)
    assert len({key.tenant_id for key in keys}) == 4
    assert everything.next_page_token == rest.next_page_token == ""
    assert [*first.job_instances, *rest.job_instances] == list(everything.job_instances)
    assert {job.key.job_instance_id for job in of_tenant.job_instances} == {
        keys[3].job_instance_id,
        keys[1].job_instance_id,
    }
    assert [job.key for job in by_id.job_instances] == [keys[2]]
    assert list(queued.job_instances) == []


async def test_bad_filters_and_page_tokens_are_invalid_argument_naming_the_field(
    admin: admin_grpc.AdminServiceAsyncStub,
) -> None:
    bad = admin_pb.JobInstanceFilter(tenant_id="nope", item_type="no spaces", statuses=[42])  # type: ignore[list-item]
    err = await rpc_error(admin.SearchJobInstances(admin_pb.SearchJobInstancesRequest(filter=bad, page_size=5000)))
    token_err = await rpc_error(admin.SearchJobInstances(admin_pb.SearchJobInstancesRequest(page_token="abc")))
    count_err = await rpc_error(admin.CountJobInstances(admin_pb.CountJobInstancesRequest(filter=bad)))

    assert err.code() == token_err.code() == count_err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == {
        "filter.tenant_id",
        "filter.item_type",
        "filter.statuses",
        "page_size",
    }
    assert set(status_details(token_err).field_violations) == {"page_token"}


async def test_counts_by_status_include_zeroes_and_a_total(
    running: RunningServer, admin: admin_grpc.AdminServiceAsyncStub
) -> None:
    done = await create(running, job_types.COMPLETES)
    failed = await create(running, job_types.FAILS)
    running_key = await create(running, job_types.GATED)
    await wait_for_status(running.stub, done, COMPLETED)
    await wait_for_status(running.stub, failed, FAILED)
    await wait_for_status(running.stub, running_key, IN_PROGRESS)

    counts = await admin.CountJobInstances(admin_pb.CountJobInstancesRequest())
    one = await admin.CountJobInstances(
        admin_pb.CountJobInstancesRequest(filter=admin_pb.JobInstanceFilter(tenant_id=done.tenant_id))
    )

    assert {entry.status: entry.count for entry in counts.counts} == {
        NOT_STARTED: 0,
        IN_PROGRESS: 1,
        COMPLETED: 1,
        FAILED: 1,
        CANCELLED: 0,
    }
    assert counts.total == 3
    assert one.total == 1


async def test_transitions_give_a_jobs_history_with_times(
    running: RunningServer, admin: admin_grpc.AdminServiceAsyncStub
) -> None:
    key = await create(running, job_types.COOPERATES)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    job = await wait_for_status(running.stub, key, CANCELLED)

    history = await admin.ListJobInstanceTransitions(admin_pb.ListJobInstanceTransitionsRequest(key=key))
    missing = await rpc_error(
        admin.ListJobInstanceTransitions(
            admin_pb.ListJobInstanceTransitionsRequest(key=new_key(ITEM_TYPE, job_types.COOPERATES))
        )
    )

    assert history.job_instance == job
    assert [(step.status, step.cancel_requested) for step in history.transitions] == [
        (NOT_STARTED, False),
        (IN_PROGRESS, False),
        (IN_PROGRESS, True),
        (CANCELLED, True),
    ]
    times = [step.time.ToMilliseconds() for step in history.transitions]
    assert times == sorted(times)
    assert (times[0], times[1], times[-1]) == (
        job.create_time.ToMilliseconds(),
        job.start_time.ToMilliseconds(),
        job.end_time.ToMilliseconds(),
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert status_details(missing).reason == "JobInstanceNotFound"


async def test_watch_changes_streams_every_change_of_the_jobs_its_filter_covers(
    running: RunningServer, admin: admin_grpc.AdminServiceAsyncStub, jobs: TestJobs
) -> None:
    tenant = str(uuid.uuid4())
    stream = admin.WatchJobInstanceChanges(
        admin_pb.WatchJobInstanceChangesRequest(filter=admin_pb.JobInstanceFilter(tenant_id=tenant))
    )
    everything = admin.WatchJobInstanceChanges(admin_pb.WatchJobInstanceChangesRequest())
    await stream.initial_metadata()  # sent once the watch sees every later change
    await everything.initial_metadata()
    other = await create(running, job_types.COMPLETES)
    key = await create(running, job_types.GATED, tenant_id=tenant)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    jobs.gate.set()

    seen: list[tuple[int, str]] = []
    while not seen or seen[-1][0] != COMPLETED:
        reply = await asyncio.wait_for(stream.read(), 10)
        assert isinstance(reply, admin_pb.WatchJobInstanceChangesResponse)
        seen.append((reply.job_instance.status, reply.job_instance.key.job_instance_id))
    others: set[str] = set()
    while key.job_instance_id not in others or other.job_instance_id not in others:
        reply = await asyncio.wait_for(everything.read(), 10)
        assert isinstance(reply, admin_pb.WatchJobInstanceChangesResponse)
        others.add(reply.job_instance.key.job_instance_id)
    stream.cancel()
    everything.cancel()

    assert {job_instance_id for _, job_instance_id in seen} == {key.job_instance_id}
    assert [status for status, _ in seen][-1] == COMPLETED
    assert {status for status, _ in seen} <= {NOT_STARTED, IN_PROGRESS, COMPLETED}


def test_the_admin_service_has_its_own_name() -> None:
    assert ADMIN_SERVICE_NAME == "fabric_jobs.v1.AdminService"


@pytest.mark.parametrize("field", KEY_FIELDS)
def test_a_change_watch_filters_on_each_key_part(field: str) -> None:
    key = JobKey(*(str(uuid.uuid4()) for _ in KEY_FIELDS))
    record = JobRecord(key, JobStatus.IN_PROGRESS, InvokeType.MANUAL, "{}", 1_000, 2_000, None, None, False, "o", 2)
    same: dict[str, Any] = {field: getattr(key, field)}
    other: dict[str, Any] = {field: str(uuid.uuid4())}
    assert matches(JobFilter(**same), record)
    assert not matches(JobFilter(**other), record)
    assert matches(JobFilter(), record)


async def test_purge_deletes_ended_jobs_and_names_every_bad_field(
    running: RunningServer, admin: admin_grpc.AdminServiceAsyncStub
) -> None:
    ended = await create(running, job_types.COMPLETES)
    unended = await create(running, job_types.GATED)
    await wait_for_status(running.stub, ended, COMPLETED)
    now = admin_pb.PurgeJobInstancesRequest()
    now.older_than.FromSeconds(0)
    no_age = admin_pb.PurgeJobInstancesRequest()
    negative = admin_pb.PurgeJobInstancesRequest(filter=admin_pb.JobInstanceFilter(statuses=[IN_PROGRESS]))
    negative.older_than.FromSeconds(-1)

    dry_run = admin_pb.PurgeJobInstancesRequest(dry_run=True)
    dry_run.older_than.FromSeconds(0)
    counted = await admin.PurgeJobInstances(dry_run)
    purged = await admin.PurgeJobInstances(now)
    no_age_err = await rpc_error(admin.PurgeJobInstances(no_age))
    negative_err = await rpc_error(admin.PurgeJobInstances(negative))

    assert (counted.purged, purged.purged) == (1, 1)
    assert (await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=ended)))).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    assert (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=unended))).job_instance.status in (
        NOT_STARTED,
        IN_PROGRESS,
    )
    assert set(status_details(no_age_err).field_violations) == {"older_than"}
    assert set(status_details(negative_err).field_violations) == {"older_than", "filter.statuses"}
